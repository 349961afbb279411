"""Per-atom local-environment descriptors and environment (phase) classification.

Descriptors per atom (neighbours within ``cutoff`` [A], periodic, triclinic):

* ``q4``, ``q6``          Steinhardt bond-orientational order parameters
  ``q_l(i) = sqrt(4 pi / (2l+1) sum_m |q_lm(i)|^2)``, ``q_lm(i) = <Y_lm(r_ij)>_j``
  (Steinhardt, Nelson & Ronchetti, Phys. Rev. B 28, 784 (1983)).
* ``q4_avg``, ``q6_avg``  neighbour-averaged versions, ``q_lm`` averaged over i and its
  neighbours before the norm (Lechner & Dellago, J. Chem. Phys. 129, 114707 (2008)); much
  sharper phase separation under thermal noise.
* ``coordination``        number of neighbours.
* ``cos_mean``, ``cos_std`` mean and spread of the cosines of all neighbour-i-neighbour
  bond angles; ``frac_linear`` the fraction of such angles with cos < -0.9 (nearly
  straight neighbour pairs; 6/66 in fcc, 7/91 in bcc with 14 neighbours, 0 in
  tetrahedral/icosahedral environments).

Classification: descriptors are standardized and clustered with a Gaussian mixture (number
of classes by BIC unless given); a random-forest classifier is then trained on the cluster
labels so that new frames or trajectories are labelled with the *same* classes
(:class:`EnvironmentModel`). :func:`class_fractions` gives the fraction of atoms in each
class per frame, so a growing new phase or interphase shows up as a growing class.
"""

import numpy as np
from scipy.special import sph_harm_y
from sklearn.ensemble import RandomForestClassifier
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

from ._checks import as_cells, as_positions, species_indices
from ._geometry import neighbor_pairs
from .rdf import first_minimum, radial_distribution

__all__ = [
    'DESCRIPTOR_NAMES',
    'steinhardt',
    'local_environment_descriptors',
    'EnvironmentModel',
    'fit_environment_classes',
    'class_fractions',
    'auto_cutoff',
]

DESCRIPTOR_NAMES = ('q4', 'q6', 'q4_avg', 'q6_avg', 'coordination', 'cos_mean', 'cos_std', 'frac_linear')


def _qlm(n_atoms, i, D, deg):
    """Per-atom mean of Y_lm over bonds: (n_atoms, 2l+1) complex; atoms without bonds get 0."""
    r = np.linalg.norm(D, axis=1)
    theta = np.arccos(np.clip(D[:, 2] / r, -1.0, 1.0))
    phi = np.arctan2(D[:, 1], D[:, 0])
    m = np.arange(-deg, deg + 1)
    Y = sph_harm_y(deg, m[None, :], theta[:, None], phi[:, None])  # (n_bonds, 2l+1)
    out = np.zeros((n_atoms, 2 * deg + 1), complex)
    np.add.at(out, i, Y)
    nb = np.bincount(i, minlength=n_atoms)
    return out / np.maximum(nb, 1)[:, None], nb


def _norm_q(qlm, deg):
    return np.sqrt(4 * np.pi / (2 * deg + 1) * np.sum(np.abs(qlm) ** 2, axis=1))


def steinhardt(frame, cell, cutoff, ls=(4, 6)):
    """Steinhardt q_l and neighbour-averaged q_l per atom for one frame.

    ``frame`` (n_atoms, 3) [A], ``cell`` (3, 3) [A], ``cutoff`` [A]. Returns dict with
    ``q{l}``, ``q{l}_avg`` (n_atoms,) for each l in ``ls``, and ``coordination``.
    """
    pos = np.asarray(frame, dtype=float)
    i, j, D = neighbor_pairs(pos, cell, cutoff, 'ijD')
    return _steinhardt_from_pairs(pos.shape[0], i, j, D, ls)


def _steinhardt_from_pairs(n, i, j, D, ls):
    out = {}
    for deg in ls:
        q, nb = _qlm(n, i, D, deg)
        out[f'q{deg}'] = _norm_q(q, deg)
        qa = q.copy()
        np.add.at(qa, i, q[j])  # Lechner-Dellago: sum over i and its neighbours
        out[f'q{deg}_avg'] = _norm_q(qa / (nb + 1)[:, None], deg)
    out['coordination'] = np.bincount(i, minlength=n).astype(float)
    return out


def _angle_stats(n, i, D):
    order = np.argsort(i, kind='stable')
    i, D = i[order], D[order]
    u = D / np.linalg.norm(D, axis=1)[:, None]
    starts = np.searchsorted(i, np.arange(n))
    stops = np.searchsorted(i, np.arange(n), side='right')
    res = np.zeros((n, 3))
    for a in range(n):
        v = u[starts[a] : stops[a]]
        k = v.shape[0]
        if k < 2:
            continue
        c = (v @ v.T)[np.triu_indices(k, 1)]
        res[a] = c.mean(), c.std(), np.mean(c < -0.9)
    return res


def auto_cutoff(positions, cells, frames=None):
    """Neighbour cutoff [A] from the first minimum of the total RDF."""
    r, g = radial_distribution(positions, cells, n_bins=200, frames=frames)
    return first_minimum(r, g)


def local_environment_descriptors(frame, cell, cutoff, species=None, select=None):
    """Descriptor matrix (n_selected, 8) in the order of :data:`DESCRIPTOR_NAMES`.

    ``frame`` (n_atoms, 3) [A]; neighbours are all atoms within ``cutoff`` [A] (any species);
    ``select``: symbol(s) of the atoms to describe (default all).
    """
    pos = np.asarray(frame, dtype=float)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f'frame must have shape (n_atoms, 3), got {pos.shape}')
    if cutoff <= 0:
        raise ValueError(f'cutoff must be positive, got {cutoff}')
    n = pos.shape[0]
    i, j, D = neighbor_pairs(pos, cell, cutoff, 'ijD')
    st = _steinhardt_from_pairs(n, i, j, D, (4, 6))
    ang = _angle_stats(n, i, D)
    X = np.column_stack([st['q4'], st['q6'], st['q4_avg'], st['q6_avg'], st['coordination'], ang])
    if select is not None:
        if species is None:
            raise ValueError('species must be given with select')
        X = X[species_indices(species, select, n)]
    return X


class EnvironmentModel:
    """Environment classes learned from descriptors; labels new data with the same classes.

    Attributes: ``n_classes``, ``centroids`` (n_classes, n_descriptors) in original units,
    ``bic`` {k: BIC}, ``cutoff`` [A] used for the descriptors, ``names``.
    """

    def __init__(self, scaler, mixture, classifier, centroids, bic, cutoff, names=DESCRIPTOR_NAMES):
        self.scaler, self.mixture, self.classifier = scaler, mixture, classifier
        self.centroids, self.bic, self.cutoff, self.names = centroids, bic, cutoff, tuple(names)
        self.n_classes = centroids.shape[0]

    def predict(self, X):
        """Class index per row of a descriptor matrix."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != len(self.names):
            raise ValueError(f'descriptor matrix must have {len(self.names)} columns, got shape {X.shape}')
        return self.classifier.predict(self.scaler.transform(X))

    def predict_frame(self, frame, cell, species=None, select=None):
        """Class index per atom of one frame, using the model's cutoff."""
        return self.predict(local_environment_descriptors(frame, cell, self.cutoff, species, select))


def fit_environment_classes(X, cutoff, n_classes=None, max_classes=6, seed=0, names=DESCRIPTOR_NAMES):
    """Cluster per-atom descriptors into environment classes and train a classifier.

    Parameters
    ----------
    X : (n_samples, n_descriptors) from :func:`local_environment_descriptors` (rows from one
        or several frames). cutoff : neighbour cutoff [A] used to compute X (stored).
    n_classes : fixed number of classes, or None for the BIC choice in 1..max_classes.

    Classes are ordered by increasing mean ``q6_avg`` (if present) for reproducibility.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != len(names):
        raise ValueError(f'X must have {len(names)} columns, got shape {X.shape}')
    if not np.all(np.isfinite(X)):
        raise ValueError('descriptor matrix contains NaN or infinite values')
    kmax = n_classes or max_classes
    if X.shape[0] < 5 * kmax:
        raise ValueError(f'too few atoms ({X.shape[0]}) for up to {kmax} classes')
    scaler = StandardScaler().fit(X)
    scaler.scale_[scaler.scale_ < 1e-12] = 1.0
    Z = scaler.transform(X)
    ks = [n_classes] if n_classes else range(1, max_classes + 1)
    bic, fits = {}, {}
    for k in ks:
        gm = GaussianMixture(k, covariance_type='full', n_init=3, random_state=seed, reg_covar=1e-3).fit(Z)
        bic[k], fits[k] = float(gm.bic(Z)), gm
    k = min(bic, key=bic.get)
    raw = fits[k].predict(Z)
    key = list(names).index('q6_avg') if 'q6_avg' in names else 0
    order = sorted(range(k), key=lambda c: X[raw == c, key].mean() if np.any(raw == c) else np.inf)
    remap = np.empty(k, int)
    remap[order] = np.arange(k)
    labels = remap[raw]
    clf = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1, min_samples_leaf=2).fit(Z, labels)
    cent = np.array([X[labels == c].mean(axis=0) for c in range(k)])
    return EnvironmentModel(scaler, fits[k], clf, cent, bic, cutoff, names)


def class_fractions(positions, cells, model, species=None, select=None, frames=None):
    """Fraction of atoms in each environment class per frame: (n_frames_used, n_classes)."""
    pos = np.asarray(positions, dtype=float)
    if pos.ndim == 2:
        pos = pos[None]
    pos = as_positions(pos)
    h = as_cells(cells, pos.shape[0])
    ids = range(pos.shape[0]) if frames is None else frames
    out = []
    for f in ids:
        lab = model.predict_frame(pos[f], h[f], species, select)
        out.append(np.bincount(lab, minlength=model.n_classes) / lab.size)
    return np.array(out)
