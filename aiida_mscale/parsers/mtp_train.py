"""Parser of ``MtpTrainCalculation``."""

import json

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_mscale.data.mtp_potential import MtpPotentialData
from aiida_mscale.parsers.script_job import script_error


class MtpTrainParser(Parser):
    """Read the fitted potential, the learning curve and the error table."""

    def parse(self, **kwargs):
        retrieved = self.retrieved
        names = retrieved.base.repository.list_object_names()
        for filename in ('final.mtp', 'errors.json', 'learning_curve.json'):
            if filename not in names:
                message = script_error(retrieved, 'train.err')
                if message:
                    return self.exit_codes.ERROR_TRAINING_FAILED.format(message=message)
                return self.exit_codes.ERROR_MISSING_OUTPUT_FILES.format(filename=filename)

        errors = json.loads(retrieved.base.repository.get_object_content('errors.json'))
        curve = json.loads(retrieved.base.repository.get_object_content('learning_curve.json'))
        try:
            potential = MtpPotentialData(
                retrieved.base.repository.get_object_content('final.mtp'), species=self.node.inputs.potential.species
            )
        except ValueError as exception:
            return self.exit_codes.ERROR_INVALID_POTENTIAL.format(message=str(exception))
        potential.base.attributes.set('training_set_size', len(self.node.inputs.training_set))
        potential.base.attributes.set('errors', errors)

        learning_curve = orm.ArrayData()
        learning_curve.set_array('loss', np.concatenate([np.asarray(s['loss'], dtype=float) for s in curve]))
        learning_curve.set_array('step', np.concatenate([np.full(len(s['loss']), s['step']) for s in curve]))

        self.out('potential', potential)
        self.out('learning_curve', learning_curve)
        self.out('errors', orm.Dict(errors))
        rmse = [errors[part]['energy_per_atom']['rmse'] for part in errors]
        if any(value is None or not np.isfinite(value) for value in rmse):
            return self.exit_codes.ERROR_NON_FINITE_ERRORS
        return None
