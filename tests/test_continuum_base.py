"""ContinuumBaseWorkChain: its handlers on fake children (no binary), and one real restart with dolfinx.

The unit tests give the work chain a child ``CalcJobNode`` that finished with a chosen exit code, call
``inspect_process`` and assert on the returned exit code and on ``ctx.inputs`` (the next calculation's inputs).
"""

import numpy as np
import pytest

CALC = 'aiida.calculations:mscale.continuum'
PARAMETERS = {
    'particle': {'radius': 1e-6, 'c_max': 2.28e4, 'density': 3.6},
    'x_initial': 0.05,
    'x_final': 0.95,
    'c_rates': [5.0],
    'cutoff_voltage': 3.0,
    'temperature': 298.15,
    'kinetics': {'i0': 1.0, 'alpha': 0.5},
    'mesh': {'n_cells': 20},
    'time_stepping': {'dx_surface_max': 0.02, 'dx_mean_max': 0.01},
}


def _tables():
    from aiida import orm

    diffusivity = orm.ArrayData()
    diffusivity.set_array('x', np.array([0.0, 1.0]))
    diffusivity.set_array('D', np.array([1e-15, 1e-15]))
    ocv = orm.ArrayData()  # a solid solution: falls with x everywhere
    ocv.set_array('x', np.linspace(0.0, 1.0, 21))
    ocv.set_array('V', 3.6 - 0.3 * np.linspace(0.0, 1.0, 21))
    return diffusivity, ocv


def _fake_child(exit_status, message=''):
    from aiida import orm
    from plumpy.process_states import ProcessState

    node = orm.CalcJobNode(computer=orm.load_computer('localhost'), process_type=CALC)
    node.set_process_state(ProcessState.FINISHED)
    node.set_exit_status(exit_status)
    node.set_exit_message(message)
    node.set_process_label('ContinuumCalculation')
    return node.store()


@pytest.fixture
def workchain(fenics_code):
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager

    from aiida_mscale.workflows.continuum_base import ContinuumBaseWorkChain

    def make(model='particle_diffusion', parameters=None):
        diffusivity, ocv = _tables()
        builder = ContinuumBaseWorkChain.get_builder_from_protocol(
            fenics_code, model, PARAMETERS if parameters is None else parameters, diffusivity, ocv
        )
        process = instantiate_process(get_manager().get_runner(), ContinuumBaseWorkChain, **builder._inputs(True))
        process.setup()
        return process

    return make


def _inspect(process, exit_status, message='x'):
    """The exit code ``inspect_process`` returns, ``None`` when a handler restarts (ExitCode 0)."""
    process.ctx.children = [_fake_child(exit_status, message)]
    process.ctx.iteration = 1
    result = process.inspect_process()
    return None if result is None or result.status == 0 else result


@pytest.mark.parametrize('exit_status', [300, 301, 302])
def test_unrecoverable_failure_aborts(workchain, exit_status):
    process = workchain()
    result = _inspect(process, exit_status)
    assert result.status == 300
    assert process.ctx.inputs.parameters.get_dict() == PARAMETERS  # nothing changed


def test_not_converged_reduces_the_time_step_then_refines_the_mesh_then_aborts(workchain):
    process = workchain()
    stepping = PARAMETERS['time_stepping']
    # 1st and 2nd failure: every step limit halved, the give-up step times 0.01 (from the model's default 1e-12)
    for k in (1, 2):
        assert _inspect(process, 410) is None  # handled: restart
        changed = process.ctx.inputs.parameters.get_dict()['time_stepping']
        assert changed['dx_surface_max'] == pytest.approx(stepping['dx_surface_max'] * 0.5**k)
        assert changed['dx_mean_max'] == pytest.approx(stepping['dx_mean_max'] * 0.5**k)
        assert changed['dtau_initial'] == pytest.approx(1e-7 * 0.5**k)  # particle_diffusion's DEFAULTS
        assert changed['dtau_min'] == pytest.approx(1e-12 * 0.01**k)
        assert process.ctx.inputs.parameters.get_dict()['mesh'] == {'n_cells': 20}
    # 3rd: the time step is exhausted, the mesh is refined (the reduced time step is kept)
    assert _inspect(process, 410) is None
    assert process.ctx.inputs.parameters.get_dict()['mesh'] == {'n_cells': 40}
    assert process.ctx.inputs.parameters.get_dict()['time_stepping']['dx_surface_max'] == pytest.approx(0.005)
    assert process.ctx.inputs.parameters.get_dict()['particle'] == PARAMETERS['particle']  # the material never changes
    # 4th: both exhausted
    result = _inspect(process, 410)
    assert result.status == 411 and '2 time-step reductions and 1 mesh refinements' in result.message


def test_unphysical_state_reduces_the_time_step_then_aborts(workchain):
    process = workchain()
    assert _inspect(process, 420) is None
    assert _inspect(process, 420) is None
    assert process.ctx.inputs.parameters.get_dict()['time_stepping']['dx_surface_max'] == pytest.approx(0.005)
    result = _inspect(process, 420, 'concentration left [0, c_max]')
    assert result.status == 421 and 'concentration left [0, c_max]' in result.message
    assert process.ctx.inputs.parameters.get_dict()['mesh'] == {'n_cells': 20}  # no mesh refinement for an overshoot


def test_out_of_walltime_is_left_to_base_restart_work_chain(workchain):
    """No ``walltime_factor`` in its defaults: the shared walltime rerun of ``MscaleRestartWorkChain`` stays out, so a
    cut (120) ends as any failure no handler knows (110, a scheduler error) and the walltime is not touched."""
    unhandled = _inspect(workchain(), 110)
    process = workchain()
    process.ctx.inputs.metadata.options.max_wallclock_seconds = 300
    result = _inspect(process, 120)
    assert (result and result.status) == (unhandled and unhandled.status)
    assert process.ctx.inputs.metadata.options.max_wallclock_seconds == 300


def test_model_specific_keys():
    from aiida_mscale.workflows.continuum_base import smaller_time_step

    parameters, changed = smaller_time_step('phase_field', {'time_stepping': {'dx_max': 0.05}}, 0.5, 0.01)
    stepping = parameters['time_stepping']
    assert stepping['dx_max'] == pytest.approx(0.025) and stepping['dtau_max'] == pytest.approx(0.01)  # default 0.02
    assert set(changed) == {'dx_max', 'dtau_max', 'dtau_initial', 'dtau_min'}
    parameters, changed = smaller_time_step('porous_electrode', {}, 0.5, 0.01)
    assert changed == pytest.approx({'dsoc_max': 0.005, 'dsoc_initial': 5e-5, 'dtau_min': 1e-12})


def test_steady_model_goes_straight_to_the_mesh():
    from aiida_mscale.workflows.continuum_base import finer_mesh, smaller_time_step

    parameters = {'mesh': {'cells_per_side': 64, 'subsamples': 3}}
    assert smaller_time_step('polycrystal', parameters, 0.5, 0.01) == (parameters, {})
    refined, changed = finer_mesh('polycrystal', parameters, 2)
    assert changed == {'cells_per_side': 128} and refined['mesh'] == {'cells_per_side': 128, 'subsamples': 3}
    # the porous electrode refines both directions; absent counts come from the model's defaults (30 x 20)
    assert finer_mesh('porous_electrode', {}, 2)[1] == {'n_x': 60, 'n_r': 40}


def test_code_of_another_plugin_is_refused(pw_code):
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.continuum_base import ContinuumBaseWorkChain

    diffusivity, ocv = _tables()
    builder = ContinuumBaseWorkChain.get_builder_from_protocol(
        pw_code, 'particle_diffusion', PARAMETERS, diffusivity, ocv
    )
    with pytest.raises(ValueError, match=r'is for plugin `quantumespresso.pw`, but a continuum model needs'):
        run_get_node(builder)


def test_first_attempt_does_not_converge_and_the_restart_does(fenics_code):
    """A give-up step dtau_min too large for 5C (the mean-content limit wants a shorter step than dtau_min): the
    solver stops with its non-convergence code; the restart with dtau_min x 0.01 delivers the window."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.continuum_base import ContinuumBaseWorkChain

    diffusivity, ocv = _tables()
    parameters = {**PARAMETERS, 'time_stepping': {**PARAMETERS['time_stepping'], 'dtau_min': 0.01}}
    builder = ContinuumBaseWorkChain.get_builder_from_protocol(
        fenics_code, 'particle_diffusion', parameters, diffusivity, ocv, options={'max_wallclock_seconds': 300}
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    children = sorted(node.base.links.get_outgoing(node_class=orm.CalcJobNode).all_nodes(), key=lambda n: n.ctime)
    assert [c.exit_status for c in children] == [410, 0]
    assert 'time step fell below dtau_min' in children[0].exit_message
    second = children[1].inputs.parameters.get_dict()['time_stepping']
    # the restart's parameters are made from the first run's by a calcfunction: the provenance is not cut
    assert children[1].inputs.parameters.creator.inputs.parameters.uuid == children[0].inputs.parameters.uuid
    assert second['dtau_min'] == pytest.approx(1e-4) and second['dx_surface_max'] == pytest.approx(0.01)
    # the restart's result is a real solve: 5C delivers less than the window but the mass balance is exact
    summary = results['results'].get_dict()
    assert summary['runs'][0]['mass_balance_error'] < 1e-8
    theoretical = 96485.33212331001 * 2.28e4 * 0.9 / 3.6e6 / 3.6  # mAh/g of the window 0.05 -> 0.95
    assert 0 < summary['rate_capability']['capacity'][0] <= theoretical
