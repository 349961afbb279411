"""Unsupervised diffusion modes: Gaussian-mixture clustering of per-ion descriptors, merged into modes.

Samples are descriptor rows (one per ion and time window, see :func:`.descriptors.ion_descriptors`).

Model selection that does not over-split
----------------------------------------
1. Descriptors that are non-negative and skewed (``displacement``, ``path_length``, ``jump_count``,
   ``cluster_size``, ``mobility`` is already a log) are log-transformed (``log(x + s)`` with a
   physical offset ``s``, see :data:`LOG_OFFSETS`), so that a population is roughly Gaussian, then
   every column is standardised (zero mean, unit variance), with a floor on the scale
   (:data:`MIN_SCALES`) so that a nearly constant descriptor (e.g. a cluster size that is 1 but for a
   passing neighbour) is not blown up into spurious modes. By default the mixture is fitted on the
   motion, site and aggregation descriptors (:data:`MODE_DESCRIPTORS`).
2. A full-covariance Gaussian mixture is fitted by expectation-maximisation for 1..``max_modes``
   components and the number of components is chosen by the Bayesian information criterion
   (Schwarz 1978; Fraley & Raftery, Comput. J. 41, 578 (1998)).
3. BIC chooses the number of Gaussian *components* needed to describe the density, not the number
   of populations: one non-Gaussian population (discrete jump counts, skewed displacements) takes
   several components. Components are therefore merged hierarchically (Hennig, "Methods for merging
   Gaussian mixture components", Adv. Data Anal. Classif. 4, 3 (2010); Baudry et al., J. Comput.
   Graph. Stat. 19, 332 (2010)) into modes. Two clusters are merged when any of these holds:
   * they overlap: the Bhattacharyya distance ``D_B`` of their moment-matched Gaussians
     (Bhattacharyya, Bull. Calcutta Math. Soc. 35, 99 (1943)) is below ``merge_distance`` (1.0);
   * the ions switch between them as if they were one population: over consecutive non-overlapping
     windows of the same ion, the number of switches is more than ``exchange`` (0.75) times the
     number expected if the windows were drawn independently from the two (a persistent state,
     e.g. trapped vs hopping ions, switches rarely; parts of one population switch at random);
   * the label rule gives both the same label and ``D_B < same_label_distance`` (2.3: the Bayes
     error bound ``sqrt(p1 p2) exp(-D_B)`` of two kept modes of the same kind is below 5 %).
   The pair that most clearly qualifies (highest switching ratio, then smallest ``D_B``) is merged
   first, and the moments, switching and labels are recomputed.
A mode is a union of components; a sample belongs to the mode with the largest summed posterior.
Modes are ordered by decreasing mean mobility, so mode 0 is the most mobile.

Label rule (:func:`label_mode`), applied to a mode's centroid (mean descriptors in original units)
and the population mean/std; displacement and site hops are used together:

1. *moving*: mean ``displacement`` >= ``hop_distance`` (default 1.5 A) or mean ``jump_count`` per
   window >= ``min_jumps`` (default 0.5). A moving mode is
   * ``'hopping'`` if it makes site hops (``jump_count >= min_jumps``) and sits on sites most of the
     time (mean ``site_occupancy`` >= ``min_occupancy``, default 0.5; without an occupancy column the
     hops decide),
   * ``'free'`` otherwise (it moves, but not from site to site: a liquid-like or off-site walker).
2. otherwise localized:
   * ``'clustered'``    mean ``cluster_size`` >= ``min_cluster`` (default 3 ions),
   * ``'void-trapped'`` mean ``free_volume`` above the population mean by more than ``void_z``
     (default 1) population standard deviations,
   * ``'vibrating'``    otherwise (localized, isolated, not in an open void).
"""

import numpy as np
from sklearn.mixture import GaussianMixture

__all__ = [
    'LABEL_RULE_DEFAULTS',
    'LOG_OFFSETS',
    'MODE_DESCRIPTORS',
    'label_mode',
    'diffusion_modes',
    'mode_agreement',
    'ion_modes',
    'bhattacharyya_distance',
]

LABEL_RULE_DEFAULTS = {'min_jumps': 0.5, 'hop_distance': 1.5, 'min_occupancy': 0.5, 'min_cluster': 3.0, 'void_z': 1.0}

#: descriptors the modes are found from by default (those present): motion, site hopping and aggregation, the
#: quantities the label rule reads. Structure descriptors (coordination, nearest host, free volume) describe and
#: explain the modes (centroids, :mod:`.importance`) but are not clustered on unless asked (``cluster_on``):
#: their spread within one diffusion population (e.g. a free walker's changing surroundings) splits it.
MODE_DESCRIPTORS = ('displacement', 'path_length', 'tortuosity', 'jump_count', 'site_occupancy', 'cluster_size')

#: smallest standardisation scale of a (transformed) descriptor: differences below it (a factor ~1.6 in motion or
#: cluster size, 20 % in site occupancy) do not separate modes, however narrow the descriptor's spread
MIN_SCALES = {
    'displacement': 0.5,
    'path_length': 0.5,
    'jump_count': 0.5,
    'cluster_size': 0.5,
    'site_occupancy': 0.2,
    'tortuosity': 0.2,
}

#: descriptors clustered as log(x + offset) (offsets in the descriptor's unit: A, hops, ions)
LOG_OFFSETS = {'displacement': 0.3, 'path_length': 0.3, 'jump_count': 1.0, 'cluster_size': 0.0}


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
    hops = centroid.get('jump_count', 0.0) >= p['min_jumps']
    moves = centroid.get('displacement', 0.0) >= p['hop_distance']
    if hops or moves:
        on_sites = centroid.get('site_occupancy', 1.0) >= p['min_occupancy']
        return 'hopping' if hops and on_sites else 'free'
    if centroid.get('cluster_size', 1.0) >= p['min_cluster']:
        return 'clustered'
    if 'free_volume' in centroid and population_mean is not None and population_std is not None:
        sd = population_std.get('free_volume', 0.0)
        if sd > 0 and (centroid['free_volume'] - population_mean['free_volume']) / sd > p['void_z']:
            return 'void-trapped'
    return 'vibrating'


def bhattacharyya_distance(mean1, cov1, mean2, cov2):
    """Bhattacharyya distance between two Gaussians (Bhattacharyya 1943).

    ``D_B = (m1-m2)^T S^-1 (m1-m2) / 8 + ln(det S / sqrt(det S1 det S2)) / 2`` with ``S = (S1 + S2) / 2``.
    """
    d = np.asarray(mean1, dtype=float) - np.asarray(mean2, dtype=float)
    S = 0.5 * (np.asarray(cov1, dtype=float) + np.asarray(cov2, dtype=float))
    _, ld = np.linalg.slogdet(S)
    _, ld1 = np.linalg.slogdet(cov1)
    _, ld2 = np.linalg.slogdet(cov2)
    return float(d @ np.linalg.solve(S, d) / 8.0 + 0.5 * (ld - 0.5 * (ld1 + ld2)))


def _moments(weights, means, covs, members):
    """Weight, mean and covariance of the mixture of the components ``members``."""
    w = weights[members]
    W = w.sum()
    mu = (w[:, None] * means[members]).sum(axis=0) / W
    second = np.einsum('c,cij->ij', w, covs[members] + np.einsum('ci,cj->cij', means[members], means[members])) / W
    return W, mu, second - np.outer(mu, mu)


def _exchange_pairs(ion, window_start, window):
    """Index pairs (a, b) of samples of the same ion whose windows follow each other without overlap."""
    ion = np.asarray(ion).ravel()
    start = np.asarray(window_start).ravel()
    order = np.lexsort((start, ion))
    key = {(int(i), int(s)): int(k) for i, s, k in zip(ion[order], start[order], order)}
    a, b = [], []
    for (i, s), k in key.items():
        nxt = key.get((i, s + int(window)))
        if nxt is not None:
            a.append(k)
            b.append(nxt)
    return np.array(a, dtype=int), np.array(b, dtype=int)


def _exchange_ratio(assign, pairs, x, y):
    """Observed / memoryless-expected switches between clusters x and y over consecutive window pairs."""
    a, b = pairs
    ca, cb = assign[a], assign[b]
    both = np.isin(ca, (x, y)) & np.isin(cb, (x, y))
    n = int(both.sum())
    if n == 0:
        return 0.0
    ca, cb = ca[both], cb[both]
    pi = np.mean(np.r_[ca, cb] == x)
    expected = n * 2 * pi * (1 - pi)
    return float(np.sum(ca != cb) / expected) if expected > 0 else 0.0


def _merge_components(gm, resp, merge_distance, pairs, exchange, label_of=None, same_label_distance=0.0):
    """Hierarchical merging of mixture components (see the module docstring); returns (groups, history).

    ``label_of(assign, cluster)`` gives the rule's label of a cluster: two clusters with the same label are also
    merged while their Bhattacharyya distance is below ``same_label_distance``.
    """
    weights, means, covs = gm.weights_, gm.means_, gm.covariances_
    groups = [[c] for c in range(len(weights))]
    history = []
    while len(groups) > 1:
        mom = [_moments(weights, means, covs, g) for g in groups]
        assign = np.argmax(np.stack([resp[:, g].sum(axis=1) for g in groups], axis=1), axis=1)
        labels = [label_of(assign, c) for c in range(len(groups))] if label_of is not None else [None] * len(groups)
        best, pair = None, None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                dist = bhattacharyya_distance(mom[a][1], mom[a][2], mom[b][1], mom[b][2])
                ratio = _exchange_ratio(assign, pairs, a, b) if pairs is not None else 0.0
                alike = labels[a] is not None and labels[a] == labels[b] and dist < same_label_distance
                merge = dist < merge_distance or ratio > exchange or alike
                score = (merge, ratio, -dist)
                if best is None or score > best:
                    best, pair = score, (a, b)
        history.append({'bhattacharyya': float(-best[2]), 'exchange': float(best[1]), 'merged': bool(best[0])})
        if not best[0]:
            break
        a, b = pair
        groups[a] = groups[a] + groups[b]
        del groups[b]
    return groups, history


def _transform(X, names):
    Z = np.array(X, dtype=float)
    for k, name in enumerate(names):
        if name in LOG_OFFSETS and np.all(Z[:, k] >= 0):
            off = LOG_OFFSETS[name]
            if off == 0 and np.any(Z[:, k] <= 0):
                continue
            Z[:, k] = np.log(Z[:, k] + off)
    return Z


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
    merge_distance=1.0,
    same_label_distance=2.3,
    ion=None,
    window_start=None,
    window=None,
    exchange=0.75,
    **rule,
):
    """Cluster descriptor rows into diffusion modes.

    Parameters
    ----------
    X : (n_samples, n_descriptors) descriptor matrix; names : descriptor names.
    mobility : (n_samples,) e.g. log10 MSD per window, used to order and summarize modes.
    max_modes : largest number of mixture components tried (BIC choice) when ``n_modes`` is None.
    n_modes : fixed number of modes (no BIC choice and no merging).
    seed, n_init : reproducibility and EM restarts.
    reg_covar : variance floor added to each component in standardized units; 0.1 keeps
        components from collapsing onto discrete values (integer jump counts).
    min_relative_spread : descriptors with std < this x (|mean| + std) are left out of the fit
        (listed in ``used_descriptors``); their centroids are still reported.
    cluster_on : names of the descriptors the mixture is fitted on; default: those of
        :data:`MODE_DESCRIPTORS` present (all descriptors if none is), ``'all'``: every descriptor.
        Centroids and labels always use every descriptor, so modes found from the motion
        descriptors are still labelled with their cluster size and free volume.
    merge_distance : components closer than this Bhattacharyya distance are merged into one mode
        (module docstring); ``0`` keeps every BIC component as a mode (with ``exchange`` > the number
        of windows and ``same_label_distance`` 0).
    same_label_distance : clusters the label rule cannot tell apart are merged while closer than this
        (default 2.3: kept apart only if their Bayes misclassification is below ~5 %).
    ion, window_start, window : ion (group) of each sample, first frame of its window and the window
        length [frames]; given, clusters between which the ions switch (over consecutive
        non-overlapping windows) more than ``exchange`` times the memoryless expectation are merged.
    rule : overrides of the label rule thresholds.

    Returns
    -------
    dict with ``labels`` (n_samples,) mode index, ``n_modes``, ``n_components`` (BIC choice), ``bic``
    {k: BIC}, ``merge_distances`` (smallest Bhattacharyya distance at each merge step),
    ``modes``: list of {``index``, ``label``, ``population`` (fraction), ``count``, ``centroid``
    {name: mean}, ``mean_mobility``, ``components``}, ``embedding`` (n_samples, 2) PCA projection of
    the transformed, standardized descriptors (for the mode map), ``used_descriptors`` and the fitted
    ``model``.
    """
    X = np.asarray(X, dtype=float)
    names = list(names)
    if X.ndim != 2 or X.shape[1] != len(names):
        raise ValueError(f'X must be (n_samples, {len(names)}) to match names, got {X.shape}')
    if not np.all(np.isfinite(X)):
        raise ValueError('descriptor matrix contains NaN or infinite values')
    kmax = max_modes if n_modes is None else n_modes
    if int(kmax) != kmax or kmax < 1:
        raise ValueError(f'max_modes / n_modes must be a positive integer, got {kmax}')
    if X.shape[0] < 2 * kmax + 1:
        raise ValueError(f'too few samples ({X.shape[0]}) for up to {kmax} modes')
    if not merge_distance >= 0:
        raise ValueError(f'merge_distance must be >= 0, got {merge_distance}')
    if mobility is not None:
        mobility = np.asarray(mobility, dtype=float).ravel()
        if mobility.shape[0] != X.shape[0]:
            raise ValueError(f'mobility has {mobility.shape[0]} entries, X has {X.shape[0]} rows')
        if not np.all(np.isfinite(mobility)):
            raise ValueError('mobility contains NaN or infinite values')
    # (near-)constant columns carry no information, and standardizing them blows rare tiny
    # deviations (e.g. a coordination number of 7.98 instead of 8) up into spurious modes:
    # columns whose spread is below `min_relative_spread` of their typical magnitude are dropped
    sd = X.std(axis=0)
    keep = sd > min_relative_spread * (np.abs(X.mean(axis=0)) + sd) + 1e-300
    if cluster_on is None:
        cluster_on = [n for n in names if n in MODE_DESCRIPTORS] or names
    elif isinstance(cluster_on, str) and cluster_on == 'all':
        cluster_on = names
    if isinstance(cluster_on, str):
        cluster_on = [cluster_on]
    if True:
        unknown = sorted(set(cluster_on) - set(names))
        if unknown:
            raise ValueError(f'cluster_on names {unknown} are not descriptors; known: {names}')
        keep &= np.isin(names, list(cluster_on))
    if not keep.any():
        raise ValueError('all descriptors are constant: nothing to cluster')
    used = [n for n, kk in zip(names, keep) if kk]
    T = _transform(X[:, keep], used)
    scale = np.maximum(T.std(axis=0), [MIN_SCALES.get(n, 0.0) for n in used])
    Z = (T - T.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    ks = [n_modes] if n_modes is not None else list(range(1, max_modes + 1))
    bic, models = {}, {}
    for k in ks:
        gm = GaussianMixture(k, covariance_type='full', n_init=n_init, random_state=seed, reg_covar=reg_covar).fit(Z)
        bic[k], models[k] = float(gm.bic(Z)), gm
    n_comp = min(bic, key=bic.get)
    gm = models[n_comp]
    resp = gm.predict_proba(Z)
    pairs = None
    if ion is not None or window_start is not None:
        if ion is None or window_start is None or window is None:
            raise ValueError('ion, window_start and window are needed together (exchange between modes)')
        if len(np.ravel(ion)) != X.shape[0] or len(np.ravel(window_start)) != X.shape[0]:
            raise ValueError(f'ion and window_start must have one entry per sample ({X.shape[0]})')
        pairs = _exchange_pairs(ion, window_start, window)
    pop_mean = dict(zip(names, X.mean(axis=0)))
    pop_std = dict(zip(names, X.std(axis=0)))

    def label_of(assign, cluster):
        m = assign == cluster
        return label_mode(dict(zip(names, X[m].mean(axis=0))), pop_mean, pop_std, **rule) if m.any() else None

    if n_modes is None:
        groups, history = _merge_components(gm, resp, merge_distance, pairs, exchange, label_of, same_label_distance)
    else:
        groups, history = [[c] for c in range(n_comp)], []
    raw = np.argmax(np.stack([resp[:, g].sum(axis=1) for g in groups], axis=1), axis=1)
    k = len(groups)
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
                'components': sorted(int(x) for x in groups[order[c]]),
            }
        )
    # 2-D principal-component projection for plotting
    Zc = Z - Z.mean(axis=0)
    _, _, vt = np.linalg.svd(Zc, full_matrices=False)
    emb = Zc @ vt[:2].T if vt.shape[0] >= 2 else np.c_[Zc @ vt[:1].T, np.zeros(len(Z))]
    return {
        'labels': labels,
        'n_modes': k,
        'n_components': n_comp,
        'bic': bic,
        'merge_history': history,
        'modes': modes,
        'embedding': emb,
        'model': gm,
        'used_descriptors': used,
    }


def ion_modes(labels, ion):
    """Mode of each ion: the mode most of its windows belong to (ties: the lower, more mobile mode).

    Returns (ions (n_ions,) sorted ion ids, mode (n_ions,)).
    """
    lab = np.asarray(labels, dtype=int).ravel()
    ids, inv = np.unique(np.asarray(ion).ravel(), return_inverse=True)
    if lab.shape != inv.shape:
        raise ValueError('labels and ion must have the same length')
    counts = np.zeros((ids.size, lab.max() + 1 if lab.size else 1))
    np.add.at(counts, (inv, lab), 1)
    return ids, np.argmax(counts, axis=1)


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
