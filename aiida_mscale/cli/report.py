"""``aiida-mscale report <pk>``: draw the plots of a finished process (or data node) as PNG files.

What gets drawn is looked up in :data:`PLOTTERS`, a registry from a process type (``node.process_type``,
e.g. ``aiida.workflows:mscale.electrode``) or a node type (``node.node_type``) to a function
``plot(node, output_dir: pathlib.Path) -> list[pathlib.Path]``. Other parts of the suite add their own
plots with :func:`register`::

    from aiida_mscale.cli.report import register

    @register('aiida.workflows:mscale.transport')
    def plot_transport(node, output_dir):
        ...
        return [path, ...]

Figures are made with matplotlib's object API (no pyplot, no display needed); each PNG carries its number of
axes in the text chunk ``mscale-axes``.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import click
import numpy as np

from aiida_mscale.cli.root import cmd_root

#: process type or node type -> plotting function(node, output_dir) -> list of PNG paths
PLOTTERS: dict[str, Callable] = {}
AXES_KEY = 'mscale-axes'


def register(*keys: str):
    """Decorator: register a plotting function for the given process types / node types."""

    def decorator(function):
        for key in keys:
            PLOTTERS[key] = function
        return function

    return decorator


def plotter_for(node) -> Callable | None:
    """The plotting function registered for ``node``'s process type or node type, if any."""
    for key in (getattr(node, 'process_type', None), node.node_type):
        if key and key in PLOTTERS:
            return PLOTTERS[key]
    return None


# ---------------------------------------------------------------------------------- drawing
def _figure():
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 4.2), layout='constrained')
    return figure, figure.add_subplot()


def _plain_log_ticks(axis) -> None:
    """Tick labels as plain numbers (0.5, 2, 10) on a logarithmic axis, not 5x10^-1."""
    from matplotlib.ticker import FuncFormatter

    formatter = FuncFormatter(lambda value, _: f'{value:g}')
    axis.set_major_formatter(formatter)
    axis.set_minor_formatter(formatter)


def _save(figure, path: pathlib.Path) -> pathlib.Path:
    figure.savefig(path, dpi=110, metadata={AXES_KEY: str(len(figure.axes))})
    return path


def draw_voltage_curves(curves, xlabel: str, title: str, path: pathlib.Path) -> pathlib.Path:
    """``curves``: (label, capacity, voltage) per C-rate."""
    figure, axes = _figure()
    for label, capacity, voltage in curves:
        axes.plot(capacity, voltage, label=label)
    axes.set_xlabel(xlabel)
    axes.set_ylabel('voltage (V)')
    axes.set_title(title)
    axes.legend(title='C-rate', fontsize='small')
    axes.grid(alpha=0.3)
    return _save(figure, path)


def draw_rate_capability(series, ylabel: str, path: pathlib.Path) -> pathlib.Path:
    """``series``: (label, c_rate, capacity) per model."""
    figure, axes = _figure()
    for label, rates, capacity in series:
        axes.semilogx(rates, capacity, 'o-', label=label)
    _plain_log_ticks(axes.xaxis)
    axes.set_xlabel('C-rate (1/h)')
    axes.set_ylabel(ylabel)
    axes.set_title('rate capability')
    axes.legend(fontsize='small')
    axes.grid(alpha=0.3, which='both')
    return _save(figure, path)


def draw_front(time, front_relative, path: pathlib.Path) -> pathlib.Path:
    figure, axes = _figure()
    axes.plot(np.asarray(time) / 60.0, front_relative)
    axes.set_xlabel('time (min)')
    axes.set_ylabel('phase-boundary position $r_f/R$')
    axes.set_ylim(0.0, 1.05)
    axes.set_title('phase-boundary propagation')
    axes.grid(alpha=0.3)
    return _save(figure, path)


def draw_d_eff(grain_size, temperature, d_eff, hs_lower, hs_upper, path: pathlib.Path) -> pathlib.Path:
    """D_eff (n_sizes, n_T) against grain size, one line per temperature, HS bounds as a band."""
    figure, axes = _figure()
    size_nm = np.asarray(grain_size) * 1e9
    for j, temp in enumerate(temperature):
        (line,) = axes.loglog(size_nm, d_eff[:, j], 'o-', label=f'{temp:g} K')
        axes.fill_between(size_nm, hs_lower[:, j], hs_upper[:, j], color=line.get_color(), alpha=0.15, lw=0)
    _plain_log_ticks(axes.xaxis)
    axes.set_xlabel('grain size (nm)')
    axes.set_ylabel(r'$D_\mathrm{eff}$ (m$^2$/s)')
    axes.set_title('effective diffusivity (bands: Hashin-Shtrikman bounds)')
    axes.legend(fontsize='small')
    axes.grid(alpha=0.3, which='both')
    return _save(figure, path)


# ---------------------------------------------------------------------------------- continuum
def _capacity_curves(arrays, results: dict):
    """(label, capacity, voltage) per C-rate of a particle_diffusion or porous_electrode run, and the x label."""
    rates = results['rate_capability']['c_rate']
    unit = results.get('units', {}).get('capacity', '').replace('_per_', '/')
    names = arrays.get_arraynames()
    curves = []
    for k, rate in enumerate(rates):
        voltage = arrays.get_array(f'rate{k}_voltage')
        for suffix in ('capacity_curve_mAh_per_g', 'capacity_curve_mAh_per_cm3'):
            if f'rate{k}_{suffix}' in names:
                capacity, xlabel = arrays.get_array(f'rate{k}_{suffix}'), f'capacity ({suffix.split("_per_")[1]})'
                xlabel = xlabel.replace('(g)', '(mAh/g)').replace('(cm3)', '(mAh/cm$^3$)')
                break
        else:  # porous electrode: fraction of the window -> capacity in the rate table's unit
            soc = arrays.get_array(f'rate{k}_soc')
            full = results['rate_capability']['capacity'][k] / max(
                results['rate_capability']['soc_delivered'][k], 1e-30
            )
            capacity, xlabel = soc * full, f'capacity ({unit})'
        curves.append((rate, capacity, voltage))
    curves = [(f'{rate:g} C', capacity, voltage) for rate, capacity, voltage in sorted(curves, key=lambda c: c[0])]
    return curves, xlabel


def _plot_model(calc, output_dir: pathlib.Path, prefix: str) -> list[pathlib.Path]:
    model = calc.inputs.model.value
    results = calc.outputs.results.get_dict()
    arrays = calc.outputs.arrays
    paths = []
    if model in ('particle_diffusion', 'porous_electrode'):
        curves, xlabel = _capacity_curves(arrays, results)
        name = 'voltage_curves' if model == 'particle_diffusion' else 'electrode_voltage_curves'
        title = 'single particle' if model == 'particle_diffusion' else 'porous electrode (P2D)'
        paths.append(draw_voltage_curves(curves, xlabel, title, output_dir / f'{prefix}{name}.png'))
    if model == 'phase_field':
        front = arrays.get_array('front_position')
        keep = np.isfinite(front)
        radius = float(np.max(arrays.get_array('r')))
        time = arrays.get_array('time')[keep]
        paths.append(draw_front(time, front[keep] / radius, output_dir / f'{prefix}front_position.png'))
    if model == 'polycrystal':
        bounds = arrays.get_array('hs_bounds')
        paths.append(
            draw_d_eff(
                arrays.get_array('grain_size'),
                arrays.get_array('temperature'),
                arrays.get_array('D_eff'),
                bounds[..., 0],
                bounds[..., 1],
                output_dir / f'{prefix}d_eff.png',
            )
        )
    return paths


@register('aiida.calculations:mscale.continuum')
def plot_continuum(calc, output_dir: pathlib.Path) -> list[pathlib.Path]:
    """The plots of one ContinuumCalculation (by model), plus its rate capability where it has one."""
    if not calc.is_finished_ok:
        raise click.ClickException(f'ContinuumCalculation<{calc.pk}> did not finish ok: {calc.exit_message}')
    paths = _plot_model(calc, output_dir, f'{calc.pk}_')
    results = calc.outputs.results.get_dict()
    if 'rate_capability' in results:
        table = results['rate_capability']
        order = np.argsort(table['c_rate'])
        series = [(calc.inputs.model.value, np.asarray(table['c_rate'])[order], np.asarray(table['capacity'])[order])]
        unit = results.get('units', {}).get('capacity', '').replace('_per_', '/')
        paths.append(draw_rate_capability(series, f'capacity ({unit})', output_dir / f'{calc.pk}_rate_capability.png'))
    return paths


@register('aiida.workflows:mscale.electrode')
def plot_electrode(workchain, output_dir: pathlib.Path) -> list[pathlib.Path]:
    """Voltage curves per C-rate, rate capability, front position against time, D_eff against grain size per T."""
    from aiida import orm
    from aiida.common.links import LinkType

    prefix = f'{workchain.pk}_'
    outputs = workchain.outputs
    calcs = {}
    for triple in workchain.base.links.get_outgoing(link_type=(LinkType.CALL_CALC, LinkType.CALL_WORK)).all():
        node = triple.node
        if isinstance(node, orm.WorkflowNode):  # a restart wrapper (ContinuumBaseWorkChain): its last calculation
            done = [c for c in node.base.links.get_outgoing(node_class=orm.CalcJobNode).all_nodes() if c.is_finished_ok]
            node = max(done, key=lambda c: c.ctime) if done else None
        if isinstance(node, orm.CalcJobNode) and node.is_finished_ok:
            calcs[triple.link_label] = node
    paths = []
    for model in ('particle_diffusion', 'porous_electrode'):
        if model in calcs:
            paths.extend(_plot_model(calcs[model], output_dir, prefix))
    series, units = [], set()
    for name, label in (('rate_capability', 'single particle'), ('electrode_rate_capability', 'porous electrode')):
        if name in outputs:
            table = outputs[name]
            series.append((label, table.get_array('c_rate'), table.get_array('capacity')))
            units.add(table.base.attributes.get('capacity_unit', ''))
    if series:
        ylabel = f'capacity ({units.pop()})' if len(units) == 1 else 'capacity'
        paths.append(draw_rate_capability(series, ylabel, output_dir / f'{prefix}rate_capability.png'))
    if 'phase_boundary' in outputs:
        trajectory = outputs.phase_boundary
        paths.append(
            draw_front(
                trajectory.get_array('time'),
                trajectory.get_array('front_position_relative'),
                output_dir / f'{prefix}front_position.png',
            )
        )
    if 'effective_diffusivity' in outputs:
        table = outputs.effective_diffusivity
        paths.append(
            draw_d_eff(
                table.get_array('grain_size'),
                table.get_array('temperature'),
                table.get_array('D_eff'),
                table.get_array('hs_lower'),
                table.get_array('hs_upper'),
                output_dir / f'{prefix}d_eff.png',
            )
        )
    return paths


# ---------------------------------------------------------------------------------- transport
def _temperature_colours(values):
    from matplotlib import colormaps

    values = np.asarray(values, dtype=float)
    span = np.ptp(values) if values.size > 1 else 1.0
    return [colormaps['plasma'](0.85 * (v - values.min()) / (span or 1.0)) for v in values]


def draw_msd(series, species: str, path: pathlib.Path) -> pathlib.Path:
    """``series``: (label, T, lag, msd, fit, lower, upper, window) per trajectory; fit drawn over the window."""
    figure, axes = _figure()
    for (label, temp, lag, msd, fit, lower, upper, window), colour in zip(
        series, _temperature_colours([s[1] for s in series])
    ):
        axes.plot(lag, msd, color=colour, lw=1.2, label=f'{label} ({temp:g} K)')
        inside = (lag >= window[0]) & (lag <= window[1])
        axes.plot(lag[inside], fit[inside], '--', color='k', lw=0.9)
        axes.fill_between(lag[inside], lower[inside], upper[inside], color=colour, alpha=0.3, lw=0)
    # the linear regime, not the noisy long-lag tail: up to 3x the end of the widest fit window
    t_max = min(max(float(s[2][-1]) for s in series), 3.0 * max(float(s[7][1]) for s in series))
    axes.set_xlim(0.0, t_max)
    axes.set_ylim(0.0, 1.05 * max(float(np.max(s[3][s[2] <= t_max])) for s in series))
    axes.set_xlabel('lag time (ps)')
    axes.set_ylabel(rf'tracer MSD of {species} ($\AA^2$)')
    axes.set_title('MSD, fitted line (dashed) and its 1-sigma band over the fit window')
    axes.legend(fontsize='small')
    axes.grid(alpha=0.3)
    return _save(figure, path)


def draw_arrhenius(temperature, d, d_err, curves, entry: dict, species: str, path: pathlib.Path) -> pathlib.Path:
    """D(T) with error bars against 1000/T; every fitted model with its band; the verdict in the title."""
    figure, axes = _figure()
    axes.errorbar(1000.0 / np.asarray(temperature), d, yerr=d_err, fmt='ko', ms=4, capsize=3, label='MD', zorder=3)
    grid = curves['temperature']
    styles = {'arrhenius': ('C0', '-'), 'two_regime': ('C1', '--'), 'vtf': ('C2', '-.')}
    for model, (colour, style) in styles.items():
        key = f'{species}_{model}_value'
        if key not in curves:
            continue
        label = model + (' (best)' if model == entry['best_model'] else '')
        if model == 'arrhenius':
            label += f': Ea = {entry["Ea"]:.4g} $\\pm$ {entry["Ea_err"]:.2g} eV'
        axes.semilogy(1000.0 / grid, curves[key], style, color=colour, label=label)
        lower, upper = curves[f'{species}_{model}_lower'], curves[f'{species}_{model}_upper']
        axes.fill_between(1000.0 / grid, lower, upper, color=colour, alpha=0.15, lw=0)
    axes.set_xlabel('1000 / T (1/K)')
    axes.set_ylabel(rf'$D^*$ of {species} (cm$^2$/s)')
    axes.set_title(f'{species}: {entry["verdict"]} by {entry["criterion"]}')
    axes.legend(fontsize='small')
    axes.grid(alpha=0.3, which='both')
    return _save(figure, path)


def draw_mode_map(embedding, modes, labels, path: pathlib.Path) -> pathlib.Path:
    """2-D principal-component projection of the standardized descriptors, coloured by diffusion mode."""
    figure, axes = _figure()
    embedding = np.asarray(embedding)
    for index, label in enumerate(labels):
        mask = np.asarray(modes) == index
        axes.scatter(*embedding[mask].T, s=4, alpha=0.5, color=f'C{index}', label=f'mode {index}: {label}')
    axes.set_xlabel('PC 1')
    axes.set_ylabel('PC 2')
    axes.set_title('diffusion modes (Gaussian mixture, BIC)')
    axes.legend(fontsize='small', markerscale=3)
    return _save(figure, path)


def draw_importance(names, importance, errors, r2, r2_std, path: pathlib.Path) -> pathlib.Path:
    """Horizontal bars of permutation importance (drop in R^2), most important on top."""
    figure, axes = _figure()
    order = np.argsort(importance)
    axes.barh(np.arange(len(names)), np.asarray(importance)[order], xerr=np.asarray(errors)[order], color='C0')
    axes.set_yticks(np.arange(len(names)), [names[k] for k in order], fontsize='small')
    axes.axvline(0.0, color='k', lw=0.8)
    axes.set_xlabel(r'permutation importance (drop in held-out $R^2$)')
    axes.set_title(rf'mobility regression: $R^2_\mathrm{{cv}}$ = {r2:.2f} $\pm$ {r2_std:.2f}')
    return _save(figure, path)


def draw_class_fractions(series, n_classes: int, path: pathlib.Path) -> pathlib.Path:
    """``series``: (label, times, fractions (n_frames, n_classes)); colour = class, line style = trajectory."""
    figure, axes = _figure()
    styles = ['-', '--', '-.', ':']
    for k, (label, times, fractions) in enumerate(series):
        for c in range(n_classes):
            axes.plot(
                times, fractions[:, c], styles[k % 4], color=f'C{c}', label=f'class {c}' if k == 0 else None, lw=1.2
            )
        axes.plot([], [], styles[k % 4], color='0.4', label=label)
    axes.set_xlabel('time (ps)')
    axes.set_ylabel('fraction of atoms')
    axes.set_ylim(-0.02, 1.02)
    axes.set_title('local-environment classes per frame')
    axes.legend(fontsize='small', ncol=2)
    axes.grid(alpha=0.3)
    return _save(figure, path)


@register('aiida.workflows:mscale.transport')
def plot_transport(workchain, output_dir: pathlib.Path) -> list[pathlib.Path]:
    """MSD with fit and band, Arrhenius plot, mode map, importance bars, environment-class fractions."""
    prefix = f'{workchain.pk}_'
    outputs = workchain.outputs
    paths = []
    msd = dict(outputs['msd']) if 'msd' in outputs else {}
    species = workchain.inputs.mobile_species.value.replace(',', ' ').split()[0]
    if msd:
        series = []
        for label, arrays in msd.items():
            key = f'tracer_{species}'
            series.append(
                (
                    label,
                    arrays.base.attributes.get('temperature'),
                    arrays.get_array('lag_time'),
                    arrays.get_array(f'{key}_msd'),
                    arrays.get_array(f'{key}_fit'),
                    arrays.get_array(f'{key}_fit_lower'),
                    arrays.get_array(f'{key}_fit_upper'),
                    arrays.base.attributes.get('fit_window')[species],
                )
            )
        series.sort(key=lambda s: s[1])
        paths.append(draw_msd(series, species, output_dir / f'{prefix}msd.png'))
    if 'arrhenius' in outputs:
        result = outputs.arrhenius.get_dict()
        entry = result['species'][species]
        curves = {name: outputs.arrhenius_curves.get_array(name) for name in outputs.arrhenius_curves.get_arraynames()}
        paths.append(
            draw_arrhenius(
                result['temperature'],
                entry['D_cm2_s'],
                entry['D_cm2_s_err'],
                curves,
                entry,
                species,
                output_dir / f'{prefix}arrhenius.png',
            )
        )
    if 'modes' in outputs:
        result, arrays = outputs.modes.get_dict(), outputs.modes_arrays
        labels = [m['label'] for m in result['modes']]
        paths.append(
            draw_mode_map(
                arrays.get_array('embedding'), arrays.get_array('mode'), labels, output_dir / f'{prefix}modes.png'
            )
        )
        names = result['descriptors']
        paths.append(
            draw_importance(
                names,
                [result['importance'][n] for n in names],
                [result['importance_err'][n] for n in names],
                result['r2_cv'],
                result['r2_cv_std'],
                output_dir / f'{prefix}importance.png',
            )
        )
    if 'environment_fractions' in outputs:
        arrays = outputs.environment_fractions
        series = [
            (label, arrays.get_array(f'times_{label}'), arrays.get_array(f'fractions_{label}'))
            for label in arrays.base.attributes.get('labels')
        ]
        paths.append(
            draw_class_fractions(
                series, arrays.base.attributes.get('n_classes'), output_dir / f'{prefix}environment_classes.png'
            )
        )
    return paths


# ---------------------------------------------------------------------------------- command
@register('aiida.workflows:mscale.active_learning')
def plot_active_learning(workchain, output_dir: pathlib.Path) -> list[pathlib.Path]:
    """Learning curve, max grade per state point per iteration, and the guest fractions x visited by GCMC."""
    from aiida_mscale.plotting.active_learning import draw_coverage, draw_learning_curve, draw_max_grades

    outputs = workchain.outputs
    paths = []
    if 'learning_curve' in outputs:
        curve = {name: outputs.learning_curve.get_array(name) for name in outputs.learning_curve.get_arraynames()}
        paths.append(_save(draw_learning_curve(curve), output_dir / 'learning_curve.png'))
        paths.append(
            _save(
                draw_max_grades(
                    curve['iteration'],
                    curve['max_grade'],
                    curve['state_points'],
                    select_threshold=workchain.inputs.select_threshold.value,
                    break_threshold=workchain.inputs.break_threshold.value,
                ),
                output_dir / 'max_grade.png',
            )
        )
    if 'coverage' in outputs:
        coverage = {name: outputs.coverage.get_array(name) for name in outputs.coverage.get_arraynames()}
        paths.append(_save(draw_coverage(coverage, workchain.inputs.guest.value), output_dir / 'coverage.png'))
    return paths


@cmd_root.command('report')
@click.argument('identifier')
@click.option(
    '-o',
    '--output-dir',
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    default=None,
    help='Folder for the PNG files (created if needed). Default: ./mscale-report-<pk>.',
)
@click.option('--profile', default=None, help='AiiDA profile (default: the loaded or default profile).')
def cmd_report(identifier, output_dir, profile):
    """Draw the plots of the process or node IDENTIFIER (pk or UUID) as PNG files and print their paths."""
    from aiida import load_profile, orm
    from aiida.common.exceptions import ConfigurationError, MultipleObjectsError, NotExistent
    from aiida.manage import get_manager

    if profile is not None or get_manager().get_profile() is None:
        try:
            load_profile(profile, allow_switch=True)
        except ConfigurationError as exception:
            hint = 'see `verdi profile list`, or run `aiida-mscale setup`'
            message = f'cannot load the AiiDA profile: {exception} ({hint})'
            raise click.BadParameter(message, param_hint='--profile') from None
    try:
        node = orm.load_node(identifier)
    except (NotExistent, MultipleObjectsError) as exception:
        raise click.BadParameter(str(exception), param_hint='IDENTIFIER') from None
    output_dir = output_dir or pathlib.Path(f'mscale-report-{node.pk}')
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe = output_dir / '.mscale-write-test'
        probe.touch()
        probe.unlink()
    except OSError as exception:
        raise click.BadParameter(
            f'cannot write to `{output_dir}`: {exception.strerror or exception}', param_hint='--output-dir'
        ) from None
    plot = plotter_for(node)
    if plot is None:
        known = ', '.join(sorted(PLOTTERS))
        raise click.ClickException(
            f'no plots for {node.__class__.__name__}<{node.pk}> ({node.process_type or node.node_type}); '
            f'plots exist for: {known}'
        )

    paths = plot(node, output_dir)
    if not paths:
        raise click.ClickException(f'{node.__class__.__name__}<{node.pk}> has nothing to plot (no outputs yet?)')
    for path in paths:
        click.echo(str(path))


# plots registered by other parts of the suite (each module registers its own with `register`)
from aiida_mscale.plotting import multiscale as _multiscale  # noqa: E402, F401
from aiida_mscale.plotting import thermodynamics as _thermodynamics  # noqa: E402, F401
