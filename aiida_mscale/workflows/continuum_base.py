"""``ContinuumBaseWorkChain``: a :class:`ContinuumCalculation` with automatic restarts, as ``PwBaseWorkChain``.

Handlers (highest priority first):

==========  ==========================================  ==============================================================
priority    child exit code                             action
==========  ==========================================  ==============================================================
600         300 / 301 / 302 (no output, internal        abort with 300 ``ERROR_UNRECOVERABLE_FAILURE``: the input is
            error, input refused by the solver)         bad or the solver is broken; a rerun gives the same
500         410 ``ERROR_NOT_CONVERGED``,                a smaller time step: every step-size limit of the model
            420 ``ERROR_UNPHYSICAL_STATE``              (``dx_surface_max``, ``dx_mean_max``, ``dx_max``, ``dtau_max``,
                                                        ``dsoc_max``, ``dtau_initial``, ``dsoc_initial``) times
                                                        ``time_step_factor``, the give-up step ``dtau_min`` times
                                                        ``dtau_min_factor``; at most ``max_time_step_reductions`` times
400         410 ``ERROR_NOT_CONVERGED``                 once the time step is exhausted: a finer mesh (every cell count
                                                        of the model times ``mesh_factor``); at most
                                                        ``max_mesh_refinements`` times, then abort with 411
                                                        ``ERROR_NOT_CONVERGED``
399         420 ``ERROR_UNPHYSICAL_STATE``              once the time step is exhausted: abort with 421
                                                        ``ERROR_UNPHYSICAL_STATE`` (a finer mesh does not cure an
                                                        overshooting step; the physics or the window is wrong)
==========  ==========================================  ==============================================================

Exit codes follow aiida-core's bands: the calculation's recoverable failures are 410 / 420, this work chain's own
(the same failure once the restarts are spent) 411 / 421, distinct from the children's and from
``BaseRestartWorkChain``'s 401 / 402.

Why the time step first: the solvers' non-convergence (exit 3 -> 410) means the adaptive step was halved below
``dtau_min`` (Newton diverged or the accuracy limits were never met), and their unphysical state (exit 4 -> 420) is,
for a state that is otherwise fine, a step that overshot (e.g. a node next to a saturating surface pushed past
c_max in one step). Both are cured by shorter steps at a fraction of the cost of a finer mesh; the mesh comes next,
for a front or a boundary layer the mesh cannot resolve.

Which keys are scaled per model (absent keys start from the model's own ``DEFAULTS``):

- ``particle_diffusion``: ``time_stepping`` {dx_surface_max, dx_mean_max, dtau_initial, dtau_min}, ``mesh.n_cells``
- ``phase_field``: ``time_stepping`` {dx_max, dtau_max, dtau_initial, dtau_min}, ``mesh.n_cells``
- ``porous_electrode``: ``time_stepping`` {dsoc_max, dsoc_initial, dtau_min}, ``mesh`` {n_x, n_r}
- ``polycrystal`` (steady: no time step): ``mesh.cells_per_side``
"""

from __future__ import annotations

import copy
import pathlib

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ProcessHandlerReport, calcfunction, process_handler
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin, recursive_merge

from aiida_mscale.calculations.continuum import ContinuumCalculation
from aiida_mscale.workflows.restart import MscaleRestartWorkChain

CONTINUUM_PLUGIN = 'mscale.continuum'
#: step-size limits (scaled by ``time_step_factor``) and give-up steps (scaled by ``dtau_min_factor``) per model
TIME_STEP_KEYS = {
    'particle_diffusion': (('dx_surface_max', 'dx_mean_max', 'dtau_initial'), ('dtau_min',)),
    'phase_field': (('dx_max', 'dtau_max', 'dtau_initial'), ('dtau_min',)),
    'porous_electrode': (('dsoc_max', 'dsoc_initial'), ('dtau_min',)),
    'polycrystal': ((), ()),
}
#: integer cell counts of the mesh per model (scaled by ``mesh_factor``)
MESH_KEYS = {
    'particle_diffusion': ('n_cells',),
    'phase_field': ('n_cells',),
    'porous_electrode': ('n_x', 'n_r'),
    'polycrystal': ('cells_per_side',),
}


def _model_defaults(model: str) -> dict:
    from importlib import import_module

    return copy.deepcopy(getattr(import_module(f'aiida_mscale.continuum.{model}'), 'DEFAULTS', {}))


def smaller_time_step(model: str, parameters: dict, factor: float, dtau_min_factor: float) -> tuple[dict, dict]:
    """``parameters`` with the step-size limits of ``model`` times ``factor`` and ``dtau_min`` times
    ``dtau_min_factor``; also the changed values (``{}`` when the model has no time step)."""
    limits, floors = TIME_STEP_KEYS.get(model, ((), ()))
    if not limits and not floors:
        return parameters, {}
    defaults = _model_defaults(model).get('time_stepping', {})
    stepping = {**defaults, **parameters.get('time_stepping', {})}
    changed = {}
    for keys, scale in ((limits, factor), (floors, dtau_min_factor)):
        for key in keys:
            if stepping.get(key) is not None:
                changed[key] = float(stepping[key]) * scale
    return {**parameters, 'time_stepping': {**parameters.get('time_stepping', {}), **changed}}, changed


def finer_mesh(model: str, parameters: dict, factor: int) -> tuple[dict, dict]:
    """``parameters`` with every cell count of ``model``'s mesh times ``factor``; also the changed values.

    A count that is neither given nor defaulted (``None``: the solver picks it, e.g. the phase-field mesh from the
    interface width) cannot be refined here: it is left alone and not reported as changed.
    """
    defaults = _model_defaults(model).get('mesh', {})
    mesh = {**defaults, **parameters.get('mesh', {})}
    changed = {key: int(mesh[key]) * int(factor) for key in MESH_KEYS.get(model, ()) if mesh.get(key) is not None}
    return {**parameters, 'mesh': {**parameters.get('mesh', {}), **changed}}, changed


@calcfunction
def restart_parameters(parameters: orm.Dict, changes: orm.Dict) -> orm.Dict:
    """``parameters`` with ``changes`` (``{'time_stepping': {...}}`` or ``{'mesh': {...}}``) merged in: the
    parameters of a restart, linked to those of the failed run (and through them to whatever made those)."""
    return orm.Dict(recursive_merge(parameters.get_dict(), changes.get_dict()))


class ContinuumBaseWorkChain(ProtocolMixin, MscaleRestartWorkChain):
    """Solve one continuum model, restarting a non-converged solve with a smaller time step, then a finer mesh."""

    _process_class = ContinuumCalculation
    _namespace = 'continuum'
    _unrecoverable = 'The solver failed in a way a restart cannot fix (missing output, internal error or bad input).'
    _code_plugin = CONTINUUM_PLUGIN
    _code_needs = f'a continuum model needs a `{CONTINUUM_PLUGIN}` code'

    defaults = AttributeDict(
        {
            'time_step_factor': 0.5,  # step-size limits times this on each time-step reduction
            'dtau_min_factor': 0.01,  # the step at which the solver gives up, times this
            'max_time_step_reductions': 2,
            'mesh_factor': 2,  # cell counts times this on each mesh refinement
            'max_mesh_refinements': 1,
        }
    )

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.exit_code(
            411,
            'ERROR_NOT_CONVERGED',
            message='The solve did not converge after {time_steps} time-step reductions and {meshes} mesh refinements: '
            '{message}',
        )
        spec.exit_code(
            421,
            'ERROR_UNPHYSICAL_STATE',
            message='The solution still reached an unphysical state after {time_steps} time-step reductions: {message}',
        )

    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        """The protocol file (fast / moderate / precise): restart budget only."""
        return pathlib.Path(__file__).parent / 'protocols' / 'continuum_base.yaml'

    @classmethod
    def get_builder_from_protocol(
        cls,
        code,
        model: str,
        parameters: dict,
        diffusivity=None,
        ocv=None,
        protocol: str | None = None,
        overrides: dict | None = None,
        options=None,
    ):
        """A builder solving ``model`` with ``parameters`` (the solver's keys; see the model's docstring).

        :param overrides: ``{'max_iterations': n, 'continuum': {'write_xdmf': True, ...}}`` over the protocol.
        :param options: ``metadata.options`` of the calculation.
        """
        if isinstance(code, str):
            code = orm.load_code(code)
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.continuum.code = code
        builder.continuum.model = orm.Str(model)
        builder.continuum.parameters = orm.Dict(recursive_merge({}, parameters))
        if diffusivity is not None:
            builder.continuum.diffusivity = diffusivity
        if ocv is not None:
            builder.continuum.ocv = ocv
        for key in ('write_xdmf', 'allow_non_monotonic_ocv'):
            if key in inputs.get('continuum', {}):
                builder.continuum[key] = orm.Bool(inputs['continuum'][key])
        for key, value in (options or {}).items():
            builder.continuum.metadata.options[key] = value
        builder.max_iterations = orm.Int(inputs['max_iterations'])
        return builder

    def setup(self):
        """Prepare ``ctx.inputs`` for the calculations. ``parameters`` stays a node: the first run gets the input
        itself, a restart gets the output of :func:`restart_parameters`, so the provenance is never cut."""
        super().setup()
        self.ctx.model = self.ctx.inputs.model.value
        self.ctx.time_step_reductions = 0
        self.ctx.mesh_refinements = 0

    def _restart_with(self, changes: dict) -> None:
        """The next run's parameters: the current ones with ``changes``, made by a calcfunction."""
        self.ctx.inputs.parameters = restart_parameters(
            self.ctx.inputs.parameters, orm.Dict(changes), metadata={'call_link_label': 'restart_parameters'}
        )

    # ----------------------------------------------------------------------------------------------- handlers
    @process_handler(
        priority=600,
        exit_codes=[
            ContinuumCalculation.exit_codes.ERROR_MISSING_OUTPUT_FILES,
            ContinuumCalculation.exit_codes.ERROR_INTERNAL,
            ContinuumCalculation.exit_codes.ERROR_INVALID_INPUT,
        ],
    )
    def handle_unrecoverable_failure(self, calculation):
        """Missing output, an internal error or input the solver refused: a rerun gives the same, abort."""
        return self.abort_unrecoverable(calculation)

    @process_handler(
        priority=500,
        exit_codes=[
            ContinuumCalculation.exit_codes.ERROR_NOT_CONVERGED,
            ContinuumCalculation.exit_codes.ERROR_UNPHYSICAL_STATE,
        ],
    )
    def handle_smaller_time_step(self, calculation):
        """Not converged or overshooting: rerun with every step-size limit smaller (up to the reduction budget)."""
        if self.ctx.time_step_reductions >= self.defaults.max_time_step_reductions:
            return None  # exhausted: the mesh handler (410) or the abort (420) decides
        _, changed = smaller_time_step(
            self.ctx.model,
            self.ctx.inputs.parameters.get_dict(),
            self.defaults.time_step_factor,
            self.defaults.dtau_min_factor,
        )
        if not changed:
            return None  # a steady model: no time step to reduce
        self._restart_with({'time_stepping': changed})
        self.ctx.time_step_reductions += 1
        shown = ', '.join(f'{key} {value:.3g}' for key, value in changed.items())
        self.report_error_handled(
            calculation, f'time-step reduction {self.ctx.time_step_reductions}: restarting with {shown}'
        )
        return ProcessHandlerReport(True)

    @process_handler(priority=400, exit_codes=ContinuumCalculation.exit_codes.ERROR_NOT_CONVERGED)
    def handle_finer_mesh(self, calculation):
        """Still not converged at the smallest time step: rerun on a finer mesh (up to the refinement budget)."""
        _, changed = finer_mesh(self.ctx.model, self.ctx.inputs.parameters.get_dict(), self.defaults.mesh_factor)
        if self.ctx.mesh_refinements >= self.defaults.max_mesh_refinements or not changed:
            self.report_error_handled(calculation, 'time step and mesh refinements exhausted, aborting')
            return ProcessHandlerReport(
                True,
                self.exit_codes.ERROR_NOT_CONVERGED.format(
                    time_steps=self.ctx.time_step_reductions,
                    meshes=self.ctx.mesh_refinements,
                    message=calculation.exit_message,
                ),
            )
        self._restart_with({'mesh': changed})
        self.ctx.mesh_refinements += 1
        shown = ', '.join(f'{key} {value}' for key, value in changed.items())
        self.report_error_handled(calculation, f'mesh refinement {self.ctx.mesh_refinements}: restarting with {shown}')
        return ProcessHandlerReport(True)

    @process_handler(priority=399, exit_codes=ContinuumCalculation.exit_codes.ERROR_UNPHYSICAL_STATE)
    def handle_unphysical_state(self, calculation):
        """Still unphysical at the smallest time step: abort (the physics or the window is wrong, not the step)."""
        self.report_error_handled(calculation, 'time-step reductions exhausted, aborting')
        return ProcessHandlerReport(
            True,
            self.exit_codes.ERROR_UNPHYSICAL_STATE.format(
                time_steps=self.ctx.time_step_reductions, message=calculation.exit_message
            ),
        )


__all__ = ['ContinuumBaseWorkChain', 'finer_mesh', 'restart_parameters', 'smaller_time_step']
