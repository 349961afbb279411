"""``MtpSelectBaseWorkChain``: an :class:`MtpSelectCalculation` with automatic restarts, as ``PwBaseWorkChain``.

The selection is deterministic (a seeded MaxVol over fixed inputs) and writes its outputs only at the end, so
a failure of the script or of its input repeats on a rerun; only a run the scheduler cut is worth repeating.

Handlers (highest priority first):

==========  ===========================================  ============================================================
priority    child exit code                              action
==========  ===========================================  ============================================================
600         300 / 301 / 302 / 310 (missing output,       abort with 300 ``ERROR_UNRECOVERABLE_FAILURE``: the input is
            script error, unusable active set,           bad or the code is broken; a rerun gives the same
            non-finite grades)
400         120 ``ERROR_SCHEDULER_OUT_OF_WALLTIME``      rerun with ``walltime_factor`` x the walltime (nothing of
                                                         the cut run is reusable; ``MscaleRestartWorkChain``'s)
==========  ===========================================  ============================================================

Any other failure is rerun once by ``BaseRestartWorkChain`` (a second one in a row ends with its 402).
"""

from __future__ import annotations

from aiida.common import AttributeDict
from aiida.engine import process_handler

from aiida_mscale.calculations.mtp_select import MtpSelectCalculation
from aiida_mscale.workflows.restart import MscaleRestartWorkChain

SELECT_PLUGIN = 'mscale.mtp.select'


class MtpSelectBaseWorkChain(MscaleRestartWorkChain):
    """Build the active set, grade and select, rerunning a run cut by the walltime (see the module docstring)."""

    _process_class = MtpSelectCalculation
    _namespace = 'mtp'
    _unrecoverable = (
        'The selection failed in a way a restart cannot fix (missing output, script error, unusable active set or '
        'non-finite grades).'
    )

    _code_plugin = SELECT_PLUGIN
    _code_needs = f'MaxVol selection needs a `{SELECT_PLUGIN}` code'

    defaults = AttributeDict({'walltime_factor': 2.0})  # MscaleRestartWorkChain.handle_out_of_walltime

    # ----------------------------------------------------------------------------------------------- handlers
    @process_handler(
        priority=600,
        exit_codes=[
            MtpSelectCalculation.exit_codes.ERROR_MISSING_OUTPUT_FILES,
            MtpSelectCalculation.exit_codes.ERROR_SELECTION_FAILED,
            MtpSelectCalculation.exit_codes.ERROR_INVALID_ACTIVE_SET,
            MtpSelectCalculation.exit_codes.ERROR_NON_FINITE_GRADES,
        ],
    )
    def handle_unrecoverable_failure(self, calculation):
        """Missing output, a script error, an unusable active set or non-finite grades: abort."""
        return self.abort_unrecoverable(calculation)


__all__ = ['MtpSelectBaseWorkChain']
