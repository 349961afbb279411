"""TrainingSetData's optional fit weights (energy, stress per configuration; force per atom) of local active
learning: absent means 1 (nodes made before them load as before), they survive the ASE and .cfg round trips and
a merge, and MtpTrainCalculation refuses motep's linear steps for a weighted set before anything runs."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

pytestmark = pytest.mark.unit


def _images():
    rng = np.random.default_rng(4)
    images = []
    for k in range(3):
        atoms = bulk('Li', 'bcc', a=3.43, cubic=True).repeat((1, 1, 2))
        atoms.rattle(0.05, seed=k)
        atoms.calc = SinglePointCalculator(
            atoms,
            energy=float(rng.normal(-7.6, 0.1)) * len(atoms),
            forces=rng.normal(0, 0.3, (len(atoms), 3)),
            stress=rng.normal(0, 0.01, 6),
        )
        images.append(atoms)
    cut = images[2]
    cut.info['energy_weight'] = 0.0
    cut.info['stress_weight'] = 0.0
    cut.arrays['force_weight'] = np.array([1.0, 0.0, 0.0, 1.0])
    return images


def test_unweighted_set_stores_no_weight_array_and_reads_ones(aiida_profile):
    from aiida_mscale.data.training_set import TrainingSetData

    images = _images()[:2]
    node = TrainingSetData.from_ase(images).store()
    assert not node.has_weights()
    assert not {'energy_weights', 'stress_weights', 'force_weights'} & set(node.get_arraynames())
    weights = node.get_weights()
    assert np.array_equal(weights['force_weights'], np.ones(8))
    assert np.array_equal(weights['energy_weights'], np.ones(2))
    assert 'Feature' not in node.to_cfg(['Li']).replace('Feature   source_uuid', '')


def test_weights_round_trip_through_ase_cfg_and_merge(aiida_profile):
    from aiida_mscale.calculations.functions import merge_training_sets
    from aiida_mscale.data.training_set import TrainingSetData

    node = TrainingSetData.from_ase(_images()).store()
    assert node.has_weights()
    expected = {
        'energy_weights': [1.0, 1.0, 0.0],
        'stress_weights': [1.0, 1.0, 0.0],
        'force_weights': [1.0] * 8 + [1.0, 0.0, 0.0, 1.0],
    }
    for name, values in expected.items():
        assert node.get_array(name).tolist() == values

    text = node.to_cfg(['Li'])
    assert text.count('Feature   force_weights\t1.0,0.0,0.0,1.0') == 1
    assert text.count('Feature   energy_weight\t0.0') == 1 and text.count('Feature   stress_weight\t0.0') == 1
    back = TrainingSetData.from_cfg(text, ['Li'])
    for name, values in expected.items():
        assert back.get_array(name).tolist() == values
    assert back.to_cfg(['Li']) == text

    images = node.to_ase()
    assert images[2].arrays['force_weight'].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert images[2].info['energy_weight'] == 0.0 and 'energy_weight' not in images[0].info
    assert TrainingSetData.from_ase(images).get_array('force_weights').tolist() == expected['force_weights']

    plain = TrainingSetData.from_ase(_images()[:1]).store()
    merged = merge_training_sets(a=plain, b=node)
    assert merged.get_array('force_weights').tolist() == [1.0] * 4 + expected['force_weights']
    assert merged.get_array('energy_weights').tolist() == [1.0] + expected['energy_weights']


def test_negative_or_misshapen_weights_are_refused(aiida_profile):
    from aiida_mscale.data.training_set import TrainingSetData

    images = _images()
    images[2].arrays['force_weight'] = np.array([1.0, -1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match='force_weights'):
        TrainingSetData.from_ase(images)
    images = _images()
    images[0].info['energy_weight'] = float('nan')
    with pytest.raises(ValueError, match='energy_weights'):
        TrainingSetData.from_ase(images)


@pytest.mark.parametrize('method', ['LLS', 'Level2MTP', 'NI'])
def test_train_calculation_refuses_linear_steps_for_a_weighted_set(aiida_profile, method):
    from aiida import orm

    from aiida_mscale.calculations.mtp_train import validate_inputs
    from aiida_mscale.data.mtp_potential import MtpPotentialData
    from aiida_mscale.data.training_set import TrainingSetData

    potential = MtpPotentialData.from_template(4, ['Li'], min_dist=2.0, max_dist=4.0, radial_basis_size=8)
    steps = [{'method': method}, {'method': 'minimize'}]
    weighted = TrainingSetData.from_ase(_images())
    plain = TrainingSetData.from_ase(_images()[:2])
    message = validate_inputs(
        {'training_set': weighted, 'potential': potential, 'parameters': orm.Dict({'steps': steps})}, None
    )
    assert message is not None and f'step 0 ({method})' in message and 'ignores weights' in message
    assert (
        validate_inputs({'training_set': plain, 'potential': potential, 'parameters': orm.Dict({'steps': steps})}, None)
        is None
    )
    gradient_only = orm.Dict({'steps': [{'method': 'minimize'}]})
    assert (
        validate_inputs({'training_set': weighted, 'potential': potential, 'parameters': gradient_only}, None) is None
    )
