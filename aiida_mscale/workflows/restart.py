"""What the suite's restart work chains share (the pattern of aiida-quantumespresso's ``PwBaseWorkChain``).

A subclass names its CalcJob (``_process_class``), the namespace its inputs are exposed in (``_namespace``) and
what an unrecoverable failure means for it (``_unrecoverable``); it adds its own ``@process_handler`` methods,
ordered by priority, and may extend :meth:`setup`. Every handler reports the failure and the action taken through
:meth:`report_error_handled`; a handler of an unrecoverable exit code returns :meth:`abort_unrecoverable`.
"""

from __future__ import annotations

from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, while_


class MscaleRestartWorkChain(BaseRestartWorkChain):
    """BaseRestartWorkChain around one of the suite's CalcJobs: inputs under ``_namespace``, exit code 300."""

    _namespace: str = ''
    _unrecoverable: str = 'The calculation failed in a way a restart cannot fix.'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(cls._process_class, namespace=cls._namespace)
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(
                cls.run_process,
                cls.inspect_process,
            ),
            cls.results,
        )
        spec.expose_outputs(cls._process_class)
        spec.exit_code(300, 'ERROR_UNRECOVERABLE_FAILURE', message=cls._unrecoverable)

    def setup(self):
        """``ctx.inputs``: the exposed inputs of the calculation, which the handlers change between runs."""
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(self._process_class, self._namespace))

    def report_error_handled(self, calculation, action: str) -> None:
        """Report the failure of ``calculation`` and the ``action`` taken."""
        self.report(
            f'{calculation.process_label}<{calculation.pk}> failed with exit status {calculation.exit_status}: '
            f'{calculation.exit_message}'
        )
        self.report(f'Action taken: {action}')

    def abort_unrecoverable(self, calculation) -> ProcessHandlerReport:
        """Stop with ``ERROR_UNRECOVERABLE_FAILURE``: a rerun would fail the same way."""
        self.report_error_handled(calculation, 'unrecoverable failure, aborting')
        return ProcessHandlerReport(True, self.exit_codes.ERROR_UNRECOVERABLE_FAILURE)
