"""pair_style mtp refuses bad input with clear errors, before anything runs."""

import lammps  # noqa: F401  (installed by make install)
import numpy as np
import pytest
from ase import Atoms  # noqa: E402

from aiida_mscale.lammps import build, write_active_set  # noqa: E402
from aiida_mscale.lammps.testing import random_potential, run_lammps, write_data  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope='session')
def plugin():
    return build()


@pytest.fixture
def setup(tmp_path):
    pot = random_potential(level=8, species_count=2, seed=1)
    pot.write(tmp_path / 'pot.mtp')
    atoms = Atoms('Li2O', positions=[[0, 0, 0], [2.0, 0, 0], [0, 2.2, 0]], cell=[6, 6, 6], pbc=True)
    write_data(tmp_path / 'data.lmp', atoms, [3, 8])
    return pot, tmp_path


def run(tmp_path, style='', coeff='pot.mtp', pre=''):
    res = run_lammps(
        f"""
units metal
atom_style atomic
{pre}
read_data data.lmp
plugin load {{plugin}}
pair_style mtp {style}
pair_coeff * * {coeff}
run 0
""",
        tmp_path,
    )
    return res.returncode, res.stdout + res.stderr


def test_reference_input_runs(plugin, setup):
    _, tmp_path = setup
    code, out = run(tmp_path)
    assert code == 0, out


@pytest.mark.parametrize(
    'edit,message',
    [
        (lambda t: t.replace('MTP\n', 'XYZ\n', 1), "expected the 'MTP' header"),
        (
            lambda t: '\n'.join(ln for ln in t.splitlines() if not ln.startswith('moment_coeffs')),
            'untrained template cannot be used',
        ),
        (lambda t: t.replace('species_count = 2', 'species_count = two'), 'must be an integer'),
        (
            lambda t: t.replace('alpha_moment_mapping = {0, ', 'alpha_moment_mapping = {9999, '),
            'alpha_moment_mapping entry 9999 out of range',
        ),
        (lambda t: t.replace('\t\t1-1\n', '\t\t1-0\n'), 'given twice'),
    ],
)
def test_malformed_potential(plugin, setup, edit, message):
    pot, tmp_path = setup
    (tmp_path / 'bad.mtp').write_text(edit(pot.to_text()))
    code, out = run(tmp_path, coeff='bad.mtp')
    assert code != 0
    assert message in out, out[-1500:]


def test_missing_file(plugin, setup):
    _, tmp_path = setup
    code, out = run(tmp_path, coeff='nothere.mtp')
    assert code != 0 and 'cannot open potential file' in out


def test_species_the_potential_lacks(plugin, setup):
    _, tmp_path = setup
    code, out = run(tmp_path, style='species Li O', coeff='pot.mtp Li Co')
    assert code != 0 and 'element Co of atom type 2 is not a species' in out
    code, out = run(tmp_path, coeff='pot.mtp 0 5')
    assert code != 0 and 'out of range' in out


def test_more_types_than_species(plugin, setup):
    pot, tmp_path = setup
    atoms = Atoms('Li2O', positions=[[0, 0, 0], [2.0, 0, 0], [0, 2.2, 0]], cell=[6, 6, 6], pbc=True)
    write_data(tmp_path / 'data.lmp', atoms, [3, 8], ntypes=3)
    code, out = run(tmp_path)
    assert code != 0 and 'atom type 3 has no species' in out


def test_newton_off_refused(plugin, setup):
    _, tmp_path = setup
    code, out = run(tmp_path, pre='newton off')
    assert code != 0 and 'requires newton pair on' in out


def test_active_set_mismatch(plugin, setup):
    pot, tmp_path = setup
    write_active_set(tmp_path / 'bad.als', inverse=np.eye(3), layout='moment', species_count=2, alpha_scalar_moments=3)
    code, out = run(tmp_path, style=f'active_set {tmp_path / "bad.als"}')
    assert code != 0 and 'active set is for 2 species and 3 basis functions' in out
    code, out = run(tmp_path, style=f'active_set {tmp_path / "none.als"}')
    assert code != 0 and 'cannot open active-set file' in out
