"""What the suite's restart work chains share (the pattern of aiida-quantumespresso's ``PwBaseWorkChain``).

A subclass names its CalcJob (``_process_class``), the namespace its inputs are exposed in (``_namespace``) and
what an unrecoverable failure means for it (``_unrecoverable``); it adds its own ``@process_handler`` methods,
ordered by priority, and may extend :meth:`setup`. Every handler reports the failure and the action taken through
:meth:`report_error_handled`; a handler of an unrecoverable exit code returns :meth:`abort_unrecoverable`.

What every chain would otherwise copy lives here:

* the plugin check: a subclass that sets ``_code_plugin`` (the CalcJob entry point its code must run) and
  ``_code_needs`` (what for, in :func:`~aiida_mscale.workflows.codes.wrong_plugin`'s words) refuses a code of another
  plugin before anything runs; a subclass with more checks extends :meth:`validate_inputs`, the one validator;
* the walltime rerun: a subclass whose ``defaults`` hold ``walltime_factor`` reruns a calculation the scheduler cut
  (120 ``ERROR_SCHEDULER_OUT_OF_WALLTIME``, priority 400) with ``walltime_factor`` times the walltime
  (:meth:`handle_out_of_walltime`); a subclass that can do better (a warm start) overrides that handler and may fall
  back on :meth:`rerun_with_more_walltime`. Without ``walltime_factor`` the cut is left to ``BaseRestartWorkChain``.
"""

from __future__ import annotations

from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, CalcJob, ProcessHandlerReport, process_handler, while_

from aiida_mscale.workflows.codes import wrong_plugin


class MscaleRestartWorkChain(BaseRestartWorkChain):
    """BaseRestartWorkChain around one of the suite's CalcJobs: inputs under ``_namespace``, exit code 300."""

    _namespace: str = ''
    _unrecoverable: str = 'The calculation failed in a way a restart cannot fix.'
    _code_plugin: str = ''  # the entry point the code of ``_namespace`` must run ('' : not checked)
    _code_needs: str = ''  # e.g. "MaxVol selection needs a `mscale.mtp.select` code"

    defaults = AttributeDict()  # 'walltime_factor': the walltime of a rerun after a cut, times that of the cut run

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
        spec.inputs.validator = cls.validate_inputs

    @classmethod
    def validate_inputs(cls, inputs, ctx):
        """The validator of the inputs: the plugin check. A subclass with checks of its own extends this method
        (calling ``super()``) instead of assigning ``spec.inputs.validator``, which would drop the plugin check."""
        return cls.validate_code(inputs, ctx)

    @classmethod
    def validate_code(cls, inputs, _):
        """Refuse a code of another plugin than ``_code_plugin`` before anything runs (nothing when it is unset)."""
        if not cls._code_plugin:
            return None
        code = inputs.get(cls._namespace, {}).get('code')
        return wrong_plugin(code, cls._code_plugin, cls._code_needs)

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

    def rerun_with_more_walltime(self, calculation, note: str = '') -> ProcessHandlerReport:
        """Rerun with ``defaults.walltime_factor`` times the walltime (s) of ``calculation``, when one was set.

        :param note: what the report says before the action, e.g. ``'no potential written: '``.
        """
        options = self.ctx.inputs.setdefault('metadata', {}).setdefault('options', {})
        walltime = options.get('max_wallclock_seconds')
        if walltime is None:
            walltime = calculation.base.attributes.get('max_wallclock_seconds', None)
        if walltime:
            options['max_wallclock_seconds'] = int(walltime * self.defaults.walltime_factor)
            action = f'rerunning with max_wallclock_seconds {options["max_wallclock_seconds"]}'
        else:
            action = 'rerunning (no walltime was set)'
        self.report_error_handled(calculation, note + action)
        return ProcessHandlerReport(True)

    @process_handler(priority=400, exit_codes=CalcJob.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME)
    def handle_out_of_walltime(self, calculation):
        """Out of walltime: rerun with ``walltime_factor`` times the walltime (only if ``defaults`` has one)."""
        if 'walltime_factor' not in self.defaults:
            return None
        return self.rerun_with_more_walltime(calculation)
