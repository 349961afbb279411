"""LAMMPS input scripts for MD with ``pair_style mtp`` (NVE/NVT/NPT, optional GCMC, extrapolation control).

Pure Python, no AiiDA import. LAMMPS ``metal`` units throughout: Angstrom, eV, ps, K, bar; the GCMC chemical
potential ``mu`` is in eV. Atom type ``t`` (1-based) is the potential's species ``t - 1`` (MLIP's convention),
so every species of the potential has a type even when the structure has none of it yet (GCMC can insert it).
"""

from __future__ import annotations

ENSEMBLES = ('nve', 'nvt', 'npt')
THERMO_COLUMNS = ('step', 'time', 'temp', 'pe', 'etotal', 'press', 'vol', 'atoms')
FILES = {
    'data': 'structure.data',
    'potential': 'potential.mtp',
    'active_set': 'active_set.als',
    'thermo': 'thermo.dat',
    'trajectory': 'trajectory.dump',
    'extrapolative': 'extrapolative.cfg',
}

DEFAULTS = {
    'ensemble': 'nvt',
    'temperature': 300.0,  # K
    'pressure': 1.0,  # bar (npt)
    'timestep': 0.001,  # ps
    'steps': 1000,
    'thermo_every': 10,
    'dump_every': 100,
    'seed': 12345,
    'thermostat_damping': 0.1,  # ps
    'barostat_damping': 1.0,  # ps
    # {'species': 'Li', 'mu': -1.9 (eV), 'every': 10, 'exchanges': 5, 'moves': 5, 'max_displacement': 0.2}
    'gcmc': None,
    'extrapolation': None,  # {'every': 10, 'save_threshold': 2.0, 'break_threshold': 10.0}
}


def validate_parameters(parameters: dict, species: list[str]) -> dict:
    """Merge ``parameters`` with :data:`DEFAULTS` and check them.

    :param species: the potential's species in type order.
    :raises ValueError: naming the offending parameter.
    """
    unknown = sorted(set(parameters) - set(DEFAULTS))
    if unknown:
        raise ValueError(f'unknown MD parameters {unknown}; known: {sorted(DEFAULTS)}')
    p = {**DEFAULTS, **parameters}
    if p['ensemble'] not in ENSEMBLES:
        raise ValueError(f'`ensemble` must be one of {ENSEMBLES}, not {p["ensemble"]!r}')
    for key in ('temperature', 'timestep', 'thermostat_damping', 'barostat_damping'):
        if not p[key] > 0:
            raise ValueError(f'`{key}` must be positive, got {p[key]}')
    for key in ('steps', 'thermo_every', 'dump_every', 'seed'):
        if int(p[key]) != p[key] or p[key] < (0 if key == 'steps' else 1):
            raise ValueError(f'`{key}` must be a positive integer, got {p[key]}')
    gcmc = p['gcmc']
    if gcmc is not None:
        if gcmc.get('species') not in species:
            raise ValueError(f'GCMC species {gcmc.get("species")!r} is not a species of the potential {species}')
        if 'mu' not in gcmc:
            raise ValueError('GCMC needs the chemical potential `mu` [eV]')
        p['gcmc'] = {'every': 10, 'exchanges': 5, 'moves': 0, 'max_displacement': 0.2, **gcmc}
    extrapolation = p['extrapolation']
    if extrapolation is not None:
        extrapolation = {'every': 10, 'save_threshold': 2.0, 'break_threshold': 10.0, **extrapolation}
        if not 1 <= extrapolation['save_threshold'] <= extrapolation['break_threshold']:
            raise ValueError('need 1 <= save_threshold <= break_threshold for extrapolation control')
        p['extrapolation'] = extrapolation
    return p


def md_script(parameters: dict, species: list[str], plugin_path: str) -> str:
    """The LAMMPS input for MD with an MTP (files named as in :data:`FILES`).

    :param parameters: validated by :func:`validate_parameters`.
    :param species: the potential's species in type order (element names for the dump).
    :param plugin_path: the ``mtpplugin.so`` to load.
    """
    p = parameters
    extrapolation = p['extrapolation']
    pair_style = 'pair_style mtp'
    if extrapolation:
        pair_style += (
            f' active_set {FILES["active_set"]} every {extrapolation["every"]}'
            f' save {extrapolation["save_threshold"]} {FILES["extrapolative"]}'
            f' break {extrapolation["break_threshold"]} break_action halt'
        )
    lines = [
        'units metal',
        'atom_style atomic',
        'boundary p p p',
        f'read_data {FILES["data"]}',
        f'plugin load {plugin_path}',
        pair_style,
        f'pair_coeff * * {FILES["potential"]}',
        'neighbor 1.0 bin',
        'neigh_modify every 1 delay 0 check yes',
        f'timestep {p["timestep"]}',
        f'velocity all create {p["temperature"]} {p["seed"]} dist gaussian mom yes rot no',
    ]
    columns = ['step', 'time', 'temp', 'pe', 'etotal', 'press', 'vol', 'atoms']
    if extrapolation:
        lines += ['compute grade all mtp/grade', 'compute max_grade all reduce max c_grade']
        columns.append('c_max_grade')
    damp_t, damp_p = p['thermostat_damping'], p['barostat_damping']
    temperature = p['temperature']
    if p['ensemble'] == 'nve':
        lines.append('fix integrate all nve')
    elif p['ensemble'] == 'nvt':
        lines.append(f'fix integrate all nvt temp {temperature} {temperature} {damp_t}')
    else:
        pressure = p['pressure']
        lines.append(
            f'fix integrate all npt temp {temperature} {temperature} {damp_t} tri {pressure} {pressure} {damp_p}'
        )
    gcmc = p['gcmc']
    if gcmc:
        guest_type = species.index(gcmc['species']) + 1
        lines += ['compute mobile all temp', 'compute_modify mobile dynamic/dof yes']
        if p['ensemble'] != 'nve':
            lines.append('fix_modify integrate temp mobile')
        lines += [
            f'fix exchange all gcmc {gcmc["every"]} {gcmc["exchanges"]} {gcmc["moves"]} {guest_type} '
            f'{p["seed"] + 1} {temperature} {gcmc["mu"]} {gcmc["max_displacement"]} full_energy',
        ]
    printed = ' '.join(f'$({c}:%.10g)' if c.startswith('c_') else f'$({c})' for c in columns)
    header = ' '.join(c[2:] if c.startswith('c_') else c for c in columns)
    lines += [
        f'thermo_style custom {" ".join(columns)}',
        f'thermo {p["thermo_every"]}',
        f'fix record all print {p["thermo_every"]} "{printed}" file {FILES["thermo"]} screen no title "# {header}"',
        f'dump trajectory all custom {p["dump_every"]} {FILES["trajectory"]} id type element x y z ix iy iz',
        f'dump_modify trajectory element {" ".join(species)} sort id',
        f'run {p["steps"]}',
    ]
    return '\n'.join(lines) + '\n'
