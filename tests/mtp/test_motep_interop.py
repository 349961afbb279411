"""motep reads the generated templates, trains from one, and what it writes reads back.

Training target: ase's EMT calculator on a few rattled/strained fcc cells (a stand-in
for DFT labels; only the mechanics of training are tested here).
"""

import motep.io.mlip.mtp as motep_mtp
import numpy as np
import pytest
from ase.build import bulk  # noqa: E402
from ase.calculators.emt import EMT  # noqa: E402
from ase.calculators.singlepoint import SinglePointCalculator  # noqa: E402

from aiida_mscale.mtp import MtpPotential, generate_untrained_mtp, parse_mtp, read_mtp  # noqa: E402


def _labelled(atoms):
    atoms.calc = EMT()
    results = {
        'energy': atoms.get_potential_energy(),
        'forces': atoms.get_forces(),
        'stress': atoms.get_stress(),
    }
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


@pytest.fixture(scope='module')
def cu_images():
    images = []
    for i in range(6):
        atoms = bulk('Cu', 'fcc', a=3.61, cubic=True).repeat((2, 1, 1))
        atoms.set_cell(atoms.cell * (1.0 + 0.015 * (i - 3)), scale_atoms=True)
        atoms.rattle(0.08, seed=10 + i)
        images.append(_labelled(atoms))
    return images


@pytest.fixture(scope='module')
def cual_images():
    images = []
    for i in range(6):
        atoms = bulk('Cu', 'fcc', a=3.7, cubic=True).repeat((2, 1, 1))
        atoms.symbols[[1, 4, 6]] = 'Al'
        atoms.set_cell(atoms.cell * (1.0 + 0.015 * (i - 3)), scale_atoms=True)
        atoms.rattle(0.08, seed=20 + i)
        images.append(_labelled(atoms))
    return images


def _motep_data(path, species):
    data = motep_mtp.read_mtp(path)
    data.species = species
    return data


def _energy_rmse(data, images):
    from motep.calculator import make_calculator

    calc = make_calculator(data, engine='numpy')
    diff = []
    for atoms in images:
        a = atoms.copy()
        a.calc = calc
        diff.append((a.get_potential_energy() - atoms.get_potential_energy()) / len(a))
    return float(np.sqrt(np.mean(np.square(diff))))


@pytest.mark.parametrize('level', [2, 8, 16, 24])
def test_motep_reads_template(tmp_path, level):
    template = generate_untrained_mtp(level, species_count=1, min_dist=2.0, max_dist=5.0)
    path = template.write(tmp_path / f'{level:02d}.mtp')
    data = motep_mtp.read_mtp(path)
    assert data.alpha_moments_count == template.alpha_moments_count
    assert data.alpha_scalar_moments == template.alpha_scalar_moments
    assert data.radial_funcs_count == template.radial_funcs_count
    assert data.radial_basis.size == 8 and data.radial_basis.type == 'RBChebyshev'
    np.testing.assert_array_equal(
        data.alpha_index_times.reshape(-1, 4), np.array(template.alpha_index_times).reshape(-1, 4)
    )
    np.testing.assert_array_equal(data.alpha_moment_mapping, template.alpha_moment_mapping)


def test_motep_energy_is_rotation_invariant(tmp_path, cual_images):
    """motep evaluates a level-16, 2-species template (random coefficients) invariantly."""
    from motep.calculator import make_calculator

    path = generate_untrained_mtp(16, species_count=2, max_dist=4.5).write(tmp_path / '16.mtp')
    data = _motep_data(path, [29, 13])
    data.initialize(np.random.default_rng(0))
    atoms = cual_images[0].copy()
    atoms.calc = make_calculator(data, engine='cext')
    e0 = atoms.get_potential_energy()
    f0 = atoms.get_forces()
    rot = atoms.copy()
    rot.rotate(37.0, (1.0, 2.0, -0.5), rotate_cell=True)
    rot.calc = make_calculator(data, engine='cext')
    assert rot.get_potential_energy() == pytest.approx(e0, rel=1e-10, abs=1e-10)
    # forces rotate with the structure
    q = np.linalg.solve(atoms.cell.array, rot.cell.array)  # row-vector rotation matrix
    np.testing.assert_allclose(rot.get_forces(), f0 @ q, atol=1e-8 * max(1.0, np.abs(f0).max()))


@pytest.mark.parametrize(('level', 'images_name', 'species'), [(8, 'cu_images', [29]), (8, 'cual_images', [29, 13])])
def test_motep_trains_from_template(tmp_path, request, level, images_name, species):
    from motep.loss import LossFunction, LossSetting
    from motep.train.trainer import Trainer

    images = request.getfixturevalue(images_name)
    path = generate_untrained_mtp(level, species_count=len(species), min_dist=2.0, max_dist=4.6).write(
        tmp_path / 'untrained.mtp'
    )
    data = _motep_data(path, species)
    rng = np.random.default_rng(1)
    data.initialize(rng)
    loss = LossFunction(images, data, LossSetting(), engine='cext')
    before_loss = loss(data.parameters)
    before_rmse = _energy_rmse(data, images)

    trainer = Trainer(
        data,
        rng=rng,
        engine='cext',
        steps=[{'method': 'minimize', 'kwargs': {'method': 'L-BFGS-B', 'options': {'maxiter': 200}}}],
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)  # the trainer writes intermediate_*.mtp into the cwd
        trainer.train(images)
    after_loss = loss(data.parameters)
    after_rmse = _energy_rmse(data, images)
    assert after_loss < 0.05 * before_loss
    assert after_rmse < 0.2 * before_rmse
    assert after_rmse < 0.01  # eV/atom on the training set

    # --- what motep writes reads back -------------------------------------------------
    motep_default = tmp_path / 'final_motep.mtp'
    motep_mtp.write_mtp(motep_default, data)  # motep 0.2.0's default (grouped) dialect
    motep_legacy = tmp_path / 'final_legacy.mtp'
    motep_mtp.write_mtp(motep_legacy, data, legacy=True)  # MLIP's dialect

    ours_default = read_mtp(motep_default)
    ours_legacy = read_mtp(motep_legacy)
    for pot in (ours_default, ours_legacy):
        assert pot.is_trained
        # motep writes %21.15e (16 significant digits): equal to ~1 ulp, not bit-exact
        np.testing.assert_allclose(pot.radial_coeffs, data.radial_coeffs, rtol=1e-15, atol=0)
        np.testing.assert_allclose(pot.species_coeffs, data.species_coeffs, rtol=1e-15, atol=0)
        np.testing.assert_allclose(pot.moment_coeffs, data.moment_coeffs, rtol=1e-15, atol=0)
    assert ours_default.to_text() == ours_legacy.to_text()

    # motep 0.2.0 cannot read its own default dialect back when radial_coeffs are
    # present (radial_funcs_count is written after the block it needs it for); our
    # rewrite in MLIP's dialect is what it (and MLIP) reads.
    rewritten = ours_default.write(tmp_path / 'final.mtp')
    again = _motep_data(rewritten, species)
    np.testing.assert_array_equal(again.radial_coeffs, ours_default.radial_coeffs)
    np.testing.assert_array_equal(again.moment_coeffs, ours_default.moment_coeffs)
    assert _energy_rmse(again, images) == pytest.approx(after_rmse, rel=1e-9, abs=1e-14)

    # bit-exact path: motep's in-memory data -> our writer -> motep's reader
    exact = MtpPotential.from_motep(data).write(tmp_path / 'exact.mtp')
    again = _motep_data(exact, species)
    for name in ('radial_coeffs', 'species_coeffs', 'moment_coeffs'):
        np.testing.assert_array_equal(getattr(again, name), getattr(data, name))
    assert _energy_rmse(again, images) == after_rmse

    # and the untrained part of the trained file is the template we generated
    assert (
        parse_mtp(ours_default.untrained().to_text()).alpha_index_times.tolist()
        == read_mtp(path).alpha_index_times.tolist()
    )


def test_motep_default_writer_quirk_is_handled(tmp_path):
    """Documents motep 0.2.0's writer: if motep can read its own output, fine; if not,
    it is the known KeyError on radial_funcs_count, and our reader reads it."""
    path = generate_untrained_mtp(6, species_count=1).write(tmp_path / '06.mtp')
    data = _motep_data(path, [29])
    data.initialize(np.random.default_rng(0))
    out = tmp_path / 'motep.mtp'
    motep_mtp.write_mtp(out, data)
    try:
        motep_mtp.read_mtp(out)
    except KeyError as exc:
        assert 'radial_funcs_count' in str(exc)
    pot = read_mtp(out)
    assert pot.radial_funcs_count == 2 and pot.is_trained
