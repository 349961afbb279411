"""LAMMPS input scripts for MD with ``pair_style mtp`` (NVE/NVT/NPT, optional GCMC, extrapolation control).

Pure Python, no AiiDA import. LAMMPS ``metal`` units throughout: Angstrom, eV, ps, K, bar; the GCMC chemical
potential ``mu`` is in eV. Atom type ``t`` (1-based) is the potential's species ``t - 1`` (MLIP's convention),
so every species of the potential has a type even when the structure has none of it yet (GCMC can insert it).

The parameters are validated by :class:`MdParameters` (the package's one schema layer,
:mod:`aiida_mscale.schema`); :func:`md_script` writes every number through :func:`~aiida_mscale.schema.format_float`
/ :func:`~aiida_mscale.schema.format_int` and every name through the element whitelist, so no parameter can
carry a LAMMPS command. The plugin (``mtpplugin.so``) is not named in the script: LAMMPS loads it at start-up
from the directories of the ``LAMMPS_PLUGIN_PATH`` environment variable, which the code's prepend text sets
(see :func:`aiida_mscale.setup.bootstrap.ensure_codes`), so a stored script holds no path of this machine.

Restarts: a run writes a binary restart file every ``restart_every`` steps (two files in turn,
:data:`RESTART_FILES`); ``initial_velocities: 'restart'`` starts from one (``read_restart``, then ``reset_timestep 0``)
and continues the run exactly, Nose-Hoover thermostat and barostat variables included (``fix integrate`` has the same
ID and style, so LAMMPS hands it its stored state). fix gcmc refuses a restart whose step was reset, so GCMC runs
write none and continue from a dumped frame instead. :func:`restart_timestep` reads the step from a file's header.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from aiida_mscale.schema import (
    ElementSymbol,
    NonNegativeInt,
    ParameterModel,
    PositiveFloat,
    PositiveInt,
    Real,
    Seed,
    check_token,
    format_float,
    format_int,
    validate_parameters,
)

ENSEMBLES = ('nve', 'nvt', 'npt')
THERMO_COLUMNS = ('step', 'time', 'temp', 'pe', 'etotal', 'press', 'vol', 'atoms')
FILES = {
    'data': 'structure.data',
    'potential': 'potential.mtp',
    'active_set': 'active_set.als',
    'thermo': 'thermo.dat',
    'trajectory': 'trajectory.dump',
    'extrapolative': 'extrapolative.cfg',
    'restart': 'input.restart',
}
#: The two binary restart files LAMMPS writes in turn (``restart N a b``); the newer one is kept (parser).
RESTART_FILES = ('md.restart.a', 'md.restart.b')
#: Columns of the trajectory dump: wrapped positions [Angstrom], image flags, velocities [Angstrom/ps].
DUMP_COLUMNS = ('id', 'type', 'element', 'x', 'y', 'z', 'ix', 'iy', 'iz', 'vx', 'vy', 'vz')
#: Environment variable (a ``:``-separated list of directories) from which LAMMPS loads ``*plugin.so`` at start.
PLUGIN_PATH_VARIABLE = 'LAMMPS_PLUGIN_PATH'


class GcmcParameters(ParameterModel):
    """Grand-canonical Monte Carlo of one species (``fix gcmc ... full_energy``), interleaved with the MD."""

    species: ElementSymbol = Field(description='The exchanged species; a species of the potential.')
    mu: Real = Field(description='Chemical potential of the species [eV].')
    every: PositiveInt = Field(10, description='MC cycle every this many MD steps.')
    exchanges: NonNegativeInt = Field(5, description='Insertion/deletion attempts per cycle.')
    moves: NonNegativeInt = Field(0, description='Displacement attempts per cycle.')
    max_displacement: PositiveFloat = Field(0.2, le=5.0, description='Largest MC displacement [Angstrom].')
    overlap_cutoff: PositiveFloat | None = Field(
        None,
        le=10.0,
        description='Reject any trial move or insertion that puts two atoms closer than this [Angstrom] (fix gcmc '
        '`overlap_cutoff`): keeps an MTP away from distances it never saw.',
    )
    min_count: NonNegativeInt | None = Field(None, description='Fewest atoms of the species allowed (fix gcmc `min`).')
    max_count: NonNegativeInt | None = Field(None, description='Most atoms of the species allowed (fix gcmc `max`).')

    @model_validator(mode='after')
    def _something_to_do(self):
        if self.exchanges == 0 and self.moves == 0:
            raise ValueError('GCMC with neither `exchanges` nor `moves` does nothing: set one of them > 0')
        if self.min_count is not None and self.max_count is not None and self.min_count > self.max_count:
            raise ValueError(f'min_count {self.min_count} > max_count {self.max_count}')
        return self


class ExtrapolationParameters(ParameterModel):
    """On-the-fly extrapolation grading against the potential's active set (``pair_style mtp ... active_set``)."""

    every: PositiveInt = Field(10, description='Grade every this many steps.')
    save_threshold: float = Field(2.0, ge=1.0, description='Save configurations graded above this (>= 1).')
    break_threshold: float = Field(10.0, ge=1.0, description='Stop the run when a grade exceeds this.')

    @model_validator(mode='after')
    def _ordered(self):
        if not self.save_threshold <= self.break_threshold:
            raise ValueError(
                f'need 1 <= save_threshold <= break_threshold, got {self.save_threshold} > {self.break_threshold}'
            )
        return self


class MdParameters(ParameterModel):
    """MD settings of :class:`~aiida_mscale.calculations.lammps_mtp.LammpsMtpCalculation` (LAMMPS metal units)."""

    ensemble: Literal['nve', 'nvt', 'npt'] = 'nvt'
    temperature: PositiveFloat = Field(300.0, le=1e5, description='Target (and initial) temperature [K].')
    pressure: Real = Field(1.0, ge=-1e7, le=1e7, description='Target pressure [bar] (npt).')
    timestep: PositiveFloat = Field(0.001, le=0.1, description='Time step [ps].')
    steps: NonNegativeInt = Field(1000, le=10**10, description='Number of MD steps.')
    thermo_every: PositiveInt = Field(10, description='Thermodynamic output every this many steps.')
    dump_every: PositiveInt = Field(100, description='Trajectory frame every this many steps.')
    seed: Seed = Field(12345, description='Seed of the initial velocities (and of GCMC, seed + 1).')
    thermostat_damping: PositiveFloat = Field(0.1, description='Nose-Hoover thermostat damping time [ps].')
    barostat_damping: PositiveFloat = Field(1.0, description='Nose-Hoover barostat damping time [ps].')
    barostat_coupling: Literal['iso', 'aniso', 'tri'] = Field(
        'tri',
        description="npt cell degrees of freedom: 'iso' (one scale), 'aniso' (three lengths, angles fixed), 'tri' "
        '(lengths and tilts).',
    )
    gcmc: GcmcParameters | None = None
    extrapolation: ExtrapolationParameters | None = None
    initial_velocities: Literal['create', 'data', 'restart'] = Field(
        'create',
        description="'create': Gaussian velocities at `temperature` drawn with `seed`; 'data': the Velocities "
        "section of the data file (a restart from a dumped frame); 'restart': continue a run exactly from its "
        'binary restart file (positions, cell, velocities and the thermostat and barostat state; the restart '
        "file's step becomes step 0 of this run).",
    )
    restart_every: NonNegativeInt | None = Field(
        None,
        description='Write a binary restart file (LAMMPS `restart`, two files in turn) every this many steps; '
        'None: every `dump_every` steps (none with GCMC); 0: none.',
    )

    @model_validator(mode='after')
    def _gcmc_seed(self):
        if self.gcmc is not None and self.seed == 2**31 - 1:
            raise ValueError('with GCMC the seed must be below 2**31 - 1 (GCMC uses seed + 1)')
        if self.gcmc is not None and self.extrapolation is not None:
            # fix gcmc runs at steps 1, 1 + every, 1 + 2 every, ... and evaluates every trial move with the pair
            # style; pair_style mtp grades every evaluation at a grading step (multiples of its `every`), so a
            # trial (e.g. a deleted atom, kept with an empty neighbourhood) would be graded, saved, and could stop
            # the run. 1 + k n_gcmc is never a multiple of n_grade when gcd(n_gcmc, n_grade) > 1.
            if math.gcd(self.gcmc.every, self.extrapolation.every) == 1:
                raise ValueError(
                    f'gcmc.every ({self.gcmc.every}) and extrapolation.every ({self.extrapolation.every}) need a '
                    'common factor (e.g. both even): otherwise fix gcmc trial moves get graded'
                )
        if self.gcmc is not None and (self.initial_velocities == 'restart' or self.restart_every):
            # fix gcmc keeps its random state in a restart file and refuses it after `reset_timestep`, which a
            # continued run needs (its steps count from the restart's step)
            raise ValueError(
                'with GCMC neither restart_every > 0 nor initial_velocities: restart is possible (fix gcmc refuses '
                'a restart whose step was reset); a GCMC run continues from its last dumped frame'
            )
        return self


#: Defaults of :class:`MdParameters`, as a plain dict.
DEFAULTS = MdParameters().dump()


def validate_md_parameters(parameters: dict | None, species: list[str]) -> dict:
    """``parameters`` validated by :class:`MdParameters`, with the species checked against the potential's.

    :param species: the potential's species in type order.
    :return: the parameters with every default filled in (a plain dict).
    :raises ValueError: naming each offending parameter.
    """
    model = validate_parameters(MdParameters, parameters, 'parameters')
    for name in species:
        check_token(name, 'element')
    if model.gcmc is not None and model.gcmc.species not in species:
        raise ValueError(
            f'parameters.gcmc.species: {model.gcmc.species!r} is not a species of the potential {list(species)}'
        )
    return model.dump()


def restart_interval(parameters: dict) -> int:
    """Steps between binary restart files (0: none): ``restart_every`` of validated ``parameters``, its default
    (``None``) resolved to ``dump_every``, or 0 with GCMC."""
    if parameters.get('restart_every') is not None:
        return int(parameters['restart_every'])
    return 0 if parameters.get('gcmc') else int(parameters['dump_every'])


def restart_timestep(data: bytes) -> int:
    """The MD step stored in a LAMMPS binary restart file (its header, format revision 3 of LAMMPS 2020-2025).

    The header is a magic string, the endianness and format revision (ints), then ``(flag, value)`` records:
    ``VERSION`` (0, string), ``SMALLINT`` (1), ``TAGINT`` (2), ``BIGINT`` (3), ``IMAGEINT`` (48) (ints),
    ``UNITS`` (4, string), ``NTIMESTEP`` (5, a 64-bit integer), ...

    :raises ValueError: if ``data`` is not a restart file whose header this reads.
    """
    import struct

    magic = b'LammpS RestartT\0'
    if not data.startswith(magic):
        raise ValueError('not a LAMMPS binary restart file (no magic string)')
    offset = len(magic)
    try:
        (endian,) = struct.unpack_from('<i', data, offset)
        order = '<' if endian == 1 else '>'
        endian, revision = struct.unpack_from(order + 'ii', data, offset)
        if endian != 1 or revision < 1:
            raise ValueError(f'unexpected endianness {endian} or format revision {revision}')
        offset += 8
        strings, ints = {0, 4}, {1, 2, 3, 48}
        while True:
            (flag,) = struct.unpack_from(order + 'i', data, offset)
            offset += 4
            if flag == 5:
                return int(struct.unpack_from(order + 'q', data, offset)[0])
            if flag in strings:
                (length,) = struct.unpack_from(order + 'i', data, offset)
                offset += 4 + length
            elif flag in ints:
                offset += 4
            else:
                raise ValueError(f'unknown header record {flag} before the time step')
    except struct.error as exception:
        raise ValueError(f'truncated restart file header: {exception}') from exception


def md_script(parameters: dict, species: list[str]) -> str:
    """The LAMMPS input for MD with an MTP (files named as in :data:`FILES`).

    :param parameters: MD parameters; validated again here by :func:`validate_md_parameters`, so no caller can
        bypass the schema.
    :param species: the potential's species in type order (element names for the dump).
    """
    p = validate_md_parameters(parameters, species)
    f, i = format_float, format_int
    extrapolation = p['extrapolation']
    pair_style = 'pair_style mtp'
    if extrapolation:
        pair_style += (
            f' active_set {FILES["active_set"]} every {i(extrapolation["every"])}'
            f' save {f(extrapolation["save_threshold"])} {FILES["extrapolative"]}'
            f' break {f(extrapolation["break_threshold"])} break_action halt'
        )
    temperature = f(p['temperature'])
    if p['initial_velocities'] == 'restart':
        # positions, cell, velocities, masses and the global state of fixes of the same ID and style (the
        # Nose-Hoover thermostat and barostat variables) come from the restart file; its step becomes step 0, so
        # `steps` counts from there as for any other run
        start = [f'read_restart {FILES["restart"]}', 'reset_timestep 0']
    else:
        start = [f'read_data {FILES["data"]}']
    lines = [
        'units metal',
        'atom_style atomic',
        'boundary p p p',
        *start,
        pair_style,
        f'pair_coeff * * {FILES["potential"]}',
        'neighbor 1.0 bin',
        'neigh_modify every 1 delay 0 check yes',
        f'timestep {f(p["timestep"])}',
    ]
    if p['initial_velocities'] == 'create':
        lines.append(f'velocity all create {temperature} {i(p["seed"])} dist gaussian mom yes rot no')
    columns = list(THERMO_COLUMNS)
    if extrapolation:
        lines += ['compute grade all mtp/grade', 'compute max_grade all reduce max c_grade']
        columns.append('c_max_grade')
    damp_t, damp_p = f(p['thermostat_damping']), f(p['barostat_damping'])
    if p['ensemble'] == 'nve':
        lines.append('fix integrate all nve')
    elif p['ensemble'] == 'nvt':
        lines.append(f'fix integrate all nvt temp {temperature} {temperature} {damp_t}')
    else:
        pressure = f(p['pressure'])
        lines.append(
            f'fix integrate all npt temp {temperature} {temperature} {damp_t} {p["barostat_coupling"]} {pressure} '
            f'{pressure} {damp_p}'
        )
    gcmc = p['gcmc']
    if gcmc:
        guest_type = species.index(gcmc['species']) + 1
        lines += ['compute mobile all temp', 'compute_modify mobile dynamic/dof yes']
        if p['ensemble'] != 'nve':
            lines.append('fix_modify integrate temp mobile')
        lines += [
            # only the guest's atoms are deleted and displaced: fix gcmc picks them from its group (inserted atoms
            # join it), so the group is the guest type, not `all`
            f'group guest type {i(guest_type)}',
            f'fix exchange guest gcmc {i(gcmc["every"])} {i(gcmc["exchanges"])} {i(gcmc["moves"])} {i(guest_type)} '
            f'{i(p["seed"] + 1)} {temperature} {f(gcmc["mu"])} {f(gcmc["max_displacement"])} full_energy'
            + (f' overlap_cutoff {f(gcmc["overlap_cutoff"])}' if gcmc.get('overlap_cutoff') is not None else '')
            + (f' min {i(gcmc["min_count"])}' if gcmc.get('min_count') is not None else '')
            + (f' max {i(gcmc["max_count"])}' if gcmc.get('max_count') is not None else ''),
        ]
    printed = ' '.join(f'$({c}:%.10g)' if c.startswith('c_') else f'$({c})' for c in columns)
    header = ' '.join(c[2:] if c.startswith('c_') else c for c in columns)
    thermo_every, dump_every = i(p['thermo_every']), i(p['dump_every'])
    elements = ' '.join(check_token(s, 'element') for s in species)
    lines += [
        f'thermo_style custom {" ".join(columns)}',
        f'thermo {thermo_every}',
        f'fix record all print {thermo_every} "{printed}" file {FILES["thermo"]} screen no title "# {header}"',
        f'dump trajectory all custom {dump_every} {FILES["trajectory"]} {" ".join(DUMP_COLUMNS)}',
        f'dump_modify trajectory element {elements} sort id',
    ]
    interval = restart_interval(p)
    if interval:
        lines.append(f'restart {i(interval)} {" ".join(RESTART_FILES)}')
    lines.append(f'run {i(p["steps"])}')
    return '\n'.join(lines) + '\n'
