"""``PseudoGenerationCalculation``: a PAW dataset generated and tested by ld1.x (Quantum ESPRESSO's atomic code).

Inputs: ``element`` and ``functional`` (``Str``), optional ``parameters`` (``Dict``) overriding the published
generation parameters of the element (:mod:`aiida_mscale.pseudo.ld1`, validated by its schema before
anything runs). The job runs ld1.x once per test configuration (ld1.x tests a dataset on only one
configuration in the run that generates it, and cannot read back its own UPF file), plus one run with the
spherical-Bessel-basis test; the first run's dataset is the output. Outputs: ``pseudo`` (aiida-pseudo
``UpfData`` of the file rewrapped for pw.x 6.7) and ``transferability`` (``Dict``, energies in Ry).
"""

from __future__ import annotations

from aiida import orm
from aiida.common import datastructures
from aiida.engine import CalcJob
from aiida_pseudo.data.pseudo.upf import UpfData

#: Input file of run ``k`` (1-based) and of the Bessel-basis test; outputs likewise with ``.out``.
RUN_PREFIX = 'ld1_'
BESSEL_RUN = 'ld1_bessel'


def _parameters(inputs):
    from aiida_mscale.pseudo import ld1

    overrides = inputs['parameters'].get_dict() if 'parameters' in inputs else None
    return ld1.generation_parameters(inputs['element'].value, inputs['functional'].value, overrides)


def validate_inputs(inputs, _):
    """Refuse an element without parameters, an unsupported functional and bad overrides, naming them."""
    if 'element' not in inputs or 'functional' not in inputs:
        return None
    try:
        _parameters(inputs)
    except ValueError as exception:
        return str(exception)
    return None


class PseudoGenerationCalculation(CalcJob):
    """Generate one PAW dataset with ld1.x from published parameters and test its transferability."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('element', valid_type=orm.Str, help='Chemical symbol, e.g. `Na`.')
        spec.input('functional', valid_type=orm.Str, help='Exchange-correlation functional: `PBE` or `PBEsol`.')
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            required=False,
            help='Overrides of the published generation parameters (keys of `GenerationOverrides`).',
        )
        spec.inputs.validator = validate_inputs
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        spec.inputs['metadata']['options']['withmpi'].default = False
        spec.inputs['metadata']['options']['max_wallclock_seconds'].default = 600
        spec.inputs['metadata']['options']['parser_name'].default = 'mscale.pseudo.generate'

        spec.output(
            'pseudo', valid_type=UpfData, required=False, help='The dataset (UPF v2, long numeric lines rewrapped).'
        )
        spec.output('transferability', valid_type=orm.Dict, required=False, help='ld1.x test results (Ry).')

        spec.exit_code(300, 'ERROR_MISSING_OUTPUT_FILES', message='ld1.x output `{filename}` is missing.')
        spec.exit_code(301, 'ERROR_UNREADABLE_OUTPUT', message='ld1.x output `{filename}` is unreadable: {message}')
        spec.exit_code(310, 'ERROR_GENERATION_FAILED', message='ld1.x reported that the generation failed: {message}')
        spec.exit_code(311, 'ERROR_TEST_FAILED', message='ld1.x failed to test the dataset: {message}')
        spec.exit_code(312, 'ERROR_GHOST_STATE', message='the dataset has a ghost state: {message}')

    def prepare_for_submission(self, folder):
        from aiida_mscale.pseudo import ld1

        element, functional = self.inputs.element.value, self.inputs.functional.value
        parameters = _parameters(self.inputs)
        filename = ld1.dataset_filename(element, functional, parameters)

        runs = []
        for index, configuration in enumerate(parameters.test_configurations, start=1):
            # only the reference run (1) writes the dataset kept; the others' files are scratch
            upf = filename if index == 1 else f'test_{index}.UPF'
            runs.append((f'{RUN_PREFIX}{index}', ld1.write_input(element, functional, parameters, configuration, upf)))
        first = parameters.test_configurations[0]
        runs.append((BESSEL_RUN, ld1.write_input(element, functional, parameters, first, 'bessel.UPF', True)))

        codes_info = []
        for name, text in runs:
            with folder.open(f'{name}.in', 'w') as handle:
                handle.write(text)
            codeinfo = datastructures.CodeInfo()
            codeinfo.code_uuid = self.inputs.code.uuid
            codeinfo.stdin_name = f'{name}.in'
            codeinfo.stdout_name = f'{name}.out'
            codeinfo.withmpi = False
            codes_info.append(codeinfo)

        calcinfo = datastructures.CalcInfo()
        calcinfo.codes_info = codes_info
        calcinfo.codes_run_mode = datastructures.CodeRunMode.SERIAL
        calcinfo.retrieve_list = [filename] + [f'{name}.out' for name, _ in runs]
        return calcinfo
