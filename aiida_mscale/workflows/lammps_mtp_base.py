"""``LammpsMtpBaseWorkChain``: a :class:`LammpsMtpCalculation` with automatic restarts, as ``PwBaseWorkChain``.

Handlers (highest priority first):

==========  ==============================================  =========================================================
priority    child exit code                                 action
==========  ==============================================  =========================================================
700         250 ``STOPPED_BY_EXTRAPOLATION_BREAK``          expected outcome, not a failure: the work chain finishes
                                                            with exit 0 and the child's outputs (its extrapolative
                                                            configurations are what active learning wants)
600         303 ``ERROR_MISSING_THERMO`` / 304 plugin       abort with 300 ``ERROR_UNRECOVERABLE_FAILURE``
400         120 ``ERROR_SCHEDULER_OUT_OF_WALLTIME`` /       restart from the last dumped frame (calcfunction
            400 ``ERROR_OUT_OF_WALLTIME``                   :func:`last_dumped_frame`) for the remaining steps
==========  ==============================================  =========================================================

A restart continues from the positions and cell of the last frame LAMMPS dumped, with the number of atoms GCMC
left there. The dump holds no velocities, so they are drawn afresh at the thermostat temperature (seed changed):
the trajectory is continuous in positions, not in momenta.
"""

from __future__ import annotations

import io

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, calcfunction, process_handler, while_

from aiida_mscale.calculations.lammps_mtp import LammpsMtpCalculation

LAMMPS_PLUGIN = 'mscale.lammps.mtp'


def validate_inputs(inputs, _):
    """Refuse a code of another plugin before anything runs."""
    code = inputs.get('lammps', {}).get('code')
    if code is not None and code.default_calc_job_plugin not in (LAMMPS_PLUGIN, 'lammps.raw'):
        return (
            f'code `{code.full_label}` is for plugin `{code.default_calc_job_plugin}`, '
            f'but MD with an MTP needs a `{LAMMPS_PLUGIN}` (or `lammps.raw`) code.'
        )
    return None


def read_last_frame(text: str):
    """(step, ASE Atoms) of the last frame of a LAMMPS ``custom`` dump with ``element x y z`` columns."""
    from ase.io import read

    frames = read(io.StringIO(text), format='lammps-dump-text', index=':')
    if not frames:
        raise ValueError('the dump holds no frame')
    steps = [int(line_after) for line_after in _timesteps(text)]
    return steps[-1], frames[-1]


def _timesteps(text: str):
    lines = text.splitlines()
    for k, line in enumerate(lines):
        if line.startswith('ITEM: TIMESTEP'):
            yield lines[k + 1].strip()


@calcfunction
def last_dumped_frame(retrieved: orm.FolderData, structure: orm.StructureData) -> orm.StructureData:
    """The last frame of an MD run's dump as a StructureData (elements from the dump, pbc of ``structure``).

    The node's description is ``step N``, the MD step of the frame, so a restart knows how many steps remain.
    """
    from aiida_mscale.lammps.inputs import FILES

    text = retrieved.base.repository.get_object_content(FILES['trajectory'])
    step, atoms = read_last_frame(text)
    atoms.pbc = structure.pbc
    frame = orm.StructureData(ase=atoms)
    frame.description = f'step {step}'
    return frame


class LammpsMtpBaseWorkChain(BaseRestartWorkChain):
    """MD with an MTP, restarted on a walltime cut; an extrapolation break ends it cleanly (module docstring)."""

    _process_class = LammpsMtpCalculation

    defaults = AttributeDict({'seed_increment': 1})

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(LammpsMtpCalculation, namespace='lammps')
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(
                cls.run_process,
                cls.inspect_process,
            ),
            cls.results,
        )
        spec.expose_outputs(LammpsMtpCalculation)
        spec.exit_code(
            300,
            'ERROR_UNRECOVERABLE_FAILURE',
            message='The MD failed in a way a restart cannot fix (no thermodynamic output, plugin not loaded).',
        )

    def setup(self):
        """Prepare ``ctx.inputs`` for the calculations."""
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(LammpsMtpCalculation, 'lammps'))
        self.ctx.inputs.parameters = self.ctx.inputs.parameters.get_dict() if 'parameters' in self.ctx.inputs else {}
        self.ctx.stopped_by_break = False

    def report_error_handled(self, calculation, action):
        """Report the failure of ``calculation`` and the ``action`` taken."""
        self.report(
            f'{calculation.process_label}<{calculation.pk}> failed with exit status {calculation.exit_status}: '
            f'{calculation.exit_message}'
        )
        self.report(f'Action taken: {action}')

    # ----------------------------------------------------------------------------------------------- handlers
    @process_handler(priority=700, exit_codes=LammpsMtpCalculation.exit_codes.STOPPED_BY_EXTRAPOLATION_BREAK)
    def handle_extrapolation_break(self, calculation):
        """The run reached the break threshold: an expected outcome, its outputs are complete. Finish."""
        self.ctx.is_finished = True
        self.ctx.stopped_by_break = True
        self.report(f'{calculation.process_label}<{calculation.pk}>: {calculation.exit_message}')
        return ProcessHandlerReport(True)

    @process_handler(
        priority=600,
        exit_codes=[
            LammpsMtpCalculation.exit_codes.ERROR_MISSING_THERMO,
            LammpsMtpCalculation.exit_codes.ERROR_PLUGIN_NOT_LOADED,
        ],
    )
    def handle_unrecoverable_failure(self, calculation):
        """No thermodynamic output or no pair_style mtp: a rerun gives the same. Abort."""
        self.report_error_handled(calculation, 'unrecoverable failure, aborting')
        return ProcessHandlerReport(True, self.exit_codes.ERROR_UNRECOVERABLE_FAILURE)

    @process_handler(
        priority=400,
        exit_codes=[
            LammpsMtpCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME,
            LammpsMtpCalculation.exit_codes.ERROR_OUT_OF_WALLTIME,
        ],
    )
    def handle_out_of_walltime(self, calculation):
        """Cut short: continue from the last dumped frame for the remaining steps (fresh velocities, new seed)."""
        from aiida_mscale.lammps.inputs import FILES

        parameters = self.ctx.inputs.parameters
        retrieved = calculation.outputs.retrieved if 'retrieved' in calculation.outputs else None
        if retrieved is None or FILES['trajectory'] not in retrieved.base.repository.list_object_names():
            self.report_error_handled(calculation, 'no frame was dumped: rerunning from the same structure')
            return ProcessHandlerReport(True)
        frame = last_dumped_frame(retrieved, self.ctx.inputs.structure)
        done = int(frame.description.split()[-1])
        total = int(parameters.get('steps', 1000))
        parameters['steps'] = max(total - done, 1)
        parameters['seed'] = int(parameters.get('seed', 12345)) + self.defaults.seed_increment
        self.ctx.inputs.structure = frame
        self.report_error_handled(
            calculation, f'restarting from the frame of step {done} <{frame.pk}> for {parameters["steps"]} more steps'
        )
        return ProcessHandlerReport(True)


__all__ = ['LammpsMtpBaseWorkChain', 'last_dumped_frame', 'read_last_frame']
