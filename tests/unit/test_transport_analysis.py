"""``TransportAnalysisCalculation`` without running it: the files it writes and its parser on stored outputs.

The stored outputs (``tests/fixtures/mscale.transport.analysis/``) are those of ``mscale-transport-analysis`` run on
the files this CalcJob wrote for ``calc_inputs('mscale.transport.analysis')``; see ``tests/fixtures/README.md``.
"""

import json
import pathlib

import numpy as np
import pytest

ENTRY_POINT = 'mscale.transport.analysis'
FIXTURES = pathlib.Path(__file__).parent.parent / 'fixtures' / ENTRY_POINT


def exit_code(name):
    from aiida.plugins import CalculationFactory

    return CalculationFactory(ENTRY_POINT).exit_codes[name].status


def test_trajectory_files_hold_the_arrays_of_the_nodes(generate_calc_job, calc_inputs):
    """One ``trajectory_NNN.npz`` per label (sorted), byte-exact arrays of the nodes; labels only in input.json."""
    from aiida_mscale.analysis.pooled import load_trajectory

    inputs = calc_inputs(ENTRY_POINT)
    folder, _ = generate_calc_job(ENTRY_POINT, inputs)
    script_input = json.loads((folder / 'input.json').read_text())
    assert script_input['trajectories'] == {'cold': 'trajectory_000.npz', 'hot': 'trajectory_001.npz'}
    assert script_input['mobile_species'] == ['Na']
    for label, filename in script_input['trajectories'].items():
        node = inputs['trajectories'][label]
        data = load_trajectory(folder / filename)
        np.testing.assert_array_equal(data.positions, node.get_positions())
        np.testing.assert_array_equal(data.cells, node.get_cells())
        np.testing.assert_array_equal(data.times, node.get_array('times'))
        assert data.species == list(node.symbols) and data.unwrapped is False


def test_ok(parse, calc_inputs):
    outputs, status, message = parse(ENTRY_POINT, 'ok', calc_inputs(ENTRY_POINT))
    assert status == 0, message
    stored = json.loads((FIXTURES / 'ok' / 'result.json').read_text())
    assert outputs['result'].get_dict() == stored['result']
    arrays = outputs['arrays']
    with np.load(FIXTURES / 'ok' / 'arrays.npz') as npz:
        assert sorted(arrays.get_arraynames()) == sorted(npz.files)
        for name in npz.files:
            np.testing.assert_array_equal(arrays.get_array(name), npz[name])
    assert arrays.base.attributes.get('descriptors') == stored['result']['descriptors']
    assert arrays.base.attributes.get('mode_labels') == [m['label'] for m in stored['result']['modes']]
    # 2 trajectories x 18 Na x 2 windows of 10 frames
    assert arrays.get_array('X').shape == (72, len(stored['result']['descriptors']))


@pytest.mark.parametrize(
    'case, exit_status, name, text',
    [
        ('missing_output', None, 'ERROR_MISSING_OUTPUT_FILES', 'result.json, arrays.npz'),
        ('refused', None, 'ERROR_ANALYSIS_REFUSED', "species ['Kr'] absent from the trajectory"),
        ('result_garbled', None, 'ERROR_UNREADABLE_OUTPUT', 'JSONDecodeError'),
        ('arrays_garbled', None, 'ERROR_UNREADABLE_OUTPUT', 'BadZipFile'),
        # the scheduler reported the walltime: its exit code, not the missing or half-written output it caused
        ('missing_output', 120, 'ERROR_SCHEDULER_OUT_OF_WALLTIME', 'walltime'),
        ('arrays_garbled', 120, 'ERROR_SCHEDULER_OUT_OF_WALLTIME', 'walltime'),
    ],
)
def test_errors(parse, calc_inputs, case, exit_status, name, text):
    outputs, status, message = parse(ENTRY_POINT, case, calc_inputs(ENTRY_POINT), exit_status=exit_status)
    assert status == exit_code(name), message
    assert text in message
    assert not outputs


def test_the_job_and_the_work_chain_declare_their_shared_inputs_once(aiida_profile):
    """``trajectories``, ``mobile_species``, ``parameters``, ``timestep``: one declaration, the same checks."""
    from aiida import orm
    from aiida.plugins import CalculationFactory

    from aiida_mscale.workflows.transport import TransportAnalysisWorkChain

    job, chain = (process.spec().inputs for process in (CalculationFactory(ENTRY_POINT), TransportAnalysisWorkChain))
    for name in ('trajectories', 'mobile_species', 'parameters', 'timestep'):
        assert (job[name].help, job[name].validator) == (chain[name].help, chain[name].validator), name
    assert chain['mobile_species'].required and not job['mobile_species'].required  # the job needs it for `modes`
    for inputs in (job, chain):
        assert inputs['timestep'].validate(orm.Float(-0.5)).message == '`timestep` must be positive [ps], got -0.5'
        assert 'no trajectories given' in inputs['trajectories'].validate({}).message
        assert 'is a Int, not a LammpsTrajectoryData' in inputs['trajectories'].validate({'a': orm.Int(1)}).message
        assert (
            "unknown analysis parameters ['fit_windw']"
            in inputs['parameters'].validate(orm.Dict({'fit_windw': [0.1, 0.5]})).message
        )
        assert inputs['timestep'].validate(orm.Float(0.002)) is None


# ------------------------------------------------------------------------------ TransportAnalysisBaseWorkChain
@pytest.fixture
def restart_workchain(unit_computer, calc_inputs):
    """A ``TransportAnalysisBaseWorkChain`` set up on the inputs of ``calc_inputs`` (nothing is run)."""
    from aiida import orm
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager

    from aiida_mscale.workflows.transport.base import TransportAnalysisBaseWorkChain

    code = orm.InstalledCode(
        computer=unit_computer, filepath_executable='/bin/true', default_calc_job_plugin=ENTRY_POINT
    ).store()
    inputs = {**calc_inputs(ENTRY_POINT), 'code': code}
    inputs['metadata'] = {'options': {'resources': {'num_machines': 1}, 'max_wallclock_seconds': 100}}
    process = instantiate_process(get_manager().get_runner(), TransportAnalysisBaseWorkChain, analysis=inputs)
    process.setup()
    return process


def _inspect(process, exit_status):
    """``inspect_process`` on a finished child CalcJobNode with ``exit_status``."""
    from aiida import orm
    from plumpy.process_states import ProcessState

    child = orm.CalcJobNode(
        computer=orm.load_computer('unit-localhost'), process_type=f'aiida.calculations:{ENTRY_POINT}'
    )
    child.set_process_state(ProcessState.FINISHED)
    child.set_exit_status(exit_status)
    child.set_process_label('TransportAnalysisCalculation')
    child.store()
    process.ctx.children = [child]
    process.ctx.iteration = 1
    return process.inspect_process()


@pytest.mark.parametrize('name', ['ERROR_MISSING_OUTPUT_FILES', 'ERROR_UNREADABLE_OUTPUT', 'ERROR_ANALYSIS_REFUSED'])
def test_restart_aborts_what_a_rerun_repeats(restart_workchain, name):
    result = _inspect(restart_workchain, exit_code(name))
    assert result.status == restart_workchain.exit_codes.ERROR_UNRECOVERABLE_FAILURE.status == 300


def test_restart_reruns_out_of_walltime_with_more_walltime(restart_workchain):
    before = dict(restart_workchain.ctx.inputs)
    result = _inspect(restart_workchain, exit_code('ERROR_SCHEDULER_OUT_OF_WALLTIME'))
    assert result is None or result.status == 0
    assert restart_workchain.ctx.inputs.metadata['options']['max_wallclock_seconds'] == 200
    assert restart_workchain.ctx.inputs.parameters.uuid == before['parameters'].uuid
