"""Analysis settings of :class:`TransportAnalysisWorkChain` (the ``parameters`` input): defaults and checks."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import AfterValidator, Field, model_validator

from aiida_mscale.schema import (
    ElementSymbol,
    NonNegativeFloat,
    NonNegativeInt,
    ParameterModel,
    PositiveFloat,
    PositiveInt,
    Real,
    check_token,
    validate_parameters,
)

#: A trajectory label or descriptor name: a plain identifier.
Label = Annotated[str, AfterValidator(lambda value: check_token(value, 'identifier'))]

ANALYSES = ('diffusivity', 'arrhenius', 'modes', 'environments')

#: every key of ``parameters``, with its default. Units: ps, K, Angstrom, elementary charges.
DEFAULTS = {
    'analyses': list(ANALYSES),  # which analyses to run (diffusivity always runs when arrhenius does)
    # --- diffusivity (aiida_mscale.analysis.diffusion)
    'diffusivity_method': 'gls',  # 'gls' (generalised least squares, MSD covariance) or 'block' (a check)
    'fit_window': None,  # [t_start, t_end] lag-time window [ps]; None: 2 %..50 % of the trajectory ('gls'),
    # 10 %..50 % of one block ('block')
    'n_blocks': 5,  # independent time blocks for the 'block' 1-sigma
    'drift_correction': False,  # subtract the framework's centre-of-mass drift
    'framework': None,  # framework symbols for the drift correction (None: every non-mobile species)
    'dim': 3,  # dimensionality of the diffusion
    'charge': 1.0,  # charge number z of the mobile ion (Nernst-Einstein conductivity)
    # --- arrhenius (aiida_mscale.analysis.arrhenius.compare_models)
    'criterion': 'AICc',  # or 'BIC'
    'delta': 2.0,  # a curved model must beat Arrhenius by more than this
    'extrapolate_to': 300.0,  # K
    # --- per-ion descriptors, diffusion modes, importance
    'descriptor_trajectories': None,  # labels of the trajectories pooled (None: all)
    'descriptor_frames': None,  # [start, stop, step] slice of the frames used (None: all); site finding
    # pools every used frame, so long liquid trajectories want a step here
    'descriptor_window': 20,  # frames per window (of the sliced frames)
    'descriptor_stride': None,  # frames between windows (None: = window)
    'descriptor_frame_stride': 5,  # structure descriptors on every n-th frame
    'descriptor_cutoffs': None,  # {symbol: cutoff [A]}; None: RDF first minima
    'max_modes': 4,
    'cluster_on': None,  # descriptor names the modes are found from (None: motion, sites, clusters; 'all': all)
    'importance_splits': 5,
    'importance_estimators': 100,
    'importance_repeats': 5,
    'seed': 0,
    # --- local environments (aiida_mscale.analysis.environments)
    'environment_train': None,  # label of the trajectory the classes are learned on (None: first label)
    'environment_species': None,  # symbol(s) of the atoms classified (None: all atoms)
    'environment_cutoff': None,  # neighbour cutoff [A] (None: first minimum of the total RDF)
    'environment_frame_stride': 10,  # classify every n-th frame
    'environment_train_frames': 5,  # frames of the training trajectory pooled for the fit
    'max_classes': 4,
}


class TransportParameters(ParameterModel):
    """Schema of the ``parameters`` input (see :data:`DEFAULTS` for the meaning and units of every key)."""

    analyses: list[Literal['diffusivity', 'arrhenius', 'modes', 'environments']] = Field(
        default_factory=lambda: list(ANALYSES), min_length=1
    )
    diffusivity_method: Literal['gls', 'block'] = 'gls'
    fit_window: Annotated[list[NonNegativeFloat], Field(min_length=2, max_length=2)] | None = None
    n_blocks: int = Field(5, ge=2)
    drift_correction: bool = False
    framework: Union[ElementSymbol, list[ElementSymbol]] | None = None
    dim: Literal[1, 2, 3] = 3
    charge: Real = 1.0
    criterion: Literal['AICc', 'BIC'] = 'AICc'
    delta: NonNegativeFloat = 2.0
    extrapolate_to: PositiveFloat = 300.0
    descriptor_trajectories: list[Label] | None = None
    descriptor_frames: Annotated[list[int | None], Field(min_length=3, max_length=3)] | None = None
    descriptor_window: PositiveInt = 20
    descriptor_stride: PositiveInt | None = None
    descriptor_frame_stride: PositiveInt = 5
    descriptor_cutoffs: dict[ElementSymbol, PositiveFloat] | None = None
    max_modes: PositiveInt = 4
    cluster_on: Union[Literal['all'], list[Label]] | None = None
    importance_splits: int = Field(5, ge=2)
    importance_estimators: PositiveInt = 100
    importance_repeats: PositiveInt = 5
    seed: NonNegativeInt = 0
    environment_train: Label | None = None
    environment_species: Union[ElementSymbol, list[ElementSymbol]] | None = None
    environment_cutoff: PositiveFloat | None = None
    environment_frame_stride: PositiveInt = 10
    environment_train_frames: PositiveInt = 5
    max_classes: PositiveInt = 4

    @model_validator(mode='after')
    def _consistent(self):
        if self.fit_window is not None and not self.fit_window[0] < self.fit_window[1]:
            raise ValueError(f'`fit_window` must be [t_start, t_end] with t_start < t_end [ps], got {self.fit_window}')
        if (
            self.descriptor_frames is not None
            and self.descriptor_frames[2] is not None
            and self.descriptor_frames[2] < 1
        ):
            raise ValueError(f'`descriptor_frames` step must be >= 1, got {self.descriptor_frames[2]}')
        if self.descriptor_frame_stride > self.descriptor_window:
            raise ValueError(
                f'`descriptor_frame_stride` ({self.descriptor_frame_stride}) must not exceed `descriptor_window` '
                f'({self.descriptor_window} frames)'
            )
        if self.charge == 0:
            raise ValueError('`charge` must be non-zero (charge number of the mobile ion)')
        return self


def merge_parameters(given: dict | None) -> dict:
    """``given`` validated by :class:`TransportParameters`, on top of :data:`DEFAULTS`.

    :raises ValueError: naming each offending key.
    """
    given = dict(given or {})
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ValueError(f'unknown analysis parameters {unknown}; known: {sorted(DEFAULTS)}')
    p = validate_parameters(TransportParameters, given, 'parameters').dump()
    analyses = list(p['analyses'])
    if 'arrhenius' in analyses and 'diffusivity' not in analyses:
        analyses.insert(0, 'diffusivity')
    p['analyses'] = analyses
    return p


def species_list(mobile_species: str) -> list[str]:
    """``'Li'`` or ``'Li, Na'`` -> list of symbols."""
    symbols = [s for s in mobile_species.replace(',', ' ').split() if s]
    if not symbols:
        raise ValueError('`mobile_species` is empty: name the mobile species, e.g. `Li`')
    return symbols
