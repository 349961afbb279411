"""Analysis settings of :class:`TransportAnalysisWorkChain` (the ``parameters`` input): defaults and checks."""

from __future__ import annotations

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


def merge_parameters(given: dict | None) -> dict:
    """``given`` on top of :data:`DEFAULTS`; raises ``ValueError`` naming the offending key."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ValueError(f'unknown analysis parameters {unknown}; known: {sorted(DEFAULTS)}')
    p = {**DEFAULTS, **given}
    analyses = list(p['analyses'])
    bad = [a for a in analyses if a not in ANALYSES]
    if bad or not analyses:
        raise ValueError(f'`analyses` must be a non-empty list from {list(ANALYSES)}, got {analyses}')
    if 'arrhenius' in analyses and 'diffusivity' not in analyses:
        analyses.insert(0, 'diffusivity')
    p['analyses'] = analyses
    window = p['fit_window']
    if window is not None and (len(window) != 2 or not 0 <= float(window[0]) < float(window[1])):
        raise ValueError(f'`fit_window` must be [t_start, t_end] with 0 <= t_start < t_end [ps], got {window}')
    for key in ('n_blocks', 'descriptor_window', 'descriptor_frame_stride', 'environment_frame_stride'):
        if int(p[key]) != p[key] or p[key] < 1:
            raise ValueError(f'`{key}` must be a positive integer, got {p[key]}')
    if p['n_blocks'] < 2:
        raise ValueError(f'`n_blocks` must be >= 2 to estimate an uncertainty, got {p["n_blocks"]}')
    if p['descriptor_frame_stride'] > p['descriptor_window']:
        raise ValueError(
            f'`descriptor_frame_stride` ({p["descriptor_frame_stride"]}) must not exceed `descriptor_window` '
            f'({p["descriptor_window"]} frames)'
        )
    frames = p['descriptor_frames']
    if frames is not None and (len(frames) != 3 or any(v is not None and int(v) != v for v in frames)):
        raise ValueError(f'`descriptor_frames` must be [start, stop, step] (integers or null), got {frames}')
    if p['diffusivity_method'] not in ('gls', 'block'):
        raise ValueError(f"`diffusivity_method` must be 'gls' or 'block', got {p['diffusivity_method']!r}")
    if not isinstance(p['drift_correction'], bool):
        raise ValueError(f'`drift_correction` must be true or false, got {p["drift_correction"]!r}')
    framework = p['framework']
    if framework is not None and not (
        isinstance(framework, str) or (isinstance(framework, list) and all(isinstance(x, str) for x in framework))
    ):
        raise ValueError(f'`framework` must be a symbol or a list of symbols, got {framework!r}')
    if p['criterion'] not in ('AICc', 'BIC'):
        raise ValueError(f"`criterion` must be 'AICc' or 'BIC', got {p['criterion']!r}")
    if p['charge'] == 0:
        raise ValueError('`charge` must be non-zero (charge number of the mobile ion)')
    return p


def species_list(mobile_species: str) -> list[str]:
    """``'Li'`` or ``'Li, Na'`` -> list of symbols."""
    symbols = [s for s in mobile_species.replace(',', ' ').split() if s]
    if not symbols:
        raise ValueError('`mobile_species` is empty: name the mobile species, e.g. `Li`')
    return symbols
