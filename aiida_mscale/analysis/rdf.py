"""Radial distribution functions for periodic (triclinic) configurations.

``g_ab(r) = V / (N_a N_b') * <n_ab(r)> / (4 pi r^2 dr)`` averaged over frames, where n_ab is the
number of (a, b) pairs with separation in [r, r + dr), ``N_b' = N_b - 1`` when a == b
(self pairs excluded), V the cell volume (Allen & Tildesley, Computer Simulation of Liquids,
2nd ed. 2017, sec. 2.6). Pairs are found with an exact periodic neighbour list, so
``r_max`` may exceed half the cell width. Units: Angstrom.
"""

import numpy as np

from ._checks import as_cells, as_positions, species_indices
from ._geometry import cell_volume, cross_pairs, perpendicular_widths

__all__ = ['radial_distribution', 'first_minimum', 'running_coordination']


def radial_distribution(positions, cells, species=None, pair=None, r_max=None, n_bins=200, frames=None):
    """Partial (or total) radial distribution function.

    Parameters
    ----------
    positions : (n_frames, n_atoms, 3) or (n_atoms, 3) [Angstrom].
    cells : (3, 3) or (n_frames, 3, 3) [Angstrom].
    species : per-atom symbols (required with ``pair``).
    pair : (a, b) symbols, or None for all atoms.
    r_max : largest distance [Angstrom]; default half the smallest perpendicular cell width.
    n_bins : number of histogram bins.
    frames : optional indices of frames to use.

    Returns
    -------
    r : (n_bins,) bin centres [Angstrom]; g : (n_bins,) g(r).
    """
    pos = np.asarray(positions, dtype=float)
    if pos.ndim == 2:
        pos = pos[None]
    pos = as_positions(pos)
    h = as_cells(cells, pos.shape[0])
    n_atoms = pos.shape[1]
    if pair is None:
        ia = ib = np.arange(n_atoms)
    else:
        if species is None:
            raise ValueError('species must be given to compute a partial RDF')
        ia = species_indices(species, pair[0], n_atoms)
        ib = species_indices(species, pair[1], n_atoms)
    same = pair is None or pair[0] == pair[1]
    nb_eff = ib.size - 1 if same else ib.size
    if ia.size < 1 or nb_eff < 1:
        raise ValueError(f'not enough atoms for the pair {pair}: {ia.size} and {ib.size}')
    if r_max is None:
        r_max = 0.5 * perpendicular_widths(h[0]).min()
    if r_max <= 0:
        raise ValueError(f'r_max must be positive, got {r_max}')
    edges = np.linspace(0.0, r_max, n_bins + 1)
    hist = np.zeros(n_bins)
    frame_ids = range(pos.shape[0]) if frames is None else frames
    # (a, b) pairs only: a k-d tree over the b atoms (and their periodic images), queried by the a atoms
    norm = 0.0
    for f in frame_ids:
        i, j, D = cross_pairs(pos[f, ia], pos[f, ib], h[f], r_max)
        d = np.sqrt(np.einsum('ij,ij->i', D, D))
        keep = ~((ia[i] == ib[j]) & (d < 1e-10))  # not an atom with itself
        hist += np.histogram(d[keep], bins=edges)[0]
        norm += ia.size * nb_eff / cell_volume(h[f])
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = hist / (shell * norm)
    return 0.5 * (edges[1:] + edges[:-1]), g


def first_minimum(r, g, smooth=5):
    """Position of the first minimum after the first peak of g(r) [Angstrom].

    g is smoothed by a moving average of ``smooth`` bins; the first peak is the first local
    maximum exceeding 1 that is at least half the global maximum; the minimum is the lowest
    point between it and the next local maximum above 1 (or the end); when the minimum is a
    flat gap (within 2% of the peak height) the middle of the gap is returned.
    """
    r = np.asarray(r, dtype=float)
    g = np.asarray(g, dtype=float)
    if r.shape != g.shape or r.size < 5:
        raise ValueError('r and g must be equal-length arrays with at least 5 points')
    k = max(1, int(smooth))
    gs = np.convolve(g, np.ones(k) / k, mode='same')
    gmax = gs.max()
    if gmax <= 1.0:
        raise ValueError('g(r) has no peak above 1: no coordination shell to bound')
    peaks = [
        i
        for i in range(1, gs.size - 1)
        if gs[i] >= gs[i - 1] and gs[i] >= gs[i + 1] and gs[i] > 1.0 and gs[i] >= 0.5 * gmax
    ]
    p = peaks[0]
    # next shell: first later index where gs rises back above 1 after dropping below it
    end = gs.size
    below = np.flatnonzero(gs[p:] < 1.0)
    if below.size:
        start_low = p + below[0]
        above = np.flatnonzero(gs[start_low:] > 1.0)
        if above.size:
            nxt = start_low + above[0]
            # extend to the next peak top
            while nxt + 1 < gs.size and gs[nxt + 1] >= gs[nxt]:
                nxt += 1
            end = nxt
    seg = gs[p:end]
    # a well-separated shell leaves a flat, (near-)empty gap: take the middle of the bins within
    # 2% of the peak height above the minimum instead of the first (noise-placed) one
    low = np.flatnonzero(seg <= seg.min() + 0.02 * gs[p])
    run_end = low[0]
    while run_end + 1 < seg.size and seg[run_end + 1] <= seg.min() + 0.02 * gs[p]:
        run_end += 1
    m = p + (low[0] + run_end) // 2
    return float(r[m])


def running_coordination(r, g, number_density):
    """Running coordination number ``n(r) = 4 pi rho int_0^r g(s) s^2 ds``.

    ``number_density`` of the neighbour species [Angstrom^-3]; returns (len(r),).
    """
    r = np.asarray(r, dtype=float)
    dr = np.gradient(r)
    return 4.0 * np.pi * number_density * np.cumsum(np.asarray(g) * r**2 * dr)
