"""``TransportAnalysisBaseWorkChain``: a :class:`TransportAnalysisCalculation` with automatic restarts.

The analyses are deterministic (seeded Gaussian mixtures and random forests on fixed arrays) and write their outputs
only at the end, so a refusal or a crash repeats on a rerun; only a run the scheduler cut is worth repeating.

Handlers (highest priority first):

==========  ===========================================  ============================================================
priority    child exit code                              action
==========  ===========================================  ============================================================
600         300 / 301 / 310 (missing or unreadable       abort with 300 ``ERROR_UNRECOVERABLE_FAILURE``: the input is
            output, input refused by the analysis)       bad or the code is broken; a rerun gives the same
400         120 ``ERROR_SCHEDULER_OUT_OF_WALLTIME``      rerun with ``walltime_factor`` x the walltime (nothing of
                                                         the cut run is reusable; ``MscaleRestartWorkChain``'s)
==========  ===========================================  ============================================================

Any other failure is rerun once by ``BaseRestartWorkChain`` (a second one in a row ends with its 402).
"""

from __future__ import annotations

from aiida.common import AttributeDict
from aiida.engine import process_handler

from aiida_mscale.calculations.transport_analysis import TransportAnalysisCalculation
from aiida_mscale.workflows.restart import MscaleRestartWorkChain

ANALYSIS_PLUGIN = 'mscale.transport.analysis'


class TransportAnalysisBaseWorkChain(MscaleRestartWorkChain):
    """Run one heavy transport analysis, rerunning a run cut by the walltime (see the module docstring)."""

    _process_class = TransportAnalysisCalculation
    _namespace = 'analysis'
    _unrecoverable = (
        'The analysis failed in a way a restart cannot fix (missing or unreadable output, or input it refused).'
    )

    _code_plugin = ANALYSIS_PLUGIN
    _code_needs = f'the transport analysis needs a `{ANALYSIS_PLUGIN}` code'

    defaults = AttributeDict({'walltime_factor': 2.0})  # MscaleRestartWorkChain.handle_out_of_walltime

    @process_handler(
        priority=600,
        exit_codes=[
            TransportAnalysisCalculation.exit_codes.ERROR_MISSING_OUTPUT_FILES,
            TransportAnalysisCalculation.exit_codes.ERROR_UNREADABLE_OUTPUT,
            TransportAnalysisCalculation.exit_codes.ERROR_ANALYSIS_REFUSED,
        ],
    )
    def handle_unrecoverable_failure(self, calculation):
        """Missing or unreadable output, or input the analysis refused: abort."""
        return self.abort_unrecoverable(calculation)


__all__ = ['TransportAnalysisBaseWorkChain']
