"""``MtpTrainCalculation``: fit a Moment Tensor Potential to a TrainingSetData with motep."""

from __future__ import annotations

import json

import numpy as np
from aiida import orm
from aiida.engine import CalcJob

from aiida_mscale.calculations.script_job import merged_parameters, script_calcinfo, write_text
from aiida_mscale.data.mtp_potential import MtpPotentialData
from aiida_mscale.data.training_set import TrainingSetData

DEFAULT_PARAMETERS = {
    'validation_fraction': 0.1,
    'seed': 42,
    'engine': 'cext',
    'loss': {'energy_weight': 1.0, 'forces_weight': 0.01, 'stress_weight': 0.001},
    'steps': [{'method': 'minimize', 'kwargs': {'method': 'BFGS', 'options': {'maxiter': 1000}}}],
}


def split_training_validation(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random, seeded split of ``n`` configurations: (training indices, validation indices), each sorted.

    At least one configuration is held out when ``fraction > 0`` and ``n >= 2``; at least one is trained on.
    """
    n_validation = int(round(fraction * n))
    if fraction > 0 and n >= 2:
        n_validation = min(max(n_validation, 1), n - 1)
    permutation = np.random.default_rng(seed).permutation(n)
    return np.sort(permutation[n_validation:]), np.sort(permutation[:n_validation])


def validate_inputs(inputs, _):
    """Refuse a training set the potential cannot describe, or one without labels."""
    training_set = inputs.get('training_set')
    potential = inputs.get('potential')
    if training_set is None or potential is None:
        return None
    missing = sorted(set(training_set.species) - set(potential.species))
    if missing:
        return f'the training set has species {missing} that the potential lacks (it has {potential.species})'
    energies = training_set.get_array('energies')
    if not np.all(np.isfinite(energies)):
        return f'{int((~np.isfinite(energies)).sum())} configurations of the training set have no energy label'
    parameters = merged_parameters(inputs, DEFAULT_PARAMETERS)
    if not 0 <= parameters['validation_fraction'] < 1:
        return '`validation_fraction` must be in [0, 1)'
    unknown = set(parameters) - set(DEFAULT_PARAMETERS)
    if unknown:
        return f'unknown parameters {sorted(unknown)}; known: {sorted(DEFAULT_PARAMETERS)}'
    return None


class MtpTrainCalculation(CalcJob):
    """Fit an MTP (``mscale-mtp-train``, motep inside) from a template or a previous fit (warm start).

    A seeded random fraction of the configurations is held out for validation; the outputs carry the train
    and validation errors (meV/atom, meV/Angstrom, GPa) and the loss after each optimizer iteration.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('training_set', valid_type=TrainingSetData, help='Labelled configurations to fit.')
        spec.input('potential', valid_type=MtpPotentialData, help='Untrained template or a previous fit.')
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            required=False,
            help=f'validation_fraction, seed, engine, loss weights, optimizer steps. Defaults: {DEFAULT_PARAMETERS}',
        )
        spec.inputs.validator = validate_inputs
        spec.inputs['metadata']['options']['parser_name'].default = 'mscale.mtp.train'
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        spec.inputs['metadata']['options']['withmpi'].default = False

        spec.output('potential', valid_type=MtpPotentialData, help='The fitted potential.')
        spec.output('learning_curve', valid_type=orm.ArrayData, help='`loss` after each iteration; `step`.')
        spec.output('errors', valid_type=orm.Dict, help='RMSE/MAX on training and validation sets.')
        spec.exit_code(300, 'ERROR_MISSING_OUTPUT_FILES', message='The training produced no {filename}.')
        spec.exit_code(301, 'ERROR_TRAINING_FAILED', message='The training stopped with an error: {message}')
        spec.exit_code(302, 'ERROR_INVALID_POTENTIAL', message='The fitted potential cannot be read: {message}')
        spec.exit_code(310, 'ERROR_NON_FINITE_ERRORS', message='The fit diverged: its errors are not finite.')

    def prepare_for_submission(self, folder):
        parameters = merged_parameters(self.inputs, DEFAULT_PARAMETERS)
        species = self.inputs.potential.species
        training_set = self.inputs.training_set
        train, validation = split_training_validation(
            len(training_set), parameters['validation_fraction'], parameters['seed']
        )
        write_text(folder, training_set.to_cfg(species, indices=train), 'train.cfg')
        if len(validation):
            text = training_set.to_cfg(species, indices=validation)
            write_text(folder, text, 'validation.cfg')
        write_text(folder, self.inputs.potential.get_text(), 'initial.mtp')
        script_input = {
            'species': species,
            'initial_potential': 'initial.mtp',
            'training': 'train.cfg',
            'validation': 'validation.cfg' if len(validation) else None,
            'loss': parameters['loss'],
            'steps': parameters['steps'],
            'seed': parameters['seed'],
            'engine': parameters['engine'],
            'training_indices': train.tolist(),
            'validation_indices': validation.tolist(),
        }
        write_text(folder, json.dumps(script_input, indent=2), 'input.json')

        return script_calcinfo(
            self, ['input.json'], 'train.log', 'train.err', ['final.mtp', 'errors.json', 'learning_curve.json']
        )
