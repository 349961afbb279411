"""``MtpSelectCalculation``: MaxVol active set, extrapolation grades and selection of extrapolative configurations."""

from __future__ import annotations

import json
from typing import Literal

from aiida import orm
from aiida.engine import CalcJob
from pydantic import Field

from aiida_mscale.calculations.script_job import merged_parameters, script_calcinfo, write_text
from aiida_mscale.data.mtp_potential import MtpPotentialData
from aiida_mscale.data.training_set import TrainingSetData
from aiida_mscale.schema import NonNegativeFloat, ParameterModel, PositiveFloat, PositiveInt, Seed, validate_parameters


class MaxVolSettings(ParameterModel):
    """Settings of motep's MaxVol (``Grader``) for building the active set."""

    algorithm: Literal['maxvol'] = 'maxvol'
    init_method: Literal['qr', 'random', 'first', 'last'] = 'qr'
    threshold: PositiveFloat = 1e-9
    maxiter: PositiveInt = 100_000


class MtpSelectParameters(ParameterModel):
    """Parameters of :class:`MtpSelectCalculation`."""

    threshold: float = Field(1.1, ge=1, description='Least grade to be selected (a grade below 1 is interpolation).')
    max_count: PositiveInt | None = Field(None, description='At most this many selected configurations.')
    layout: Literal['moment', 'moment+species', 'full'] = 'moment+species'
    duplicate_tolerance: NonNegativeFloat = Field(1e-6, description='[Angstrom] closer candidates are one.')
    engine: Literal['cext', 'numpy', 'numba'] = 'cext'
    seed: Seed = 42
    maxvol: MaxVolSettings = Field(default_factory=MaxVolSettings)


#: Defaults of :class:`MtpSelectParameters` as a plain dict.
DEFAULT_PARAMETERS = MtpSelectParameters().dump()


def _has_partial_periodicity(training_set: TrainingSetData) -> bool:
    pbc = training_set.get_array('pbc')
    return bool((pbc.any(axis=1) & ~pbc.all(axis=1)).any())


def validate_inputs(inputs, _):
    """Refuse species the potential lacks, an untrained potential, a threshold below 1, a too small training set."""
    from aiida_mscale.mtp.select import active_set_size

    potential = inputs.get('potential')
    if potential is None:
        return None
    for name in ('training_set', 'candidates'):
        configurations = inputs.get(name)
        if configurations is None:
            continue
        missing = sorted(set(configurations.species) - set(potential.species))
        if missing:
            return f'the {name} have species {missing} that the potential lacks (it has {potential.species})'
        if _has_partial_periodicity(configurations):
            return f'the {name} hold configurations periodic in some directions only (MLIP .cfg cannot)'
    if not potential.base.attributes.get('is_trained'):
        return 'the potential is an untrained template: train it (MtpTrainCalculation) before grading with it'

    try:
        parameters = validate_parameters(MtpSelectParameters, merged_parameters(inputs), 'parameters').dump()
    except ValueError as exception:
        return str(exception)

    training_set = inputs.get('training_set')
    if training_set is not None:
        mtp = potential.get_potential()
        size = active_set_size(
            parameters['layout'],
            mtp.alpha_scalar_moments,
            mtp.species_count,
            mtp.radial_funcs_count * mtp.radial_basis_size,
        )
        neighbourhoods = int(training_set.get_array('numbers_of_atoms').sum())
        if neighbourhoods < size:
            return (
                f'the training set has {neighbourhoods} atomic neighbourhoods but an active set of layout '
                f'{parameters["layout"]!r} for this potential needs at least {size}'
            )
    return None


class MtpSelectCalculation(CalcJob):
    """Grade candidates against the MaxVol active set of a training set and select extrapolative ones.

    ``mscale-mtp-select`` (motep inside) builds the active set from the training set's atomic neighbourhoods
    (MLIP's ``calc-grade``, neighbourhood mode), grades every candidate configuration, and selects by greedy
    MaxVol at most ``max_count`` distinct, non-duplicate candidates whose grade is at least ``threshold``
    (MLIP's ``select-add``). The output potential is the input one with the active set attached as
    ``active_set.als``, the file ``pair_style mtp ... active_set FILE`` reads.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('potential', valid_type=MtpPotentialData, help='A trained MTP.')
        spec.input(
            'training_set',
            valid_type=TrainingSetData,
            help='The configurations the potential was fitted to: the active set is built from them.',
        )
        spec.input('candidates', valid_type=TrainingSetData, help='Configurations to grade and select from.')
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            required=False,
            help=f'threshold, max_count, layout, duplicate_tolerance, engine, seed, maxvol. '
            f'Defaults: {DEFAULT_PARAMETERS}',
        )
        spec.inputs.validator = validate_inputs
        spec.inputs['metadata']['options']['parser_name'].default = 'mscale.mtp.select'
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        spec.inputs['metadata']['options']['withmpi'].default = False

        spec.output(
            'grades',
            valid_type=orm.ArrayData,
            help='`max_grades` (per candidate), `neighborhood_grades` (per atom, concatenated), `numbers_of_atoms`, '
            '`duplicate_of`, `selected_indices`.',
        )
        spec.output(
            'selected',
            valid_type=TrainingSetData,
            required=False,
            help='The selected candidates, without labels (absent when none is selected).',
        )
        spec.output('potential', valid_type=MtpPotentialData, help='The potential with its active set attached.')
        spec.output('selection', valid_type=orm.Dict, help='Selected indices, log|det| before and after, swaps.')
        spec.exit_code(300, 'ERROR_MISSING_OUTPUT_FILES', message='The selection produced no {filename}.')
        spec.exit_code(301, 'ERROR_SELECTION_FAILED', message='The selection stopped with an error: {message}')
        spec.exit_code(302, 'ERROR_INVALID_ACTIVE_SET', message='The active set cannot be used: {message}')
        spec.exit_code(310, 'ERROR_NON_FINITE_GRADES', message='Some grades are not finite (singular active set?).')

    def prepare_for_submission(self, folder):
        parameters = validate_parameters(MtpSelectParameters, merged_parameters(self.inputs), 'parameters').dump()
        species = self.inputs.potential.species
        write_text(folder, self.inputs.training_set.to_cfg(species), 'training.cfg')
        write_text(folder, self.inputs.candidates.to_cfg(species), 'candidates.cfg')
        write_text(folder, self.inputs.potential.get_text(), 'potential.mtp')
        script_input = {
            'species': species,
            'potential': 'potential.mtp',
            'training': 'training.cfg',
            'candidates': 'candidates.cfg',
            'layout': parameters['layout'],
            'threshold': float(parameters['threshold']),
            'max_count': parameters['max_count'],
            'duplicate_tolerance': float(parameters['duplicate_tolerance']),
            'engine': parameters['engine'],
            'seed': parameters['seed'],
            'maxvol': parameters['maxvol'],
        }
        write_text(folder, json.dumps(script_input, indent=2), 'input.json')

        return script_calcinfo(
            self, ['input.json'], 'select.log', 'select.err', ['active_set.als', 'grades.npz', 'selection.json']
        )
