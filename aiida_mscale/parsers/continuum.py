"""Parser of ``ContinuumCalculation``."""

import json
import os

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_mscale.parsers.script_job import script_error

#: solver.py exit code -> name of the CalcJob exit code
SOLVER_EXIT_CODES = {
    2: 'ERROR_INVALID_INPUT',
    3: 'ERROR_NOT_CONVERGED',
    4: 'ERROR_UNPHYSICAL_STATE',
    5: 'ERROR_INTERNAL',
}
#: bookkeeping keys of results.json that are not results
SKIPPED_KEYS = ('status', 'arrays', 'arrays_file')


class ContinuumParser(Parser):
    """Read results.json (Dict), results.npz (ArrayData) and, if asked, the XDMF fields (FolderData)."""

    def parse(self, **kwargs):
        retrieved = self.retrieved
        names = retrieved.base.repository.list_object_names()
        if 'results.json' not in names:
            message = script_error(retrieved, 'solver.err')
            if message:
                return self.exit_codes.ERROR_INTERNAL.format(message=message)
            return self.exit_codes.ERROR_MISSING_OUTPUT_FILES.format(filename='results.json')
        try:
            results = json.loads(retrieved.base.repository.get_object_content('results.json'))
        except json.JSONDecodeError as exception:
            return self.exit_codes.ERROR_INTERNAL.format(message=f'results.json is not valid JSON: {exception}')

        if results.get('status') != 'ok':
            name = SOLVER_EXIT_CODES.get(results.get('exit_code'), 'ERROR_INTERNAL')
            return self.exit_codes[name].format(message=results.get('message', 'no message'))

        temporary = kwargs.get('retrieved_temporary_folder')
        npz_path = os.path.join(temporary, 'results.npz') if temporary else None
        if npz_path is None or not os.path.isfile(npz_path):
            return self.exit_codes.ERROR_MISSING_OUTPUT_FILES.format(filename='results.npz')
        arrays = orm.ArrayData()
        with np.load(npz_path) as npz:
            for key in npz.files:
                arrays.set_array(key, np.asarray(npz[key]))

        self.out('results', orm.Dict({k: v for k, v in results.items() if k not in SKIPPED_KEYS}))
        self.out('arrays', arrays)

        if self.node.inputs.write_xdmf.value:
            expected = results.get('xdmf') or []  # polycrystal lists none but writes polycrystal_size*_gb.xdmf
            found = sorted(f for f in os.listdir(temporary) if f.endswith(('.xdmf', '.h5')))
            missing = [f for f in expected if f not in found]
            if missing or not any(f.endswith('.xdmf') for f in found):
                return self.exit_codes.ERROR_MISSING_OUTPUT_FILES.format(filename=', '.join(missing) or 'XDMF fields')
            fields = orm.FolderData()
            for filename in found:
                fields.base.repository.put_object_from_file(os.path.join(temporary, filename), filename)
            self.out('fields', fields)
        return None
