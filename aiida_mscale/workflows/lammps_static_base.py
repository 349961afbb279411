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

from aiida.engine import ProcessHandlerReport, process_handler

from aiida_mscale.calculations.lammps_static import LammpsMtpStaticCalculation
from aiida_mscale.workflows.restart import MscaleRestartWorkChain


class LammpsMtpStaticBaseWorkChain(MscaleRestartWorkChain):
    """Single point or minimisation in LAMMPS, a non-converged minimisation continued from where it stopped."""

    _process_class = LammpsMtpStaticCalculation
    _namespace = 'lammps'
    _unrecoverable = 'The static LAMMPS run failed in a way a restart cannot fix (see the child calculation).'

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
        return self.abort_unrecoverable(calculation)

    @process_handler(priority=400, exit_codes=LammpsMtpStaticCalculation.exit_codes.ERROR_MINIMIZATION_NOT_CONVERGED)
    def handle_not_converged(self, calculation):
        """The minimiser ran out of iterations: continue from its last configuration."""
        self.ctx.inputs.structure = calculation.outputs.structure
        self.report_error_handled(
            calculation, f'restarting the minimisation from the last configuration <{calculation.outputs.structure.pk}>'
        )
        return ProcessHandlerReport(True)


__all__ = ['LammpsMtpStaticBaseWorkChain']
