"""``LammpsMtpBaseWorkChain``: a :class:`LammpsMtpCalculation` with automatic restarts, as ``PwBaseWorkChain``.

Handlers (highest priority first):

==========  ==============================================  =========================================================
priority    child exit code                                 action
==========  ==============================================  =========================================================
700         250 ``STOPPED_BY_EXTRAPOLATION_BREAK``          expected outcome, not a failure: the work chain finishes
                                                            with exit 0 and the child's outputs (its extrapolative
                                                            configurations are what active learning wants)
600         303 ``ERROR_MISSING_THERMO`` / 304 plugin       abort with 300 ``ERROR_UNRECOVERABLE_FAILURE``
400         120 ``ERROR_SCHEDULER_OUT_OF_WALLTIME`` /       continue from the newest binary restart file (the child's
            400 ``ERROR_OUT_OF_WALLTIME``                   ``restart_file`` output) for the remaining steps; without
                                                            one, from the last dumped frame (calcfunction
                                                            :func:`last_dumped_frame`)
==========  ==============================================  =========================================================

A run writes a binary restart file every ``restart_every`` steps (default: every ``dump_every``; two files in turn,
the parser keeps the newer). A restart from it (``initial_velocities: 'restart'``) continues the run exactly:
positions, cell, velocities and the Nose-Hoover thermostat and barostat variables are those of the cut run at that
step, so the thermo afterwards is that of an uninterrupted run with the same seed to the last digits LAMMPS prints
(measured: 1e-14 relative in temperature, 1e-15 in energy, for NVT and NPT; only the order of floating-point
sums differs, through the rebuilt neighbour lists). The new run counts its steps from 0 at the restart's step.

Without a restart file (cut before the first one, a GCMC run: fix gcmc refuses a restart whose step was reset, or
``restart_every: 0``) the run continues from the positions, cell and velocities of the last complete frame LAMMPS
dumped, with the number of atoms GCMC left there: continuous in positions and momenta to the dump's 6 significant
digits, with the thermostat's and barostat's internal variables started afresh. From a dump without velocities
they are drawn afresh at the thermostat temperature with a new seed.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ProcessHandlerReport, calcfunction, process_handler

from aiida_mscale.calculations.lammps_mtp import LammpsMtpCalculation
from aiida_mscale.workflows.restart import MscaleRestartWorkChain

LAMMPS_PLUGIN = 'mscale.lammps.mtp'


def read_last_frame(text: str) -> dict:
    """The last complete frame of a LAMMPS ``custom`` dump with ``id element x y z`` (and optionally ``vx vy vz``)
    columns, read by :func:`aiida_mscale.data.lammps_trajectory.read_last_frame`.

    :return: ``{'step': int, 'atoms': ase.Atoms (positions from the box origin [Angstrom], atoms sorted by id),
        'velocities': (N, 3) array [Angstrom/ps] or None}``.
    :raises ValueError: for a dump without a complete frame or without an ``element`` column.
    """
    from ase import Atoms

    from aiida_mscale.data.lammps_trajectory import read_last_frame as read_frame

    frame = read_frame(text)
    if 'elements' not in frame:
        raise ValueError(f'the dump has no `element` column (columns: {frame["field_names"]})')
    atoms = Atoms(
        symbols=frame['elements'].tolist(), positions=frame['positions'] - frame['origin'], cell=frame['cell'], pbc=True
    )
    return {'step': frame['step'], 'atoms': atoms, 'velocities': frame.get('velocities')}


@calcfunction
def last_dumped_frame(retrieved: orm.FolderData, structure: orm.StructureData) -> dict:
    """The last complete frame of an MD run's dump: ``structure`` (and ``velocities`` when LAMMPS wrote them).

    ``structure`` is in LAMMPS's frame (positions shifted to the box origin), with the number of atoms GCMC
    left; its description is ``step N``, the MD step of the frame, so a restart knows how many steps remain.
    ``velocities`` is an ArrayData with the array ``velocities`` [Angstrom/ps], in the same frame and order.
    """
    from aiida_mscale.lammps.inputs import FILES

    frame = read_last_frame(retrieved.base.repository.get_object_content(FILES['trajectory']))
    atoms = frame['atoms']
    atoms.pbc = structure.pbc
    result = {'structure': orm.StructureData(ase=atoms)}
    result['structure'].description = f'step {frame["step"]}'
    if frame['velocities'] is not None:
        velocities = orm.ArrayData()
        velocities.set_array('velocities', frame['velocities'])
        result['velocities'] = velocities
    return result


class LammpsMtpBaseWorkChain(MscaleRestartWorkChain):
    """MD with an MTP, restarted on a walltime cut; an extrapolation break ends it cleanly (module docstring)."""

    _process_class = LammpsMtpCalculation
    _namespace = 'lammps'
    _unrecoverable = 'The MD failed in a way a restart cannot fix (no thermodynamic output, plugin not loaded).'

    _code_plugin = LAMMPS_PLUGIN

    defaults = AttributeDict({'seed_increment': 1})

    @classmethod
    def validate_code(cls, inputs, _):
        """Refuse a code of another plugin than ``mscale.lammps.mtp`` (or ``lammps.raw``) before anything runs."""
        code = inputs.get(cls._namespace, {}).get('code')
        if code is not None and code.default_calc_job_plugin not in (LAMMPS_PLUGIN, 'lammps.raw'):
            return (
                f'code `{code.full_label}` is for plugin `{code.default_calc_job_plugin}`, '
                f'but MD with an MTP needs a `{LAMMPS_PLUGIN}` (or `lammps.raw`) code.'
            )
        return None

    def setup(self):
        """Prepare ``ctx.inputs`` for the calculations."""
        super().setup()
        self.ctx.inputs.parameters = self.ctx.inputs.parameters.get_dict() if 'parameters' in self.ctx.inputs else {}
        self.ctx.stopped_by_break = False

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
        return self.abort_unrecoverable(calculation)

    @process_handler(
        priority=400,
        exit_codes=[
            LammpsMtpCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME,
            LammpsMtpCalculation.exit_codes.ERROR_OUT_OF_WALLTIME,
        ],
    )
    def handle_out_of_walltime(self, calculation):
        """Cut short: continue from the newest restart file (exact), else from the last dumped frame."""
        from aiida_mscale.calculations.lammps_mtp import restart_file_step
        from aiida_mscale.lammps.inputs import FILES

        parameters = self.ctx.inputs.parameters
        total = int(parameters.get('steps', 1000))
        if 'restart_file' in calculation.outputs:
            restart = calculation.outputs.restart_file
            done = restart_file_step(restart)
            parameters['steps'] = max(total - done, 1)
            parameters['initial_velocities'] = 'restart'
            self.ctx.inputs.restart_file = restart
            self.ctx.inputs.pop('velocities', None)
            self.report_error_handled(
                calculation,
                f'continuing exactly from the restart file of step {done} <{restart.pk}> for {parameters["steps"]} '
                'more steps (thermostat and barostat state kept)',
            )
            return ProcessHandlerReport(True)
        retrieved = calculation.outputs.retrieved if 'retrieved' in calculation.outputs else None
        if retrieved is None or FILES['trajectory'] not in retrieved.base.repository.list_object_names():
            self.report_error_handled(calculation, 'no frame was dumped: rerunning from the same start')
            return ProcessHandlerReport(True)
        frame = last_dumped_frame(retrieved, self.ctx.inputs.structure)
        done = int(frame['structure'].description.split()[-1])
        parameters['steps'] = max(total - done, 1)
        self.ctx.inputs.structure = frame['structure']
        self.ctx.inputs.pop('restart_file', None)
        if 'velocities' in frame:
            self.ctx.inputs.velocities = frame['velocities']
            parameters['initial_velocities'] = 'data'
            kept = 'velocities kept'
        else:
            self.ctx.inputs.pop('velocities', None)
            parameters['initial_velocities'] = 'create'
            parameters['seed'] = int(parameters.get('seed', 12345)) + self.defaults.seed_increment
            kept = 'fresh velocities'
        self.report_error_handled(
            calculation,
            f'restarting from the frame of step {done} <{frame["structure"].pk}> for {parameters["steps"]} more '
            f'steps ({kept})',
        )
        return ProcessHandlerReport(True)


__all__ = ['LammpsMtpBaseWorkChain', 'last_dumped_frame', 'read_last_frame']
