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
}
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
    gcmc: GcmcParameters | None = None
    extrapolation: ExtrapolationParameters | None = None
    initial_velocities: Literal['create', 'data'] = Field(
        'create',
        description="'create': Gaussian velocities at `temperature` drawn with `seed`; 'data': the Velocities "
        'section of the data file (a restart from a dumped frame).',
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


def velocities_section(velocities, rotation) -> str:
    """The ``Velocities`` section of a LAMMPS data file: one ``id vx vy vz`` line per atom [Angstrom/ps].

    :param velocities: (N, 3) Cartesian velocities in the frame of the structure.
    :param rotation: the rotation ``R`` to LAMMPS's frame (``x' = x R``) used for the positions.
    """
    import numpy as np

    rotated = np.asarray(velocities, dtype=float) @ np.asarray(rotation, dtype=float)
    lines = ['', 'Velocities', '']
    for k, v in enumerate(rotated, start=1):
        lines.append(f'{k} {format_float(v[0])} {format_float(v[1])} {format_float(v[2])}')
    return '\n'.join(lines) + '\n'


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
    lines = [
        'units metal',
        'atom_style atomic',
        'boundary p p p',
        f'read_data {FILES["data"]}',
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
            f'fix integrate all npt temp {temperature} {temperature} {damp_t} tri {pressure} {pressure} {damp_p}'
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
        f'run {i(p["steps"])}',
    ]
    return '\n'.join(lines) + '\n'
