"""``PseudoGenerationBaseWorkChain``: a :class:`PseudoGenerationCalculation` (ld1.x) with automatic restarts.

ld1.x is deterministic: the same generation parameters give the same dataset, so a failure of the generation
itself is not fixed by running again. What a restart can fix is the job around it. Handlers (highest priority
first):

==========  ==============================================  ==========================================================
priority    child exit code                                 action
==========  ==============================================  ==========================================================
600         300 / 301 (missing or unreadable output),       abort with 300 ``ERROR_UNRECOVERABLE_FAILURE``: the
            310 ``ERROR_GENERATION_FAILED``                 parameters or the code are bad; a rerun fails the same way
500         311 ``ERROR_TEST_FAILED``, 312                  the dataset exists but ld1.x's test of it failed, or it
            ``ERROR_GHOST_STATE``                           has a ghost state: attach the calculation's outputs
                                                            (``pseudo``, ``transferability``) and stop with 310
                                                            ``ERROR_DATASET_FAILED_TESTS``, so that a caller can keep
                                                            and mark the dataset
400         120 ``ERROR_SCHEDULER_OUT_OF_WALLTIME``         rerun with ``walltime_factor`` x the walltime
                                                            (``MscaleRestartWorkChain``'s handler)
==========  ==============================================  ==========================================================

Any other failure (e.g. a scheduler error) stops with ``BaseRestartWorkChain``'s 402 (its input
``on_unhandled_failure`` defaults to ``abort``; ``restart_once`` reruns it once).
"""

from __future__ import annotations

from aiida.common import AttributeDict
from aiida.engine import ProcessHandlerReport, process_handler

from aiida_mscale.calculations.pseudo_generation import PseudoGenerationCalculation
from aiida_mscale.workflows.restart import MscaleRestartWorkChain

GENERATE_PLUGIN = 'mscale.pseudo.generate'


class PseudoGenerationBaseWorkChain(MscaleRestartWorkChain):
    """Generate one ld1.x PAW dataset, restarting on a walltime cut (see the module docstring)."""

    _process_class = PseudoGenerationCalculation
    _namespace = 'generate'
    _unrecoverable = 'The generation failed in a way a restart cannot fix (missing output or ld1.x failure).'

    _code_plugin = GENERATE_PLUGIN
    _code_needs = f'PAW generation needs a `{GENERATE_PLUGIN}` code (ld1.x)'

    defaults = AttributeDict({'walltime_factor': 2.0})  # MscaleRestartWorkChain.handle_out_of_walltime

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.exit_code(
            310,
            'ERROR_DATASET_FAILED_TESTS',
            message='ld1.x generated the dataset, but it failed a test configuration or has a ghost state: '
            '{message} (the outputs are attached)',
        )

    # ----------------------------------------------------------------------------------------------- handlers
    @process_handler(
        priority=600,
        exit_codes=[
            PseudoGenerationCalculation.exit_codes.ERROR_MISSING_OUTPUT_FILES,
            PseudoGenerationCalculation.exit_codes.ERROR_UNREADABLE_OUTPUT,
            PseudoGenerationCalculation.exit_codes.ERROR_GENERATION_FAILED,
        ],
    )
    def handle_unrecoverable_failure(self, calculation):
        """Missing or unreadable output, or ld1.x reporting a failed generation: abort."""
        return self.abort_unrecoverable(calculation)

    @process_handler(
        priority=500,
        exit_codes=[
            PseudoGenerationCalculation.exit_codes.ERROR_TEST_FAILED,
            PseudoGenerationCalculation.exit_codes.ERROR_GHOST_STATE,
        ],
    )
    def handle_dataset_failed_tests(self, calculation):
        """A dataset that fails ld1.x's tests: a rerun gives the same one, so attach it and stop (310)."""
        self.report_error_handled(calculation, 'a rerun gives the same dataset: attaching its outputs and stopping')
        for label in ('pseudo', 'transferability'):
            if label in calculation.outputs:
                self.out(label, calculation.outputs[label])
        return ProcessHandlerReport(
            True, self.exit_codes.ERROR_DATASET_FAILED_TESTS.format(message=calculation.exit_message or '')
        )


__all__ = ['PseudoGenerationBaseWorkChain']
