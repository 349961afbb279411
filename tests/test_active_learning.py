"""ActiveLearningWorkChain on Li_{2-x}O with real pw.x, motep and LAMMPS: the loop, its outputs, and a resume.

The host is the conventional antifluorite cell Li8O4 (O host lattice, Li guests on 8 sites). GCMC at three
chemical potentials around the mean Li insertion energy really changes the Li count; the labels come from cheap
but real pw.x (25/200 Ry, Gamma point), the MTP is level 6.
"""

import numpy as np
import pytest
from ase.build import bulk

#: Cheap, real DFT: low cutoffs, Gamma point only (a 4.6 Angstrom insulator cell: enough to test the loop), with
#: pw.x's Gamma tricks: on Li8O4 the same energy to 1e-8 Ry at 2.3 s of CPU instead of 3.7 s.
DFT = {
    'max_concurrent': 2,
    'pw_base': {
        'kpoints_distance': 3.0,
        'pw': {'parameters': {'SYSTEM': {'ecutwfc': 25.0, 'ecutrho': 200.0}}, 'settings': {'GAMMA_ONLY': True}},
    },
}
OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 600}
OVERRIDES = {
    'dft': DFT,
    'mtp': {'level': 6, 'min_dist': 1.5, 'max_dist': 4.0, 'radial_basis_size': 6},
    'train': {
        'mtp': {
            'parameters': {
                'validation_fraction': 0.0,
                'loss': {'energy_weight': 1.0, 'forces_weight': 0.01, 'stress_weight': 0.0},
                'steps': [{'method': 'minimize', 'kwargs': {'method': 'BFGS', 'options': {'maxiter': 150}}}],
            }
        }
    },
    'initial': {'fractions': [1.0, 0.5], 'per_fraction': 2, 'strain': 0.03, 'rattle': 0.08, 'seed': 3},
    'mu_offsets': [-1.0, 0.0, 1.0],
    'temperatures': [1000.0],
    'select_threshold': 1.5,
    'break_threshold': 5.0,
    'max_labels_per_iteration': 2,
    'max_concurrent_md': 2,
    'md': {
        'ensemble': 'nvt',
        'timestep': 0.001,
        'steps': 300,
        'thermo_every': 10,
        'dump_every': 100,
        'gcmc': {'every': 10, 'exchanges': 5, 'moves': 5, 'max_displacement': 0.2, 'overlap_cutoff': 1.2},
        'extrapolation': {'every': 2},
    },
}


def _host():
    from aiida import orm

    return orm.StructureData(ase=bulk('OLi2', 'fluorite', a=4.61, cubic=True))


def _codes(pw_code, mtp_train_code, mtp_select_code, lammps_code):
    return {'pw': pw_code, 'mtp_train': mtp_train_code, 'mtp_select': mtp_select_code, 'lammps': lammps_code}


@pytest.fixture(scope='module')
def codes(pw_code, mtp_train_code, mtp_select_code, lammps_code):
    return _codes(pw_code, mtp_train_code, mtp_select_code, lammps_code)


@pytest.fixture(scope='module')
def runs(codes):
    """A two-iteration run, then a resume of it to a third iteration."""
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.active_learning import ActiveLearningWorkChain

    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes, _host(), 'Li', protocol='fast', overrides={**OVERRIDES, 'max_iterations': 2}, options=OPTIONS
    )
    first, first_node = run_get_node(builder)
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes, _host(), 'Li', protocol='fast', overrides={**OVERRIDES, 'max_iterations': 3}, options=OPTIONS
    )
    builder.previous = first_node
    builder.validation_set = first['training_set']  # every generation is also evaluated on held-out labels
    second, second_node = run_get_node(builder)
    return {'first': first, 'first_node': first_node, 'second': second, 'second_node': second_node}


def _pw_calculations(node):
    from aiida import orm

    return [
        n
        for n in node.called_descendants
        if isinstance(n, orm.CalcJobNode) and n.process_type == 'aiida.calculations:quantumespresso.pw'
    ]


def _reports(node):
    from aiida import orm

    return [log.message for log in orm.Log.collection.get_logs_for(node)]


def test_loop_outputs(runs, tmp_path):
    from aiida import orm

    from aiida_mscale.workflows.active_learning import group_label

    node, results = runs['first_node'], runs['first']
    assert node.exit_status in (0, 430), node.exit_message
    reports = _reports(node)
    print('\n'.join(reports))

    # GCMC really changed the Li count: at least three distinct x = N_Li / 8 visited
    coverage = results['coverage']
    x = coverage.get_array('x')
    visited = np.unique(np.round(x[np.isfinite(x)] * 8)) / 8
    print(f'x visited by GCMC: {visited.tolist()}; per run (iteration, mu, x_min, x_max):')
    for row in zip(*(coverage.get_array(n) for n in ('iteration', 'mu', 'x_min', 'x_max'))):
        print('   ', [round(float(v), 3) for v in row])
    assert len(visited) >= 3, visited
    assert set(coverage.get_array('iteration').tolist()) == {1, 2}
    # the lowest mu visits the smallest x, the highest mu the largest (on the same iteration)
    first = coverage.get_array('iteration') == 1
    mu, x_mean = coverage.get_array('mu')[first], coverage.get_array('x_mean')[first]
    assert x_mean[np.argmin(mu)] <= x_mean[np.argmax(mu)]

    curve = results['learning_curve']
    assert curve.get_array('iteration').tolist() == [1, 2]
    labels = curve.get_array('number_of_labels')
    assert labels[1] > labels[0]  # iteration 1 labelled new configurations
    assert curve.get_array('max_grade').shape == (2, 3)
    assert np.all(np.isfinite(curve.get_array('train_rmse_forces')))

    # every label descends from a PwCalculation
    training_set = results['training_set']
    assert len(training_set) == labels[1]
    sources = training_set.get_array('source_uuids').tolist()
    for uuid in sources:
        assert orm.load_node(uuid).process_type == 'aiida.calculations:quantumespresso.pw'
    # MaxVol selection capped at max_labels_per_iteration
    assert labels[1] - labels[0] <= 2
    # every generation's potential is kept, with its active set
    group = orm.load_group(group_label(node))
    potentials = {
        n.base.extras.get('active_learning')['iteration']: n
        for n in group.nodes
        if n.base.extras.get('active_learning')['role'] == 'potential'
    }
    assert sorted(potentials) == [1, 2]
    assert all(p.has_active_set for p in potentials.values())
    assert results['potential'].uuid == potentials[2].uuid
    assert any('iteration 1: 3 state points, max grade' in r and 'selected' in r for r in reports), reports

    # `aiida-mscale report` draws the learning curve, the max grade per state point and the coverage
    from PIL import Image

    from aiida_mscale.cli.report import plot_active_learning

    paths = plot_active_learning(node, tmp_path)
    assert [p.name for p in paths] == ['learning_curve.png', 'max_grade.png', 'coverage.png']
    for path in paths:  # what each figure draws from its arrays: tests/unit/test_plots.py
        with Image.open(path) as image:
            assert np.asarray(image.convert('L'), dtype=float).std() > 5  # something was drawn, not a blank canvas


def test_resume_relabels_nothing(runs):
    first, second = runs['first'], runs['second']
    second_node = runs['second_node']
    assert second_node.exit_status in (0, 430), second_node.exit_message
    print('\n'.join(_reports(second_node)))
    first_sources = first['training_set'].get_array('source_uuids').tolist()
    second_sources = second['training_set'].get_array('source_uuids').tolist()
    # the earlier labels are reused as they are, in order, and only the new ones were computed
    assert second_sources[: len(first_sources)] == first_sources
    new = second_sources[len(first_sources) :]
    computed = {n.uuid for n in _pw_calculations(second_node)}
    assert set(new) <= computed
    assert not computed & set(first_sources)
    assert len(computed) <= 2  # one labelling round (iteration 2's candidates), capped at 2
    assert 'label_initial' not in [link.link_label for link in second_node.base.links.get_outgoing().all()]
    # the resumed run trained generation 3 from generation 2's training set plus the new labels, and sampled
    # the same state points
    assert second['learning_curve'].get_array('iteration').tolist() == [3]
    # the validation column is the evaluation of generation 3 on `validation_set`, a calcfunction in the graph
    from aiida import orm

    evaluation = (
        orm.QueryBuilder()
        .append(orm.CalcFunctionNode, filters={'attributes.function_name': 'evaluate_potential'}, tag='f')
        .append(orm.WorkflowNode, with_outgoing='f', filters={'uuid': second_node.uuid})
        .append(orm.Dict, with_incoming='f', project='*')
        .all(flat=True)
    )
    assert len(evaluation) == 1
    rmse = evaluation[0]['validation']['forces']['rmse']
    assert second['learning_curve'].get_array('validation_rmse_forces')[0] == pytest.approx(rmse)
    np.testing.assert_array_equal(
        second['learning_curve'].get_array('state_points'), first['learning_curve'].get_array('state_points')
    )
