"""Temperature dependence of a transport coefficient: Arrhenius, two-regime, VTF.

Units: temperature in K, activation energy in eV, the coefficient (D in cm^2/s, sigma in
S/cm, ... any positive quantity) in the units given; prefactors in the same units.

Models (fitted to ln y, weighted by the relative uncertainty ``sigma_y / y``):

* ``arrhenius``      ``ln y = ln A - Ea / (k_B T)``                            (2 parameters)
* ``two_regime``     continuous broken line in ``x = 1/T`` with a break point
  ``x_b``: slopes ``-Ea_low/k_B`` for ``T < T_b`` and ``-Ea_high/k_B`` above  (4 parameters)
* ``vtf``            Vogel-Tammann-Fulcher ``ln y = ln A - B / (T - T0)``, B in K  (3 parameters)

The two non-linear models are solved exactly for their linear parameters on a fine grid of
the non-linear one (x_b or T0) and then refined with ``scipy.optimize.least_squares``;
parameter covariances come from the Jacobian at the optimum (absolute when uncertainties
are given, scaled by the reduced chi^2 otherwise).

Model choice uses the small-sample corrected Akaike criterion
``AICc = -2 ln L + 2k + 2k(k+1)/(n-k-1)`` (Hurvich & Tsai, Biometrika 76, 297 (1989)) or the
Bayesian criterion ``BIC = -2 ln L + k ln n`` (Schwarz, Ann. Stat. 6, 461 (1978)). With
known uncertainties ``-2 ln L = chi^2`` (+const.); without, ``n ln(RSS/n)``. The verdict is
'non-arrhenius' only if a curved model beats Arrhenius by more than ``delta`` (default 2,
"substantial support" in Burnham & Anderson, Model Selection and Multimodel Inference,
2002), otherwise the simpler Arrhenius law is kept.

The apparent activation energy is ``Ea_app(T) = -k_B d ln y / d(1/T)``; for VTF it is
``k_B B T^2 / (T - T0)^2``.
"""

import numpy as np
from scipy import optimize

from aiida_mscale.constants import BOLTZMANN_EV

__all__ = [
    'BOLTZMANN_EV',
    'arrhenius_fit',
    'two_regime_fit',
    'vtf_fit',
    'information_criteria',
    'compare_models',
    'apparent_activation_energy',
    'extrapolate',
]


def _prepare(temperature, values, errors):
    T = np.asarray(temperature, dtype=float).ravel()
    y = np.asarray(values, dtype=float).ravel()
    if T.shape != y.shape:
        raise ValueError(f'temperature ({T.shape[0]}) and values ({y.shape[0]}) differ in length')
    if T.size < 3:
        raise ValueError(f'at least 3 temperatures are needed for a fit, got {T.size}')
    if np.any(T <= 0) or not np.all(np.isfinite(T)):
        raise ValueError('temperatures must be finite and positive (K)')
    if np.any(y <= 0) or not np.all(np.isfinite(y)):
        raise ValueError('values must be finite and positive (they are fitted on a log scale)')
    if len(np.unique(T)) < 2:
        raise ValueError('at least two distinct temperatures are needed')
    if errors is None:
        s = None
    else:
        e = np.asarray(errors, dtype=float).ravel()
        if e.shape != y.shape:
            raise ValueError(f'errors ({e.shape[0]}) and values ({y.shape[0]}) differ in length')
        if np.any(e <= 0) or not np.all(np.isfinite(e)):
            raise ValueError('errors must be finite and positive')
        s = e / y  # error of ln y
    order = np.argsort(T)
    return T[order], np.log(y[order]), (None if s is None else s[order])


def _wls(A, z, s):
    """Weighted linear least squares; returns (coef, cov, chi2/rss)."""
    w = np.ones_like(z) if s is None else 1.0 / s
    Aw, zw = A * w[:, None], z * w
    coef, *_ = np.linalg.lstsq(Aw, zw, rcond=None)
    r = zw - Aw @ coef
    chi2 = float(r @ r)
    cov = np.linalg.pinv(Aw.T @ Aw)
    if s is None:
        dof = max(len(z) - A.shape[1], 1)
        cov = cov * chi2 / dof
    return coef, cov, chi2


def _finish(name, params, cov, chi2, n, k, s, extra):
    out = {
        'model': name,
        'params': dict(zip(extra['names'], params)),
        'cov': cov,
        'n': n,
        'k': k,
        'chi2' if s is not None else 'rss': chi2,
        'weighted': s is not None,
    }
    out['neg2_loglike'] = chi2 if s is not None else n * np.log(max(chi2, 1e-300) / n)
    out.update({kk: v for kk, v in extra.items() if kk != 'names'})
    return out


def arrhenius_fit(temperature, values, errors=None):
    """Weighted Arrhenius fit ``y = A exp(-Ea / (k_B T))``.

    Parameters
    ----------
    temperature : (n,) [K]; values : (n,) positive (e.g. D in cm^2/s);
    errors : (n,) 1-sigma of the values (same units) or None (unweighted, errors from
        the residual scatter).

    Returns
    -------
    dict with ``Ea`` [eV], ``Ea_err``, ``prefactor`` (A, units of y), ``prefactor_err``,
    ``ln_prefactor``/``ln_prefactor_err``, ``params`` (ln_A, slope=-Ea/k_B [K]), ``cov``,
    ``chi2`` or ``rss``, ``neg2_loglike``, ``n``, ``k``.
    """
    T, z, s = _prepare(temperature, values, errors)
    A = np.vstack([np.ones_like(T), 1.0 / T]).T
    coef, cov, chi2 = _wls(A, z, s)
    lnA, slope = coef
    Ea = -slope * BOLTZMANN_EV
    Ea_err = np.sqrt(cov[1, 1]) * BOLTZMANN_EV
    lnA_err = np.sqrt(cov[0, 0])
    return _finish(
        'arrhenius',
        coef,
        cov,
        chi2,
        T.size,
        2,
        s,
        {
            'names': ('ln_A', 'slope'),
            'Ea': float(Ea),
            'Ea_err': float(Ea_err),
            'ln_prefactor': float(lnA),
            'ln_prefactor_err': float(lnA_err),
            'prefactor': float(np.exp(lnA)),
            'prefactor_err': float(np.exp(lnA) * lnA_err),
        },
    )


def _two_regime_design(x, xb):
    return np.vstack([np.ones_like(x), np.minimum(x - xb, 0.0), np.maximum(x - xb, 0.0)]).T


def two_regime_fit(temperature, values, errors=None, n_grid=400, min_points=2):
    """Two Arrhenius regimes joined continuously at a break temperature ``T_b``.

    ``ln y = c + s_hi * min(x - x_b, 0) + s_lo * max(x - x_b, 0)``, ``x = 1/T``, with
    ``Ea_high = -k_B s_hi`` (above T_b, small x) and ``Ea_low = -k_B s_lo`` (below T_b).
    Each regime holds at least ``min_points`` temperatures.

    Returns dict with ``T_break`` [K] (+ ``T_break_err``), ``Ea_low``, ``Ea_high`` [eV] and errors,
    ``params`` (c, s_hi, s_lo, x_b), ``cov`` and fit statistics as :func:`arrhenius_fit`.
    """
    T, z, s = _prepare(temperature, values, errors)
    n = T.size
    if n < 2 * min_points + 1:
        raise ValueError(f'two-regime fit needs at least {2 * min_points + 1} temperatures, got {n}')
    x = 1.0 / T[::-1]
    zz = z[::-1]
    ss = None if s is None else s[::-1]
    # break point between the min_points-th and the (n-min_points)-th x
    lo, hi = x[min_points - 1], x[n - min_points]
    best = None
    for xb in np.linspace(lo, hi, n_grid):
        coef, _, chi2 = _wls(_two_regime_design(x, xb), zz, ss)
        if best is None or chi2 < best[0]:
            best = (chi2, xb, coef)
    w = np.ones_like(zz) if ss is None else 1.0 / ss

    def resid(p):
        return (p[0] + p[1] * np.minimum(x - p[3], 0) + p[2] * np.maximum(x - p[3], 0) - zz) * w

    p0 = np.r_[best[2], best[1]]
    sol = optimize.least_squares(
        resid, p0, bounds=([-np.inf] * 3 + [lo], [np.inf] * 3 + [hi]), x_scale=[1.0, 1e3, 1e3, 1e-4]
    )
    p = sol.x if 2 * sol.cost <= best[0] else p0
    r = resid(p)
    chi2 = float(r @ r)
    J = _jac(resid, p)
    cov = np.linalg.pinv(J.T @ J)
    if ss is None:
        cov = cov * chi2 / max(n - 4, 1)
    c, s_hi, s_lo, xb = p
    err = np.sqrt(np.clip(np.diag(cov), 0, None))
    Tb = 1.0 / xb
    return _finish(
        'two_regime',
        p,
        cov,
        chi2,
        n,
        4,
        s,
        {
            'names': ('c', 's_high', 's_low', 'x_break'),
            'T_break': float(Tb),
            'T_break_err': float(err[3] / xb**2),
            'Ea_high': float(-s_hi * BOLTZMANN_EV),
            'Ea_high_err': float(err[1] * BOLTZMANN_EV),
            'Ea_low': float(-s_lo * BOLTZMANN_EV),
            'Ea_low_err': float(err[2] * BOLTZMANN_EV),
        },
    )


def _jac(fun, p):
    """Central-difference Jacobian of a residual function."""
    p = np.asarray(p, dtype=float)
    f0 = fun(p)
    J = np.empty((f0.size, p.size))
    for i in range(p.size):
        h = 1e-6 * max(abs(p[i]), 1e-8)
        dp = np.zeros_like(p)
        dp[i] = h
        J[:, i] = (fun(p + dp) - fun(p - dp)) / (2 * h)
    return J


def vtf_fit(temperature, values, errors=None, n_grid=400):
    """Vogel-Tammann-Fulcher fit ``y = A exp(-B / (T - T0))``, B [K], 0 <= T0 < min(T).

    The pseudo-activation energy ``Ea_VTF = k_B B`` [eV] is also reported.

    Returns dict with ``A``, ``B`` [K], ``T0`` [K] (each with ``_err`` from the Jacobian),
    ``Ea_vtf`` [eV], ``params`` (ln_A, B, T0), ``cov`` and fit statistics as
    :func:`arrhenius_fit`, plus ``T0_profile`` = (T0 grid, -2 delta ln L) and ``T0_interval``,
    the 68% profile-likelihood interval (delta = 1) of T0, which is more trustworthy than
    ``T0_err`` because ln y is far from linear in T0.
    """
    T, z, s = _prepare(temperature, values, errors)
    n = T.size
    if n < 4:
        raise ValueError(f'VTF fit needs at least 4 temperatures, got {n}')
    tmax = T.min() * (1 - 1e-3)
    w = np.ones_like(z) if s is None else 1.0 / s
    best = None
    grid = np.linspace(0.0, tmax, n_grid, endpoint=False)
    prof = np.full(grid.size, np.inf)
    for g, T0 in enumerate(grid):
        A = np.vstack([np.ones_like(T), -1.0 / (T - T0)]).T
        coef, _, chi2 = _wls(A, z, s)
        if coef[1] > 0:
            prof[g] = chi2
            if best is None or chi2 < best[0]:
                best = (chi2, T0, coef)
    if best is None:
        raise ValueError('no VTF solution with B > 0: the data do not decrease with 1/T')

    def resid(p):
        return (p[0] - p[1] / (T - p[2]) - z) * w

    p0 = np.r_[best[2], best[1]]
    sol = optimize.least_squares(
        resid, p0, bounds=([-np.inf, 0.0, 0.0], [np.inf, np.inf, tmax]), x_scale=[1.0, 100.0, 10.0]
    )
    p = sol.x if 2 * sol.cost <= best[0] else p0
    r = resid(p)
    chi2 = float(r @ r)
    J = _jac(resid, p)
    cov = np.linalg.pinv(J.T @ J)
    if s is None:
        cov = cov * chi2 / max(n - 3, 1)
    err = np.sqrt(np.clip(np.diag(cov), 0, None))
    # profile likelihood of T0 (linear parameters re-optimized at each T0): -2 ln L up to a const
    m2 = prof if s is not None else n * np.log(np.maximum(prof, 1e-300) / n)
    m2min = min(np.min(m2), chi2 if s is not None else n * np.log(max(chi2, 1e-300) / n))
    inside = grid[m2 - m2min <= 1.0]
    interval = (float(inside.min()), float(inside.max())) if inside.size else (float(p[2]), float(p[2]))
    return _finish(
        'vtf',
        p,
        cov,
        chi2,
        n,
        3,
        s,
        {
            'T0_profile': (grid, m2 - m2min),
            'T0_interval': interval,
            'names': ('ln_A', 'B', 'T0'),
            'A': float(np.exp(p[0])),
            'A_err': float(np.exp(p[0]) * err[0]),
            'B': float(p[1]),
            'B_err': float(err[1]),
            'T0': float(p[2]),
            'T0_err': float(err[2]),
            'Ea_vtf': float(p[1] * BOLTZMANN_EV),
            'Ea_vtf_err': float(err[1] * BOLTZMANN_EV),
        },
    )


def information_criteria(fit):
    """AICc and BIC of a fit dict (``inf`` AICc when n <= k + 1)."""
    n, k, m2 = fit['n'], fit['k'], fit['neg2_loglike']
    aicc = m2 + 2 * k + (2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else np.inf)
    bic = m2 + k * np.log(n)
    return {'AICc': float(aicc), 'BIC': float(bic)}


def compare_models(temperature, values, errors=None, criterion='AICc', delta=2.0, extrapolate_to=300.0):
    """Fit Arrhenius, two-regime and VTF models and decide which holds.

    Parameters
    ----------
    temperature, values, errors : as :func:`arrhenius_fit`.
    criterion : 'AICc' or 'BIC'.
    delta : a curved model must lower the criterion by more than this to overturn Arrhenius.
    extrapolate_to : temperature [K] for the extrapolation of the best model (None: skip).

    Returns
    -------
    dict with ``verdict`` ('arrhenius' or 'non-arrhenius'), ``best_model`` ('arrhenius',
    'two_regime' or 'vtf'), ``criteria`` {model: {'AICc', 'BIC'}}, ``fits`` {model: fit dict},
    ``skipped`` {model: reason} for models with too few points, ``apparent_Ea`` [eV] of the
    best model at the input temperatures (sorted), ``extrapolation`` (see :func:`extrapolate`;
    None with ``extrapolation_error`` when the best model is undefined there, e.g. VTF below T0).
    """
    if criterion not in ('AICc', 'BIC'):
        raise ValueError(f"criterion must be 'AICc' or 'BIC', got {criterion!r}")
    fits, skipped = {}, {}
    fits['arrhenius'] = arrhenius_fit(temperature, values, errors)
    for name, fn in (('two_regime', two_regime_fit), ('vtf', vtf_fit)):
        try:
            fits[name] = fn(temperature, values, errors)
        except ValueError as exc:
            skipped[name] = str(exc)
    crit = {name: information_criteria(f) for name, f in fits.items()}
    ref = crit['arrhenius'][criterion]
    best, best_val = 'arrhenius', ref
    for name in ('two_regime', 'vtf'):
        if name in crit and np.isfinite(crit[name][criterion]):
            val = crit[name][criterion]
            if val < ref - delta and val < best_val:
                best, best_val = name, val
    T_sorted = np.sort(np.asarray(temperature, dtype=float).ravel())
    out = {
        'verdict': 'arrhenius' if best == 'arrhenius' else 'non-arrhenius',
        'best_model': best,
        'criterion': criterion,
        'criteria': crit,
        'fits': fits,
        'skipped': skipped,
        'temperature': T_sorted,
        'apparent_Ea': apparent_activation_energy(fits[best], T_sorted),
        'extrapolation': None,
        'extrapolation_error': None,
    }
    if extrapolate_to is not None:
        try:
            out['extrapolation'] = extrapolate(fits[best], extrapolate_to)
        except ValueError as exc:
            out['extrapolation_error'] = str(exc)
    return out


def _ln_model(fit, T):
    p = np.array(list(fit['params'].values()), dtype=float)
    T = np.asarray(T, dtype=float)
    m = fit['model']

    def f(q):
        if m == 'arrhenius':
            return q[0] + q[1] / T
        if m == 'two_regime':
            x = 1.0 / T
            return q[0] + q[1] * np.minimum(x - q[3], 0) + q[2] * np.maximum(x - q[3], 0)
        if m == 'vtf':
            return q[0] - q[1] / (T - q[2])
        raise ValueError(f'unknown model {m!r}')

    return f, p


def apparent_activation_energy(fit, temperature):
    """Apparent activation energy ``Ea_app(T) = -k_B d ln y / d(1/T)`` [eV] of a fit dict."""
    T = np.atleast_1d(np.asarray(temperature, dtype=float))
    if np.any(T <= 0):
        raise ValueError('temperatures must be positive (K)')
    m, p = fit['model'], np.array(list(fit['params'].values()))
    if m == 'arrhenius':
        return np.full_like(T, -p[1] * BOLTZMANN_EV)
    if m == 'two_regime':
        return np.where(1.0 / T < p[3], -p[1], -p[2]) * BOLTZMANN_EV
    if m == 'vtf':
        if np.any(T <= p[2]):
            raise ValueError(f'VTF apparent Ea undefined at T <= T0 = {p[2]:.1f} K')
        return BOLTZMANN_EV * p[1] * T**2 / (T - p[2]) ** 2
    raise ValueError(f'unknown model {m!r}')


def extrapolate(fit, temperature=300.0):
    """Model value at ``temperature`` [K] with a 1-sigma band from the parameter covariance.

    The band is ``y * exp(+-sigma_ln)`` with ``sigma_ln^2 = g^T C g`` (g: gradient of ln y
    with respect to the parameters, delta method).

    Returns dict with ``temperature``, ``value``, ``lower``, ``upper``, ``ln_value``, ``ln_err``.
    """
    T = float(temperature)
    if T <= 0:
        raise ValueError('temperature must be positive (K)')
    if fit['model'] == 'vtf' and T <= fit['params']['T0']:
        raise ValueError(f'VTF law undefined at T = {T} K <= T0 = {fit["params"]["T0"]:.1f} K')
    f, p = _ln_model(fit, np.array([T]))
    g = np.empty(p.size)
    for i in range(p.size):
        h = 1e-6 * max(abs(p[i]), 1e-8)
        dp = np.zeros_like(p)
        dp[i] = h
        g[i] = (f(p + dp)[0] - f(p - dp)[0]) / (2 * h)
    ln_v = float(f(p)[0])
    ln_err = float(np.sqrt(max(g @ fit['cov'] @ g, 0.0)))
    with np.errstate(over='ignore'):  # an unbounded band (e.g. VTF close to T0) gives inf
        return {
            'temperature': T,
            'value': float(np.exp(ln_v)),
            'lower': float(np.exp(ln_v - ln_err)),
            'upper': float(np.exp(ln_v + ln_err)),
            'ln_value': ln_v,
            'ln_err': ln_err,
        }
