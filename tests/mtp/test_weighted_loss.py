"""Per-atom force weights in the MTP fit (aiida_mscale.mtp.weighted_loss, the training script's weighted path).

Labels: ase's EMT on rattled fcc Cu cells and on one cell cut around an atom of a larger rattled cell
(aiida_mscale.mtp.neighbourhood, core = the centre). The reference for "weights do what they say" is the fit
itself: the forces of the cut's non-core atoms and its energy and stress are replaced by two different sets of
wild numbers; with the cut's weights the loss, its gradient and the fitted potential are the same for both, with
all weights 1 they are not. A training set whose weights are all 1 gives motep's own loss bit for bit.
"""

import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import voigt_6_to_full_3x3_stress

from aiida_mscale.mtp import generate_untrained_mtp
from aiida_mscale.mtp.cfg import CfgConfiguration, virial_from_stress, weight_features, write_cfg
from aiida_mscale.mtp.neighbourhood import cut_neighbourhood
from tests.fit_inputs import bfgs, train_script_inputs

pytestmark = pytest.mark.unit

R_MTP = 4.0  # [Angstrom] max_dist of the test potential


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """motep's Trainer writes intermediate_<step>.mtp into the working directory."""
    monkeypatch.chdir(tmp_path)


def _emt(atoms):
    atoms = atoms.copy()
    atoms.calc = EMT()
    results = {'energy': atoms.get_potential_energy(), 'forces': atoms.get_forces(), 'stress': atoms.get_stress()}
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


@pytest.fixture(scope='module')
def labelled():
    """Three bulk cells (weights 1) and one cut cell (weights: its centre's force only)."""
    images, weights = [], []
    for i in range(3):
        atoms = bulk('Cu', 'fcc', a=3.61, cubic=True).repeat((2, 1, 1))
        atoms.set_cell(atoms.cell * (1.0 + 0.01 * (i - 1)), scale_atoms=True)
        atoms.rattle(0.08, seed=30 + i)
        images.append(_emt(atoms))
        weights.append((1.0, 1.0, np.ones(len(atoms))))
    large = bulk('Cu', 'fcc', a=3.61, cubic=True).repeat(3)
    large.rattle(0.08, seed=7)
    cut = cut_neighbourhood(large, 0, r_core=1.0, r_mtp=R_MTP)
    # fcc shells within 5 A: 1 + 12 + 6 + 24, and a few of the 24 at 5.1 A that the rattle brought inside
    assert 43 <= len(cut.atoms) < 43 + 24 and cut.number_of_core_atoms == 1
    images.append(_emt(cut.atoms))
    weights.append((0.0, 0.0, cut.force_weights))
    return images, weights


def _scrambled(images, weights, seed):
    """Copies in which every label that carries weight 0 is replaced by wild random numbers."""
    rng = np.random.default_rng(seed)
    out = []
    for atoms, (w_energy, w_stress, w_forces) in zip(images, weights):
        results = {k: np.array(v, copy=True) for k, v in atoms.calc.results.items()}
        zero = w_forces == 0
        results['forces'][zero] = rng.normal(0.0, 50.0, (int(zero.sum()), 3))
        if w_energy == 0:
            results['energy'] = float(rng.normal(0.0, 1000.0))
        if w_stress == 0:
            results['stress'] = rng.normal(0.0, 5.0, 6)
        copy = atoms.copy()
        copy.calc = SinglePointCalculator(copy, **results)
        out.append(copy)
    return out


@pytest.fixture(scope='module')
def template(tmp_path_factory):
    return generate_untrained_mtp(4, species_count=1, min_dist=2.0, max_dist=R_MTP).write(
        tmp_path_factory.mktemp('mtp') / 'l4.mtp'
    )


def _data(template):
    import motep.io.mlip.mtp as motep_mtp

    data = motep_mtp.read_mtp(str(template))
    data.species = [29]
    data.initialize(np.random.default_rng(5))
    return data


def _losses(template, images, weights=None):
    """(loss, gradient) at the same random parameters: motep's loss, or ours with ``weights``."""
    from motep.loss import LossFunction, LossSetting

    from aiida_mscale.mtp.weighted_loss import WeightedLossFunction

    data = _data(template)
    setting = LossSetting.from_any({'energy_weight': 1.0, 'forces_weight': 0.01, 'stress_weight': 0.001})
    if weights is None:
        loss = LossFunction(images, data, setting, engine='cext')
    else:
        loss = WeightedLossFunction(
            images,
            data,
            setting,
            engine='cext',
            energy_weights=[w[0] for w in weights],
            stress_weights=[w[1] for w in weights],
            force_weights=[w[2] for w in weights],
        )
    parameters = data.parameters.copy()
    return loss(parameters), loss.jac(parameters)


def test_weights_all_one_give_motep_loss_exactly(template, labelled):
    images, _ = labelled
    ones = [(1.0, 1.0, np.ones(len(a))) for a in images]
    value, gradient = _losses(template, images)
    weighted_value, weighted_gradient = _losses(template, images, ones)
    assert value > 0 and weighted_value == value  # bit for bit
    np.testing.assert_array_equal(weighted_gradient, gradient)


def test_weighted_loss_ignores_what_weight_zero_labels_say(template, labelled):
    images, weights = labelled
    a, b = _scrambled(images, weights, seed=1), _scrambled(images, weights, seed=2)
    value_a, gradient_a = _losses(template, a, weights)
    value_b, gradient_b = _losses(template, b, weights)
    assert value_a == value_b
    np.testing.assert_array_equal(gradient_a, gradient_b)
    # the scrambled labels are really different: motep's loss (all weights 1) sees it (26 of ~370 here, at random
    # parameters where the bulk cells' energy term dominates)
    plain_a, plain_b = _losses(template, a)[0], _losses(template, b)[0]
    assert abs(plain_a - plain_b) > 10.0 and min(plain_a, plain_b) > value_a
    # and the weighted loss of the scrambled set equals that of the clean set
    clean, _ = _losses(template, images, weights)
    assert clean == value_a


def _write_cfg(path, images, weights=None):
    configurations = []
    for k, atoms in enumerate(images):
        features = {} if weights is None else weight_features(*weights[k])
        results = atoms.calc.results
        stress = voigt_6_to_full_3x3_stress(results['stress'])
        configurations.append(
            CfgConfiguration(
                types=np.zeros(len(atoms), dtype=int),
                positions=atoms.positions,
                cell=atoms.cell.array,
                forces=results['forces'],
                energy=float(results['energy']),
                virial=virial_from_stress(stress, atoms.cell.array),
                features=features,
            )
        )
    path.write_text(write_cfg(configurations))


def _fit(tmp_path, template, images, weights=None, steps=None):
    from aiida_mscale.mtp.train import train

    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / 'initial.mtp').write_text(template.read_text())
    _write_cfg(tmp_path / 'train.cfg', images, weights)
    loss = {'energy_weight': 1.0, 'forces_weight': 0.01, 'stress_weight': 0.001}
    inputs = train_script_inputs(['Cu'], loss, steps or bfgs(15), seed=3, engine='cext', checkpoint_every=0)
    errors = train(inputs, workdir=tmp_path)
    curve = json.loads((tmp_path / 'learning_curve.json').read_text())
    return (tmp_path / 'final.mtp').read_text(), curve, errors


def test_fit_with_cut_weights_is_blind_to_the_non_core_labels(tmp_path, template, labelled):
    """The training script fits the same potential whatever the cut's non-core forces, energy and stress are."""
    images, weights = labelled
    a, b = _scrambled(images, weights, seed=1), _scrambled(images, weights, seed=2)
    final_a, curve_a, errors_a = _fit(tmp_path / 'a', template, a, weights)
    final_b, curve_b, _ = _fit(tmp_path / 'b', template, b, weights)
    assert len(curve_a[0]['loss']) > 5
    assert final_a == final_b and curve_a == curve_b
    assert curve_a[0]['loss'][-1] < curve_a[0]['loss'][0]
    # the error table counts the forces of the 3 x 8 bulk atoms and the 1 core atom, the energies of 3 cells
    assert errors_a['training']['n'] == 4
    assert errors_a['training']['forces']['max'] < 5000.0  # meV/A; the wild labels are ~50 eV/A
    # without the weights, the same two sets give different potentials
    plain_a, _, _ = _fit(tmp_path / 'pa', template, a)
    plain_b, _, _ = _fit(tmp_path / 'pb', template, b)
    assert plain_a != plain_b


def test_fit_without_weights_is_motep_trainer(tmp_path, template, labelled):
    """No weight feature in train.cfg: the fit is motep's Trainer, as before (the same loss curve as calling it)."""
    import motep.io
    from motep.train import Trainer

    images, _ = labelled
    import motep.io.mlip.mtp as motep_mtp

    _, curve, _ = _fit(tmp_path / 'ours', template, images)

    data = motep_mtp.read_mtp(str(template))
    data.species = [29]
    reference = motep.io.read(str(tmp_path / 'ours' / 'train.cfg'), species=[29])
    trainer = Trainer(
        data,
        seed=3,
        engine='cext',
        loss={'energy_weight': 1.0, 'forces_weight': 0.01, 'stress_weight': 0.001},
        steps=[{'method': 'minimize', 'kwargs': {'method': 'BFGS', 'options': {'maxiter': 15}}}],
    )
    loss = trainer.train(reference)
    assert loss(data.parameters) == pytest.approx(curve[0]['loss'][-1], rel=1e-12)


@pytest.mark.parametrize('method', ['LLS', 'Level2MTP'])
def test_linear_steps_are_refused_before_fitting(tmp_path, template, labelled, method):
    images, weights = labelled
    steps = [{'method': method}, {'method': 'minimize', 'kwargs': {'method': 'BFGS'}}]
    with pytest.raises(ValueError, match=rf'step 0 \({method}\).*ignores weights'):
        _fit(tmp_path, template, images, weights, steps=steps)
    assert not (tmp_path / 'final.mtp').exists() and not (tmp_path / 'learning_curve.json').exists()
