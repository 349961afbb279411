"""Figures of ThermodynamicsWorkChain and MdProductionWorkChain for ``aiida-mscale report``.

Drawing functions take plain arrays and return a ``matplotlib.figure.Figure`` (object API, no pyplot);
:func:`plot_thermodynamics` and :func:`plot_md_production` read a finished work chain's outputs, draw and save the
PNGs, and are registered with :func:`aiida_mscale.cli.report.register`:

- voltage profile V(x) as a step curve with its uncertainty band, over the formation energies with the hull
  vertices marked;
- volume vs x with its standard errors and the detected transformations shaded;
- the elastic constants C_ij as a table with the VRH moduli and the Born verdict;
- D(T, x) as a heat map, when a TransportAnalysisWorkChain analysed the trajectories of an MD production.
"""

from __future__ import annotations

import pathlib

import numpy as np

from aiida_mscale.cli.report import AXES_KEY, register

VOIGT = ('xx', 'yy', 'zz', 'yz', 'xz', 'xy')


def _figure(rows: int = 1, height: float = 3.4, width: float = 6.0):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height * rows), layout='constrained')
    return figure, [figure.add_subplot(rows, 1, k + 1) for k in range(rows)]


def _save(figure, path: pathlib.Path) -> pathlib.Path:
    figure.savefig(path, dpi=110, metadata={AXES_KEY: str(len(figure.axes))})
    return path


def draw_voltage_profile(x, voltage, voltage_error, configurations: dict, hull: dict, average_voltage: float):
    """Formation energy vs x with the hull (top) and V(x) with its band (bottom)."""
    figure, (energy, profile) = _figure(2)
    xs = [c['x'] for c in configurations.values()]
    ef = [c['formation_energy'] for c in configurations.values()]
    stable = [c['stable'] for c in configurations.values()]
    energy.scatter(
        [a for a, s in zip(xs, stable) if not s], [b for b, s in zip(ef, stable) if not s], c='0.6', label='above hull'
    )
    energy.plot(hull['x'], hull['formation_energy'], 'o-', color='C3', label='hull vertices')
    energy.set_ylabel('formation energy (eV / site)')
    energy.legend(fontsize='small')
    energy.grid(alpha=0.3)
    x, voltage, band = np.asarray(x), np.asarray(voltage), np.asarray(voltage_error)
    profile.plot(x, voltage, color='C0', label='V(x)')
    if np.any(band > 0):
        profile.fill_between(x, voltage - band, voltage + band, color='C0', alpha=0.25, label='±1σ (validation RMSE)')
    profile.axhline(average_voltage, color='k', ls=':', label=f'average {average_voltage:.3f} V')
    profile.set_xlabel('guest fraction x')
    profile.set_ylabel('voltage (V)')
    profile.legend(fontsize='small')
    profile.grid(alpha=0.3)
    return figure


def draw_volume_trend(x, volume, volume_error, transformations: list, relative_change: float):
    """V(x) with error bars, transformations shaded."""
    figure, (axes,) = _figure(1)
    axes.errorbar(x, volume, yerr=volume_error, fmt='o-', capsize=3)
    for k, item in enumerate(transformations):
        axes.axvspan(item['x_low'], item['x_high'], color='C3', alpha=0.2, label='transformation' if k == 0 else None)
    axes.set_xlabel('guest fraction x')
    axes.set_ylabel('volume (Å³)')
    axes.set_title(f'ΔV/V = {relative_change:+.2%} from x = {min(x):g} to {max(x):g}')
    if transformations:
        axes.legend(fontsize='small')
    axes.grid(alpha=0.3)
    return figure


def draw_elastic_table(c, moduli: dict):
    """The 6x6 C_ij [GPa] as a table, with K, G, E, nu (VRH) and Born stability below."""
    figure, (axes,) = _figure(1, height=3.2, width=6.4)
    axes.axis('off')
    cells = [[f'{value:.1f}' for value in row] for row in np.asarray(c)]
    table = axes.table(cellText=cells, rowLabels=VOIGT, colLabels=VOIGT, loc='upper center')
    table.scale(1.0, 1.3)

    def shown(key, digits=1):
        value = moduli.get(key)
        return 'n/a' if value is None else f'{value:.{digits}f}'

    axes.set_title('elastic constants C_ij (GPa)')
    axes.text(
        0.5,
        0.02,
        f'K_VRH = {shown("bulk_modulus_vrh")} GPa, G_VRH = {shown("shear_modulus_vrh")} GPa, '
        f'E = {shown("youngs_modulus")} GPa, ν = {shown("poisson_ratio", 3)}; '
        f'Born {"stable" if moduli.get("born_stable") else "UNSTABLE"}',
        ha='center',
        transform=axes.transAxes,
        fontsize='small',
    )
    return figure


def draw_diffusivity_map(temperatures, fractions, diffusivity):
    """log10 D [cm^2/s] on the (x, T) grid; missing points blank."""
    figure, (axes,) = _figure(1)
    t_values, x_values = sorted(set(temperatures)), sorted(set(fractions))
    grid = np.full((len(t_values), len(x_values)), np.nan)
    for t, x, d in zip(temperatures, fractions, diffusivity):
        if d and d > 0:
            grid[t_values.index(t), x_values.index(x)] = np.log10(d)
    image = axes.imshow(grid, origin='lower', aspect='auto', cmap='viridis')
    axes.set_xticks(range(len(x_values)), [f'{x:.3g}' for x in x_values])
    axes.set_yticks(range(len(t_values)), [f'{t:g}' for t in t_values])
    axes.set_xlabel('guest fraction x')
    axes.set_ylabel('temperature (K)')
    figure.colorbar(image, ax=axes, label='log10 D (cm²/s)')
    return figure


@register('aiida.workflows:mscale.thermodynamics')
def plot_thermodynamics(workchain, output_dir: pathlib.Path) -> list[pathlib.Path]:
    """Voltage profile with band and hull, volume vs x with transformations, C_ij table."""
    outputs, prefix, paths = workchain.outputs, f'{workchain.pk}_', []
    if 'voltage_profile' in outputs:
        profile = outputs.voltage_profile
        figure = draw_voltage_profile(
            profile.get_array('x'),
            profile.get_array('voltage'),
            profile.get_array('voltage_error'),
            outputs.formation_energies['configurations'],
            outputs.hull.get_dict(),
            outputs.average_voltage.value,
        )
        paths.append(_save(figure, output_dir / f'{prefix}voltage_profile.png'))
    if 'volume_trend' in outputs:
        trend = outputs.volume_trend.get_dict()
        figure = draw_volume_trend(
            trend['x'],
            trend['volume'],
            trend['volume_error'],
            trend['transformations'],
            trend['relative_volume_change'],
        )
        paths.append(_save(figure, output_dir / f'{prefix}volume_vs_x.png'))
    if 'elastic_tensor' in outputs:
        figure = draw_elastic_table(outputs.elastic_tensor.get_array('C'), outputs.elastic_moduli.get_dict())
        paths.append(_save(figure, output_dir / f'{prefix}elastic_constants.png'))
    return paths


@register('aiida.workflows:mscale.md_production')
def plot_md_production(workchain, output_dir: pathlib.Path) -> list[pathlib.Path]:
    """D(T, x) heat map from the TransportAnalysisWorkChains that analysed this production's trajectories."""
    from aiida import orm

    outputs = workchain.outputs
    if 'trajectories' not in outputs or 'averages' not in outputs:
        return []
    temperatures, fractions, values = [], [], []
    for label, trajectory in outputs.trajectories.items():
        averages = outputs.averages[label]
        guest = workchain.inputs.guest.value
        for link in trajectory.base.links.get_outgoing(node_class=orm.WorkflowNode).all():
            transport = link.node
            if (
                'diffusivity' not in transport.outputs
                or link.link_label.split('__')[-1] not in transport.outputs['diffusivity']
            ):
                continue
            entry = transport.outputs['diffusivity'][link.link_label.split('__')[-1]].get_dict()
            species = entry.get('species', {}).get(guest)
            if species:
                temperatures.append(averages['temperature'])
                fractions.append(averages['x'])
                values.append(species['tracer']['D_cm2_s'])
                break
    if not values:
        return []
    figure = draw_diffusivity_map(temperatures, fractions, values)
    return [_save(figure, output_dir / f'{workchain.pk}_diffusivity_map.png')]
