"""MultiscaleWorkChain end to end on Li_{2-x}O (the active-learning test's host), with real pw.x, motep, LAMMPS and
dolfinx: DFT labels -> one active-learning iteration -> MD at 2 T x 2 x -> D(x) -> hull, OCV(x) -> electrode with an
uncertainty ensemble. Then the same chain entered at the electrode with the first run's tables.

Independent checks: the D(x) table against the transport stage's Arrhenius extrapolations, the OCV table against
the lattice-gas formula on the thermodynamics stage's voltage steps, the guest's E0 against a direct fit of its
labels, and the provenance: every table descends from PwCalculations.
"""

import numpy as np
import pytest
from ase.build import bulk

from tests.test_active_learning import OVERRIDES as AL_OVERRIDES

KB_EV = 8.617333262e-5  # eV/K (CODATA 2018), written out: the code under test takes it from scipy.constants
OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 600}
CELL = {
    'particle': {'radius': 1e-6, 'c_max': 5.0e4, 'density': 2.0},
    'kinetics': {'i0': 1.0, 'alpha': 0.5},
    'temperature': 300.0,
    'x_initial': 0.05,
    'x_final': 0.95,
    'c_rates': [1.0, 10.0],
    'cutoff_voltage': -10.0,
}
OVERRIDES = {
    'guest_fractions': [0.5, 0.75],
    'temperatures': [600.0, 900.0],
    # the active-learning test's first run, as it is: with caching on, its pw.x, motep and LAMMPS calculations are
    # reused when tests/test_active_learning.py ran first in the session (they are recomputed otherwise)
    'active_learning': {**AL_OVERRIDES, 'max_iterations': 2},
    'reference': {'pw_base': {'kpoints_distance': 0.4}},
    'md_production': {
        'parameters': {
            'equilibration_steps': 500,
            'production_steps': 3000,
            'dump_every': 20,
            'equilibration_dump_every': 100,
            'grading': {'enabled': False},
        },
        'max_concurrent': 4,  # every state point at once
    },
    'thermodynamics': {'parameters': {'end_members': False, 'relax_cells': False}, 'orderings': 1},
    'electrode': {
        'models': ['particle_diffusion'],
        'cell': CELL,
        'uncertainty': {'ensemble_size': 3, 'seed': 7},
    },
}


def _host():
    from aiida import orm

    return orm.StructureData(ase=bulk('OLi2', 'fluorite', a=4.61, cubic=True))


@pytest.fixture(scope='module')
def codes(pw_code, mtp_train_code, mtp_select_code, lammps_code, fenics_code):
    return {
        'pw': pw_code,
        'mtp_train': mtp_train_code,
        'mtp_select': mtp_select_code,
        'lammps': lammps_code,
        'continuum': fenics_code,
    }


@pytest.fixture(scope='module')
def chain(codes):
    from aiida.engine import run_get_node
    from aiida.manage.caching import enable_caching

    from aiida_mscale.workflows.multiscale import MultiscaleWorkChain

    builder = MultiscaleWorkChain.get_builder_from_protocol(
        codes, _host(), 'Li', protocol='fast', overrides=OVERRIDES, options=OPTIONS
    )
    with enable_caching():
        results, node = run_get_node(builder)
    return results, node


def _called(node, label):
    from aiida.common.links import LinkType

    return [t.node for t in node.base.links.get_outgoing(link_type=LinkType.CALL_WORK).all() if t.link_label == label]


def test_chain_finishes_with_every_stage(chain):
    results, node = chain
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    for label in ('reference', 'active_learning', 'md_production', 'thermodynamics', 'electrode'):
        assert len(_called(node, label)) == 1, label
    assert len(_called(node, 'transport_x_0')) == 1 and len(_called(node, 'transport_x_1')) == 1
    for name in ('potential', 'diffusivity', 'ocv', 'average_voltage', 'rate_capability', 'rate_capability_band'):
        assert name in results, name


def test_guest_reference_is_the_minimum_of_its_labels(chain):
    """E0 from the Birch-Murnaghan fit lies at or below every labelled energy, within the fit's residual."""
    results, node = chain
    reference = results['guest_reference_energy'].get_dict()
    labels = _called(node, 'reference')[0].outputs.training_set.to_ase()
    energies = [atoms.get_potential_energy() / len(atoms) for atoms in labels]
    assert len(energies) == 5
    assert reference['energy'] <= min(energies) + 3 * reference['residual'] + 1e-6
    assert reference['energy'] > min(energies) - 0.05  # a shallow minimum: the strains bracket V0
    assert np.allclose(sorted(reference['energies']), sorted(energies))


def test_diffusivity_table_is_the_arrhenius_extrapolation(chain):
    results, _ = chain
    table = results['diffusivity']
    expected = []
    for key in sorted(results['arrhenius']):
        entry = results['arrhenius'][key]['species']['Li']['extrapolation']
        assert entry['temperature'] == 300.0
        expected.append((entry['value'] * 1e-4, entry['value'] * 1e-4 * entry['ln_err']))
    assert np.allclose(table.get_array('D'), [e[0] for e in expected], rtol=1e-12)
    assert np.allclose(table.get_array('D_sigma'), [e[1] for e in expected], rtol=1e-12)
    assert np.all(table.get_array('D') > 0)
    # x_host 0.5, 0.75 on the hull window [0.5, 0.75]: state of charge 0 and 1
    assert np.allclose(table.get_array('x_host'), [0.5, 0.75])
    assert np.allclose(table.get_array('x'), [0.0, 1.0])


def test_ocv_table_is_the_lattice_gas_on_the_hull_steps(chain):
    results, node = chain
    thermo = _called(node, 'thermodynamics')[0]
    steps = thermo.outputs.voltage_steps['steps']
    assert len(steps) == 1  # two fractions, one step
    ocv = results['ocv']
    y = ocv.get_array('x')
    expected = steps[0]['voltage'] - KB_EV * 300.0 * np.log(y / (1 - y))
    assert np.allclose(ocv.get_array('V'), expected, atol=1e-9)
    assert np.allclose(ocv.get_array('V_sigma'), steps[0]['voltage_error'])
    assert np.all(np.diff(ocv.get_array('V')) < 0)
    assert results['average_voltage'].value == pytest.approx(steps[0]['voltage'])


def test_every_table_descends_from_pw_calculations(chain):
    from aiida import orm

    results, _ = chain
    for name in ('diffusivity', 'ocv'):
        query = orm.QueryBuilder()
        query.append(orm.Node, filters={'id': results[name].pk}, tag='table')
        query.append(
            orm.CalcJobNode,
            with_descendants='table',
            filters={'process_type': 'aiida.calculations:quantumespresso.pw'},
            project='id',
        )
        assert query.count() >= 5, name
    # the OCV also descends from the guest's own DFT labels (the voltage's mu_guest)
    reference = results['guest_reference_energy']
    assert reference.pk in {n.pk for n in results['ocv'].base.links.get_incoming().all_nodes()} or any(
        reference.pk == n.pk for n in _ancestors(results['ocv'])
    )


def _ancestors(node):
    from aiida import orm

    query = orm.QueryBuilder()
    query.append(orm.Node, filters={'id': node.pk}, tag='n')
    query.append(orm.Dict, with_descendants='n', project='*')
    return [row[0] for row in query.all()]


def test_summary_carries_the_band(chain):
    results, _ = chain
    summary = results['summary'].get_dict()
    assert summary['ensemble_size'] == 3
    assert summary['average_voltage_V'] == pytest.approx(results['average_voltage'].value)
    for rate in ('1C', '10C'):
        lower, upper = summary['rate_capability'][rate]['band_95']
        assert lower <= upper
    # the faster rate delivers less (diffusion-limited particle)
    assert summary['rate_capability']['10C']['capacity'] <= summary['rate_capability']['1C']['capacity'] + 1e-9


def test_entering_at_the_electrode_reproduces_the_electrode_stage(chain, codes):
    """Given potential, D(x) and OCV(x), only the electrode runs, and its curves equal the first run's."""
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.multiscale import MultiscaleWorkChain

    results, _ = chain
    builder = MultiscaleWorkChain.get_builder_from_protocol(
        codes,
        _host(),
        'Li',
        protocol='fast',
        overrides={'electrode': OVERRIDES['electrode']},
        options=OPTIONS,
        potential=results['potential'],
        diffusivity=results['diffusivity'],
        ocv=results['ocv'],
    )
    second, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert [t.link_label for t in node.base.links.get_outgoing().all() if t.link_label in ('active_learning',)] == []
    assert np.array_equal(
        second['rate_capability'].get_array('capacity'), results['rate_capability'].get_array('capacity')
    )
    assert np.array_equal(
        second['rate_capability_band'].get_array('capacity_draws'),
        results['rate_capability_band'].get_array('capacity_draws'),
    )


def test_report_draws_the_provenance_summary_with_dft_counts(chain, tmp_path):
    """The summary picture names every stage with its own pw.x count; the counts add up to the run's total."""
    from aiida import orm

    from aiida_mscale.plotting.multiscale import plot_multiscale, provenance_summary

    _, node = chain
    source = provenance_summary(node).source
    pw_total = (
        orm.QueryBuilder()
        .append(orm.WorkflowNode, filters={'id': node.pk}, tag='run')
        .append(
            orm.CalcJobNode, with_ancestors='run', filters={'process_type': 'aiida.calculations:quantumespresso.pw'}
        )
        .count()
    )
    assert f'{pw_total} pw.x calculations in all' in source
    reference = _called(node, 'reference')[0]
    assert f'DftLabelingWorkChain<{reference.pk}>\nok; 5 pw.x' in source  # the five strains of the guest crystal
    for stage in ('ActiveLearningWorkChain', 'MdProductionWorkChain', 'ThermodynamicsWorkChain', 'ElectrodeWorkChain'):
        assert stage in source
    assert 'data_diffusivity -> stage_electrode' in source and 'data_ocv -> stage_electrode' in source
    paths = plot_multiscale(node, tmp_path)
    names = {p.name for p in paths}
    assert f'provenance_summary_{node.pk}.png' in names and f'handover_tables_{node.pk}.png' in names
    assert any(p.parent.name == 'electrode' for p in paths)  # the stages' own plots, in their folders
    assert all(p.stat().st_size > 1000 for p in paths)
