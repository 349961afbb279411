"""The heavy transport analyses as a job (``TransportAnalysisCalculation`` run by ``mscale-transport-analysis`` on a
computer) give exactly the nodes of the in-process calcfunctions, and a refusal inside the job reaches the work chain.

Trajectory: Na in a simple-cubic Cl host (a = 3 A, 27 host atoms), two kinds of Na — nine that rattle on their sites
and nine that random-walk through the box — so there are two diffusion populations and two local environments.
"""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

#: small statistical settings: this test compares two paths, it does not converge the statistics
PARAMETERS = {
    'analyses': ['modes', 'environments'],
    'descriptor_window': 10,
    'descriptor_frame_stride': 5,
    'max_modes': 3,
    'importance_splits': 3,
    'importance_estimators': 20,
    'importance_repeats': 2,
    'environment_frame_stride': 10,
    'environment_train_frames': 3,
    'max_classes': 3,
}


def _trajectory(seed, n_frames=40):
    from aiida import orm

    rng = np.random.default_rng(seed)
    a, n = 3.0, 3
    host = np.array([[i, j, k] for i in range(n) for j in range(n) for k in range(n)], dtype=float) * a
    sites = host[:9] + a / 2
    trapped = sites[None] + rng.normal(0, 0.1, (n_frames, 9, 3))
    walkers = np.cumsum(rng.normal(0, 0.4, (n_frames, 9, 3)), axis=0) + rng.uniform(0, n * a, (1, 9, 3))
    frames = np.concatenate([np.broadcast_to(host, (n_frames, 27, 3)), trapped, walkers], axis=1)
    node = orm.TrajectoryData()
    cells = np.tile(np.eye(3) * n * a, (n_frames, 1, 1))
    node.set_trajectory(['Cl'] * 27 + ['Na'] * 18, frames, cells=cells, times=np.arange(n_frames) * 0.2)
    return node.store()


@pytest.fixture
def analysis_code(aiida_localhost):
    from aiida import orm

    executable = shutil.which('mscale-transport-analysis', path=str(Path(sys.executable).parent))
    assert executable, 'mscale-transport-analysis is not installed next to this Python: reinstall the package'
    return orm.InstalledCode(
        label='transport-analysis',
        computer=aiida_localhost,
        filepath_executable=executable,
        default_calc_job_plugin='mscale.transport.analysis',
    ).store()


def _run(trajectories, parameters, code=None):
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.transport import TransportAnalysisWorkChain

    builder = TransportAnalysisWorkChain.get_builder_from_protocol(
        trajectories, 'Na', overrides={'parameters': parameters}
    )
    if code is not None:
        options = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 600}
        builder.heavy = {'analysis': {'code': code, 'metadata': {'options': options}}}
    return run_get_node(builder)


def test_job_gives_the_nodes_of_the_calcfunctions(analysis_code):
    from aiida import orm

    trajectories = {'t1': _trajectory(1), 't2': _trajectory(2)}
    in_process, node_a = _run(trajectories, PARAMETERS)
    as_job, node_b = _run(trajectories, PARAMETERS, analysis_code)
    assert node_a.is_finished_ok, (node_a.exit_status, node_a.exit_message)
    assert node_b.is_finished_ok, (node_b.exit_status, node_b.exit_message)

    for name in ('modes', 'environments'):
        assert in_process[name].get_dict() == as_job[name].get_dict(), name
    for name in ('modes_arrays', 'environment_fractions'):
        a, b = in_process[name], as_job[name]
        assert a.base.attributes.all == b.base.attributes.all, name
        for array in a.get_arraynames():
            np.testing.assert_array_equal(a.get_array(array), b.get_array(array), err_msg=f'{name}.{array}')
            assert a.get_array(array).dtype == b.get_array(array).dtype
    # the analysis is not trivial: the rattlers and the walkers are two modes, Na on sites and Cl two or more classes
    assert as_job['modes']['n_modes'] == 2, as_job['modes']['merge_history']
    assert as_job['modes_arrays'].get_array('X').shape[0] == 2 * 18 * 4  # 2 trajectories, 18 Na, 4 windows
    assert as_job['environments']['n_classes'] >= 2

    # provenance: the job path's outputs come from CalcJobs under restart work chains, with the trajectories as inputs
    for name in ('modes', 'environment_fractions'):
        creator = as_job[name].creator
        assert isinstance(creator, orm.CalcJobNode) and creator.process_type.endswith('mscale.transport.analysis')
        assert creator.caller.caller.uuid == node_b.uuid
        assert {n.uuid for n in creator.inputs.trajectories.values()} == {t.uuid for t in trajectories.values()}
        assert isinstance(in_process[name].creator, orm.CalcFunctionNode)


def test_refusal_inside_the_job_is_the_workflow_exit_code(analysis_code):
    """An environment species absent from the trajectories: the script refuses (310), the restart work chain
    aborts (300) and the transport work chain ends with 404 and the script's message."""
    parameters = {**PARAMETERS, 'analyses': ['environments'], 'environment_species': 'Kr'}
    results, node = _run({'t1': _trajectory(1)}, parameters, analysis_code)
    assert node.exit_status == 404, (node.exit_status, node.exit_message)
    restart = node.called[0]
    assert restart.exit_status == 300
    job = restart.called[0]
    assert job.exit_status == 310
    assert "species ['Kr'] absent from the trajectory" in job.exit_message
    assert 'environments' not in results
