"""Diffusivity from the linear regime of the MSD, Haven ratio, Nernst-Einstein conductivity.

Units: lag time in ps, MSD in Angstrom^2, D reported in Angstrom^2/ps and cm^2/s
(1 A^2/ps = 1e-4 cm^2/s), temperature in K, number density in cm^-3, conductivity in S/cm.

Two estimators of D and its 1-sigma (``method``):

``'gls'`` (default): generalised least squares
----------------------------------------------
The full-trajectory MSD (all time origins) is fitted over the lag window with the covariance of
the MSD across lags of a random walk with localisation noise, parameterised by the data
(:mod:`.msd_gls`; Bullerjahn, von Buelow, Hummer, J. Chem. Phys. 153, 024116 (2020); the approach
of kinisi, McCluskey, Coles, Morgan, arXiv:2305.18244). The slope variance ``(X^T Sigma^-1 X)^-1``
is the 1-sigma. Its calibration (coverage of the 1-sigma interval ~68 %) is checked in the tests on
anisotropic walks in a wrapped triclinic cell; its width is compared side by side with kinisi in
``benchmarks/msd_speed.py``. The atoms are treated as independent series (tracer D); the collective
MSD is one series (the summed displacement). Default window: 10 %..50 % of the trajectory.

``'block'``: independent blocks (kept as a check)
-------------------------------------------------
Points of one MSD curve are strongly correlated (they share time origins and increments), so
the ordinary-least-squares error of the slope underestimates the true scatter by a large
factor. Here the error is taken from *independent replicas*: the trajectory is cut into
``n_blocks`` contiguous, non-overlapping time blocks; each block gives its own MSD and
its own slope over the same lag window. For diffusive motion, blocks longer than the
velocity/jump correlation time are statistically independent, so the standard error of the
mean of the block estimates is an honest 1-sigma for the full-trajectory estimate (block
averaging in the sense of Flyvbjerg & Petersen, J. Chem. Phys. 91, 461 (1989), applied to
the derived quantity D; the use of independent segments for the MSD slope follows the
recommendations of Maginn et al., Living J. Comput. Mol. Sci. 1, 6324 (2019)). Because the
block standard deviation is itself estimated from few blocks, it is multiplied by the
Student-t quantile ``t_{0.8413, n_blocks-1}`` so that the reported interval covers the true
value with ~68% probability. The reported D is the mean of the block estimates, so that
estimate and error bar belong together. It is honest but wide: each block sees only part of the
data, and its sigma is ~4x that of the GLS estimator on the same trajectory (~20x more MD for
the same error bar). Default window: 10 %..50 % of one block.

For both, the ordinary-least-squares slope of the full-trajectory MSD over the same window is
kept as ``D_full_A2_ps``; ``slope``/``intercept`` describe the fitted line (GLS line, or OLS on
the full MSD for blocks) for plotting.

Drift correction (``drift_correction=True``): the displacement of the mass-weighted centre of
mass of the framework (every atom not analysed, or the ``framework`` species) since the first
frame is subtracted from every atom before the MSD, removing a spurious drift of the whole cell
content (e.g. a thermostat that lets the total momentum wander); masses from ``ase.data``.
"""

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats

from aiida_mscale.constants import BOLTZMANN_J, ELEMENTARY_CHARGE

from ._checks import as_positions, as_times, species_indices
from .msd import collective_msd, msd_fft, unwrap_positions
from .msd_gls import MAX_LAGS, fit_lags, gls_msd_fit, msd_tensor

__all__ = [
    'A2PS_TO_CM2S',
    'DiffusivityResult',
    'fit_msd_slope',
    'METHODS',
    'check_fit_window',
    'tracer_diffusivity',
    'collective_diffusivity',
    'haven_ratio',
    'number_density',
    'nernst_einstein_conductivity',
]

#: 1 Angstrom^2/ps in cm^2/s
A2PS_TO_CM2S = 1e-4
#: t-quantile giving a one-sided probability of 0.8413 (= 1 sigma of a normal)
_ONE_SIGMA_QUANTILE = stats.norm.cdf(1.0)
#: estimators of D and its 1-sigma
METHODS = ('gls', 'block')


@dataclass
class DiffusivityResult:
    """Diffusivity with its 1-sigma uncertainty and the data it was fitted on."""

    D_A2_ps: float
    D_A2_ps_err: float
    D_cm2_s: float
    D_cm2_s_err: float
    D_components_A2_ps: np.ndarray  # (dim,) per Cartesian axis, from the per-axis MSD
    D_components_A2_ps_err: np.ndarray
    D_full_A2_ps: float  # OLS on the full-trajectory MSD (no error bar of its own)
    slope: float  # Angstrom^2/ps of the full MSD over the fit window
    intercept: float  # Angstrom^2
    fit_window: tuple  # (t_start, t_end) lag time [ps]
    lag_time: np.ndarray = field(repr=False)  # [ps]
    msd: np.ndarray = field(repr=False)  # [Angstrom^2]
    block_D_A2_ps: np.ndarray = field(repr=False)  # per-block estimates ('block'; empty for 'gls')
    n_blocks: int = 0
    dim: int = 3
    kind: str = 'tracer'
    method: str = 'block'
    fit_lags: np.ndarray = field(default=None, repr=False)  # lags [frames] in the GLS fit ('gls')

    def as_dict(self):
        """Plain dict (numpy arrays kept) for storage."""
        return asdict(self)


def fit_msd_slope(lag_time, msd, fit_window):
    """Ordinary least-squares line ``msd = slope * t + intercept`` over ``fit_window`` [ps].

    Returns (slope [A^2/ps], intercept [A^2], mask of points used). Raises ``ValueError`` if
    the window holds fewer than 3 points.
    """
    t = np.asarray(lag_time, dtype=float)
    y = np.asarray(msd, dtype=float)
    t0, t1 = fit_window
    mask = (t >= t0 - 1e-12) & (t <= t1 + 1e-12)
    if mask.sum() < 3:
        raise ValueError(
            f'too few frames for the fit window {fit_window} ps: {int(mask.sum())} MSD points '
            f'inside (need >= 3); lag times span {t[0]}..{t[-1]} ps'
        )
    tt = t[mask]
    A = np.vstack([tt, np.ones_like(tt)]).T
    coef = np.linalg.lstsq(A, y[mask], rcond=None)[0]
    return coef[0], coef[1], mask


def _resolve_window(fit_window, t_span, dt, n_span_frames, span='each of the blocks'):
    if fit_window is None:
        fit_window = (0.1 * t_span, 0.5 * t_span)
    if len(fit_window) != 2:
        raise ValueError(f'fit window must be (t_start, t_end) [ps], got {fit_window}')
    t0, t1 = (float(v) for v in fit_window)
    if not (np.isfinite(t0) and np.isfinite(t1) and 0 <= t0 < t1):
        raise ValueError(f'fit window must satisfy 0 <= start < end (finite, ps), got {fit_window}')
    if t1 > t_span + 1e-9 * max(dt, 1.0):
        raise ValueError(
            f'too few frames for the fit window: window ends at {t1:.6g} ps but {span} '
            f'spans only {t_span:.6g} ps ({n_span_frames} frames); shorten the window'
            + (', use fewer blocks' if 'block' in span else '')
            + ' or use a longer trajectory'
        )
    npts = int(np.floor(t1 / dt + 1e-9) - max(np.ceil(t0 / dt - 1e-9), 1) + 1)
    if npts < 3:
        raise ValueError(
            f'too few frames for the fit window {fit_window} ps: only {npts} MSD points at '
            f'frame interval {dt} ps (need >= 3)'
        )
    return (t0, t1)


def check_fit_window(times, fit_window=None, n_blocks=5, method='gls'):
    """Check the time axis and the fit window without any positions; returns the window (t0, t1) [ps].

    Raises the same ``ValueError`` as :func:`tracer_diffusivity` would for these settings.
    """
    t = as_times(times, np.atleast_1d(np.asarray(times)).shape[0])
    return _window_for(t, fit_window, n_blocks, method)[0]


def _window_for(t, fit_window, n_blocks, method):
    n_frames = t.shape[0]
    if method not in METHODS:
        raise ValueError(f'method must be one of {list(METHODS)}, got {method!r}')
    if method == 'block':
        if int(n_blocks) != n_blocks or n_blocks < 2:
            raise ValueError(f'n_blocks must be an integer >= 2 to estimate an uncertainty, got {n_blocks}')
        nb = n_frames // n_blocks
        if nb < 4:
            raise ValueError(
                f'too few frames for the fit window: {n_frames} frames in {n_blocks} blocks leaves '
                f'{nb} frames per block (need >= 4)'
            )
        dt = t[1] - t[0]
        return _resolve_window(fit_window, (nb - 1) * dt, dt, nb), nb
    if n_frames < 4:
        raise ValueError(f'too few frames for the fit window: {n_frames} frames (need >= 4)')
    dt = t[1] - t[0]
    return _resolve_window(fit_window, (n_frames - 1) * dt, dt, n_frames, 'the trajectory'), n_frames


def _gls_result(pos, t, kind, weights, window, dim, max_lags):
    """D by generalised least squares on the full-trajectory MSD (see the module docstring)."""
    n_frames = pos.shape[0]
    dt = t[1] - t[0]
    lag = t - t[0]
    if kind == 'tracer':
        series = pos
    else:  # one series: the (weighted) summed displacement / sqrt(N), whose MSD is the collective MSD
        w = np.ones(pos.shape[1]) if weights is None else weights
        series = (np.einsum('fai,a->fi', pos, w) / np.sqrt(pos.shape[1]))[:, None, :]
    tensor = msd_tensor(series, dim)  # (frames, dim, dim)
    m0 = int(np.ceil(window[0] / dt - 1e-9))
    m1 = int(np.floor(window[1] / dt + 1e-9))
    lags = fit_lags(m0, m1, max_lags)
    n_series = series.shape[1]
    total = gls_msd_fit(tensor, lags, n_frames, n_series)
    comp, comp_err = np.empty(dim), np.empty(dim)
    for k in range(dim):
        f = gls_msd_fit(tensor[:, k : k + 1, k : k + 1], lags, n_frames, n_series)
        comp[k], comp_err[k] = f['slope'] / (2 * dt), f['slope_err'] / (2 * dt)
    msd = np.trace(tensor, axis1=1, axis2=2)
    slope_full, _, _ = fit_msd_slope(lag, msd, window)
    D = total['slope'] / dt / (2 * dim)
    D_err = total['slope_err'] / dt / (2 * dim)
    return DiffusivityResult(
        D_A2_ps=float(D),
        D_A2_ps_err=float(D_err),
        D_cm2_s=float(D * A2PS_TO_CM2S),
        D_cm2_s_err=float(D_err * A2PS_TO_CM2S),
        D_components_A2_ps=comp,
        D_components_A2_ps_err=comp_err,
        D_full_A2_ps=float(slope_full / (2 * dim)),
        slope=float(total['slope'] / dt),
        intercept=float(total['intercept']),
        fit_window=window,
        lag_time=lag,
        msd=msd,
        block_D_A2_ps=np.array([]),
        n_blocks=0,
        dim=dim,
        kind=kind,
        method='gls',
        fit_lags=lags,
    )


def _diffusivity(pos, times, kind, weights, fit_window, n_blocks, dim, method='gls', max_lags=MAX_LAGS):
    n_frames = pos.shape[0]
    t = as_times(times, n_frames)
    if dim not in (1, 2, 3):
        raise ValueError(f'dim must be 1, 2 or 3, got {dim}')
    if int(max_lags) != max_lags or max_lags < 3:
        raise ValueError(f'max_lags must be an integer >= 3, got {max_lags}')
    window, nb = _window_for(t, fit_window, n_blocks, method)
    if method == 'gls':
        return _gls_result(pos, t, kind, weights, window, dim, int(max_lags))
    lag = t - t[0]

    def curve(p):
        if kind == 'tracer':
            return msd_fft(p, per_dimension=True).mean(axis=1)  # (frames, 3)
        return collective_msd(p, charges=weights, per_dimension=True)

    full = curve(pos)[:, :dim]
    slope_c, icpt_c, _ = fit_msd_slope(lag, full, window)
    blocks = []
    for b in range(n_blocks):
        c = curve(pos[b * nb : (b + 1) * nb])[:, :dim]
        s_b, _, _ = fit_msd_slope(lag[:nb], c, window)
        blocks.append(s_b / 2.0)  # per-axis D
    blocks = np.asarray(blocks)  # (n_blocks, dim)
    tq = stats.t.ppf(_ONE_SIGMA_QUANTILE, n_blocks - 1)
    comp = blocks.mean(axis=0)
    comp_err = tq * blocks.std(axis=0, ddof=1) / np.sqrt(n_blocks)
    block_total = blocks.mean(axis=1)
    D = block_total.mean()
    D_err = tq * block_total.std(ddof=1) / np.sqrt(n_blocks)
    return DiffusivityResult(
        D_A2_ps=float(D),
        D_A2_ps_err=float(D_err),
        D_cm2_s=float(D * A2PS_TO_CM2S),
        D_cm2_s_err=float(D_err * A2PS_TO_CM2S),
        D_components_A2_ps=comp,
        D_components_A2_ps_err=comp_err,
        D_full_A2_ps=float(np.mean(slope_c) / 2.0),
        slope=float(slope_c.sum()),
        intercept=float(icpt_c.sum()),
        fit_window=window,
        lag_time=lag,
        msd=full.sum(axis=1),
        block_D_A2_ps=block_total,
        n_blocks=n_blocks,
        dim=dim,
        kind=kind,
        method='block',
    )


def _framework_drift(pos, species, target, framework):
    """Displacement of the framework's centre of mass since frame 0, (n_frames, 3) [A]; pos unwrapped."""
    from ase.data import atomic_masses, atomic_numbers

    if species is None:
        raise ValueError('species must be given for the drift correction (to find the framework atoms)')
    sp = np.asarray(species).astype(str)
    if framework is None:
        if target is None:
            raise ValueError('the drift correction needs a target species or `framework` species')
        targets = [target] if isinstance(target, str) else list(target)
        framework = sorted(set(sp.tolist()) - set(targets))
        if not framework:
            raise ValueError('the drift correction needs framework atoms: every atom is of the target species')
    idx = species_indices(sp, framework, pos.shape[1])
    unknown = sorted({x for x in sp[idx] if x not in atomic_numbers})
    if unknown:
        raise ValueError(f'framework species {unknown} are not element symbols (masses unknown)')
    m = np.array([atomic_masses[atomic_numbers[x]] for x in sp[idx]])
    com = np.einsum('fai,a->fi', pos[:, idx], m / m.sum())
    return com - com[0]


def _select(positions, species, target, cells, drift_correction=False, framework=None):
    pos = as_positions(positions)
    if cells is not None:
        pos = unwrap_positions(pos, cells)
    drift = _framework_drift(pos, species, target, framework) if drift_correction else None
    if target is not None:
        if species is None:
            raise ValueError('species must be given to select a target species')
        pos = pos[:, species_indices(species, target, pos.shape[1])]
    if drift is not None:
        pos = pos - drift[:, None, :]
    return pos


def tracer_diffusivity(
    positions,
    times,
    species=None,
    target=None,
    cells=None,
    fit_window=None,
    n_blocks=5,
    dim=3,
    method='gls',
    drift_correction=False,
    framework=None,
    max_lags=MAX_LAGS,
):
    """Tracer (self) diffusivity ``D* = slope / (2 dim)`` of the atom-averaged MSD.

    Parameters
    ----------
    positions : (n_frames, n_atoms, 3) [Angstrom], unwrapped, or wrapped when ``cells`` is given.
    times : (n_frames,) [ps], strictly increasing and uniformly spaced.
    species, target : per-atom symbols and the symbol(s) to analyse (None: all atoms).
    cells : (3, 3) or (n_frames, 3, 3) [Angstrom]; given => positions are unwrapped first.
    fit_window : (t_start, t_end) lag-time window [ps] of the linear regime. Default: 10%..50% of the
        trajectory ('gls') or of one block ('block'; the window must fit inside one block).
    n_blocks : number of independent time blocks for the 'block' uncertainty (>= 2; unused by 'gls').
    dim : dimensionality of the diffusion (3 for bulk; 2 for layers in the xy plane...).
        Only the first ``dim`` Cartesian components are used.
    method : 'gls' (generalised least squares with the MSD covariance, default) or 'block'.
    drift_correction : subtract the framework's centre-of-mass displacement (module docstring).
    framework : framework species for the drift correction (default: every species but ``target``).
    max_lags : largest number of (evenly spaced) lags in the GLS fit.

    Returns
    -------
    :class:`DiffusivityResult` (D in A^2/ps and cm^2/s with 1-sigma, per-axis components).
    """
    pos = _select(positions, species, target, cells, drift_correction, framework)
    return _diffusivity(pos, times, 'tracer', None, fit_window, n_blocks, dim, method, max_lags)


def collective_diffusivity(
    positions,
    times,
    species=None,
    target=None,
    cells=None,
    charges=None,
    fit_window=None,
    n_blocks=5,
    dim=3,
    method='gls',
    drift_correction=False,
    framework=None,
    max_lags=MAX_LAGS,
):
    """Collective ("sigma") diffusivity from the MSD of the summed displacement.

    ``D_sigma = lim <|sum_i q_i dr_i(t)|^2> / (2 dim N t)`` with ``q_i = 1`` by default
    (Murch, Solid State Ionics 7, 177 (1982)); the Haven ratio is ``D* / D_sigma``. With
    ``charges`` the numerator is the charge displacement and ``D_sigma`` feeds a
    conductivity that includes cross-correlations. Parameters as for
    :func:`tracer_diffusivity`; ``charges`` has one entry per atom or per selected atom.
    With 'gls' the summed displacement is one random-walk series (its covariance has no
    averaging over atoms).
    """
    pos = _select(positions, species, target, cells, drift_correction, framework)
    w = None
    if charges is not None:
        w = np.asarray(charges, dtype=float).ravel()
        if not np.all(np.isfinite(w)):
            raise ValueError('charges contain NaN or infinite values')
        n_all = np.asarray(positions).shape[1]
        if target is not None and w.shape[0] == n_all and n_all != pos.shape[1]:
            w = w[species_indices(species, target, n_all)]
        if w.shape[0] != pos.shape[1]:
            raise ValueError(f'charges has {w.shape[0]} entries, expected {pos.shape[1]}')
    return _diffusivity(pos, times, 'collective', w, fit_window, n_blocks, dim, method, max_lags)


def haven_ratio(tracer, collective):
    """Haven ratio ``H_R = D* / D_sigma`` with 1-sigma.

    First-order (delta-method) propagation of the two errors. When both are block results from
    the same trajectory and block settings, the covariance of the two block means is estimated
    from the paired block values and included (tracer and collective MSD share the same
    displacements); otherwise (e.g. GLS results) the two are treated as independent, which
    overstates the error when, as usual, the two estimates are positively correlated. A ratio of block
    ratios is avoided on purpose: single-block collective estimates are noisy and their
    inverse is strongly skewed.

    Returns (H_R, H_R_err).
    """
    if collective.D_A2_ps <= 0 or tracer.D_A2_ps <= 0:
        raise ValueError(
            'tracer and collective diffusivities must be positive for a Haven ratio, got '
            f'{tracer.D_A2_ps} and {collective.D_A2_ps}'
        )
    h = tracer.D_A2_ps / collective.D_A2_ps
    rt = tracer.D_A2_ps_err / tracer.D_A2_ps
    rc = collective.D_A2_ps_err / collective.D_A2_ps
    var = rt**2 + rc**2
    bt, bc = np.asarray(tracer.block_D_A2_ps), np.asarray(collective.block_D_A2_ps)
    if bt.shape == bc.shape and bt.size >= 3:
        n = bt.size
        tq = stats.t.ppf(_ONE_SIGMA_QUANTILE, n - 1)
        cov = tq**2 * np.cov(bt, bc, ddof=1)[0, 1] / n
        var -= 2 * cov / (tracer.D_A2_ps * collective.D_A2_ps)
    return float(h), float(abs(h) * np.sqrt(max(var, 0.0)))


def number_density(n_ions, volume_A3):
    """Number density [cm^-3] of ``n_ions`` in a volume [Angstrom^3] (1 A^3 = 1e-24 cm^3)."""
    v = float(volume_A3)
    if v <= 0:
        raise ValueError(f'volume must be positive, got {volume_A3} A^3')
    if n_ions <= 0:
        raise ValueError(f'number of ions must be positive, got {n_ions}')
    return n_ions / (v * 1e-24)


def nernst_einstein_conductivity(D_cm2_s, number_density_cm3, charge, temperature, haven_ratio=1.0, D_cm2_s_err=0.0):
    """Nernst-Einstein ionic conductivity [S/cm].

    ``sigma = n (z e)^2 D / (H_R k_B T)`` with n [cm^-3], D [cm^2/s], z the charge number,
    T [K]; ``H_R = 1`` gives the uncorrelated (tracer) estimate, pass the Haven ratio, or pass
    D_sigma with ``H_R = 1``, to include ion-ion correlations.

    Returns (sigma, sigma_err) [S/cm]; the error is propagated from ``D_cm2_s_err`` only.
    """
    T = float(temperature)
    if T <= 0:
        raise ValueError(f'temperature must be positive, got {temperature} K')
    if number_density_cm3 <= 0:
        raise ValueError(f'number density must be positive, got {number_density_cm3} cm^-3')
    if haven_ratio <= 0:
        raise ValueError(f'Haven ratio must be positive, got {haven_ratio}')
    # n[cm^-3]*1e6 -> m^-3, D[cm^2/s]*1e-4 -> m^2/s gives S/m; /100 -> S/cm: net factor 1
    pref = number_density_cm3 * (charge * ELEMENTARY_CHARGE) ** 2 / (haven_ratio * BOLTZMANN_J * T)
    return float(pref * D_cm2_s), float(pref * abs(D_cm2_s_err))
