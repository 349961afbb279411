"""Generalised least-squares (GLS) fit of the MSD with the covariance of the MSD across time lags.

Units: frames and lags are integers internally; lag time in ps, MSD in Angstrom^2, slope in
Angstrom^2/ps.

Why
---
The time-origin-averaged MSD at different lags shares time origins and increments, so its points
are strongly correlated and their variance grows with the lag. An ordinary least-squares slope is
inefficient and its textbook error is far too small; independent blocks (the estimator of
:mod:`.diffusion` with ``method='block'``) give an honest but wide error because each block sees
only a fraction of the data. Weighting the residuals with the inverse of the full covariance
matrix (generalised least squares) gives the minimum-variance linear unbiased estimate of the
slope and its exact variance ``(X^T Sigma^-1 X)^-1``. This is the frequentist counterpart of kinisi
(A. R. McCluskey, S. W. Coles, B. J. Morgan, "Accurate estimation of diffusion coefficients and
their uncertainties from computer simulation", arXiv:2305.18244; the `kinisi` package, which
samples the same linear model with the covariance of freely diffusing particles by Bayesian
regression), and follows J. T. Bullerjahn, S. von Buelow, G. Hummer, "Optimal estimates of
self-diffusion coefficients from molecular dynamics simulations", J. Chem. Phys. 153, 024116
(2020), arXiv:2003.09193 (analytic MSD covariance of a random walk with localisation noise).

Model and covariance (analytic)
-------------------------------
Each of ``n_series`` independent series (atoms) is ``x_t = y_t + eta_t``, t = 0..N-1 frames, with
``y`` a random walk whose per-frame steps have covariance tensor ``S`` (``S = 2 D dt`` for an
isotropic walk) and ``eta`` uncorrelated noise of covariance ``A`` (vibration about a site, or the
offset left by the short-time ballistic/caged motion). For the time-origin-averaged MSD at lag m,
``M(m) = (1/n_m) sum_t |x_{t+m} - x_t|^2`` with ``n_m = N - m`` origins,

    E[M(m)] = tr(S) m + 2 tr(A)

and, for Gaussian increments (Isserlis' theorem: Cov(a^2, b^2) = 2 Cov(a, b)^2 per pair of
components),

    Cov[M(m), M(m')] = 2 / (n_series n_m n_m') * sum_{t, t'} tr(C_tt'^2),
    C_tt' = S o(t, t') + A delta(t, t'),

where ``o`` is the number of frame steps shared by the intervals [t, t+m] and [t', t'+m'] and
``delta`` = [t+m = t'+m'] + [t = t'] - [t+m = t'] - [t = t'+m']. The double sum depends on
t' - t only and is evaluated in closed form (power sums), so building the covariance for K lags
costs O(K^2) whatever the trajectory length:

    sum tr(C^2) = tr(S^2) G_ss(m, m') + 2 tr(S A) G_sa(m, m') + tr(A^2) G_aa(m, m').

The tensors S and A are estimated from the data (ordinary least squares on the per-component MSD
tensor over the fit window, projected onto positive semi-definite tensors), the GLS fit of the
total MSD is made with that covariance, S and A are rescaled to the GLS slope and intercept and the
fit is repeated (iteratively reweighted, two passes). Using the tensors (not only the trace)
makes the covariance right for anisotropic diffusion in any orientation.
"""

import numpy as np
from scipy import linalg

from .msd import msd_fft

__all__ = ['msd_covariance_geometry', 'msd_covariance', 'msd_tensor', 'gls_line', 'GlsFit', 'gls_msd_fit', 'fit_lags']

#: default largest number of lags entering the GLS fit (evenly spaced over the window)
MAX_LAGS = 100


def _p2(n):
    """sum_{v=1}^{n} v^2 (0 for n <= 0), float."""
    n = np.maximum(n, 0).astype(float)
    return n * (n + 1) * (2 * n + 1) / 6.0


def _p3(n):
    """sum_{v=1}^{n} v^3 (0 for n <= 0), float."""
    n = np.maximum(n, 0).astype(float)
    return (n * (n + 1) / 2.0) ** 2


def _sum_v2_c_plus_v(c, lo, hi):
    """sum_{v=lo}^{hi} v^2 (c + v) for integer arrays (empty ranges give 0)."""
    lo = np.maximum(lo, 1)  # v = 0 contributes nothing
    ok = hi >= lo
    s2 = _p2(hi) - _p2(lo - 1)
    s3 = _p3(hi) - _p3(lo - 1)
    return np.where(ok, c * s2 + s3, 0.0)


def msd_covariance_geometry(lags, n_frames):
    """Geometric factors of the MSD covariance for integer ``lags`` (>= 1) and ``n_frames`` frames.

    Returns (G_ss, G_sa, G_aa, n_origins), each (K, K) except ``n_origins`` (K,): the double sums over
    time origins defined in the module docstring, for one series and one Cartesian component of unit
    step and noise variance.
    """
    lags = np.asarray(lags, dtype=np.int64)
    N = int(n_frames)
    if lags.ndim != 1 or np.any(lags < 1) or np.any(lags > N - 1):
        raise ValueError(f'lags must be integers in [1, {N - 1}] frames')
    a = np.minimum.outer(lags, lags)  # m <= m'
    b = np.maximum.outer(lags, lags)
    na = N - a  # origins of the shorter lag
    nb = N - b
    # u = t' - t; o(u) = steps shared. Segment 1: o = v = u + m' in [max(1, m'-n_m), m-1], count n_m - m' + v
    g1 = _sum_v2_c_plus_v(na - b, np.maximum(1, b - na), a - 1)
    # segment 2: u in [m - m', 0], o = m, count = n_m'
    g2 = a.astype(float) ** 2 * nb * (b - a + 1)
    # segment 3: u in [1, min(m, n_m')], o = w = m - u, count = n_m' - m + w, w in [max(0, m - n_m'), m - 1]
    g3 = _sum_v2_c_plus_v(nb - a, np.maximum(1, a - nb), a - 1)
    g_ss = g1 + g2 + g3
    # noise terms: delta = +1 at u = m - m' and u = 0 (o = m there, count n_m'), -1 at u = m and u = -m'
    g_sa = 2.0 * a * nb
    cnt_m = np.maximum(nb - a, 0).astype(float)  # count(u = m)
    cnt_mp = np.maximum(na - b, 0).astype(float)  # count(u = -m')
    g_aa = np.where(a == b, 4.0 * na + 2.0 * cnt_m, 2.0 * nb + cnt_m + cnt_mp)
    return g_ss, g_sa, g_aa, (N - lags).astype(float)


def msd_covariance(geometry, S, A, n_series):
    """Covariance matrix [Angstrom^4] of the MSD (summed over components, averaged over ``n_series``).

    ``geometry`` from :func:`msd_covariance_geometry`; ``S`` per-frame step covariance and ``A`` noise
    covariance, (d, d) tensors [Angstrom^2] (or scalars for one component).
    """
    g_ss, g_sa, g_aa, n = geometry
    S = np.atleast_2d(np.asarray(S, dtype=float))
    A = np.atleast_2d(np.asarray(A, dtype=float))
    t_ss, t_sa, t_aa = np.trace(S @ S), np.trace(S @ A), np.trace(A @ A)
    return 2.0 * (t_ss * g_ss + 2.0 * t_sa * g_sa + t_aa * g_aa) / (np.outer(n, n) * n_series)


def msd_tensor(x, dim=3):
    """Time-origin-averaged MSD tensor ``<dx_i dx_j>`` averaged over series: (n_frames, dim, dim) [A^2].

    ``x`` (n_frames, n_series, 3) unwrapped positions. Off-diagonal components come from the MSD of
    the projections on ``e_i + e_j``: ``<(dx_i + dx_j)^2> = <dx_i^2> + <dx_j^2> + 2 <dx_i dx_j>``.
    """
    x = np.asarray(x, dtype=float)[..., :dim]
    diag = msd_fft(x, per_dimension=True).mean(axis=1)  # (frames, dim)
    out = np.zeros((x.shape[0], dim, dim))
    for i in range(dim):
        out[:, i, i] = diag[:, i]
        for j in range(i + 1, dim):
            s = msd_fft((x[..., i] + x[..., j])[..., None])  # (frames, series)
            out[:, i, j] = out[:, j, i] = 0.5 * (s.mean(axis=1) - diag[:, i] - diag[:, j])
    return out


def gls_line(t, y, cov):
    """GLS fit of ``y = slope t + intercept`` with covariance ``cov``; returns (coef (2,), cov_coef (2, 2)).

    A covariance that is not numerically positive definite gets a small diagonal jitter (relative
    1e-12, growing until its Cholesky factor exists).
    """
    X = np.vstack([t, np.ones_like(t)]).T
    cov = np.asarray(cov, dtype=float)
    scale = np.max(np.diag(cov)) if np.max(np.diag(cov)) > 0 else 1.0
    jitter = 0.0
    for _ in range(12):
        try:
            c = linalg.cho_factor(cov + jitter * scale * np.eye(len(t)), lower=True)
            break
        except linalg.LinAlgError:
            jitter = 1e-12 if jitter == 0 else jitter * 10
    else:  # pragma: no cover - only for pathological input
        raise ValueError('the MSD covariance is not positive definite')
    ci_x = linalg.cho_solve(c, X)
    F = X.T @ ci_x
    cov_coef = np.linalg.inv(F)
    coef = cov_coef @ (ci_x.T @ y)
    return coef, cov_coef


def _psd(T):
    """Nearest positive semi-definite symmetric tensor (negative eigenvalues set to zero)."""
    T = 0.5 * (T + T.T)
    w, v = np.linalg.eigh(T)
    return (v * np.maximum(w, 0.0)) @ v.T


class GlsFit(dict):
    """Result of :func:`gls_msd_fit` (a dict): ``slope`` [A^2 per frame], ``slope_err``, ``intercept`` [A^2],
    ``intercept_err``, ``cov`` (2, 2), ``lags`` (frames), ``S`` and ``A`` (tensors [A^2])."""


def fit_lags(m0, m1, max_lags=MAX_LAGS):
    """Integer lags in [max(1, m0), m1] (frames), at most ``max_lags`` of them, evenly spaced."""
    m0 = max(1, int(m0))
    m1 = int(m1)
    if m1 - m0 + 1 <= max_lags:
        return np.arange(m0, m1 + 1)
    return np.unique(np.round(np.linspace(m0, m1, max_lags)).astype(int))


def gls_msd_fit(tensor, lags, n_frames, n_series, n_iter=2):
    """GLS line through the trace of the MSD tensor at ``lags`` with the random-walk-plus-noise covariance.

    Parameters
    ----------
    tensor : (n_frames, d, d) MSD tensor [A^2] (:func:`msd_tensor`), lag index = frame lag.
    lags : integer lags (frames) used in the fit (>= 3 of them).
    n_frames : trajectory length in frames (number of time origins at lag m is n_frames - m).
    n_series : number of independent series averaged in the MSD (atoms; 1 for a collective MSD).

    Returns
    -------
    :class:`GlsFit` with the slope per frame (divide by dt for A^2/ps) and its 1-sigma.
    """
    lags = np.asarray(lags, dtype=int)
    m = lags.astype(float)
    Y = np.asarray(tensor, dtype=float)[lags]  # (K, d, d)
    d = Y.shape[1]
    # ordinary least squares per component: M_ij(m) = S_ij m + 2 A_ij
    X = np.vstack([m, np.ones_like(m)]).T
    coef = np.linalg.lstsq(X, Y.reshape(len(m), -1), rcond=None)[0]
    S = _psd(coef[0].reshape(d, d))
    A = _psd(coef[1].reshape(d, d) / 2.0)
    geometry = msd_covariance_geometry(lags, n_frames)
    y = np.trace(Y, axis1=1, axis2=2)
    for _ in range(max(1, n_iter)):
        cov = msd_covariance(geometry, S, A, n_series)
        beta, cov_beta = gls_line(m, y, cov)
        tr_s, tr_a = np.trace(S), np.trace(A)
        if tr_s > 0 and beta[0] > 0:
            S = S * (beta[0] / tr_s)
        if tr_a > 0:
            A = A * (max(beta[1], 0.0) / (2.0 * tr_a))
    return GlsFit(
        slope=float(beta[0]),
        slope_err=float(np.sqrt(cov_beta[0, 0])),
        intercept=float(beta[1]),
        intercept_err=float(np.sqrt(cov_beta[1, 1])),
        cov=cov_beta,
        lags=lags,
        S=S,
        A=A,
    )
