"""Unsupervised diffusion modes: Gaussian-mixture clustering of per-ion descriptors.

Descriptors (one row per ion and time window, see :func:`.descriptors.ion_descriptors`) are
standardized (zero mean, unit variance per column) and clustered by a full-covariance
Gaussian mixture fitted by expectation-maximization; the number of modes is the one with the
lowest Bayesian information criterion among 1..``max_modes`` (Schwarz 1978; the usual GMM
model-order choice, e.g. Fraley & Raftery, Comput. J. 41, 578 (1998)). Modes are ordered by
decreasing mean mobility, so mode 0 is the most mobile.

Label rule (:func:`label_mode`), applied to a mode's centroid in original units and to the
population mean/std of each descriptor, first match wins:

1. ``'hopping'``      mean ``jump_count`` per window >= ``min_jumps`` (default 0.5), or, if no
                       jump count is available, mean ``displacement`` >= ``hop_distance``
                       (default 1.5 A).
2. ``'clustered'``    mean ``cluster_size`` >= ``min_cluster`` (default 3 ions).
3. ``'void-trapped'`` mean ``free_volume`` exceeds the population mean by more than
                       ``void_z`` (default 1) population standard deviations.
4. ``'vibrating'``    otherwise (localized, not aggregated, not in an open void).
"""

import numpy as np
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

__all__ = ['LABEL_RULE_DEFAULTS', 'label_mode', 'diffusion_modes', 'mode_agreement']

LABEL_RULE_DEFAULTS = {'min_jumps': 0.5, 'hop_distance': 1.5, 'min_cluster': 3.0, 'void_z': 1.0}


def label_mode(centroid, population_mean=None, population_std=None, **rule):
    """Plain-language label of one mode (see the module docstring for the rule).

    ``centroid``, ``population_mean``, ``population_std``: dicts name -> value (original units).
    Keyword overrides of :data:`LABEL_RULE_DEFAULTS`.
    """
    p = dict(LABEL_RULE_DEFAULTS)
    unknown = set(rule) - set(p)
    if unknown:
        raise ValueError(f'unknown label-rule parameters {sorted(unknown)}; known: {sorted(p)}')
    p.update(rule)
    if 'jump_count' in centroid:
        if centroid['jump_count'] >= p['min_jumps']:
            return 'hopping'
    elif 'displacement' in centroid and centroid['displacement'] >= p['hop_distance']:
        return 'hopping'
    if centroid.get('cluster_size', 1.0) >= p['min_cluster']:
        return 'clustered'
    if 'free_volume' in centroid and population_mean is not None and population_std is not None:
        sd = population_std.get('free_volume', 0.0)
        if sd > 0 and (centroid['free_volume'] - population_mean['free_volume']) / sd > p['void_z']:
            return 'void-trapped'
    return 'vibrating'


def diffusion_modes(
    X,
    names,
    mobility=None,
    max_modes=6,
    n_modes=None,
    seed=0,
    n_init=3,
    reg_covar=0.1,
    min_relative_spread=0.01,
    cluster_on=None,
    **rule,
):
    """Cluster descriptor rows into diffusion modes.

    Parameters
    ----------
    X : (n_samples, n_descriptors) descriptor matrix; names : descriptor names.
    mobility : (n_samples,) e.g. log10 MSD per window, used to order and summarize modes.
    max_modes : largest number of mixture components tried (BIC choice) when ``n_modes`` is None.
    seed, n_init : reproducibility and EM restarts.
    reg_covar : variance floor added to each component in standardized units; 0.1 keeps
        components from collapsing onto discrete values (integer jump counts).
    min_relative_spread : descriptors with std < this x (|mean| + std) are left out of the fit
        (listed in ``used_descriptors``); their centroids are still reported.
    cluster_on : names of the descriptors the mixture is fitted on (default: all). Centroids
        and labels always use every descriptor, so e.g. modes found from the motion
        descriptors alone are still labelled with their cluster size and free volume.
    rule : overrides of the label rule thresholds.

    Returns
    -------
    dict with ``labels`` (n_samples,) mode index, ``n_modes``, ``bic`` {k: BIC},
    ``modes``: list of {``index``, ``label``, ``population`` (fraction), ``count``, ``centroid``
    {name: mean}, ``mean_mobility``}, ``embedding`` (n_samples, 2) PCA projection of the
    standardized descriptors (for the mode map), and the fitted ``scaler`` and ``model``.
    """
    X = np.asarray(X, dtype=float)
    names = list(names)
    if X.ndim != 2 or X.shape[1] != len(names):
        raise ValueError(f'X must be (n_samples, {len(names)}) to match names, got {X.shape}')
    if not np.all(np.isfinite(X)):
        raise ValueError('descriptor matrix contains NaN or infinite values')
    kmax = max_modes if n_modes is None else n_modes
    if X.shape[0] < 2 * kmax + 1:
        raise ValueError(f'too few samples ({X.shape[0]}) for up to {kmax} modes')
    if mobility is not None:
        mobility = np.asarray(mobility, dtype=float).ravel()
        if mobility.shape[0] != X.shape[0]:
            raise ValueError(f'mobility has {mobility.shape[0]} entries, X has {X.shape[0]} rows')
    # (near-)constant columns carry no information, and standardizing them blows rare tiny
    # deviations (e.g. a coordination number of 7.98 instead of 8) up into spurious modes:
    # columns whose spread is below `min_relative_spread` of their typical magnitude are dropped
    sd = X.std(axis=0)
    keep = sd > min_relative_spread * (np.abs(X.mean(axis=0)) + sd) + 1e-300
    if cluster_on is not None:
        unknown = sorted(set(cluster_on) - set(names))
        if unknown:
            raise ValueError(f'cluster_on names {unknown} are not descriptors; known: {names}')
        keep &= np.isin(names, list(cluster_on))
    if not keep.any():
        raise ValueError('all descriptors are constant: nothing to cluster')
    scaler = StandardScaler().fit(X[:, keep])
    Z = scaler.transform(X[:, keep])
    ks = [n_modes] if n_modes is not None else list(range(1, max_modes + 1))
    bic, models = {}, {}
    for k in ks:
        gm = GaussianMixture(k, covariance_type='full', n_init=n_init, random_state=seed, reg_covar=reg_covar).fit(Z)
        bic[k], models[k] = float(gm.bic(Z)), gm
    k = min(bic, key=bic.get)
    gm = models[k]
    raw = gm.predict(Z)
    # order modes by decreasing mean mobility (or by the first descriptor if none given)
    score = mobility if mobility is not None else X[:, 0]
    order = sorted(range(k), key=lambda c: -np.mean(score[raw == c]) if np.any(raw == c) else np.inf)
    remap = np.empty(k, int)
    remap[order] = np.arange(k)
    labels = remap[raw]
    mean = dict(zip(names, X.mean(axis=0)))
    std = dict(zip(names, X.std(axis=0)))
    modes = []
    for c in range(k):
        m = labels == c
        cen = dict(zip(names, X[m].mean(axis=0))) if m.any() else dict(zip(names, np.full(len(names), np.nan)))
        modes.append(
            {
                'index': c,
                'label': label_mode(cen, mean, std, **rule),
                'count': int(m.sum()),
                'population': float(m.mean()),
                'centroid': cen,
                'mean_mobility': float(mobility[m].mean()) if mobility is not None and m.any() else None,
            }
        )
    # 2-D principal-component projection for plotting
    Zc = Z - Z.mean(axis=0)
    _, _, vt = np.linalg.svd(Zc, full_matrices=False)
    emb = Zc @ vt[:2].T if vt.shape[0] >= 2 else np.c_[Zc @ vt[:1].T, np.zeros(len(Z))]
    return {
        'labels': labels,
        'n_modes': k,
        'bic': bic,
        'modes': modes,
        'embedding': emb,
        'scaler': scaler,
        'model': gm,
        'used_descriptors': [n for n, kk in zip(names, keep) if kk],
    }


def mode_agreement(labels, truth):
    """Fraction of samples on which two partitions agree under the best label matching.

    Uses the Hungarian assignment on the contingency table (scipy.optimize.linear_sum_assignment).
    """
    from scipy.optimize import linear_sum_assignment

    a, b = np.asarray(labels), np.asarray(truth)
    if a.shape != b.shape:
        raise ValueError('labels and truth must have the same shape')
    ua, ia = np.unique(a, return_inverse=True)
    ub, ib = np.unique(b, return_inverse=True)
    table = np.zeros((ua.size, ub.size))
    np.add.at(table, (ia, ib), 1)
    r, c = linear_sum_assignment(-table)
    return float(table[r, c].sum() / a.size)
