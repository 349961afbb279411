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
                checkpoint = self._checkpoint(names)
                if checkpoint is not None and self.node.exit_status == 120:
                    # cut by the walltime (the scheduler said so): keep the exit code, return the checkpoint
                    self.out('potential', checkpoint)
                    return self.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME
                message = script_error(retrieved, 'train.err')
                if message:
                    return self.exit_codes.ERROR_TRAINING_FAILED.format(message=message)
                return self.exit_codes.ERROR_MISSING_OUTPUT_FILES.format(filename=filename)

        try:
            errors = json.loads(retrieved.base.repository.get_object_content('errors.json'))
            curve = json.loads(retrieved.base.repository.get_object_content('learning_curve.json'))
            loss = np.concatenate([np.asarray(s['loss'], dtype=float) for s in curve])
            steps = np.concatenate([np.full(len(s['loss']), s['step']) for s in curve])
        except (ValueError, KeyError, TypeError) as exception:  # json.JSONDecodeError is a ValueError
            # a half-written file: the script died while writing its outputs
            return self.exit_codes.ERROR_TRAINING_FAILED.format(
                message=f'errors.json or learning_curve.json is unreadable ({type(exception).__name__}: {exception})'
            )
        try:
            potential = MtpPotentialData(
                retrieved.base.repository.get_object_content('final.mtp'), species=self.node.inputs.potential.species
            )
        except ValueError as exception:
            return self.exit_codes.ERROR_INVALID_POTENTIAL.format(message=str(exception))
        potential.base.attributes.set('training_set_size', len(self.node.inputs.training_set))
        potential.base.attributes.set('errors', errors)

        learning_curve = orm.ArrayData()
        learning_curve.set_array('loss', loss)
        learning_curve.set_array('step', steps)

        self.out('potential', potential)
        self.out('learning_curve', learning_curve)
        self.out('errors', orm.Dict(errors))
        message = divergence(learning_curve.get_array('loss'), errors)
        if message:
            return self.exit_codes.ERROR_FIT_DIVERGED.format(message=message)
        return None

    def _checkpoint(self, names) -> MtpPotentialData | None:
        """The last ``checkpoint.mtp`` the script wrote, as a potential (None if absent or unreadable)."""
        if 'checkpoint.mtp' not in names:
            return None
        try:
            potential = MtpPotentialData(
                self.retrieved.base.repository.get_object_content('checkpoint.mtp'),
                species=self.node.inputs.potential.species,
            )
        except ValueError:
            return None
        potential.base.attributes.set('checkpoint', True)
        potential.base.attributes.set('training_set_size', len(self.node.inputs.training_set))
        return potential


#: A fit whose final loss exceeds its initial loss by this factor has diverged.
DIVERGENCE_FACTOR = 100.0


def divergence(loss: np.ndarray, errors: dict) -> str:
    """Why a fit counts as diverged ('' if it does not): non-finite errors or loss, or a final loss more than
    :data:`DIVERGENCE_FACTOR` times the initial one."""
    for part, table in errors.items():
        for quantity in ('energy_per_atom', 'forces'):
            value = (table.get(quantity) or {}).get('rmse')
            if value is None or not np.isfinite(value):
                return f'the {part} RMSE of {quantity} is {value}'
    loss = np.asarray(loss, dtype=float)
    if loss.size and not np.all(np.isfinite(loss)):
        return 'the loss became non-finite during the fit'
    if loss.size >= 2 and loss[-1] > DIVERGENCE_FACTOR * loss[0]:
        return f'the final loss {loss[-1]:.4g} is more than {DIVERGENCE_FACTOR:g}x the initial loss {loss[0]:.4g}'
    return ''
