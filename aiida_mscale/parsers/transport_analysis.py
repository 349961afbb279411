"""Parser of ``TransportAnalysisCalculation``."""

import json
import zipfile

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_mscale.parsers.script_job import script_error


class TransportAnalysisParser(Parser):
    """``result.json`` -> ``result`` (Dict); ``arrays.npz`` with the attributes of ``result.json`` -> ``arrays``.

    A run the scheduler cut (out of walltime) keeps the scheduler's exit code: the missing output is its consequence.
    """

    def parse(self, **kwargs):
        walltime = self.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME
        scheduler_cut = self.node.exit_status == walltime.status
        retrieved = self.retrieved
        names = retrieved.base.repository.list_object_names()
        missing = [name for name in ('result.json', 'arrays.npz') if name not in names]
        if missing:
            if scheduler_cut:
                return walltime
            message = script_error(retrieved, 'analysis.err')
            if message:
                return self.exit_codes.ERROR_ANALYSIS_REFUSED.format(message=message.removeprefix('ERROR: '))
            return self.exit_codes.ERROR_MISSING_OUTPUT_FILES.format(filename=', '.join(missing))
        try:
            output = json.loads(retrieved.base.repository.get_object_content('result.json'))
            result, attributes = output['result'], output['attributes']
            with retrieved.base.repository.open('arrays.npz', 'rb') as handle:
                with np.load(handle, allow_pickle=False) as npz:
                    arrays = {name: npz[name] for name in npz.files}
        except (ValueError, KeyError, TypeError, OSError, zipfile.BadZipFile) as exception:
            if scheduler_cut:  # the script was writing its outputs when the walltime hit
                return walltime
            return self.exit_codes.ERROR_UNREADABLE_OUTPUT.format(message=f'{type(exception).__name__}: {exception}')
        node = orm.ArrayData()
        for name, values in arrays.items():
            node.set_array(name, values)
        for key, value in attributes.items():
            node.base.attributes.set(key, value)
        self.out('result', orm.Dict(result))
        self.out('arrays', node)
        return None
