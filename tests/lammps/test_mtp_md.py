"""pair_style mtp in dynamics: NVE energy drift over 10^4 steps, fix atom/swap and
fix gcmc (full_energy), with and without grading on the fly."""

import warnings

import lammps  # noqa: F401  (installed by make install)
import numpy as np
import pytest
from ase import Atoms  # noqa: E402

from aiida_mscale.lammps import build, write_active_set  # noqa: E402
from aiida_mscale.lammps.testing import (  # noqa: E402
    mpiexec_binary,
    run_lammps,
    tame_potential,
    write_data,
)

pytestmark = pytest.mark.timeout(300)

ZS = [3, 11]  # Li, Na


@pytest.fixture(scope='session')
def plugin():
    return build()


def lattice(n=3, a=2.8, seed=0, species=ZS, vacancies=0):
    rng = np.random.default_rng(seed)
    pos = np.array([[i, j, k] for i in range(n) for j in range(n) for k in range(n)], float) * a
    pos = pos + 0.3 + rng.normal(0.0, 0.05, pos.shape)
    if vacancies:
        pos = pos[vacancies:]
    numbers = rng.choice(species, len(pos))
    numbers[: len(species)] = species
    return Atoms(numbers=numbers, positions=pos, cell=np.diag([n * a] * 3), pbc=True)


def thermo_rows(stdout, first='Step'):
    lines = stdout.splitlines()
    rows = []
    for k, ln in enumerate(lines):
        if ln.split()[:1] == [first]:
            for row in lines[k + 1 :]:
                parts = row.split()
                try:
                    rows.append([float(v) for v in parts])
                except ValueError:
                    break
    return np.array(rows)


def value(stdout, key):
    return [float(v) for v in [ln for ln in stdout.splitlines() if ln.startswith(key + ' ')][-1].split()[1:]]


def test_nve_energy_drift(plugin, tmp_path):
    pot = tame_potential(level=10, species_count=2, seed=3)
    mtp = pot.write(tmp_path / 'pot.mtp')
    atoms = lattice()
    write_data(tmp_path / 'data.lmp', atoms, ZS)
    nsteps = 10000
    res = run_lammps(
        f"""
units metal
atom_style atomic
read_data data.lmp
plugin load {{plugin}}
pair_style mtp
pair_coeff * * {mtp}
velocity all create 600 42 mom yes rot no
timestep 0.001
fix 1 all nve
thermo_style custom step temp pe etotal
thermo_modify format float %.15g
thermo 100
run {nsteps}
""",
        tmp_path,
    ).check()
    rows = thermo_rows(res.stdout)
    assert len(rows) == nsteps // 100 + 1
    natoms = len(atoms)
    t_ps = rows[:, 0] * 0.001
    etot = rows[:, 3]
    slope = np.polyfit(t_ps, etot, 1)[0]
    drift = slope / natoms  # eV / atom / ps
    fluct = np.abs(etot - etot[0]).max() / natoms
    temp = rows[:, 1].mean()
    loop = [ln for ln in res.stdout.splitlines() if ln.startswith('Loop time')][0]
    seconds = float(loop.split()[3])
    msg = (
        f'NVE {nsteps} steps, {natoms} atoms, dt 1 fs, <T> = {temp:.0f} K: '
        f'drift {drift:.2e} eV/atom/ps, max |E - E0| {fluct:.2e} eV/atom, '
        f'{seconds / nsteps / natoms * 1e6:.2f} us/atom-step'
    )
    print(msg)
    warnings.warn(msg, UserWarning, stacklevel=2)
    assert temp > 100
    assert abs(drift) < 1e-4
    assert fluct < 1e-3


SWAP = """
units metal
atom_style atomic
atom_modify map array
read_data data.lmp
plugin load {{plugin}}
pair_style mtp {grade}
pair_coeff * * {mtp}
velocity all create 600 4 mom yes rot no
timestep 0.001
fix 1 all nve
fix sw all atom/swap 5 4 29494 600 ke yes types 1 2
{extra}
thermo_style custom step pe f_sw[1] f_sw[2]
thermo_modify format float %.15g
thermo 10
run 100
write_dump all custom final.dump id type modify sort id
print "AFTER $(pe:%.15g) $(f_sw[1]) $(f_sw[2])"
run 0
print "RECOMPUTED $(pe:%.15g)"
"""


@pytest.mark.parametrize('graded,nprocs', [(False, 1), (True, 1), (True, 2)])
def test_atom_swap(plugin, tmp_path, graded, nprocs):
    assert nprocs == 1 or mpiexec_binary() is not None, 'the mpich wheel ships mpiexec: the install is broken'
    pot = tame_potential(level=8, species_count=2, seed=6)
    mtp = pot.write(tmp_path / 'pot.mtp')
    atoms = lattice(seed=2)
    write_data(tmp_path / 'data.lmp', atoms, ZS)
    grade, extra = '', ''
    if graded:  # an (arbitrary) identity active set: grading on every step under swaps
        k = pot.alpha_scalar_moments + 2
        als = write_active_set(
            tmp_path / 'id.als',
            inverse=np.eye(k),
            layout='moment+species',
            species_count=2,
            alpha_scalar_moments=pot.alpha_scalar_moments,
        )
        grade = f'active_set {als} every 1'
        extra = 'compute g all mtp/grade\ncompute gm all reduce max c_g\nthermo_style custom step pe c_gm'
    res = run_lammps(SWAP.format(mtp=mtp, grade=grade, extra=extra), tmp_path, nprocs=nprocs).check()
    pe, attempts, accepted = value(res.stdout, 'AFTER')
    (recomputed,) = value(res.stdout, 'RECOMPUTED')
    counts = np.bincount([ZS.index(z) for z in atoms.numbers], minlength=2)
    final = (tmp_path / 'final.dump').read_text().splitlines()
    types = np.array([int(ln.split()[1]) for ln in final[9 : 9 + len(atoms)]])
    assert tuple(np.bincount(types - 1, minlength=2)) == tuple(counts)
    initial = np.array([ZS.index(z) + 1 for z in atoms.numbers])
    assert (types != initial).any()  # swaps happened
    assert attempts > 0 and accepted > 0
    assert recomputed == pytest.approx(pe, rel=1e-10, abs=1e-10)


GCMC = """
units metal
atom_style atomic
atom_modify map array
read_data data.lmp
plugin load {{plugin}}
pair_style mtp {grade}
pair_coeff * * {mtp}
compute_modify thermo_temp dynamic/dof yes
fix gc all gcmc 5 10 10 1 4728 600 {mu} 0.2 full_energy
thermo_style custom step atoms pe f_gc[3] f_gc[4] f_gc[5] f_gc[6]
thermo_modify format float %.15g
thermo 10
run 50
print "AFTER $(pe:%.15g) $(atoms) $(f_gc[4]) $(f_gc[6])"
run 0
print "RECOMPUTED $(pe:%.15g)"
"""


@pytest.mark.parametrize('nprocs,graded', [(1, False), (1, True), (2, True)])
def test_gcmc_full_energy(plugin, tmp_path, nprocs, graded):
    assert nprocs == 1 or mpiexec_binary() is not None, 'the mpich wheel ships mpiexec: the install is broken'
    pot = tame_potential(level=8, species_count=2, seed=7)
    mtp = pot.write(tmp_path / 'pot.mtp')
    atoms = lattice(seed=3, vacancies=4)  # room to insert
    write_data(tmp_path / 'data.lmp', atoms, ZS)
    grade = ''
    if graded:
        k = pot.alpha_scalar_moments
        als = write_active_set(
            tmp_path / 'id.als', inverse=np.eye(k), layout='moment', species_count=2, alpha_scalar_moments=k
        )
        grade = f'active_set {als} every 1'
    res = run_lammps(GCMC.format(mtp=mtp, grade=grade, mu=0.0), tmp_path, nprocs=nprocs).check()
    pe, natoms, inserted, deleted = value(res.stdout, 'AFTER')
    (recomputed,) = value(res.stdout, 'RECOMPUTED')
    assert inserted + deleted > 0, res.stdout[-2000:]
    assert natoms == len(atoms) + inserted - deleted
    assert recomputed == pytest.approx(pe, rel=1e-10, abs=1e-10)


def test_md_trajectory_same_on_two_ranks(plugin, tmp_path):
    """200 NVE steps (with re-neighbouring and atoms migrating between ranks): the same
    trajectory on 1 and 2 MPI ranks."""
    assert mpiexec_binary() is not None, 'the mpich wheel ships mpiexec: the install is broken'
    pot = tame_potential(level=12, species_count=2, seed=9)
    mtp = pot.write(tmp_path / 'pot.mtp')
    atoms = lattice(seed=9)
    write_data(tmp_path / 'data.lmp', atoms, ZS)
    script = f"""
units metal
atom_style atomic
atom_modify map array
read_data ../data.lmp
plugin load {{plugin}}
pair_style mtp
pair_coeff * * {mtp}
neighbor 0.3 bin
neigh_modify every 1 delay 0 check yes
velocity all create 1200 5 mom yes rot no loop geom
timestep 0.001
fix 1 all nve
thermo 50
run 200
write_dump all custom final.dump id x y z modify sort id format float %.17g
print "FINAL $(pe:%.17g) $(etotal:%.17g)"
"""
    out = {}
    for nprocs in (1, 2):
        res = run_lammps(script, tmp_path / f'np{nprocs}', nprocs=nprocs).check()
        lines = (tmp_path / f'np{nprocs}' / 'final.dump').read_text().splitlines()
        pos = np.array([[float(v) for v in ln.split()[1:]] for ln in lines[9 : 9 + len(atoms)]])
        out[nprocs] = (value(res.stdout, 'FINAL'), pos)
    (pe1, et1), pos1 = out[1]
    (pe2, et2), pos2 = out[2]
    assert pe2 == pytest.approx(pe1, rel=1e-9)
    assert et2 == pytest.approx(et1, rel=1e-9)
    assert np.abs(pos1 - pos2).max() < 1e-8
