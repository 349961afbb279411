"""``MtpTrainCalculation``: fit a Moment Tensor Potential to a TrainingSetData with motep."""

from __future__ import annotations

import json
from typing import Literal, Union

import numpy as np
from aiida import orm
from aiida.engine import CalcJob
from pydantic import Field, field_validator, model_validator

from aiida_mscale.calculations.script_job import merged_parameters, script_calcinfo, write_text
from aiida_mscale.data.mtp_potential import MtpPotentialData
from aiida_mscale.data.training_set import TrainingSetData
from aiida_mscale.mtp.weights import check_steps
from aiida_mscale.schema import (
    NonNegativeFloat,
    NonNegativeInt,
    ParameterModel,
    PositiveFloat,
    PositiveInt,
    Seed,
    validate_parameters,
)


class LossWeights(ParameterModel):
    """Weights of motep's loss (Shapeev 2016): energy per atom, forces, stress (each >= 0, one at least > 0)."""

    energy_weight: NonNegativeFloat = 1.0
    forces_weight: NonNegativeFloat = 0.01
    stress_weight: NonNegativeFloat = 0.001

    @model_validator(mode='after')
    def _one_positive(self):
        if not (self.energy_weight > 0 or self.forces_weight > 0 or self.stress_weight > 0):
            raise ValueError('at least one of energy_weight, forces_weight, stress_weight must be > 0')
        return self


class OptimizerOptions(ParameterModel):
    """``scipy.optimize.minimize`` settings of a ``minimize`` step."""

    method: Literal['BFGS', 'L-BFGS-B', 'CG', 'Nelder-Mead', 'Powell', 'TNC', 'SLSQP', 'trust-constr'] = 'BFGS'
    options: dict[str, Union[PositiveInt, PositiveFloat, bool]] = Field(default_factory=lambda: {'maxiter': 1000})

    @field_validator('options')
    @classmethod
    def _known_options(cls, value):
        unknown = sorted(set(value) - {'maxiter', 'gtol', 'ftol', 'xtol', 'maxfun', 'maxcor', 'disp'})
        if unknown:
            raise ValueError(f'unknown optimizer options {unknown}')
        return value


class TrainingStep(ParameterModel):
    """One optimisation step of the fit (motep's ``steps``)."""

    method: Literal['minimize', 'LLS', 'GA', 'DA', 'DE', 'NI', 'randomize', 'Level2MTP'] = 'minimize'
    kwargs: OptimizerOptions = Field(default_factory=OptimizerOptions)
    optimized: list[Literal['species_coeffs', 'moment_coeffs', 'radial_coeffs', 'scaling']] | None = None


class MtpTrainParameters(ParameterModel):
    """Parameters of :class:`MtpTrainCalculation`."""

    validation_fraction: float = Field(0.1, ge=0, lt=1, description='Fraction held out for validation.')
    seed: Seed = 42
    engine: Literal['cext', 'numpy', 'numba'] = 'cext'
    loss: LossWeights = Field(default_factory=LossWeights)
    steps: list[TrainingStep] = Field(default_factory=lambda: [TrainingStep()], min_length=1, max_length=20)
    checkpoint_every: NonNegativeInt = Field(
        50,
        description='Write checkpoint.mtp every this many optimizer iterations (0: never); a run cut by the '
        'walltime returns it as `potential`, to warm start from.',
    )


#: Defaults of :class:`MtpTrainParameters` as a plain dict.
DEFAULT_PARAMETERS = MtpTrainParameters().dump()


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
    try:
        parameters = validate_parameters(MtpTrainParameters, merged_parameters(inputs), 'parameters').dump()
        if training_set.has_weights():  # cut neighbourhoods: motep's linear steps would ignore the weights
            check_steps(parameters['steps'])
    except ValueError as exception:
        return str(exception)
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
        spec.exit_code(
            410,
            'ERROR_FIT_DIVERGED',
            message='The fit diverged: {message} (recoverable: reseed, or lower the stress weight).',
        )

    def prepare_for_submission(self, folder):
        parameters = validate_parameters(MtpTrainParameters, merged_parameters(self.inputs), 'parameters').dump()
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
            'checkpoint_every': parameters['checkpoint_every'],
            'training_indices': train.tolist(),
            'validation_indices': validation.tolist(),
        }
        write_text(folder, json.dumps(script_input, indent=2), 'input.json')

        return script_calcinfo(
            self,
            ['input.json'],
            'train.log',
            'train.err',
            ['final.mtp', 'errors.json', 'learning_curve.json', 'checkpoint.mtp'],
        )
