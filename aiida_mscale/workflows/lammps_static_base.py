"""``LammpsMtpStaticBaseWorkChain``: a :class:`LammpsMtpStaticCalculation` with automatic restarts.

Handlers (highest priority first):

==========  ==============================================  =========================================================
priority    child exit code                                 action
==========  ==============================================  =========================================================
600         302 / 304 / 305 (no results, plugin, error)     abort with 300 ``ERROR_UNRECOVERABLE_FAILURE``
400         401 ``ERROR_MINIMIZATION_NOT_CONVERGED``        restart the minimisation from its last configuration
                                                            (the child's ``structure`` output)
==========  ==============================================  =========================================================
"""

from __future__ import annotations

from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, process_handler, while_

from aiida_mscale.calculations.lammps_static import LammpsMtpStaticCalculation


class LammpsMtpStaticBaseWorkChain(BaseRestartWorkChain):
    """Single point or minimisation in LAMMPS, a non-converged minimisation continued from where it stopped."""

    _process_class = LammpsMtpStaticCalculation

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(LammpsMtpStaticCalculation, namespace='lammps')
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(
                cls.run_process,
                cls.inspect_process,
            ),
            cls.results,
        )
        spec.expose_outputs(LammpsMtpStaticCalculation)
        spec.exit_code(
            300,
            'ERROR_UNRECOVERABLE_FAILURE',
            message='The static LAMMPS run failed in a way a restart cannot fix (see the child calculation).',
        )

    def setup(self):
        """Prepare ``ctx.inputs`` for the calculations."""
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(LammpsMtpStaticCalculation, 'lammps'))

    def report_error_handled(self, calculation, action):
        """Report the failure of ``calculation`` and the ``action`` taken."""
        self.report(
            f'{calculation.process_label}<{calculation.pk}> failed with exit status {calculation.exit_status}: '
            f'{calculation.exit_message}'
        )
        self.report(f'Action taken: {action}')

    @process_handler(
        priority=600,
        exit_codes=[
            LammpsMtpStaticCalculation.exit_codes.ERROR_MISSING_RESULTS,
            LammpsMtpStaticCalculation.exit_codes.ERROR_PLUGIN_NOT_LOADED,
            LammpsMtpStaticCalculation.exit_codes.ERROR_LAMMPS,
        ],
    )
    def handle_unrecoverable_failure(self, calculation):
        """No results, no pair_style mtp or a LAMMPS error: a rerun gives the same. Abort."""
        self.report_error_handled(calculation, 'unrecoverable failure, aborting')
        return ProcessHandlerReport(True, self.exit_codes.ERROR_UNRECOVERABLE_FAILURE)

    @process_handler(priority=400, exit_codes=LammpsMtpStaticCalculation.exit_codes.ERROR_MINIMIZATION_NOT_CONVERGED)
    def handle_not_converged(self, calculation):
        """The minimiser ran out of iterations: continue from its last configuration."""
        self.ctx.inputs.structure = calculation.outputs.structure
        self.report_error_handled(
            calculation, f'restarting the minimisation from the last configuration <{calculation.outputs.structure.pk}>'
        )
        return ProcessHandlerReport(True)


__all__ = ['LammpsMtpStaticBaseWorkChain']
