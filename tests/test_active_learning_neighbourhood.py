"""Local active learning in ActiveLearningWorkChain (``selection: 'neighbourhood'``), wiring only: no binary runs.

The input validator is called on input dicts; the select/label steps run on a stand-in work chain (its context and
inputs, a recording ``submit``), with fake selection and labelling children. The sampled configuration is a 3x3x3
antifluorite Li2O supercell (324 atoms); the potential's cutoff (max_dist, the MTP radius) is 4 Angstrom.
"""

import types

import numpy as np
import pytest
from ase.build import bulk

from tests.fit_inputs import training_set

pytestmark = pytest.mark.unit

R_MTP = 4.0


def _potential(max_dist=R_MTP):
    from aiida_mscale.data.mtp_potential import MtpPotentialData

    return MtpPotentialData.from_template(6, ['Li', 'O'], min_dist=1.5, max_dist=max_dist, radial_basis_size=6)


# ------------------------------------------------------------------------------------------------- validation
def _inputs(**extra):
    from aiida import orm

    inputs = {
        'structure': orm.StructureData(ase=bulk('OLi2', 'fluorite', a=4.61, cubic=True)),
        'guest': orm.Str('Li'),
        'potential': _potential(),
        'training_set': training_set([bulk('OLi2', 'fluorite', a=4.61, cubic=True)]),
        'mu_offsets': orm.List([0.0]),
        'temperatures': orm.List([600.0]),
        'select_threshold': orm.Float(2.0),
        'break_threshold': orm.Float(10.0),
        'max_iterations': orm.Int(2),
        'max_labels_per_iteration': orm.Int(4),
        'max_concurrent_md': orm.Int(2),
    }
    inputs.update(extra)
    return inputs


def _train(steps):
    from aiida import orm

    return {'mtp': {'parameters': orm.Dict({'steps': steps})}}


@pytest.mark.parametrize(
    'extra, message',
    [
        ({'selection': 'atoms'}, r"`selection` must be one of \['configuration', 'neighbourhood'\], not 'atoms'"),
        ({'neighbourhood': {'r_core': 2.0}}, "`neighbourhood` settings are given but `selection` is 'configuration'"),
        ({'selection': 'neighbourhood', 'neighbourhood': {'r_core': 0.0}}, r'`neighbourhood.r_core` must be a posi'),
        ({'selection': 'neighbourhood', 'neighbourhood': {'r_core': -1}}, r'`neighbourhood.r_core` must be a posi'),
        ({'selection': 'neighbourhood', 'neighbourhood': {'r_core': 'big'}}, r'`neighbourhood.r_core` must be a posi'),
        ({'selection': 'neighbourhood', 'neighbourhood': {'padding': -1.0}}, r'`neighbourhood.padding` must be a no'),
        ({'selection': 'neighbourhood', 'neighbourhood': {'max_centres': 0}}, r'`neighbourhood.max_centres` must be'),
        ({'selection': 'neighbourhood', 'neighbourhood': {'max_centres': 1.5}}, r'`neighbourhood.max_centres` must'),
        ({'selection': 'neighbourhood', 'neighbourhood': {'r_cut': 3.0}}, r"`neighbourhood`: unknown keys \['r_cut'\]"),
        (
            {
                'selection': 'neighbourhood',
                'train': [{'method': 'Level2MTP'}, {'method': 'LLS'}, {'method': 'minimize'}],
            },
            r"training step 0 \(Level2MTP\), step 1 \(LLS\) is motep's linear least-squares solve, which ignores "
            r'weights',
        ),
    ],
)
def test_bad_selection_input_is_refused(aiida_profile, extra, message):
    import re

    from aiida import orm

    from aiida_mscale.workflows.active_learning import validate_inputs

    converted = {}
    for key, value in extra.items():
        if key == 'selection':
            converted[key] = orm.Str(value)
        elif key == 'neighbourhood':
            converted[key] = orm.Dict(value)
        elif key == 'train':
            converted[key] = _train(value)
    result = validate_inputs(_inputs(**converted), None)
    assert result is not None and re.search(message, result), result


def test_good_selection_input_passes(aiida_profile):
    from aiida import orm

    from aiida_mscale.workflows.active_learning import validate_inputs

    assert validate_inputs(_inputs(), None) is None
    assert validate_inputs(_inputs(selection=orm.Str('configuration'), train=_train([{'method': 'LLS'}])), None) is None
    neighbourhood = _inputs(
        selection=orm.Str('neighbourhood'),
        neighbourhood=orm.Dict({'r_core': 2.1, 'max_centres': 2}),
        train=_train([{'method': 'minimize', 'kwargs': {'method': 'BFGS'}}]),
    )
    assert validate_inputs(neighbourhood, None) is None


# --------------------------------------------------------------------------------------- select -> cut -> label
@pytest.fixture
def sampled():
    """Two candidates: a 2x2x2 cell and the 3x3x3 one (324 atoms) that the selection picked, with per-atom grades."""
    small = bulk('OLi2', 'fluorite', a=4.61, cubic=True).repeat(2)
    large = bulk('OLi2', 'fluorite', a=4.61, cubic=True).repeat(3)
    far = int(np.argmax(large.get_distances(0, range(len(large)), mic=True)))
    grades_large = np.full(len(large), 0.5)
    grades_large[[0, 1, far, 2]] = [9.0, 5.0, 3.0, 1.5]  # O 0; its neighbour Li 1 (1.996 A); a far atom; below 2
    return {'small': small, 'large': large, 'far': far, 'grades': np.concatenate([np.ones(len(small)), grades_large])}


def _selection_child(sampled):
    """A stand-in for the finished MtpSelectBaseWorkChain: outputs `selected` (candidate 1) and `grades`."""
    from aiida import orm
    from aiida.common import AttributeDict

    selected = training_set([sampled['large']])
    selected.base.attributes.set('candidate_indices', [1])
    grades = orm.ArrayData()
    grades.set_array('neighborhood_grades', sampled['grades'])
    grades.set_array('numbers_of_atoms', np.array([len(sampled['small']), len(sampled['large'])]))
    grades.set_array('selected_indices', np.array([1]))
    grades.store()
    selected.store()
    outputs = AttributeDict({'selected': selected, 'grades': grades})
    return types.SimpleNamespace(outputs=outputs, is_finished_ok=True)


def _stand_in(selection='neighbourhood', neighbourhood=None):
    """An object with the work chain's step methods, inputs and context; ``submit`` records what it is given."""
    from aiida import orm
    from aiida.common import AttributeDict

    from aiida_mscale.workflows.active_learning import ActiveLearningWorkChain

    inputs = AttributeDict(
        {
            'selection': orm.Str(selection),
            'select_threshold': orm.Float(2.0),
            'max_iterations': orm.Int(3),
        }
    )
    if neighbourhood is not None:
        inputs['neighbourhood'] = orm.Dict(neighbourhood)
    chain = types.SimpleNamespace(inputs=inputs, reports=[], submitted=[])
    chain.ctx = AttributeDict(
        {
            'iteration': 1,
            'active_potential': _potential().store(),
            'failures': {'labels': {}, 'state_points': {}},
            'state_points': [[-1.0, 600.0]],
            'last_max_grade': 9.0,
            'worst_mu': -1.0,
            'worst_t': 600.0,
            'errors': {},
        }
    )
    chain.report = chain.reports.append
    chain.exposed_inputs = lambda process, namespace: {}

    def submit(process, **inputs):
        chain.submitted.append((process, inputs))
        return 'labelling-node'

    chain.submit = submit
    for name in ('select', 'inspect_select', 'label', 'inspect_label', '_cut_neighbourhoods', '_progress'):
        setattr(chain, name, types.MethodType(getattr(ActiveLearningWorkChain, name), chain))
    chain._record_label_failures = types.MethodType(ActiveLearningWorkChain._record_label_failures, chain)
    return chain


def test_neighbourhood_mode_labels_cut_cells_not_the_sampled_configuration(aiida_profile, sampled):
    from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain

    chain = _stand_in(neighbourhood={'r_core': 2.1, 'max_centres': 4})
    chain.ctx.selection = _selection_child(sampled)
    chain.inspect_select()
    chain.label()
    assert len(chain.submitted) == 1
    process, inputs = chain.submitted[0]
    assert process is DftLabelingWorkChain
    structures = inputs['structures']
    # two cuts: around O 0 (which also covers Li 1, 1.996 A away) and around the far atom; Li 2 is below threshold
    assert sorted(structures) == ['structure_000', 'structure_001']
    sizes = [len(structures[k].sites) for k in sorted(structures)]
    assert sizes[0] == 1 + 8 + 12 + 24 + 6 + 24 + 24 + 32  # 131: the O-centred shells within 2.1 + 4 A
    assert all(size < 324 / 2 for size in sizes)
    for key in structures:
        assert structures[key].cell == pytest.approx(np.eye(3) * 15.2)  # 2 (2.1 + 4) + 3 padding
    cuts = chain.ctx.cuts
    table = cuts.base.attributes.get('cuts')
    assert [(c['candidate'], c['centre'], c['sampled_atoms']) for c in table] == [(1, 0, 324), (1, sampled['far'], 324)]
    assert table[0]['core_atoms'] == 9
    weights = cuts.get_weights()
    assert weights['energy_weights'].tolist() == [0.0, 0.0] and weights['stress_weights'].tolist() == [0.0, 0.0]
    assert int(weights['force_weights'].sum()) == sum(c['core_atoms'] for c in table)
    assert any('cut into 2 neighbourhood cell(s)' in r and '131 (9 core) of 324' in r for r in chain.reports)


def test_labelled_cuts_enter_the_training_set_with_their_weights(aiida_profile, sampled):
    """A labelling that lost the first cut (failed pw.x) and returned the other: its weights, not the first's."""
    from aiida.common import AttributeDict

    from aiida_mscale.data.training_set import TrainingSetData

    chain = _stand_in(neighbourhood={'r_core': 2.1, 'max_centres': 4})
    chain.ctx.selection = _selection_child(sampled)
    chain.inspect_select()
    chain.label()
    cuts = chain.ctx.cuts.to_ase()
    survivor = cuts[1]
    rng = np.random.default_rng(0)
    labelled = TrainingSetData.from_arrays(
        numbers_of_atoms=[len(survivor)],
        cells=[survivor.cell.array],
        pbc=[[True] * 3],
        positions=survivor.positions + rng.normal(0, 1e-6, survivor.positions.shape),  # pw.x's rounding
        atomic_numbers=survivor.numbers,
        energies=[-1234.5],
        forces=rng.normal(0, 0.5, (len(survivor), 3)),
        stresses=np.eye(3)[None] * 0.01,
    ).store()
    chain.ctx.training_set = training_set([sampled['small']], energies=[-500.0]).store()
    chain.ctx.labelling = types.SimpleNamespace(
        outputs=AttributeDict({'training_set': labelled}), is_finished_ok=True, uuid='x', exit_status=0
    )
    chain.inspect_label()
    merged = chain.ctx.training_set
    assert len(merged) == 2 and merged.has_weights()
    weights = merged.get_weights()
    assert weights['energy_weights'].tolist() == [1.0, 0.0]
    assert weights['stress_weights'].tolist() == [1.0, 0.0]
    n_small = len(sampled['small'])
    assert weights['force_weights'][:n_small].tolist() == [1.0] * n_small
    expected = chain.ctx.cuts.get_weights()['force_weights'][len(cuts[0]) :]
    assert weights['force_weights'][n_small:].tolist() == expected.tolist()
    assert merged.get_array('energies')[1] == -1234.5


def test_configuration_mode_labels_the_selected_configuration_whole(aiida_profile, sampled):
    chain = _stand_in(selection='configuration')
    chain.ctx.selection = _selection_child(sampled)
    chain.inspect_select()
    chain.label()
    structures = chain.submitted[0][1]['structures']
    assert [len(s.sites) for s in structures.values()] == [324]
    assert chain.ctx.cuts is None


def test_weight_cut_labels_refuses_a_label_of_no_cut(aiida_profile, sampled):
    from aiida_mscale.calculations.functions.neighbourhood import weight_cut_labels

    chain = _stand_in(neighbourhood={'r_core': 2.1})
    chain.ctx.selection = _selection_child(sampled)
    chain.inspect_select()
    chain.label()
    other = sampled['small']
    labelled = training_set([other], energies=[-1.0])
    with pytest.raises(ValueError, match='matches none of the 1 cut cells'):
        weight_cut_labels(labelled=labelled, cuts=chain.ctx.cuts)
