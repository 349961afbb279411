"""``MtpTrainBaseWorkChain``: an :class:`MtpTrainCalculation` with automatic restarts, as ``PwBaseWorkChain``.

Handlers (highest priority first):

==========  ===========================================  ============================================================
priority    child exit code                              action
==========  ===========================================  ============================================================
600         300 / 301 / 302 (missing output, script      abort with 300 ``ERROR_UNRECOVERABLE_FAILURE``: the input is
            error, unreadable potential)                 bad or the code is broken; a rerun gives the same
500         410 ``ERROR_FIT_DIVERGED``                   restart from the *initial* potential with another seed and
                                                         the stress weight lowered by ``stress_weight_factor``
400         120 ``ERROR_SCHEDULER_OUT_OF_WALLTIME``      warm start from the last potential the calculation returned
                                                         (if any), else rerun with ``walltime_factor`` x the walltime
==========  ===========================================  ============================================================
"""

from __future__ import annotations

import pathlib

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ProcessHandlerReport, process_handler
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin

from aiida_mscale.calculations.mtp_train import MtpTrainCalculation
from aiida_mscale.workflows.restart import MscaleRestartWorkChain

TRAIN_PLUGIN = 'mscale.mtp.train'


class MtpTrainBaseWorkChain(ProtocolMixin, MscaleRestartWorkChain):
    """Fit a Moment Tensor Potential, restarting on a diverged fit or a walltime cut (see the module docstring)."""

    _process_class = MtpTrainCalculation
    _namespace = 'mtp'
    _unrecoverable = 'The training failed in a way a restart cannot fix (missing output, script error or bad input).'
    _code_plugin = TRAIN_PLUGIN
    _code_needs = f'MTP training needs a `{TRAIN_PLUGIN}` code'

    defaults = AttributeDict(
        {
            'stress_weight_factor': 0.1,  # a diverged fit is retried with the stress weight times this
            'seed_increment': 1,
            'walltime_factor': 2.0,
        }
    )

    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        """The protocol file (fast / moderate / precise)."""
        return pathlib.Path(__file__).parent / 'protocols' / 'mtp_train_base.yaml'

    @classmethod
    def get_builder_from_protocol(
        cls, code, training_set, potential, protocol: str | None = None, overrides: dict | None = None, options=None
    ):
        """A builder fitting ``potential`` (template or previous fit) to ``training_set`` with a protocol.

        :param overrides: ``{'mtp': {'parameters': {...}}, 'max_iterations': n}`` over the protocol.
        :param options: ``metadata.options`` of the calculation.
        """
        from aiida_quantumespresso.workflows.protocols.utils import recursive_merge

        if isinstance(code, str):
            code = orm.load_code(code)
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.mtp.code = code
        builder.mtp.training_set = training_set
        builder.mtp.potential = potential
        builder.mtp.parameters = orm.Dict(recursive_merge({}, inputs['mtp']['parameters']))
        if options:
            builder.mtp.metadata.options = options
        builder.max_iterations = orm.Int(inputs['max_iterations'])
        return builder

    def setup(self):
        """Prepare ``ctx.inputs`` for the calculations; remember the initial potential for a reseeded restart."""
        super().setup()
        self.ctx.inputs.parameters = self.ctx.inputs.parameters.get_dict() if 'parameters' in self.ctx.inputs else {}
        self.ctx.initial_potential = self.ctx.inputs.potential

    # ----------------------------------------------------------------------------------------------- handlers
    @process_handler(
        priority=600,
        exit_codes=[
            MtpTrainCalculation.exit_codes.ERROR_MISSING_OUTPUT_FILES,
            MtpTrainCalculation.exit_codes.ERROR_TRAINING_FAILED,
            MtpTrainCalculation.exit_codes.ERROR_INVALID_POTENTIAL,
        ],
    )
    def handle_unrecoverable_failure(self, calculation):
        """Missing output, a script error (bad input) or an unreadable potential: abort."""
        return self.abort_unrecoverable(calculation)

    @process_handler(priority=500, exit_codes=MtpTrainCalculation.exit_codes.ERROR_FIT_DIVERGED)
    def handle_fit_diverged(self, calculation):
        """Diverged fit: restart from the initial potential with another seed and a lower stress weight."""
        parameters = self.ctx.inputs.parameters
        seed = int(parameters.get('seed', 42)) + self.defaults.seed_increment
        loss = dict(parameters.get('loss', {}))
        stress_weight = float(loss.get('stress_weight', 0.001)) * self.defaults.stress_weight_factor
        loss['stress_weight'] = stress_weight
        parameters['seed'] = seed
        parameters['loss'] = loss
        self.ctx.inputs.potential = self.ctx.initial_potential
        self.report_error_handled(
            calculation, f'restarting from the initial potential with seed {seed} and stress_weight {stress_weight:g}'
        )
        return ProcessHandlerReport(True)

    @process_handler(priority=400, exit_codes=MtpTrainCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME)
    def handle_out_of_walltime(self, calculation):
        """Out of walltime: warm start from the last potential written, else more walltime."""
        if 'potential' in calculation.outputs:
            self.ctx.inputs.potential = calculation.outputs.potential
            self.report_error_handled(
                calculation, f'warm start from the last potential <{calculation.outputs.potential.pk}>'
            )
            return ProcessHandlerReport(True)
        return self.rerun_with_more_walltime(calculation, 'no potential written: ')


__all__ = ['MtpTrainBaseWorkChain']
