"""Calculation functions of :class:`~aiida_mscale.workflows.multiscale.MultiscaleWorkChain`: what passes between
its stages, each a node so every number of the electrode stage links back to the DFT labels it came from.

- :func:`strained_crystals`: the guest's elemental crystal at several isotropic strains (its DFT equation of state);
- :func:`guest_reference_energy`: E0 per atom of the guest's crystal from a Birch-Murnaghan fit of those labels;
- :func:`diffusivity_table`: D(x) [m^2/s] with ``D_sigma`` at the electrode's temperature, from the Arrhenius
  analysis of each guest fraction (:func:`aiida_mscale.analysis.arrhenius.extrapolate`);
- :func:`ocv_table`: OCV(x) [V] with ``V_sigma`` from the hull's voltage steps (:mod:`aiida_mscale.analysis.ocv`);
- :func:`multiscale_summary`: the headline numbers of a run.

The continuum models run on the state of charge ``y = (x - x_min) / (x_max - x_min)`` of the window [x_min, x_max]
spanned by the hull of the thermodynamics stage (or by the guest fractions when OCV(x) is given): both tables are on
this ``x`` axis (the array is called ``x``, as ElectrodeWorkChain reads it); ``x_host`` keeps the host's guest
fraction.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

#: cm^2/s -> m^2/s
CM2_S = 1e-4


@calcfunction
def strained_crystals(structure: orm.StructureData, strains: orm.List) -> dict:
    """``structure`` scaled isotropically by ``1 + s`` along every lattice vector for each ``s`` in ``strains``."""
    outputs = {}
    for k, strain in enumerate(strains.get_list()):
        atoms = structure.get_ase()
        atoms.set_cell(atoms.cell.array * (1.0 + float(strain)), scale_atoms=True)
        node = orm.StructureData(ase=atoms)
        node.label = f'strain {float(strain):+.3f}'
        outputs[f'strain_{k}'] = node
    return outputs


@calcfunction
def supercell(structure: orm.StructureData, repeat: orm.List) -> orm.StructureData:
    """``structure`` repeated ``repeat`` = [n1, n2, n3] times along its lattice vectors (the MD cell)."""
    return orm.StructureData(ase=structure.get_ase().repeat([int(n) for n in repeat.get_list()]))


@calcfunction
def guest_reference_energy(training_set: orm.Data) -> orm.Dict:
    """E0 [eV/atom] of the guest's elemental crystal: third-order Birch-Murnaghan fit of the labelled volumes.

    :param training_set: TrainingSetData of the crystal at >= 5 volumes (same cell, same number of atoms).
    :returns: ``energy`` [eV] and ``number_of_atoms`` (= 1: per atom), ``volume`` V0 [Angstrom^3/atom], ``bulk_modulus``
        B0 [GPa], the fitted points and the fit's rms residual [eV/atom].
    """
    from ase.units import GPa

    from aiida_mscale.pseudo.eos import birch_murnaghan_fit

    images = training_set.to_ase()
    counts = {len(atoms) for atoms in images}
    if len(counts) != 1:
        raise ValueError(f'the labelled crystals differ in size: {sorted(counts)} atoms')
    n = counts.pop()
    volumes = np.array([atoms.get_volume() / n for atoms in images])
    energies = np.array([atoms.get_potential_energy() / n for atoms in images])
    fit = birch_murnaghan_fit(volumes, energies)
    return orm.Dict(
        {
            'energy': float(fit['e0']),
            'number_of_atoms': 1,
            'volume': float(fit['v0']),
            'bulk_modulus': float(fit['b0'] / GPa),
            'residual': float(fit['residual']),
            'volumes': volumes.tolist(),
            'energies': energies.tolist(),
            'units': {'energy': 'eV/atom', 'volume': 'Angstrom^3/atom', 'bulk_modulus': 'GPa'},
        }
    )


@calcfunction
def diffusivity_table(settings: orm.Dict, **arrhenius: orm.Dict) -> orm.ArrayData:
    """D(x) [m^2/s] and its 1-sigma ``D_sigma`` at one temperature, on the state of charge of the window.

    :param settings: ``species`` (the guest), ``x_min``, ``x_max`` (the window), ``fractions`` ({label: host guest
        fraction x}) and ``temperature`` [K] (must be the temperature the Arrhenius results were extrapolated to).
    :param arrhenius: per label, the ``arrhenius`` output of a TransportAnalysisWorkChain over the temperatures of
        one guest fraction. D is the best model's extrapolation; ``D_sigma = D * ln_err`` (its log-normal 1-sigma,
        the draw model of :mod:`aiida_mscale.calculations.functions.electrode`).
    Guest fractions outside the window are clipped to its edges (reported in the ``clipped`` attribute). The table
    spans the whole window: where the computed fractions stop short of an edge, the end value (and its sigma) is held
    to that edge (the edges so filled are listed in the ``held`` attribute, in host fractions); in between, the
    electrode interpolates linearly.
    """
    s = settings.get_dict()
    rows = []
    for label, node in arrhenius.items():
        entry = node.get_dict()['species'][s['species']]
        extrapolation = entry.get('extrapolation')
        if not extrapolation:
            raise ValueError(f'{label}: no extrapolation to {s["temperature"]} K ({entry.get("extrapolation_error")})')
        if not np.isclose(extrapolation['temperature'], s['temperature']):
            raise ValueError(f'{label}: extrapolated to {extrapolation["temperature"]} K, not {s["temperature"]} K')
        d = extrapolation['value'] * CM2_S
        rows.append((float(s['fractions'][label]), d, d * float(extrapolation['ln_err']), entry['best_model']))
    rows.sort()
    x_host = np.array([r[0] for r in rows])
    y = (x_host - s['x_min']) / (s['x_max'] - s['x_min'])
    clipped = bool(np.any((y < 0) | (y > 1)))
    y = np.clip(y, 0.0, 1.0)
    d = np.array([r[1] for r in rows])
    sigma = np.array([r[2] for r in rows])
    if len(rows) == 1:  # one guest fraction: D constant over the window
        y, x_host, d, sigma = np.array([0.0, 1.0]), np.repeat(x_host, 2), np.repeat(d, 2), np.repeat(sigma, 2)
    elif len(np.unique(y)) != len(y):
        raise ValueError(f'guest fractions {x_host.tolist()} map to repeated points of the window: {y.tolist()}')
    held = []
    if y[0] > 0.0:
        held.append(float(s['x_min']))
        y, x_host, d, sigma = (
            np.insert(a, 0, v) for a, v in ((y, 0.0), (x_host, s['x_min']), (d, d[0]), (sigma, sigma[0]))
        )
    if y[-1] < 1.0:
        held.append(float(s['x_max']))
        y, x_host, d, sigma = (
            np.append(a, v) for a, v in ((y, 1.0), (x_host, s['x_max']), (d, d[-1]), (sigma, sigma[-1]))
        )
    table = orm.ArrayData()
    table.set_array('x', y)
    table.set_array('D', d)
    table.set_array('D_sigma', sigma)
    table.set_array('x_host', x_host)
    table.base.attributes.set('units', {'x': 'state of charge of the window', 'D': 'm^2/s', 'D_sigma': 'm^2/s'})
    table.base.attributes.set('temperature', float(s['temperature']))
    table.base.attributes.set('window', [float(s['x_min']), float(s['x_max'])])
    table.base.attributes.set('models', [r[3] for r in rows])
    table.base.attributes.set('clipped', clipped)
    table.base.attributes.set('held', held)
    return table


@calcfunction
def ocv_table(voltage_steps: orm.Dict, settings: orm.Dict) -> orm.ArrayData:
    """OCV(x) [V] with ``V_sigma`` from the hull's steps plus the lattice-gas entropy term at ``temperature``.

    :param voltage_steps: the ``voltage_steps`` output of ThermodynamicsWorkChain.
    :param settings: ``temperature`` [K], optional ``points`` and ``margin`` (see
        :func:`aiida_mscale.analysis.ocv.lattice_gas_ocv`).
    """
    from aiida_mscale.analysis.ocv import lattice_gas_ocv

    s = settings.get_dict()
    result = lattice_gas_ocv(
        voltage_steps['steps'], float(s['temperature']), int(s.get('points', 101)), float(s.get('margin', 0.005))
    )
    table = orm.ArrayData()
    table.set_array('x', result['y'])
    table.set_array('V', result['V'])
    table.set_array('V_sigma', result['V_sigma'])
    table.set_array('x_host', result['x'])
    table.base.attributes.set('units', {'x': 'state of charge of the window', 'V': 'V', 'V_sigma': 'V'})
    table.base.attributes.set('temperature', float(s['temperature']))
    table.base.attributes.set('window', [result['x_min'], result['x_max']])
    return table


@calcfunction
def multiscale_summary(**nodes) -> orm.Dict:
    """The headline numbers of a multiscale run, from the stage outputs given (all optional):
    ``average_voltage`` (Float), ``volume_trend`` (Dict), ``diffusivity`` and ``ocv`` (tables), ``rate_capability``
    and ``rate_capability_band`` (ArrayData), ``phase_boundary`` (ArrayData)."""
    summary = {}
    if 'average_voltage' in nodes:
        summary['average_voltage_V'] = float(nodes['average_voltage'].value)
    if 'ocv' in nodes:
        ocv = nodes['ocv']
        window = ocv.base.attributes.get('window', None)  # a table made here; a given one has none
        if window is not None:
            summary['ocv_window_x'] = list(window)
        summary['ocv_V_at_soc_0p5'] = float(np.interp(0.5, ocv.get_array('x'), ocv.get_array('V')))
    if 'volume_trend' in nodes:
        trend = nodes['volume_trend'].get_dict()
        summary['relative_volume_change'] = trend['relative_volume_change']
        summary['relative_volume_change_error'] = trend['relative_volume_change_error']
        summary['transformations'] = len(trend['transformations'])
    if 'diffusivity' in nodes:
        table = nodes['diffusivity']
        names = table.get_arraynames()
        summary['diffusivity_temperature_K'] = table.base.attributes.get('temperature', None)
        x = table.get_array('x_host' if 'x_host' in names else 'x')
        d = table.get_array('D')
        sigma = table.get_array('D_sigma') if 'D_sigma' in names else np.zeros_like(d)
        held = {round(float(v), 8) for v in table.base.attributes.get('held', [])}  # edges filled, not computed
        summary['diffusivity_m2_s'] = {
            f'x={xi:.4f}': {'D': float(di), 'sigma': float(si)}
            for xi, di, si in zip(x, d, sigma)
            if round(float(xi), 8) not in held
        }
    if 'rate_capability' in nodes:
        rate = nodes['rate_capability']
        unit = rate.base.attributes.get('capacity_unit', '')
        summary['rate_capability'] = {
            f'{c:g}C': {'capacity': float(q), 'unit': unit}
            for c, q in zip(rate.get_array('c_rate'), rate.get_array('capacity'))
        }
    if 'rate_capability_band' in nodes:
        band = nodes['rate_capability_band']
        for c, lower, upper in zip(
            band.get_array('c_rate'), band.get_array('capacity_lower'), band.get_array('capacity_upper')
        ):
            summary.setdefault('rate_capability', {}).setdefault(f'{c:g}C', {})['band_95'] = [
                float(lower),
                float(upper),
            ]
        summary['ensemble_size'] = int(band.base.attributes.get('n_draws'))
    if 'phase_boundary' in nodes:
        front = nodes['phase_boundary']
        summary['phase_boundary_arrays'] = sorted(front.get_arraynames())
    return orm.Dict(summary)


__all__ = [
    'diffusivity_table',
    'guest_reference_energy',
    'multiscale_summary',
    'ocv_table',
    'strained_crystals',
    'supercell',
]
