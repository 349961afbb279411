"""Periodic geometry helpers (triclinic cells, rows = lattice vectors, Angstrom).

Neighbour lists: the atoms are wrapped into the cell, every periodic image whose fractional
coordinates lie within ``cutoff / width_k`` of the cell (width_k the perpendicular widths) is
added to a padded set, and pairs are found with a k-d tree (``scipy.spatial.cKDTree``). This is
exact for any triclinic cell and any cutoff (including cutoffs larger than the cell).
"""

import numpy as np
from scipy.spatial import cKDTree

from ._checks import as_frame

__all__ = [
    'neighbor_pairs',
    'cross_pairs',
    'PaddedTree',
    'minimum_image_vectors',
    'perpendicular_widths',
    'cell_volume',
]

_SHIFTS = np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing='ij')).reshape(3, -1).T


def perpendicular_widths(cell):
    """Distances between opposite faces of the cell [Angstrom], shape (3,)."""
    h = np.asarray(cell, dtype=float)
    vol = abs(np.linalg.det(h))
    return np.array([vol / np.linalg.norm(np.cross(h[(k + 1) % 3], h[(k + 2) % 3])) for k in range(3)])


def cell_volume(cell):
    """Cell volume [Angstrom^3]."""
    return float(abs(np.linalg.det(np.asarray(cell, dtype=float))))


def neighbor_pairs(positions, cell, cutoff, quantities='ijdD'):
    """All ordered pairs (i, j), i != j (images of i itself included), closer than ``cutoff``.

    ``positions`` (n_atoms, 3) [Angstrom], fully periodic ``cell`` (3, 3). ``quantities`` is a
    string of 'i' (first index), 'j' (second index), 'd' (distance), 'D' (vector from i to j's
    image); one array per letter is returned, as a tuple (or the array alone for one letter).
    """
    pos, h = as_frame(positions, cell, 'positions')
    cutoff = float(cutoff)
    if not cutoff > 0 or not np.isfinite(cutoff):
        raise ValueError(f'cutoff must be positive, got {cutoff}')
    frac = pos @ np.linalg.inv(h)
    frac -= np.floor(frac)
    wpos = frac @ h
    c = cutoff / perpendicular_widths(h)
    nrep = np.ceil(c).astype(int)
    rng = [np.arange(-r, r + 1) for r in nrep]
    shifts = np.array(np.meshgrid(*rng, indexing='ij')).reshape(3, -1).T
    img_frac = frac[None, :, :] + shifts[:, None, :]  # (n_shift, n, 3)
    keep = np.all((img_frac >= -c - 1e-12) & (img_frac <= 1 + c + 1e-12), axis=-1)
    s_idx, a_idx = np.nonzero(keep)
    padded = img_frac[s_idx, a_idx] @ h
    coo = cKDTree(wpos).sparse_distance_matrix(cKDTree(padded), cutoff, output_type='coo_matrix')
    i, k = coo.row, coo.col
    j = a_idx[k]
    D = padded[k] - wpos[i]
    d = np.linalg.norm(D, axis=1)
    ok = (d < cutoff) & ~((i == j) & (d < 1e-10))  # strict cutoff; drop the atom itself
    i, j, D, d = i[ok], j[ok], D[ok], d[ok]
    order = np.lexsort((j, i))
    vals = {'i': i[order], 'j': j[order], 'd': d[order], 'D': D[order]}
    out = tuple(vals[q] for q in quantities)
    return out[0] if len(out) == 1 else out


class PaddedTree:
    """k-d tree over the periodic images of ``points`` (n, 3) [A] that lie within ``cutoff`` of the cell.

    Every point closer than ``cutoff`` to any position inside the cell is represented by at least one image
    in the tree, so queries from wrapped positions find all periodic neighbours within ``cutoff`` (exact for
    any triclinic cell and any cutoff). ``index`` maps tree entries back to the original points.
    """

    def __init__(self, points, cell, cutoff):
        pts, h = as_frame(points, cell, 'points')
        self.cell = h
        self.cutoff = float(cutoff)
        self.inv = np.linalg.inv(h)
        frac = pts @ self.inv
        frac -= np.floor(frac)
        c = self.cutoff / perpendicular_widths(h)
        nrep = np.ceil(c).astype(int)
        shifts = np.array(np.meshgrid(*[np.arange(-r, r + 1) for r in nrep], indexing='ij')).reshape(3, -1).T
        index, images = [], []
        for shift in shifts:  # one shift at a time: memory linear in the number of points
            img = frac + shift
            keep = np.flatnonzero(np.all((img >= -c - 1e-12) & (img <= 1 + c + 1e-12), axis=1))
            index.append(keep)
            images.append(img[keep])
        self.index = np.concatenate(index)
        self.points = np.concatenate(images) @ h
        self.tree = cKDTree(self.points)

    def nearest(self, query, k=1, exclude=None):
        """Distance [A] to, and index of, the nearest point (``k``-th nearest allowed to skip ``exclude``).

        ``query`` (m, 3) [A]; ``exclude`` (m,) point index to ignore per query (e.g. the query atom itself),
        or None. Points farther than the tree's cutoff are not found: distance ``inf``, index -1.
        """
        q = self.wrap(query)
        n_k = 1 if exclude is None else 2
        d, t = self.tree.query(q, k=n_k, distance_upper_bound=self.cutoff * (1 + 1e-12))
        d, t = d.reshape(len(q), n_k), t.reshape(len(q), n_k)
        found = np.isfinite(d) & (d <= self.cutoff)
        idx = np.where(found, self.index[np.minimum(t, len(self.index) - 1)], -1)
        d = np.where(found, d, np.inf)
        if exclude is not None:
            own = idx[:, 0] == np.asarray(exclude)
            d = np.where(own, d[:, 1], d[:, 0])
            idx = np.where(own, idx[:, 1], idx[:, 0])
        else:
            d, idx = d[:, 0], idx[:, 0]
        return d, idx

    def wrap(self, positions):
        """Positions (m, 3) wrapped into the cell [A]."""
        f = np.asarray(positions, dtype=float) @ self.inv
        return (f - np.floor(f)) @ self.cell


def cross_pairs(query, points, cell, cutoff, tree=None):
    """All pairs (i, j) with point j (or a periodic image of it) closer than ``cutoff`` [A] to query i.

    ``query`` (m, 3) and ``points`` (n, 3) [A] in the same fully periodic ``cell``. Returns (i, j, D) with
    D (pairs, 3) the vector from the wrapped query position to the image of j, sorted by (i, j). Several
    images of one point are all returned when the cutoff exceeds half a cell width. ``tree``: a
    :class:`PaddedTree` of ``points`` built for at least this cutoff, to reuse across queries.
    """
    q, _ = as_frame(query, cell, 'query')
    cutoff = float(cutoff)
    if not cutoff > 0 or not np.isfinite(cutoff):
        raise ValueError(f'cutoff must be positive, got {cutoff}')
    if tree is None or tree.cutoff < cutoff:
        tree = PaddedTree(points, cell, cutoff)
    wq = tree.wrap(q)
    coo = cKDTree(wq).sparse_distance_matrix(tree.tree, cutoff, output_type='coo_matrix')
    i, k = coo.row, coo.col
    D = tree.points[k] - wq[i]
    ok = np.einsum('ij,ij->i', D, D) < cutoff**2
    i, k, D = i[ok], k[ok], D[ok]
    j = tree.index[k]
    order = np.lexsort((j, i))
    return i[order], j[order], D[order]


def minimum_image_vectors(a, b, cell):
    """Shortest periodic vectors from each point of ``a`` (n, 3) to each of ``b`` (m, 3).

    Exact for triclinic cells: fractional rounding followed by a search over the 27
    neighbouring translations. Returns (n, m, 3) [Angstrom].
    """
    h = np.asarray(cell, dtype=float)
    hinv = np.linalg.inv(h)
    d = np.asarray(b, dtype=float)[None, :, :] - np.asarray(a, dtype=float)[:, None, :]
    f = d @ hinv
    f -= np.rint(f)
    d = f @ h
    cand = d[:, :, None, :] + (_SHIFTS @ h)[None, None]
    k = np.argmin(np.einsum('nmsk,nmsk->nms', cand, cand), axis=2)
    return np.take_along_axis(cand, k[:, :, None, None], axis=2)[:, :, 0]
