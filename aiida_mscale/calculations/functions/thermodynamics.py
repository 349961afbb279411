"""Calculation functions of MD production and thermodynamics: each result a node linked to what made it.

The numerical work is in the pure modules :mod:`aiida_mscale.analysis.voltage`, :mod:`~aiida_mscale.analysis.elastic`,
:mod:`~aiida_mscale.analysis.adhesion` and :mod:`~aiida_mscale.analysis.state_points`; these functions read
nodes into plain numbers, call them and store the results.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

__all__ = [
    'adhesion_energies',
    'cauchy_stress_from_pw',
    'compact_trajectory',
    'configuration_summary',
    'elastic_constants',
    'hull_and_voltage_profile',
    'seeded_ordering',
    'state_point_averages',
    'stitch_thermo',
    'strained_structure',
    'volume_versus_fraction',
]


# ------------------------------------------------------------------------------------------------ MD production
def guest_sites(structure: orm.StructureData, guest: str) -> list[int]:
    """Indices of the sites of ``structure`` occupied by ``guest``."""
    return [k for k, site in enumerate(structure.sites) if structure.get_kind(site.kind_name).symbol == guest]


@calcfunction
def seeded_ordering(host: orm.StructureData, guest: orm.Str, fraction: orm.Float, seed: orm.Int) -> orm.StructureData:
    """The host with a random subset of its guest sites kept, ``round(x n_sites)`` of them (numpy's default
    generator seeded with ``seed``). The node's ``extras`` are not used: ``description`` says ``x = kept/n_sites``.
    """
    sites = guest_sites(host, guest.value)
    keep = int(round(fraction.value * len(sites)))
    rng = np.random.default_rng(seed.value)
    removed = set(rng.choice(sites, size=len(sites) - keep, replace=False).tolist()) if keep < len(sites) else set()
    atoms = host.get_ase()
    del atoms[sorted(removed)]
    result = orm.StructureData(ase=atoms)
    result.description = f'x = {keep}/{len(sites)} {guest.value} sites, ordering seed {seed.value}'
    return result


def _frame_cells(trajectory) -> np.ndarray:
    """Cells (n_frames, 3, 3) [Angstrom] of a ``TrajectoryData`` or ``LammpsTrajectoryData``."""
    return np.asarray(trajectory.get_cells(), dtype=float)


@calcfunction
def state_point_averages(
    thermo: orm.ArrayData,
    npt_thermo: orm.ArrayData,
    npt_trajectory: orm.Data,
    structure: orm.StructureData,
    settings: orm.Dict,
) -> orm.Dict:
    """Block-averaged volume [Angstrom^3], lattice parameters [Angstrom, degree], temperature [K], potential energy
    [eV] and the composition of a state point.

    :param thermo: the production run's thermodynamic series (temperature, potential energy).
    :param npt_thermo: the series of the NPT run the volume comes from: the production run if it is NPT, else
        the NPT equilibration (of which the second half is used).
    :param npt_trajectory: the frames of that NPT run (their cells give the lattice parameters).
    :param structure: the configuration the production started from (its composition is the state point's).
    :param settings: ``n_blocks``, ``guest``, ``n_sites`` (guest sites of the host), ``source``
        (``production`` or ``equilibration``) and ``state_point`` (T, x, ordering, mu, ensemble: copied).
    """
    from aiida_mscale.analysis.state_points import block_average, lattice_parameters

    s = settings.get_dict()
    n_blocks = int(s['n_blocks'])
    half = s['source'] == 'equilibration'
    result = {'n_blocks': n_blocks, 'volume_source': s['source'], **s.get('state_point', {})}
    result['target_x'] = result.pop('x', None)
    volume = npt_thermo.get_array('vol')
    result['volume'], result['volume_error'] = block_average(volume[len(volume) // 2 :] if half else volume, n_blocks)
    for name, key in (('temperature_mean', 'temp'), ('potential_energy', 'pe')):
        result[name], result[f'{name}_error'] = block_average(thermo.get_array(key), n_blocks)
    cells = _frame_cells(npt_trajectory)
    if half:
        cells = cells[len(cells) // 2 :]
    parameters = [lattice_parameters(cell) for cell in cells]
    blocks = min(n_blocks, len(cells))
    lattice, errors = {}, {}
    for name in ('a', 'b', 'c', 'alpha', 'beta', 'gamma'):
        series = [p[name] for p in parameters]
        if blocks >= 2:
            lattice[name], errors[name] = block_average(series, blocks)
        else:
            lattice[name], errors[name] = float(np.mean(series)), 0.0
    result['lattice'], result['lattice_error'] = lattice, errors
    result['cell'] = cells.mean(axis=0).tolist()
    symbols = [structure.get_kind(site.kind_name).symbol for site in structure.sites]
    counts = {e: symbols.count(e) for e in sorted(set(symbols))}
    result['composition'] = counts
    result['x'] = counts.get(s['guest'], 0) / s['n_sites']
    result['units'] = {'volume': 'Angstrom^3', 'lattice': 'Angstrom, degree', 'temperature': 'K', 'energy': 'eV'}
    return orm.Dict(result)


def _segments(offsets: orm.Dict, segments: dict) -> list[tuple[int, int | None, orm.Data]]:
    """(global offset, end step or None, node) of each restart segment, in order."""
    table = offsets.get_dict()
    order = sorted(segments, key=lambda k: table[k])
    starts = [int(table[k]) for k in order]
    return [(starts[n], starts[n + 1] if n + 1 < len(order) else None, segments[k]) for n, k in enumerate(order)]


@calcfunction
def stitch_thermo(offsets: orm.Dict, **segments) -> orm.ArrayData:
    """One thermodynamic series from the segments of a restarted run.

    ``offsets``: ``{segment: global step of its step 0}``; a segment's rows from its start up to (excluding) the
    next segment's start are kept, steps (and ``time``, with the timestep of the rows) shifted to global.
    """
    parts = []
    names = None
    for start, end, node in _segments(offsets, segments):
        names = names or node.get_arraynames()
        table = {name: np.asarray(node.get_array(name), dtype=float) for name in names}
        step = table['step'] + start
        keep = step < end if end is not None else np.ones(len(step), bool)
        if 'time' in table and len(step) > 1:
            dt = (table['time'][1] - table['time'][0]) / (table['step'][1] - table['step'][0])
            table['time'] = table['time'] + start * dt
        table['step'] = step
        parts.append({name: values[keep] for name, values in table.items()})
    result = orm.ArrayData()
    for name in names:
        result.set_array(name, np.concatenate([part[name] for part in parts]))
    return result


@calcfunction
def compact_trajectory(parameters: orm.Dict, storage: orm.Dict, offsets: orm.Dict, **segments) -> dict:
    """The stored trajectory of a state point: the segments of the production run joined (see
    :func:`stitch_thermo`), every ``stride``-th frame, the ``species`` asked for (all if None), positions unwrapped
    (continuous across restarts; no image flags) and stored in single precision (``float32: true``, about 7
    significant digits) or double, as a :class:`~aiida_mscale.data.lammps_trajectory.LammpsTrajectoryData`
    (a deflated file of arrays; no velocities).

    ``parameters`` are the MD parameters of the production run (their ``temperature`` [K] and ``timestep`` [ps]
    are what :class:`~aiida_mscale.workflows.transport.TransportAnalysisWorkChain` reads from a trajectory's
    creator). Returns ``trajectory`` and ``storage`` (Dict: stored and raw sizes in bytes, what was kept).
    """
    from aiida_mscale.data.lammps_trajectory import LammpsTrajectoryData

    s = storage.get_dict()
    stride = int(s.get('stride', 1))
    species = s.get('species')
    precision = 'float32' if s.get('float32', True) else 'float64'
    raw = 0
    steps, cells, origins, positions = [], [], [], []
    first, shift = None, None
    for start, end, trajectory in _segments(offsets, segments):
        raw += _repository_size(trajectory)
        kept = [k for k, step in enumerate(trajectory.get_steps()) if end is None or step + start < end]
        if not kept:
            continue
        part = trajectory.select(frames=kept, unwrap=True, velocities=False)
        xyz, cell = part.get_positions(), part.get_cells()
        if first is None:
            first, shift = part, np.zeros_like(xyz[0])
        else:
            # image flags restart at zero in a restarted segment: remove the lattice-vector jump at the join
            jump = xyz[0] + shift - positions[-1][-1]
            shift = shift - np.round(np.linalg.solve(cell[0].T, jump.T).T) @ cell[0]
        steps.append(part.get_steps() + start)
        cells.append(cell)
        origins.append(part.get_array('origins'))
        positions.append(xyz + shift)
    frames = {
        'steps': np.concatenate(steps),
        'cells': np.concatenate(cells),
        'origins': np.concatenate(origins),
        'positions': np.concatenate(positions),
        'ids': first.ids,
        'field_names': ['id', 'type', 'element', 'x', 'y', 'z'],
        'boundary': first.base.attributes.get('boundary'),
    }
    for name in ('types', 'elements'):
        if name in first.array_names():
            frames[name] = first.get_array(name)
    compact = LammpsTrajectoryData.from_frames(frames, unwrapped=True)
    node = compact.select(frames=np.arange(0, compact.number_steps, stride), species=species, precision=precision)
    report = {
        'stored_bytes': _repository_size(node),
        'frames': node.number_steps,
        'atoms': node.number_atoms,
        'species': node.base.attributes.get('elements'),
        'precision': 'single (float32, ~7 significant digits)' if precision == 'float32' else 'double (float64)',
        'stride': stride,
        'segments': len(segments),
        'raw_trajectory_bytes': int(raw),
    }
    return {'trajectory': node, 'storage': orm.Dict(report)}


def _repository_size(node) -> int:
    """Bytes of the files in ``node``'s repository (the compressed frames of a LammpsTrajectoryData)."""
    repository = node.base.repository
    total = 0
    for name in repository.list_object_names():
        with repository.open(name, 'rb') as handle:
            total += len(handle.read())
    return total


# ------------------------------------------------------------------------------------------------ thermodynamics
@calcfunction
def hull_and_voltage_profile(guest: orm.Str, guest_reference: orm.Dict, settings: orm.Dict, **configurations) -> dict:
    """Formation energies, convex hull, voltage profile V(x) with its band and the average voltage.

    :param guest_reference: ``energy`` [eV] and ``number_of_atoms`` of the guest's relaxed elemental crystal.
    :param settings: ``energy_rmse`` [eV/atom] (band; 0 for none) and ``n_sites`` ({label: guest sites}).
    :param configurations: ``{label: Dict}`` with ``energy`` [eV] and ``composition`` ({element: count}), one
        per relaxed configuration.
    Outputs (each a node): ``formation_energies`` (Dict), ``hull`` (Dict), ``voltage_profile`` (ArrayData ``x``,
    ``voltage`` [V], ``voltage_error`` [V]; a step curve), ``voltage_steps`` (Dict), ``average_voltage`` (Float, V).
    """
    from aiida_mscale.analysis.voltage import hull_and_voltage

    s = settings.get_dict()
    reference = guest_reference.get_dict()
    mu = reference['energy'] / reference['number_of_atoms']
    entries = [
        {
            'label': label,
            'composition': node['composition'],
            'energy': node['energy'],
            'n_sites': s['n_sites'][label],
        }
        for label, node in configurations.items()
    ]
    result = hull_and_voltage(entries, guest.value, mu, float(s.get('energy_rmse', 0.0)))
    profile = orm.ArrayData()
    for name in ('x', 'voltage', 'voltage_error'):
        profile.set_array(name, np.asarray(result[name], dtype=float))
    profile.base.attributes.set('units', {'x': 'guest fraction', 'voltage': 'V', 'voltage_error': 'V'})
    return {
        'formation_energies': orm.Dict(
            {
                'guest': guest.value,
                'mu_guest': mu,
                'units': 'eV per guest site (formation), eV/atom (e_above_hull)',
                'configurations': result['configurations'],
            }
        ),
        'hull': orm.Dict(result['hull']),
        'voltage_profile': profile,
        'voltage_steps': orm.Dict({'steps': result['steps'], 'energy_rmse': result['energy_rmse']}),
        'average_voltage': orm.Float(result['average_voltage']),
    }


@calcfunction
def strained_structure(structure: orm.StructureData, component: orm.Int, strain: orm.Float) -> orm.StructureData:
    """``structure`` deformed by the Voigt strain ``component`` (1..6) of magnitude ``strain`` (atoms follow)."""
    from aiida_mscale.analysis.elastic import strained_cell

    atoms = structure.get_ase()
    atoms.set_cell(strained_cell(atoms.cell.array, component.value, strain.value), scale_atoms=True)
    return orm.StructureData(ase=atoms)


@calcfunction
def elastic_constants(settings: orm.Dict, **stresses) -> dict:
    """C_ij [GPa] by stress-strain and the Voigt-Reuss-Hill moduli with the Born stability check.

    :param settings: ``points``: ``{key: [component, strain]}`` naming each stress input.
    :param stresses: ``{key: ArrayData}`` with the 3x3 Cauchy stress [GPa] (array ``stress``) of each strain.
    Outputs: ``elastic_tensor`` (ArrayData ``C``, 6x6 GPa, Voigt order xx yy zz yz xz xy) and ``elastic_moduli``.
    """
    from aiida_mscale.analysis.elastic import elastic_moduli, elastic_tensor

    points = settings.get_dict()['points']
    data = {(int(c), float(s)): stresses[key].get_array('stress') for key, (c, s) in points.items()}
    tensor = elastic_tensor(data)
    moduli = elastic_moduli(tensor['C'])
    node = orm.ArrayData()
    node.set_array('C', np.asarray(tensor['C']))
    node.set_array('C_raw', np.asarray(tensor['C_raw']))
    node.base.attributes.set('units', 'GPa')
    node.base.attributes.set('voigt_order', ['xx', 'yy', 'zz', 'yz', 'xz', 'xy'])
    moduli.update({'asymmetry': tensor['asymmetry'], 'fit_residual': tensor['fit_residual']})
    return {'elastic_tensor': node, 'elastic_moduli': orm.Dict(moduli)}


@calcfunction
def volume_versus_fraction(settings: orm.Dict, **state_points) -> dict:
    """V(x), lattice parameters vs x, relative volume change and detected transformations, at one temperature.

    :param settings: ``symprec`` [Angstrom], ``angle_tolerance`` [degree], ``jump_tolerance`` (relative).
    :param state_points: ``{label: Dict}`` outputs of :func:`state_point_averages` (``x``, ``volume``, ...).
    Outputs: ``volume_trend`` (Dict) and ``volume_curve`` (ArrayData: x, volume, volume_error, a, b, c).
    """
    from aiida_mscale.analysis.state_points import volume_trend

    s = settings.get_dict()
    points = [node.get_dict() for node in state_points.values()]
    result = volume_trend(
        points,
        symprec=float(s.get('symprec', 0.05)),
        angle_tolerance=float(s.get('angle_tolerance', 1.0)),
        jump_tolerance=float(s.get('jump_tolerance', 0.01)),
    )
    curve = orm.ArrayData()
    curve.set_array('x', np.asarray(result['x'], dtype=float))
    curve.set_array('volume', np.asarray(result['volume'], dtype=float))
    curve.set_array('volume_error', np.asarray(result['volume_error'], dtype=float))
    for name in ('a', 'b', 'c'):
        curve.set_array(name, np.asarray(result['lattice'][name], dtype=float))
    return {'volume_trend': orm.Dict(result), 'volume_curve': curve}


@calcfunction
def configuration_summary(energy: orm.Float, structure: orm.StructureData) -> orm.Dict:
    """Energy [eV], composition ({element: count}) and number of atoms of a relaxed configuration."""
    symbols = [structure.get_kind(site.kind_name).symbol for site in structure.sites]
    composition = {s: symbols.count(s) for s in sorted(set(symbols))}
    return orm.Dict({'energy': energy.value, 'composition': composition, 'number_of_atoms': len(symbols)})


@calcfunction
def cauchy_stress_from_pw(output_trajectory: orm.TrajectoryData) -> orm.ArrayData:
    """The last stress of a pw.x run as the Cauchy stress [GPa], tensile positive: pw.x prints (and
    aiida-quantumespresso stores) the negative of it (P = trace/3 positive in compression)."""
    stress = -np.asarray(output_trajectory.get_array('stress')[-1], dtype=float)
    node = orm.ArrayData()
    node.set_array('stress', stress)
    node.base.attributes.set('units', 'GPa')
    node.base.attributes.set('sign_convention', 'Cauchy stress, tensile positive')
    return node


@calcfunction
def adhesion_energies(**kwargs) -> orm.Dict:
    """W_sep (and interfacial energy with bulk_1/bulk_2) from the relaxed energies and structures."""
    from aiida_mscale.analysis.adhesion import work_of_separation as compute

    energies = {k[len('energy_') :]: v.value for k, v in kwargs.items() if k.startswith('energy_')}
    structures = {k[len('structure_') :]: v for k, v in kwargs.items() if k.startswith('structure_')}
    counts = {k: len(structures[k].sites) for k in ('slab_1', 'slab_2')}
    bulk = None
    if 'bulk_1' in energies:
        bulk = {f'slab_{i}': energies[f'bulk_{i}'] / len(structures[f'bulk_{i}'].sites) for i in (1, 2)}
    return orm.Dict(
        compute(
            {k: energies[k] for k in ('slab_1', 'slab_2', 'interface')},
            np.asarray(structures['interface'].cell),
            atom_counts=counts,
            bulk_energies=bulk,
        )
    )
