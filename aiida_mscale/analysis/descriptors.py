"""Per-ion descriptors of local structure and motion over sliding time windows.

A *sample* is one mobile ion in one time window (``window`` frames, windows start every
``stride`` frames). Units: Angstrom, ps.

Motion descriptors (from unwrapped positions)
  * ``displacement``  net displacement |r(end) - r(start)| over the window [A]
  * ``path_length``   sum of frame-to-frame step lengths [A]
  * ``tortuosity``    displacement / path_length (1: straight, ~0: rattling); the inverse
                      of the usual tortuosity factor, bounded in [0, 1]
  * ``jump_count``    number of site-to-site hops in the window (site trajectory below)
  * ``site_occupancy`` fraction of the window's frames the ion spends within ``site_radius`` of a
                      site (1: a site-bound ion, hopping or not; low: a free, liquid-like walker)
  * ``mobility``      log10 of the time-origin-averaged MSD at lag window//2 inside the
                      window [log10 A^2] (regression target of :mod:`.importance`)

Site hopping: each frame an ion is assigned to the nearest site if closer than
``site_radius``, else it is "in transit" and keeps its last site (a hysteresis that does not
count rattling across a saddle as hops; cf. the site-occupancy analysis of e.g.
Deng et al., Chem. Mater. 28, 1150 (2016)). Sites are given or found as density peaks of
the pooled mobile-ion positions (:func:`find_sites`). Residence times are the durations of
consecutive runs on one site.

Structure descriptors (window averages over frames taken every ``frame_stride``)
  * ``cn_<mobile>-<X>``  coordination number: atoms of species X within the cutoff, the
                         first minimum of the <mobile>-X RDF unless given
  * ``nearest_host``     distance to the nearest host atom [A] (capped at ``host_search_radius``)
  * ``free_volume``      void proximity: fraction of a ball of radius ``probe_radius``
                         around the ion lying farther than ``exclusion_radius`` from every
                         other atom (Monte-Carlo-free: a fixed quasi-uniform point set)
  * ``cluster_size``     size of the connected cluster of mobile ions linked by the
                         mobile-mobile cutoff (1 = isolated)
"""

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ._checks import as_cells, as_frame, as_positions, as_times, species_indices
from ._geometry import PaddedTree, cross_pairs, neighbor_pairs, perpendicular_widths
from .msd import unwrap_positions
from .rdf import first_minimum, radial_distribution

#: coordination cutoff [A] used when a pair has no resolvable first RDF shell
DEFAULT_CUTOFF = 3.5
#: range [A] of the g(r) searched for the first minimum (coordination cutoffs)
RDF_CUTOFF_RANGE = 8.0

__all__ = [
    'DEFAULT_CUTOFF',
    'window_starts',
    'motion_descriptors',
    'find_sites',
    'assign_sites',
    'site_hops',
    'residence_times',
    'coordination_numbers',
    'nearest_distance',
    'free_volume_fraction',
    'cluster_sizes',
    'rdf_cutoff',
    'ion_descriptors',
]


def window_starts(n_frames, window, stride):
    """First frame of every window of ``window`` frames, every ``stride`` frames."""
    if window < 3:
        raise ValueError(f'window must hold at least 3 frames, got {window}')
    if stride < 1:
        raise ValueError(f'stride must be >= 1, got {stride}')
    if window > n_frames:
        raise ValueError(f'too few frames: a window of {window} frames does not fit in {n_frames} frames')
    return np.arange(0, n_frames - window + 1, stride)


def motion_descriptors(unwrapped, window, stride):
    """Displacement, path length, tortuosity and mobility per window and ion.

    ``unwrapped`` (n_frames, n_ions, 3) [A]. Returns dict of (n_windows, n_ions) arrays and
    ``window_start`` (n_windows,).
    """
    x = as_positions(unwrapped, 'unwrapped')
    starts = window_starts(x.shape[0], window, stride)
    step = np.linalg.norm(np.diff(x, axis=0), axis=-1)  # (n-1, ions)
    cum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(step, axis=0)])
    lag = max(1, window // 2)
    disp = np.linalg.norm(x[starts + window - 1] - x[starts], axis=-1)
    path = cum[starts + window - 1] - cum[starts]
    tort = np.where(path > 0, disp / np.where(path > 0, path, 1.0), 0.0)
    # time-origin-averaged squared displacement at lag `lag` inside each window
    sq = np.sum((x[lag:] - x[:-lag]) ** 2, axis=-1)  # origin t -> (n-lag, ions)
    csq = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(sq, axis=0)])
    n_orig = window - lag
    msd = (csq[starts + n_orig] - csq[starts]) / n_orig
    return {
        'window_start': starts,
        'displacement': disp,
        'path_length': path,
        'tortuosity': tort,
        'mobility': np.log10(msd + 1e-6),
    }


def _ball_kernel(h, nb, radius):
    """Periodic grid kernel (shape ``nb``) of the grid offsets within ``radius`` [A] (cell metric included)."""
    reach = np.ceil(radius / perpendicular_widths(h) * nb).astype(int)
    reach = np.minimum(reach, (nb - 1) // 2)
    off = np.array(np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing='ij'))
    cart = np.einsum('iabc,ij->abcj', off / nb[:, None, None, None], h)
    ball = np.linalg.norm(cart, axis=-1) <= radius
    kernel = np.zeros(tuple(nb))
    kernel[np.ix_(*[np.arange(-r, r + 1) % n for r, n in zip(reach, nb)])] = ball
    return kernel, reach


def find_sites(positions, cell, radius=0.8, min_count=5, bin_width=0.2, min_contrast=3.0):
    """Sites as density peaks of the pooled positions of the mobile ions (periodic, triclinic).

    The positions of all frames are histogrammed on a periodic grid in fractional
    coordinates (bins ~``bin_width`` A); the number of points within ``radius`` of every grid
    point is obtained by a periodic convolution with a ball stencil (cell metric included; by FFT);
    sites are the local maxima of that count over a ``2*radius`` neighbourhood holding at
    least ``min_count`` points and at least ``min_contrast`` times the density of the shell between
    ``radius`` and ``2*radius`` around them (a site is where ions dwell, not where a liquid-like
    walker happens to pass slowly). Each site is then refined to the periodic mean of the points
    within ``radius`` of it (a density-peak / mean-shift step); of two refined sites closer than
    ``radius`` the denser is kept. Cost O(N log N) in the number of pooled points (k-d tree).

    Parameters: positions (..., 3) [A]; cell (3, 3) [A]; radius, bin_width [A].
    Returns (n_sites, 3) Cartesian site positions [A].
    """
    from scipy import ndimage

    pts = np.asarray(positions, dtype=float).reshape(-1, 3)
    pts, h = as_frame(pts, cell, 'positions')
    nb = np.maximum(4, np.ceil(np.linalg.norm(h, axis=1) / bin_width).astype(int))
    frac = np.mod(pts @ np.linalg.inv(h), 1.0)
    hist, _ = np.histogramdd(frac, bins=nb, range=[(0, 1)] * 3)
    f_hist = np.fft.rfftn(hist)
    inner, reach = _ball_kernel(h, nb, radius)
    outer, _ = _ball_kernel(h, nb, 2 * radius)
    count = np.rint(np.fft.irfftn(f_hist * np.fft.rfftn(inner), s=hist.shape))
    shell = np.rint(np.fft.irfftn(f_hist * np.fft.rfftn(outer), s=hist.shape)) - count
    n_in, n_shell = inner.sum(), outer.sum() - inner.sum()
    size = 2 * (2 * reach) + 1
    peak = (count == ndimage.maximum_filter(count, size=size, mode='wrap')) & (count >= min_count)
    peak &= count * n_shell >= min_contrast * shell * n_in
    cand = (np.argwhere(peak) + 0.5) / nb
    if cand.size == 0:
        raise ValueError('no sites found: positions too sparse for the given radius / min_count')
    # refine each candidate to the periodic mean of the points within `radius` (one k-d tree query over the
    # pooled points and their periodic images), then keep the densest of any refined sites closer than `radius`
    # (plateau duplicates): greedy suppression in decreasing count order
    order = np.argsort(-count[peak], kind='stable')
    cand = (cand @ h)[order]
    _, i, D = cross_pairs(pts, cand, h, radius)  # tree over the candidates' images, the points query it
    n_in = np.bincount(i, minlength=len(cand))
    shift = np.zeros_like(cand)
    np.add.at(shift, i, -D)
    refined = cand + shift / np.maximum(n_in, 1)[:, None]
    if len(refined) == 1:
        return refined
    a, b = neighbor_pairs(refined, h, radius, 'ij')
    close = [[] for _ in range(len(refined))]
    for x, y in zip(a.tolist(), b.tolist()):
        close[x].append(y)
    kept = np.zeros(len(refined), bool)
    for k in range(len(refined)):
        kept[k] = not any(kept[c] for c in close[k] if c < k)
    return refined[kept]


def assign_sites(positions, cells, sites, site_radius):
    """Nearest-site label per frame and ion (-1 if farther than ``site_radius`` [A]).

    ``positions`` (n_frames, n_ions, 3) wrapped or unwrapped; ``sites`` (n_sites, 3). One k-d tree over the
    sites and their periodic images per distinct cell (O((frames x ions) log sites)).
    """
    pos = as_positions(positions)
    h = as_cells(cells, pos.shape[0])
    s = np.asarray(sites, dtype=float).reshape(-1, 3)
    if not np.all(np.isfinite(s)):
        raise ValueError('sites contain NaN or infinite values')
    radius = float(site_radius)
    if not radius > 0:
        raise ValueError(f'site_radius must be positive, got {site_radius}')
    labels = np.full(pos.shape[:2], -1, dtype=int)
    same = np.all(h == h[:1], axis=(1, 2))
    groups = [np.arange(pos.shape[0])] if same.all() else [np.array([f]) for f in range(pos.shape[0])]
    for frames in groups:
        tree = PaddedTree(s, h[frames[0]], radius)
        q = tree.wrap(pos[frames].reshape(-1, 3))
        d, k = tree.tree.query(q, k=1, distance_upper_bound=radius * (1 + 1e-12))
        ok = np.isfinite(d) & (d <= radius)
        lab = np.full(q.shape[0], -1)
        lab[ok] = tree.index[k[ok]]
        labels[frames] = lab.reshape(len(frames), -1)
    return labels


def site_hops(labels):
    """Forward-filled site trajectory and hop indicator.

    ``labels`` (n_frames, n_ions) from :func:`assign_sites`. Transit frames (-1) keep the last
    occupied site; leading transit frames take the first occupied site. Returns
    (filled (n_frames, n_ions), hop (n_frames-1, n_ions) bool: site changed between t and t+1).
    """
    lab = np.asarray(labels, dtype=int)
    filled = lab.copy()
    for f in range(1, lab.shape[0]):
        miss = filled[f] < 0
        filled[f, miss] = filled[f - 1, miss]
    for f in range(lab.shape[0] - 2, -1, -1):
        miss = filled[f] < 0
        filled[f, miss] = filled[f + 1, miss]
    hop = (filled[1:] != filled[:-1]) & (filled[1:] >= 0) & (filled[:-1] >= 0)
    return filled, hop


def residence_times(labels, dt, include_truncated=False):
    """Residence times [ps] on sites, per ion: list of arrays.

    Runs cut by the start or end of the trajectory are dropped unless ``include_truncated``.
    """
    filled, hop = site_hops(labels)
    out = []
    n = filled.shape[0]
    for a in range(filled.shape[1]):
        edges = np.flatnonzero(hop[:, a]) + 1
        bounds = np.r_[0, edges, n]
        runs = np.diff(bounds).astype(float) * dt
        if not include_truncated:
            runs = runs[1:-1] if runs.size > 2 else np.array([])
        out.append(runs)
    return out


def coordination_numbers(frame, cell, species, center, neighbor, cutoff):
    """Number of ``neighbor`` atoms within ``cutoff`` [A] of every ``center`` atom in one frame.

    Returns (n_center,) integer counts, ordered as the centre atoms appear.
    """
    sp = np.asarray(species).astype(str)
    ic = species_indices(sp, center, sp.size)
    species_indices(sp, neighbor, sp.size)
    i, j = neighbor_pairs(frame, cell, cutoff, 'ij')
    keep = (sp[i] == center) & (sp[j] == neighbor)
    counts = np.bincount(i[keep], minlength=sp.size)
    return counts[ic]


def nearest_distance(frame, cell, idx_from, idx_to, search_radius):
    """Distance from each atom of ``idx_from`` to the nearest atom of ``idx_to`` (not itself) [A].

    Values are capped at ``search_radius`` when nothing is closer.
    """
    i, j, d = neighbor_pairs(frame, cell, search_radius, 'ijd')
    is_to = np.zeros(frame.shape[0], bool)
    is_to[idx_to] = True
    keep = is_to[j]
    out = np.full(frame.shape[0], float(search_radius))
    np.minimum.at(out, i[keep], d[keep])
    return out[idx_from]


def _nearest_other(points, cell):
    """Distance from each point to the nearest other point or periodic image [A], capped at half the
    smallest cell width."""
    cap = 0.5 * perpendicular_widths(cell).min()
    d, _ = PaddedTree(points, cell, cap).nearest(points, exclude=np.arange(len(points)))
    return np.minimum(d, cap)


def _free_fraction(i, D, n, probes, exclusion_radius, chunk=4000):
    """Fraction of the ``probes`` (p, 3) around each of ``n`` centres farther than ``exclusion_radius`` [A] from
    every neighbour. ``i`` (sorted) is the centre of each pair and ``D`` (pairs, 3) the vector to the neighbour;
    centres without pairs are entirely free. |p - D|^2 = |p|^2 - 2 p.D + |D|^2 as one matrix product per chunk."""
    out = np.ones(n)
    if i.size == 0:
        return out
    starts = np.flatnonzero(np.r_[True, i[1:] != i[:-1]])
    bounds = np.r_[starts, i.size]
    p2 = np.einsum('pk,pk->p', probes, probes)
    r2 = exclusion_radius**2
    a = 0
    while a < starts.size:  # chunks of whole centres, ~`chunk` pairs each
        b = int(np.searchsorted(bounds, bounds[a] + chunk, side='right')) - 1
        b = min(max(b, a + 1), starts.size)
        lo, hi = bounds[a], bounds[b]
        Dc = D[lo:hi]
        dist2 = (p2[None, :] - 2.0 * (Dc @ probes.T)) + np.einsum('qk,qk->q', Dc, Dc)[:, None]
        blocked = np.logical_or.reduceat(dist2 <= r2, starts[a:b] - lo, axis=0)
        out[i[starts[a:b]]] = 1.0 - blocked.mean(axis=1)
        a = b
    return out


def _ball_points(n, radius):
    """Quasi-uniform deterministic points filling a ball.

    Radius from a regular grid in r^3 and direction from the two-dimensional additive
    recurrence of the plastic number (the "R2" low-discrepancy sequence, M. Roberts 2018),
    mapped to (cos theta, phi) by the area-preserving map of the sphere.
    """
    k = np.arange(n)
    g = 1.32471795724474602596  # plastic number
    u = np.mod(0.5 + k / g, 1.0)
    v = np.mod(0.5 + k / g**2, 1.0)
    r = radius * np.cbrt((k + 0.5) / n)
    ct = 1.0 - 2.0 * u
    st = np.sqrt(1.0 - ct**2)
    ph = 2.0 * np.pi * v
    return np.c_[r * st * np.cos(ph), r * st * np.sin(ph), r * ct]


def free_volume_fraction(frame, cell, idx, probe_radius=2.5, exclusion_radius=1.6, n_probe=128):
    """Fraction of the ball of radius ``probe_radius`` around each atom in ``idx`` that is
    farther than ``exclusion_radius`` from every *other* atom (a local free-volume / void
    proximity measure, in [0, 1]). Radii in Angstrom.
    """
    probes = _ball_points(n_probe, probe_radius)
    i, j, D = neighbor_pairs(frame, cell, probe_radius + exclusion_radius, 'ijD')
    order = np.argsort(i, kind='stable')
    i, D = i[order], D[order]
    start = np.searchsorted(i, idx)
    stop = np.searchsorted(i, idx, side='right')
    out = np.empty(len(idx))
    for n, (a, b) in enumerate(zip(start, stop)):
        if b == a:
            out[n] = 1.0
            continue
        d2 = np.sum((probes[:, None, :] - D[a:b][None]) ** 2, axis=-1)
        out[n] = np.mean(d2.min(axis=1) > exclusion_radius**2)
    return out


def cluster_sizes(frame, cell, idx, cutoff):
    """Size of the connected cluster (links shorter than ``cutoff`` [A]) containing each atom of ``idx``."""
    sub = frame[idx]
    i, j = neighbor_pairs(sub, cell, cutoff, 'ij')
    g = coo_matrix((np.ones(i.size), (i, j)), shape=(len(idx), len(idx)))
    _, lab = connected_components(g, directed=False)
    return np.bincount(lab)[lab]


def rdf_cutoff(positions, cells, species, a, b, r_max=None, n_bins=150, frames=None, fallback=None):
    """Coordination cutoff for the pair (a, b): first minimum of g_ab(r) [A].

    g_ab is computed up to ``r_max`` (default: :data:`RDF_CUTOFF_RANGE` or half the smallest cell width,
    whichever is smaller; a first coordination shell ends well inside it). If g_ab has no clear first
    shell (e.g. a single mobile ion) ``fallback`` is returned if given, else ``ValueError`` is raised.
    """
    if r_max is None:
        h = np.asarray(cells, dtype=float)
        r_max = min(RDF_CUTOFF_RANGE, 0.5 * perpendicular_widths(h if h.ndim == 2 else h[0]).min())
    try:
        r, g = radial_distribution(positions, cells, species, (a, b), r_max=r_max, n_bins=n_bins, frames=frames)
        return first_minimum(r, g)
    except ValueError:
        if fallback is None:
            raise
        return float(fallback)


def ion_descriptors(
    positions,
    cells,
    times,
    species,
    mobile,
    host=None,
    window=20,
    stride=None,
    sites=None,
    site_radius=None,
    cutoffs=None,
    frame_stride=1,
    wrapped=True,
    probe_radius=2.5,
    exclusion_radius=1.6,
    host_search_radius=6.0,
):
    """Descriptor matrix of every (window, mobile ion) sample.

    Parameters
    ----------
    positions : (n_frames, n_atoms, 3) [A], wrapped (default) or unwrapped (``wrapped=False``).
    cells : (3, 3) or (n_frames, 3, 3) [A].
    times : (n_frames,) [ps].
    species : per-atom symbols; ``mobile`` the mobile species symbol.
    host : host species symbols (default: all others) for ``nearest_host``.
        The coordination cutoffs and ``probe_radius + exclusion_radius`` must stay below half
        the smallest cell width (one periodic image per pair); use a supercell otherwise.
    window, stride : window length and spacing in frames (stride defaults to window).
    sites : (n_sites, 3) site positions [A] or None to find them (:func:`find_sites`, in the
        first frame's cell, from the mobile ions' positions of all frames).
    site_radius : assignment radius [A] (default 0.35 x the median nearest-site spacing).
    cutoffs : {neighbour symbol: cutoff [A]} for ``cn_<mobile>-<X>`` and the mobile-mobile
        cluster link; missing entries come from the RDF first minimum (or
        :data:`DEFAULT_CUTOFF` if g(r) has no first shell; see ``cutoff_source``).
    frame_stride : structure descriptors use every ``frame_stride``-th frame.

    Returns
    -------
    dict with ``names`` (descriptor names), ``X`` (n_samples, n_descriptors), ``mobility``
    (n_samples,), ``ion`` (atom index of each sample), ``window_start`` (frame of each sample),
    ``per_window`` {name: (n_windows, n_ions)}, ``sites``, ``site_radius``, ``cutoffs``,
    ``cutoff_source``, ``residence_times`` (per ion, ps).
    """
    pos = as_positions(positions)
    n_frames, n_atoms, _ = pos.shape
    h = as_cells(cells, n_frames)
    t = as_times(times, n_frames)
    sp = np.asarray(species).astype(str)
    im = species_indices(sp, mobile, n_atoms)
    if host is None:
        host = sorted(set(sp.tolist()) - {mobile})
    host = [host] if isinstance(host, str) else list(host)
    ih = species_indices(sp, host, n_atoms) if host else np.array([], int)
    stride = window if stride is None else stride
    starts = window_starts(n_frames, window, stride)
    if not 1 <= frame_stride <= window:
        raise ValueError(f'frame_stride must be between 1 and the window ({window} frames), got {frame_stride}')
    unwrapped = unwrap_positions(pos, h) if wrapped else pos
    wrapped_pos = (
        pos if wrapped else np.einsum('fai,fij->faj', np.mod(np.einsum('fai,fij->faj', pos, np.linalg.inv(h)), 1.0), h)
    )
    out = motion_descriptors(unwrapped[:, im], window, stride)

    # --- site hopping
    mob_wrapped = wrapped_pos[:, im]
    if sites is None:
        sites = find_sites(mob_wrapped, h[0], radius=0.6 if site_radius is None else site_radius)
    sites = np.asarray(sites, dtype=float).reshape(-1, 3)
    if site_radius is None:
        if len(sites) > 1:
            site_radius = 0.35 * np.median(_nearest_other(sites, h[0]))
        else:
            site_radius = 1.0
    labels = assign_sites(mob_wrapped, h, sites, site_radius)
    _, hop = site_hops(labels)
    chop = np.concatenate([np.zeros((1, len(im))), np.cumsum(hop, axis=0)])
    out['jump_count'] = chop[starts + window - 1] - chop[starts]
    con = np.concatenate([np.zeros((1, len(im))), np.cumsum(labels >= 0, axis=0)])
    out['site_occupancy'] = (con[starts + window] - con[starts]) / window
    res = residence_times(labels, t[1] - t[0])

    # --- structure descriptors
    present = sorted(set(sp.tolist()))
    cutoffs = dict(cutoffs or {})
    cutoff_source = {x: 'given' for x in cutoffs}
    sample_frames = np.arange(0, n_frames, max(1, frame_stride))
    rdf_frames = sample_frames[:: max(1, len(sample_frames) // 10)]
    for x in present:
        if x not in cutoffs:
            try:
                cutoffs[x] = rdf_cutoff(wrapped_pos, h, sp, mobile, x, frames=rdf_frames)
                cutoff_source[x] = 'rdf_first_minimum'
            except ValueError:  # no first shell (e.g. a single mobile ion): documented default
                cutoffs[x] = DEFAULT_CUTOFF
                cutoff_source[x] = 'default'
    cn = {x: np.zeros((n_frames, len(im))) for x in present}
    nearest = np.zeros((n_frames, len(im)))
    free = np.zeros((n_frames, len(im)))
    clus = np.zeros((n_frames, len(im)))
    probes = _ball_points(128, probe_radius)
    # one periodic image per pair must suffice for counting within the cutoffs / probe ball
    reach = max(max(cutoffs.values()), probe_radius + exclusion_radius)
    mobile_index = np.full(n_atoms, -1)
    mobile_index[im] = np.arange(len(im))
    species_code = np.searchsorted(present, sp)
    n_mob = len(im)
    cn_cut = np.array([cutoffs[x] for x in present])
    for f in sample_frames:
        half = 0.5 * perpendicular_widths(h[f]).min()
        if reach > half:
            raise ValueError(
                f'cell too small: cutoffs/probe radii up to {reach:.2f} A exceed half the smallest '
                f'cell width ({half:.2f} A); use a supercell or smaller radii'
            )
        fr = wrapped_pos[f]
        # k-d trees over the atoms (and their periodic images) of this frame: O(N log N) per frame
        tree = PaddedTree(fr, h[f], reach)
        i, j, D = cross_pairs(fr[im], fr, h[f], reach, tree=tree)
        keep = j != im[i]  # not the ion itself
        i, j = i[keep], j[keep]
        d = np.sqrt(np.einsum('ij,ij->i', D[keep], D[keep]))
        within = d < cn_cut[species_code[j]]
        for k, x in enumerate(present):
            cn[x][f] = np.bincount(i[within & (species_code[j] == k)], minlength=n_mob)
        if ih.size:
            near, _ = PaddedTree(fr[ih], h[f], host_search_radius).nearest(fr[im], exclude=None)
            nearest[f] = np.minimum(near, host_search_radius)
        else:
            nearest[f] = host_search_radius
        # free volume: a probe point is blocked if an atom other than the ion lies within the exclusion radius
        close = d < probe_radius + exclusion_radius
        free[f] = _free_fraction(i[close], D[keep][close], n_mob, probes, exclusion_radius)
        link = (mobile_index[j] >= 0) & (d < cutoffs[mobile])
        graph = coo_matrix((np.ones(int(link.sum())), (i[link], mobile_index[j[link]])), shape=(n_mob, n_mob))
        _, lab = connected_components(graph, directed=False)
        clus[f] = np.bincount(lab)[lab]

    def wavg(a):
        s = a[sample_frames]
        cs = np.concatenate([np.zeros((1, s.shape[1])), np.cumsum(s, axis=0)])
        lo = np.searchsorted(sample_frames, starts)
        hi = np.searchsorted(sample_frames, starts + window)
        return (cs[hi] - cs[lo]) / np.maximum(hi - lo, 1)[:, None]

    for x in present:
        out[f'cn_{mobile}-{x}'] = wavg(cn[x])
    out['nearest_host'] = wavg(nearest)
    out['free_volume'] = wavg(free)
    out['cluster_size'] = wavg(clus)

    names = (
        ['displacement', 'path_length', 'tortuosity', 'jump_count', 'site_occupancy']
        + [f'cn_{mobile}-{x}' for x in present]
        + ['nearest_host', 'free_volume', 'cluster_size']
    )
    X = np.stack([out[n].ravel() for n in names], axis=1)
    ion = np.broadcast_to(im[None, :], out['displacement'].shape).ravel()
    wstart = np.broadcast_to(starts[:, None], out['displacement'].shape).ravel()
    return {
        'names': names,
        'X': X,
        'mobility': out['mobility'].ravel(),
        'ion': ion,
        'window_start': wstart,
        'per_window': {n: out[n] for n in names + ['mobility']},
        'sites': sites,
        'site_radius': site_radius,
        'cutoffs': cutoffs,
        'cutoff_source': cutoff_source,
        'residence_times': res,
    }
