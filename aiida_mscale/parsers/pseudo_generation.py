"""Parser of ``PseudoGenerationCalculation``: ld1.x test results, ghost check, the rewrapped dataset."""

from __future__ import annotations

import io

from aiida import orm
from aiida.parsers import Parser

from aiida_mscale.calculations.pseudo_generation import BESSEL_RUN, RUN_PREFIX


class PseudoGenerationParser(Parser):
    """Read every ld1.x run, judge the dataset, rewrap its UPF file and store it as ``UpfData``."""

    def parse(self, **kwargs):
        from aiida_pseudo.data.pseudo.upf import UpfData

        from aiida_mscale.calculations.pseudo_generation import _parameters
        from aiida_mscale.pseudo import ld1, upf

        node = self.node
        parameters = _parameters(node.inputs)
        element, functional = node.inputs.element.value, node.inputs.functional.value
        filename = ld1.dataset_filename(element, functional, parameters)
        names = set(self.retrieved.base.repository.list_object_names())

        runs = []
        for index in range(1, len(parameters.test_configurations) + 1):
            name = f'{RUN_PREFIX}{index}.out'
            if name not in names:
                return self.exit_codes.ERROR_MISSING_OUTPUT_FILES.format(filename=name)
            runs.append(ld1.parse_output(self.retrieved.base.repository.get_object_content(name)))
        bessel_errors = []
        if f'{BESSEL_RUN}.out' in names:
            bessel = ld1.parse_output(self.retrieved.base.repository.get_object_content(f'{BESSEL_RUN}.out'))
            if bessel['errors']:
                # the Bessel basis can be ill-conditioned for semicore sets (LAPACK refuses the overlap);
                # it is a diagnostic only, so record it and go on
                bessel_errors = bessel['errors']
            else:
                runs[0]['bessel'] = bessel['bessel']

        result = ld1.transferability(runs, parameters.test_configurations)
        result['bessel_test_errors'] = bessel_errors
        result['element'] = element
        result['functional'] = functional
        result['dataset'] = filename
        result['source'] = parameters.source
        self.out('transferability', orm.Dict(result))

        if runs[0]['errors']:
            return self.exit_codes.ERROR_GENERATION_FAILED.format(message='; '.join(runs[0]['errors']))
        if filename not in names:
            return self.exit_codes.ERROR_MISSING_OUTPUT_FILES.format(filename=filename)
        text = self.retrieved.base.repository.get_object_content(filename)
        if '</UPF>' not in text:
            return self.exit_codes.ERROR_UNREADABLE_OUTPUT.format(
                filename=filename, message='it is truncated (no closing </UPF> tag)'
            )
        try:
            wrapped = upf.rewrap(text)
            header = upf.header(wrapped)
        except ValueError as exception:
            return self.exit_codes.ERROR_UNREADABLE_OUTPUT.format(filename=filename, message=str(exception))
        if header.get('element', '').strip() != element:
            return self.exit_codes.ERROR_UNREADABLE_OUTPUT.format(
                filename=filename, message=f'it is for element {header.get("element")!r}, not {element!r}'
            )
        self.out('pseudo', UpfData(io.BytesIO(wrapped.encode()), filename=filename))

        failed_tests = [run['errors'] for run in runs[1:] if run['errors']]
        if failed_tests:
            return self.exit_codes.ERROR_TEST_FAILED.format(message='; '.join(sum(failed_tests, [])))
        if result['ghosts']:
            return self.exit_codes.ERROR_GHOST_STATE.format(message='; '.join(result['ghosts']))
        return None
