"""MdProductionWorkChain with LAMMPS for real: a (T x x) grid feeding the transport analysis, a production run
restarted after a simulated walltime stop, and bad input refused before anything runs.

The potential is a tame MTP with random coefficients (aiida_mscale.lammps.testing.tame_potential) for a toy
Li/Co host on a simple-cubic lattice; at 30 kbar it is a dense, stable liquid-like solid, which is all the
machinery needs.
"""

import numpy as np
import pytest
from ase.build import bulk

PRESSURE = 30000.0  # bar: the tame toy potential is held together by pressure
SMALL = {
    'timestep': 0.001,
    'equilibration_steps': 300,
    'production_steps': 400,
    'thermo_every': 10,
    'dump_every': 20,
    'equilibration_dump_every': 50,
    'pressure': PRESSURE,
    'n_blocks': 4,
    'seed': 777,
}


def _potential():
    from aiida_mscale.data.mtp_potential import MtpPotentialData
    from aiida_mscale.lammps.testing import tame_potential

    return MtpPotentialData(tame_potential(level=8, species_count=2, max_dist=4.5, seed=3).to_text(), ['Li', 'Co'])


def _host():
    from aiida import orm

    atoms = bulk('Po', 'sc', a=2.8) * (3, 3, 3)
    atoms.symbols = [['Li', 'Co'][k % 2] for k in range(len(atoms))]  # 14 Li sites, 13 Co
    return orm.StructureData(ase=atoms)


def _builder(code, temperatures, fractions, parameters, **kwargs):
    from aiida import orm

    from aiida_mscale.workflows.md_production import MdProductionWorkChain

    builder = MdProductionWorkChain.get_builder()
    builder.code = code
    builder.potential = kwargs.pop('potential', None) or _potential()
    builder.host = kwargs.pop('host', None) or _host()
    builder.guest = orm.Str('Li')
    builder.temperatures = orm.List(temperatures)
    builder.guest_fractions = orm.List(fractions)
    builder.parameters = orm.Dict(parameters)
    builder.max_concurrent = orm.Int(2)
    for key, value in kwargs.items():
        builder[key] = value
    return builder


def test_grid_feeds_diffusivity_into_the_transport_analysis(lammps_code, tmp_path):
    from aiida.engine import run_get_node

    from aiida_mscale.analysis.state_points import block_average
    from aiida_mscale.workflows.transport import TransportAnalysisWorkChain

    parameters = {**SMALL, 'production_ensemble': 'npt', 'storage': {'species': ['Li'], 'float32': True}}
    results, node = run_get_node(_builder(lammps_code, [600.0, 900.0], [0.5, 1.0], parameters))
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    labels = sorted(results['trajectories'])
    assert len(labels) == 4
    for label in labels:
        averages = results['averages'][label].get_dict()
        assert averages['x'] == pytest.approx(averages['target_x'])  # 7/14 and 14/14 Li sites
        thermo = results['thermo'][label]
        # the averages are the block means of the production's own series (an independent recomputation)
        mean, error = block_average(thermo.get_array('vol'), 4)
        assert averages['volume'] == pytest.approx(mean) and averages['volume_error'] == pytest.approx(error)
        assert thermo.get_array('step')[-1] == 400
        trajectory = results['trajectories'][label]
        assert trajectory.base.attributes.get('elements') == ['Li'] and trajectory.number_steps == 21
        assert trajectory.number_atoms == round(14 * averages['x'])
        storage = results['storage'][label].get_dict()
        assert storage['frames'] == 21 and storage['stored_bytes'] < storage['raw_trajectory_bytes']
        print(f'{label}: stored {storage["stored_bytes"]} bytes, raw dump {storage["raw_trajectory_bytes"]} bytes')
    # the stored trajectories go into the transport analysis as they are: temperature and time from their creator
    builder = TransportAnalysisWorkChain.get_builder_from_protocol(
        dict(results['trajectories']),
        'Li',
        protocol='fast',
        overrides={'parameters': {'analyses': ['diffusivity'], 'n_blocks': 3}},
    )
    transport, tnode = run_get_node(builder)
    assert tnode.is_finished_ok, (tnode.exit_status, tnode.exit_message)
    table = {}
    for label in labels:
        entry = transport['diffusivity'][label].get_dict()
        table[label] = entry
        assert entry['temperature'] == pytest.approx(float(label[1:4]))
    print('\nD(T, x):', {k: v['species']['Li']['tracer']['D_cm2_s'] for k, v in table.items()})
    # the D(T, x) heat map of `aiida-mscale report` finds the transport analysis through the trajectories
    from aiida_mscale.plotting.thermodynamics import plot_md_production

    (path,) = plot_md_production(node, tmp_path)
    assert path.name.endswith('diffusivity_map.png') and path.stat().st_size > 5000


def test_restart_after_a_walltime_stop_continues_the_same_trajectory(lammps_code, tmp_path):
    """NPT production of one state point, uninterrupted and cut at step 250 of 400 then continued from the binary
    restart file of step 240 (restart files every dump_every = 20 steps): the thermo after the restart is the
    uninterrupted run's to LAMMPS's reproducibility (thermostat and barostat state kept)."""
    from aiida.engine import run_get_node
    from test_lammps_mtp import cutting_code

    parameters = {**SMALL, 'production_ensemble': 'npt'}
    reference, node = run_get_node(_builder(lammps_code, [600.0], [1.0], parameters))
    assert node.is_finished_ok, node.exit_message
    code = cutting_code(lammps_code, tmp_path, steps=400, cut=250)
    restarted, rnode = run_get_node(_builder(code, [600.0], [1.0], parameters))
    assert rnode.is_finished_ok, rnode.exit_message
    (label,) = reference['thermo']
    assert restarted['storage'][label]['segments'] == 2  # the production really was cut and restarted
    logs = [entry.message for entry in orm_logs(rnode)]
    assert any('continuing exactly from the restart file of step 240' in message for message in logs), logs
    a, b = reference['thermo'][label], restarted['thermo'][label]
    np.testing.assert_array_equal(a.get_array('step'), b.get_array('step'))
    np.testing.assert_allclose(b.get_array('time'), a.get_array('time'), rtol=1e-12)
    before = a.get_array('step') < 240
    # before the restart: the same run (serial LAMMPS, same seed) bit for bit
    np.testing.assert_array_equal(a.get_array('pe')[before], b.get_array('pe')[before])
    # after: continued from the restart file, the same numbers to the last digits (measured ~1e-14 relative)
    for name in ('pe', 'etotal', 'temp', 'press', 'vol'):
        deviation = np.abs(b.get_array(name)[~before] / a.get_array(name)[~before] - 1).max()
        print(f'\n{name}: largest relative deviation after the restart {deviation:.2e}')
        np.testing.assert_allclose(b.get_array(name)[~before], a.get_array(name)[~before], rtol=1e-11, atol=0)
    assert np.ptp(a.get_array('vol')[~before]) > 0.1  # the barostat moved the cell after the restart
    # the stored trajectory is the uninterrupted one (frames of the first segment before step 240, then the second)
    from aiida_mscale.workflows.transport.reader import read_trajectory

    ours = read_trajectory(restarted['trajectories'][label]).positions
    theirs = read_trajectory(reference['trajectories'][label]).positions
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)  # 7 significant digits stored (float32)


def orm_logs(node):
    """The log messages of ``node`` and of every process it called, however deep."""
    from aiida import orm

    nodes = [node, *node.called_descendants]
    return [entry for n in nodes for entry in orm.Log.collection.get_logs_for(n)]


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        ({'temperatures': []}, 'state-point grid is empty'),
        ({'temperatures': [-300.0]}, 'is not a temperature'),
        ({'guest_fractions': [1.5]}, 'not a fraction'),
        ({'host': 'no_guest'}, 'the host has no Li sites'),
        ({'parameters': {'production_steps': -5}}, 'parameters.production_steps'),
        ({'chemical_potentials': [-1.0, -2.0]}, 'one number'),
    ],
)
def test_bad_input_is_refused(lammps_code, change, message):
    from aiida import orm
    from aiida.engine import run_get_node

    temperatures = change.get('temperatures', [600.0])
    fractions = change.get('guest_fractions', [0.5])
    kwargs = {}
    if change.get('host') == 'no_guest':
        atoms = bulk('Po', 'sc', a=2.8) * (2, 2, 2)
        atoms.symbols = ['Co'] * len(atoms)
        kwargs['host'] = orm.StructureData(ase=atoms)
    if 'chemical_potentials' in change:
        kwargs['chemical_potentials'] = orm.List(change['chemical_potentials'])
    builder = _builder(lammps_code, temperatures, fractions, change.get('parameters', {}), **kwargs)
    with pytest.raises(ValueError, match=message):
        run_get_node(builder)


def test_gcmc_composition_and_a_production_that_leaves_the_domain(lammps_code):
    """x set by GCMC at a chemical potential that favours the guest, and a production run graded against an active
    set of near-ideal cells: the dense hot state leaves it at once, which is reported, stops the state point with
    414 and keeps the extrapolative configurations as an output."""
    from aiida import orm
    from aiida.engine import run_get_node
    from test_lammps_mtp import _potential

    potential = _potential(['Li', 'Co'], with_active_set=True, seed=3)
    parameters = {
        **SMALL,
        'gcmc_steps': 200,
        'production_steps': 200,
        'gcmc': {'every': 10, 'exchanges': 10},
        'grading': {'enabled': True, 'every': 10, 'save_threshold': 1.5, 'break_threshold': 10.0},
    }
    builder = _builder(
        lammps_code, [900.0], [0.5], parameters, potential=potential, chemical_potentials=orm.List([10.0])
    )
    results, node = run_get_node(builder)
    assert node.exit_status == 421, (node.exit_status, node.exit_message)
    (point,) = [c for c in node.called if c.process_label == 'MdStatePointWorkChain']
    assert point.exit_status == 414 and 'break threshold' in point.exit_message
    stages = {link.link_label: link.node for link in point.base.links.get_outgoing(node_class=orm.WorkflowNode).all()}
    atoms = stages['gcmc'].outputs.thermo.get_array('atoms')
    print(f'\nGCMC atom counts: {atoms.tolist()}')
    assert atoms[0] == 13 + 7 and 13 + 7 < atoms[-1] <= 13 + 14  # guests inserted, at most one per site
    logs = [entry.message for entry in orm.Log.collection.get_logs_for(point)]
    assert any("left the potential's domain" in message for message in logs), logs
    (label,) = results['extrapolative_configurations']
    assert len(results['extrapolative_configurations'][label]) >= 1
