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
    calcs = {
        triple.link_label: triple.node
        for triple in workchain.base.links.get_outgoing(node_class=orm.CalcJobNode, link_type=LinkType.CALL_CALC).all()
        if triple.node.is_finished_ok
    }
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


# ---------------------------------------------------------------------------------- command
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
    from aiida.common.exceptions import MultipleObjectsError, NotExistent
    from aiida.manage import get_manager

    if profile is not None or get_manager().get_profile() is None:
        load_profile(profile, allow_switch=True)
    try:
        node = orm.load_node(identifier)
    except (NotExistent, MultipleObjectsError) as exception:
        raise click.BadParameter(str(exception), param_hint='IDENTIFIER') from None
    plot = plotter_for(node)
    if plot is None:
        known = ', '.join(sorted(PLOTTERS))
        raise click.ClickException(
            f'no plots for {node.__class__.__name__}<{node.pk}> ({node.process_type or node.node_type}); '
            f'plots exist for: {known}'
        )
    output_dir = output_dir or pathlib.Path(f'mscale-report-{node.pk}')
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = plot(node, output_dir)
    if not paths:
        raise click.ClickException(f'{node.__class__.__name__}<{node.pk}> has nothing to plot (no outputs yet?)')
    for path in paths:
        click.echo(str(path))
