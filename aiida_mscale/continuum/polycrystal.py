r"""Effective diffusivity of a polycrystal with grain-boundary (GB) fast or slow (blocking) paths.

Microstructure
--------------
``geometry`` "voronoi" (default): periodic Voronoi tessellation of ``n_grains`` seeds in the unit square
(cube), random (numpy ``default_rng(seed)``, the same seeds for every grain size, so all samples are
geometrically similar and only w/d changes) or given explicitly as ``seeds`` (fractional coordinates).
``geometry`` "laminate": ``n_grains`` parallel grains of thickness d stacked along x, boundaries at
x = (k + 1/2) L / n_grains (n_grains = 2 is the periodic bicrystal). The sample is a square (cube) of side
L = d n_grains^(1/dim), i.e. the grain size d [m] is the square (cube) root of the mean grain area (volume);
for the laminate, L = d n_grains and d is the layer thickness.

The GB band of width w = ``gb_width`` [m] is the set of points closer than w/2 to a grain boundary: inside the
Voronoi cell of seed i, the distance to the boundary with neighbour j is the distance to their bisector,
(|p - s_j|^2 - |p - s_i|^2) / (2 |s_j - s_i|). A cell face shared by a grain and its own periodic image is not a
grain boundary (same crystal orientation). Its area (volume) fraction f is computed exactly: in 2-D as polygon
areas (grain rims clipped by half-planes), in 3-D as the volumes of the grains' inner parallel polyhedra
(scipy HalfspaceIntersection + ConvexHull). The Hashin-Shtrikman bounds reported use this true f.

Diffusivities [m^2/s], Arrhenius in temperature T [K] with activation energies in eV::

    D_bulk(T) = D0_bulk exp(-Ea_bulk / (k_B T)),    D_gb(T) = D0_gb exp(-Ea_gb / (k_B T))

Grain-boundary treatment: a mesh that conforms to the band
----------------------------------------------------------
2-D: the n x n grid of squares (n = ``mesh.cells_per_side``) is cut along the band's edges: every square the band
reaches is split by the lines of the band pieces' edges into convex faces, points on shared sides are inserted on
both sides (periodically across the unit cell), and each face is triangulated by the fan with the smallest largest
angle (``cut_cell_mesh``). Every triangle then lies inside the band (D_gb) or inside a grain (D_b), however thin the
band is compared with the squares, and P1 elements on this mesh carry the exact band geometry: the resistance across
a boundary (w/D_gb, the "low-conducting" limit) and its conductance along it (w D_gb, the "highly conducting" limit)
come out of the discretisation itself, with no averaging rule (Hashin, J. Appl. Phys. 89 (2001) 2261 gives the two
limits of a thin interphase; here the interphase is kept at its true width). A laminate (any orientation of the
layers) has a piecewise-linear exact solution, which P1 on this mesh reproduces to round-off; for Voronoi grains the
discretisation error is set by the grid spacing relative to the grain size (docs/continuum.md gives the measured
convergence). There is no band widening.
3-D: P1 on a uniform tetrahedral mesh; each tetrahedron gets a laminate cell tensor from k^2 sample points
(band fraction phi, the nearest face's normal n: D = D_par (I - n n) + D_ser n n, series across the boundary and
parallel along it; Kabel, Merkert & Schneider, CMAME 294 (2015) 168). A cell average cannot stop flux through mesh
nodes inside a band thinner than the cells, so 3-D results for blocking boundaries (D_gb < D_b) are upper
estimates unless the band spans several cells (``warnings`` in results.json says so).

Boundary conditions (``boundary_conditions``)
---------------------------------------------
"periodic" (default; serial runs): c = G.x + c~ with c~ periodic on the unit cell, for G = each unit vector;
the full effective tensor D_eff,ab = <(e_a + grad c~_a) . D (e_b + grad c~_b)> (volume average). The periodic
constraint is imposed with a prolongation matrix P (reduced system P^T A P, one node pinned): the
master/slave elimination that dolfinx_mpc performs (not in Debian's dolfinx 0.5), built from the dof coordinates.
Then (D_xx + D_yy)/2 lies inside the
isotropic Hashin-Shtrikman bounds for any two-phase geometry (trace bounds, Milton 2002 "The Theory of
Composites" ch. 23). "fixed_gradient": c = 1 on x = 0, c = 0 on x = L, zero flux on the other faces (and likewise
per axis), D_aa = int grad c . D grad c dA; off-diagonal components are not defined (NaN).

Reported D_eff = trace(D_eff) / dim, plus the components, the GB fraction f, the 2-D (3-D) Hashin-Shtrikman bounds
for (f, D_gb, D_bulk), the parallel (Voigt) (1-f) D_b + f D_gb and series (Reuss) 1 / ((1-f)/D_b + f/D_gb) values
(the laminate's exact D_yy and D_xx), and per grain size the apparent activation energy
E_app = -d ln D_eff / d(1/(k_B T)) from a least-squares Arrhenius fit plus its local values between adjacent
temperatures.

Input (JSON)::

    {"model": "polycrystal",
     "grain_sizes": [1e-8, 5e-8], "temperatures": [300, 400, 600],   # m, K
     "gb_width": 1e-9,                                               # m (< smallest grain size)
     "D_bulk": {"D0": 1e-6, "Ea": 0.6}, "D_gb": {"D0": 1e-6, "Ea": 0.3},   # m^2/s, eV (or a number)
     "geometry": "voronoi",             # or "laminate"
     "n_grains": 25, "seed": 1,         # random seeds; or "seeds": [[x, y], ...] in [0, 1) (then no "seed")
     "boundary_conditions": "periodic", # or "fixed_gradient"
     "dimension": 2,                    # or 3 (Voronoi only; tetrahedral mesh, cells_per_side <= 64)
     "mesh": {"cells_per_side": 96,     # grid squares per side, 2-D default 96 (3-D: 20, at most 64)
              "subsamples": 4},         # 3-D: subsamples^2 sample points per tetrahedron for phi
     "write_xdmf": false}

``band_widening`` (the former widened-band treatment) is accepted only as false. Unknown keys are refused.

Output: results.json -> ``table`` (one row per (d, T): D_bulk, D_gb, D_gb_model (= D_gb), D_eff, D_xx, D_yy
(D_zz), D_xy, gb_fraction, hs_lower, hs_upper, parallel, series, band_widened (always false)),
``apparent_activation_energy`` {grain_size, E_app [eV], E_local}, ``geometry_statistics`` per grain size (exact and
mesh-integrated GB fraction, band width in grid squares, cells, dofs), ``warnings``, BC and grain-size definitions,
mesh, timings. results.npz -> ``D_eff``, ``D_xx``, ``D_yy`` (n_sizes, n_T), ``D_tensor``
(n_sizes, n_T, dim, dim), ``hs_bounds`` (n_sizes, n_T, 2), ``gb_fraction``, ``grain_size``, ``temperature``,
``seeds``, ``size{i}_gb_fraction_per_cell``. XDMF (if asked): GB fraction per cell, ``polycrystal_size{i}_gb.xdmf``.
"""

import copy
import itertools
import os
import time

import numpy as np

try:
    from . import common
    from .common import require
except ImportError:
    import common
    from common import require

DEFAULTS = {
    'dimension': 2,
    'n_grains': 25,
    'seed': 1,
    'geometry': 'voronoi',
    'boundary_conditions': 'periodic',
    'mesh': {'cells_per_side': None, 'subsamples': 4},
    'band_widening': False,
    'write_xdmf': False,
}
KEYS = (
    'model',
    'output_dir',
    'write_xdmf',
    'grain_sizes',
    'temperatures',
    'gb_width',
    'D_bulk',
    'D_gb',
    'n_grains',
    'seed',
    'seeds',
    'geometry',
    'boundary_conditions',
    'band_widening',
    'dimension',
    'mesh',
)
MESH_KEYS = ('cells_per_side', 'subsamples')
GEOMETRIES = ('voronoi', 'laminate')
BOUNDARY_CONDITIONS = ('periodic', 'fixed_gradient')
MIN_SEED_SEPARATION = 1e-6  # fractional coordinates


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _positive_list(p, key, unit, default=None):
    values = p.get(key, default)
    require(
        isinstance(values, (list, tuple)) and len(values) > 0, f"'{key}' must be a non-empty list of numbers [{unit}]"
    )
    require(all(_is_number(v) for v in values), f"'{key}' must hold numbers [{unit}], got {values}")
    values = [float(v) for v in values]
    require(all(np.isfinite(v) and v > 0 for v in values), f"'{key}' must be finite and > 0 [{unit}], got {values}")
    return values


def _arrhenius(spec, name):
    if _is_number(spec):
        v = float(spec)
        require(np.isfinite(v) and v > 0, f'{name} must be > 0, got {v}')
        return v, 0.0
    require(isinstance(spec, dict), f"{name}: a number [m^2/s] or {{'D0': m^2/s, 'Ea': eV}}")
    extra = sorted(set(spec) - {'D0', 'Ea'})
    require(not extra, f'{name}: unknown keys {extra}; give D0 [m^2/s] and Ea [eV]')
    for key in ('D0', 'Ea'):
        require(key not in spec or _is_number(spec[key]), f'{name}.{key} must be a number, got {spec.get(key)!r}')
    d0 = common.get_number(spec, 'D0', positive=True, where=f'{name}.')
    ea = common.get_number(spec, 'Ea', default=0.0, where=f'{name}.')
    return d0, ea


def _choice(p, key, choices):
    v = p[key]
    require(isinstance(v, str) and v in choices, f"'{key}' must be one of {list(choices)}, got {v!r}")
    return v


def validate(inp, base_dir='.'):
    """Checked parameters (a dict), or :class:`common.InputError` naming the bad input."""
    require(isinstance(inp, dict), 'polycrystal input must be a JSON object')
    unknown = sorted(set(inp) - set(KEYS))
    require(not unknown, f'polycrystal: unknown input keys {unknown}; allowed: {sorted(KEYS)}')
    mesh_in = inp.get('mesh', {})
    require(
        isinstance(mesh_in, dict),
        "'mesh' must be an object {cells_per_side, subsamples}",
    )
    unknown = sorted(set(mesh_in) - set(MESH_KEYS))
    require(not unknown, f'polycrystal: unknown mesh keys {unknown}; allowed: {list(MESH_KEYS)}')
    p = copy.deepcopy(DEFAULTS)
    for k, v in inp.items():
        if k == 'mesh':
            p['mesh'].update({key: val for key, val in v.items() if val is not None})
        else:
            p[k] = v
    sizes = _positive_list(p, 'grain_sizes', 'm')
    temps = _positive_list(p, 'temperatures', 'K', default=[298.15])
    require(_is_number(p.get('gb_width')), f"'gb_width' must be a number [m], got {p.get('gb_width')!r}")
    w = common.get_number(p, 'gb_width', positive=True)
    require(w < min(sizes), f'gb_width {w} m must be smaller than the smallest grain size {min(sizes)} m')
    require('D_bulk' in p and 'D_gb' in p, "missing 'D_bulk' or 'D_gb' (number or {'D0', 'Ea'})")
    db, dg = _arrhenius(p['D_bulk'], 'D_bulk'), _arrhenius(p['D_gb'], 'D_gb')
    geometry = _choice(p, 'geometry', GEOMETRIES)
    bcs = _choice(p, 'boundary_conditions', BOUNDARY_CONDITIONS)
    require(isinstance(p['band_widening'], bool), f"'band_widening' must be true or false, got {p['band_widening']!r}")
    require(
        not p['band_widening'],
        "'band_widening' true is no longer supported: widening the band preserved the conductance along the boundary "
        'but not the resistance across it (wrong for blocking boundaries); the thin-layer cell treatment resolves any '
        'width. Drop the key or set it to false.',
    )
    require(isinstance(p['write_xdmf'], bool), f"'write_xdmf' must be true or false, got {p['write_xdmf']!r}")
    dim = p['dimension']
    require(_is_int(dim) and dim in (2, 3), f"'dimension' must be 2 or 3, got {dim!r}")
    require(not (geometry == 'laminate' and dim == 3), "geometry 'laminate' is two-dimensional: set dimension 2")
    seeds = None
    if 'seeds' in inp:
        require(geometry == 'voronoi', "'seeds' are Voronoi seeds: geometry 'laminate' takes none")
        require('seed' not in inp, "give either 'seeds' (explicit positions) or 'seed' (random), not both")
        raw = inp['seeds']
        require(
            isinstance(raw, (list, tuple))
            and len(raw) > 0
            and all(isinstance(s, (list, tuple)) and len(s) == dim and all(_is_number(x) for x in s) for s in raw),
            f"'seeds' must be a non-empty list of [x, y{', z' if dim == 3 else ''}] fractional coordinates",
        )
        seeds = np.asarray(raw, float)
        require(np.all(np.isfinite(seeds)), "'seeds' must be finite")
        require(np.all((seeds >= 0) & (seeds < 1)), "'seeds' are fractional coordinates of the sample: each in [0, 1)")
        require(
            'n_grains' not in inp or inp['n_grains'] == len(seeds),
            f"'n_grains' {inp.get('n_grains')} differs from the number of 'seeds' ({len(seeds)}); drop 'n_grains'",
        )
        p['n_grains'] = len(seeds)
        sep = _min_periodic_separation(seeds)
        require(
            sep > MIN_SEED_SEPARATION,
            f"'seeds' must be distinct (periodic separation {sep:.3g} < {MIN_SEED_SEPARATION})",
        )
    n_grains = p['n_grains']
    require(
        _is_int(n_grains) and 1 <= n_grains <= 2000, f"'n_grains' must be an integer in [1, 2000], got {n_grains!r}"
    )
    require(_is_int(p['seed']), f"'seed' must be an integer, got {p['seed']!r}")
    mesh = p['mesh']
    n = mesh['cells_per_side'] if mesh['cells_per_side'] is not None else (96 if dim == 2 else 20)
    nmax = 1024 if dim == 2 else 64
    require(
        _is_int(n) and 8 <= n <= nmax, f'mesh.cells_per_side must be an integer in [8, {nmax}] in {dim}-D, got {n!r}'
    )
    k = mesh['subsamples']
    require(_is_int(k) and 1 <= k <= 10, f'mesh.subsamples must be an integer in [1, 10], got {k!r}')
    return dict(
        sizes=sizes,
        temps=temps,
        w=w,
        db=db,
        dg=dg,
        geometry=geometry,
        bcs=bcs,
        n_grains=n_grains,
        seed=p['seed'],
        seeds=seeds,
        n=n,
        k=k,
        dim=dim,
        write_xdmf=p['write_xdmf'],
    )


# ------------------------------------------------------------------------------------------------ geometry
def voronoi_seeds(n_grains, seed, dim=2):
    return np.random.default_rng(seed).random((n_grains, dim))


def _min_periodic_separation(seeds):
    if len(seeds) < 2:
        return np.inf
    diff = seeds[:, None, :] - seeds[None, :, :]
    diff -= np.round(diff)
    d = np.sqrt((diff**2).sum(-1))
    d[np.diag_indices(len(seeds))] = np.inf
    return float(d.min())


def _tiled(seeds):
    """Seeds and their 3^dim - 1 periodic images: positions, index of the original seed."""
    dim = seeds.shape[1]
    shifts = np.array(list(itertools.product((-1, 0, 1), repeat=dim)), float)
    tiled = (seeds[None, :, :] + shifts[:, None, :]).reshape(-1, dim)
    return tiled, np.tile(np.arange(len(seeds)), len(shifts))


def gb_distance(points, seeds):
    """Distance (unit-square/cube coordinates, periodic) from each point to the nearest Voronoi
    edge (2-D) or face (3-D), faces with the point's own periodic images included (kept for reference)."""
    return nearest_boundary(points, seeds, skip_self=False)[0]


def nearest_boundary(points, seeds, skip_self=True):
    """For each point (unit cell, periodic): distance to the nearest grain boundary of its grain, the unit
    normal of that boundary, and the (tiled) index pair (i, j) of the seeds it separates.

    The boundary between the nearest seed i and seed j is their bisector; distance
    (|p - s_j|^2 - |p - s_i|^2) / (2 |s_j - s_i|), minimised over the 12 (3-D: 24) nearest seeds. With
    ``skip_self`` a face between a seed and its own periodic image is not a grain boundary.
    """
    from scipy.spatial import cKDTree

    dim = seeds.shape[1]
    tiled, ids = _tiled(seeds)
    k = min(12 if dim == 2 else 24, len(tiled))
    _, idx = cKDTree(tiled).query(points, k=k)
    s = tiled[idx]  # (n, k, dim), sorted by distance
    s1 = s[:, :1, :]
    d1 = ((points[:, None, :] - s1) ** 2).sum(-1)
    dj = ((points[:, None, :] - s[:, 1:, :]) ** 2).sum(-1)
    sep = np.sqrt(((s[:, 1:, :] - s1) ** 2).sum(-1))
    dist = (dj - d1) / (2.0 * sep)
    if skip_self:
        dist = np.where(ids[idx[:, 1:]] == ids[idx[:, :1]], np.inf, dist)
    j = np.argmin(dist, axis=1)
    rows = np.arange(len(points))
    normal = (s[rows, j + 1] - s[:, 0]) / sep[rows, j][:, None]
    return dist[rows, j], normal, np.stack([idx[:, 0], idx[rows, j + 1]], axis=1)


def clip_convex(P, cnt, a, b):
    """Clip convex polygons by the half-planes a . x <= b (Sutherland & Hodgman, CACM 17 (1974) 32), vectorised.

    P (N, M, 2): vertices, the first ``cnt[i]`` valid, in order; a (2,) or (N, 2); b scalar or (N,).
    Returns (P', cnt'), the clipped polygons in the same vertex order.
    """
    N, M, _ = P.shape
    a = np.broadcast_to(np.asarray(a, float), (N, 2))
    b = np.broadcast_to(np.asarray(b, float), (N,))
    ar = np.arange(M)[None, :]
    valid = ar < cnt[:, None]
    nxt = np.where(ar + 1 < cnt[:, None], ar + 1, 0)
    s = np.einsum('nmk,nk->nm', P, a) - b[:, None]
    Q = np.take_along_axis(P, nxt[:, :, None], axis=1)
    sq = np.take_along_axis(s, nxt, axis=1)
    inside = s <= 0
    cross = valid & (inside != (sq <= 0))
    t = np.where(cross, s / np.where(cross, s - sq, 1.0), 0.0)
    pts = np.stack([P, P + t[:, :, None] * (Q - P)], axis=2).reshape(N, 2 * M, 2)
    keep = np.stack([inside & valid, cross], axis=2).reshape(N, 2 * M)
    new_cnt = keep.sum(axis=1)
    m = max(int(new_cnt.max(initial=0)), 3)
    order = np.argsort(~keep, axis=1, kind='stable')[:, :m]
    return np.take_along_axis(pts, order[:, :, None], axis=1), new_cnt


def polygon_area(P, cnt):
    """Signed areas (counter-clockwise positive) of polygons P (N, M, 2) with cnt vertices each."""
    M = P.shape[1]
    ar = np.arange(M)[None, :]
    nxt = np.where(ar + 1 < cnt[:, None], ar + 1, 0)
    Q = np.take_along_axis(P, nxt[:, :, None], axis=1)
    cr = np.where(ar < cnt[:, None], P[..., 0] * Q[..., 1] - Q[..., 0] * P[..., 1], 0.0)
    return 0.5 * cr.sum(axis=1)


def _clip_one(poly, halfplanes):
    """One convex polygon (m, 2) clipped by half-planes [(a, b), ...] (a . x <= b)."""
    P, cnt = poly[None].copy(), np.array([len(poly)])
    for a, b in halfplanes:
        P, cnt = clip_convex(P, cnt, a, b)
        if cnt[0] < 3:
            return np.zeros((0, 2))
    return P[0, : cnt[0]]


def voronoi_band_pieces(seeds, half_width):
    """The GB band of a periodic 2-D Voronoi tessellation as convex pieces, exactly.

    Grain g (Voronoi cell of seed g) is split by the straight skeleton of its boundaries into rims, one per
    grain-boundary edge e: the points of the cell closer than ``half_width`` to the line of e and closer to it
    than to any other boundary line of g. Returns (pieces, fraction): pieces is a list of (polygon (m, 2)
    counter-clockwise, unit normal, line offset) in the coordinates of the unit cell (not yet imaged), fraction
    the exact band area fraction (sum of the piece areas).
    """
    from scipy.spatial import cKDTree

    tiled, ids = _tiled(seeds)
    tree = cKDTree(tiled)
    pieces, total = [], 0.0
    for g, s in enumerate(seeds):
        k = min(len(tiled), 24)
        while True:
            dist, idx = tree.query(s, k=k)
            keep = dist > 1e-14
            q, nb = tiled[idx[keep]], ids[idx[keep]]
            normals = (q - s) / dist[keep][:, None]
            offsets = np.einsum('ij,ij->i', normals, 0.5 * (q + s))
            box = s + np.array([[-2.0, -2.0], [2.0, -2.0], [2.0, 2.0], [-2.0, 2.0]])
            cell = _clip_one(box, list(zip(normals, offsets)))
            radius = np.sqrt(((cell - s) ** 2).sum(1)).max()
            if k == len(tiled) or dist[-1] > 2.0 * radius + 1e-12:
                break  # no seed farther than dist[-1] can cut the cell
            k = min(len(tiled), 2 * k)
        # real edges: at least two distinct cell vertices on the bisector line
        edges = []
        for j in range(len(q)):
            on = cell[np.abs(cell @ normals[j] - offsets[j]) < 1e-10]
            if len(on) >= 2 and np.ptp(on, axis=0).max() > 1e-10 and nb[j] != g:
                edges.append(j)
        for e in edges:
            hp = [(-normals[e], -(offsets[e] - half_width))]
            hp += [(normals[o] - normals[e], offsets[o] - offsets[e]) for o in edges if o != e]
            piece = _clip_one(cell, hp)
            if len(piece) < 3:
                continue
            area = polygon_area(piece[None], np.array([len(piece)]))[0]
            if area > 0:
                pieces.append((piece, normals[e], offsets[e]))
                total += area
    return pieces, total


def laminate_band_pieces(n_layers, half_width):
    """Band of a laminate of ``n_layers`` grains stacked along x (unit cell): boundaries at x = (k + 1/2)/n."""
    pieces = []
    for k in range(n_layers):
        x = (k + 0.5) / n_layers
        rect = np.array([[x - half_width, 0.0], [x + half_width, 0.0], [x + half_width, 1.0], [x - half_width, 1.0]])
        pieces.append((rect, np.array([1.0, 0.0]), x))
    return pieces, 2.0 * half_width * n_layers


def voronoi_band_fraction_3d(seeds, half_width):
    """Exact band volume fraction of a periodic 3-D Voronoi tessellation: 1 - sum of the volumes of the grains'
    inner parallel bodies (cell faces moved inward by ``half_width``; faces with the seed's own image stay)."""
    from scipy.optimize import linprog
    from scipy.spatial import ConvexHull, HalfspaceIntersection, cKDTree

    tiled, ids = _tiled(seeds)
    tree = cKDTree(tiled)
    inner = 0.0
    for g, s in enumerate(seeds):
        dist, idx = tree.query(s, k=min(len(tiled), 60))
        keep = dist > 1e-14
        q, nb = tiled[idx[keep]], ids[idx[keep]]
        normals = (q - s) / dist[keep][:, None]
        offsets = np.einsum('ij,ij->i', normals, 0.5 * (q + s)) - np.where(nb == g, 0.0, half_width)
        box_n = np.vstack([np.eye(3), -np.eye(3)])
        box_o = np.concatenate([s + 2.0, -(s - 2.0)])
        A = np.vstack([normals, box_n])
        b = np.concatenate([offsets, box_o])
        # Chebyshev centre: an interior point, and whether the inner body is empty
        res = linprog(
            np.r_[np.zeros(3), -1.0],
            A_ub=np.hstack([A, np.ones((len(A), 1))]),
            b_ub=b,
            bounds=[(None, None)] * 3 + [(0, None)],
            method='highs',
        )
        if not res.success or res.x[3] < 1e-12:
            continue
        hs = HalfspaceIntersection(np.hstack([A, -b[:, None]]), res.x[:3])
        inner += ConvexHull(hs.intersections).volume
    return 1.0 - inner


def hashin_shtrikman(f_gb, d_gb, d_b, dim=2):
    """HS bounds (lower, upper) in ``dim`` dimensions for an isotropic two-phase medium (f_gb, 1-f_gb)."""
    (d1, f1), (d2, f2) = sorted([(d_b, 1.0 - f_gb), (d_gb, f_gb)])
    if d1 == d2:
        return d1, d1
    lower = d1 + f2 / (1.0 / (d2 - d1) + f1 / (dim * d1))
    upper = d2 + f1 / (1.0 / (d1 - d2) + f2 / (dim * d2))
    return lower, upper


def hashin_shtrikman_2d(f_gb, d_gb, d_b):
    return hashin_shtrikman(f_gb, d_gb, d_b, 2)


def cell_tensors(phi, phi_n, normal, junction, ratio, dim):
    """Cell diffusivity tensors / D_b, (n_cells, dim, dim), for D_gb / D_b = ``ratio`` (see the module docstring)."""
    par = (1.0 - phi) + phi * ratio
    ser = 1.0 / ((1.0 - phi_n) + phi_n / ratio)
    eye = np.eye(dim)[None]
    nn = normal[:, :, None] * normal[:, None, :]
    D = par[:, None, None] * eye + (ser - par)[:, None, None] * nn
    iso = ser if ratio < 1.0 else par  # junction cells: block like their thickest boundary, or conduct like all
    D[junction] = iso[junction, None, None] * eye
    return D


def _split(poly, a, b, snap=0.0):
    """Split a convex polygon (list of (x, y)) by the line a.x = b: (part a.x <= b, part a.x >= b)."""
    s = [a[0] * x + a[1] * y - b for x, y in poly]
    s = [0.0 if abs(v) < snap else v for v in s]  # a vertex within ``snap`` of the line is on it: no slivers
    inside, outside = [], []
    m = len(poly)
    for k in range(m):
        p, q, sp_, sq = poly[k], poly[(k + 1) % m], s[k], s[(k + 1) % m]
        if sp_ <= 0:
            inside.append(p)
        if sp_ >= 0:
            outside.append(p)
        if (sp_ < 0 < sq) or (sq < 0 < sp_):
            t = sp_ / (sp_ - sq)
            x = (p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1]))
            inside.append(x)
            outside.append(x)
    return inside, outside


def _area(poly):
    return 0.5 * sum(
        poly[k][0] * poly[(k + 1) % len(poly)][1] - poly[(k + 1) % len(poly)][0] * poly[k][1] for k in range(len(poly))
    )


def _max_angle_cos(t):
    """Cosine of the largest angle of triangle t (three (x, y)); -1 for a degenerate one."""
    (ax, ay), (bx, by), (cx, cy) = t
    sides = ((bx - cx) ** 2 + (by - cy) ** 2, (ax - cx) ** 2 + (ay - cy) ** 2, (ax - bx) ** 2 + (ay - by) ** 2)
    area2 = abs((bx - ax) * (cy - ay) - (cx - ax) * (by - ay))
    if area2 <= 1e-14 * max(sides):
        return -1.0
    k = max(range(3), key=lambda i: sides[i])  # the largest angle faces the longest side
    others = [sides[i] for i in range(3) if i != k]
    return (others[0] + others[1] - sides[k]) / (2.0 * (others[0] * others[1]) ** 0.5)


def _triangulate_convex(g):
    """Triangles of a convex polygon g (which may have collinear points on its sides): the fan from the vertex (or
    from the centroid) whose largest angle is smallest, degenerate fans excluded (maximum-angle condition)."""
    m = len(g)
    if m == 3:
        return [list(g)]
    c = (sum(p[0] for p in g) / m, sum(p[1] for p in g) / m)
    best = [[c, g[k], g[(k + 1) % m]] for k in range(m)]
    best_cos = min(_max_angle_cos(t) for t in best)
    for a in range(m):
        fan = [[g[a], g[(a + k) % m], g[(a + k + 1) % m]] for k in range(1, m - 1)]
        worst = min(_max_angle_cos(t) for t in fan)
        if worst > best_cos:
            best, best_cos = fan, worst
    return best


def cut_cell_mesh(n, pieces, periodic=True):
    """Conforming triangle mesh of the unit square in which every triangle lies inside the GB band or outside it.

    Each of the n x n squares that a band piece may overlap is cut by the lines of the piece edges into convex faces
    (classified by their centroid); points that any face puts on a square's side are added to the faces on both
    sides of it (and, with ``periodic``, on the opposite face of the unit cell), and every face is triangulated
    by the fan with the smallest largest angle. Squares the band does not reach are split in two.
    Returns (x (m, 2), triangles (t, 3), in_band (t,) bool).
    """
    h = 1.0 / n
    images = []  # (lines [(ax, ay, b)] with a unit: inside is a.x <= b)
    bucket = {}
    for poly, _normal, _offset in pieces:
        for shift in itertools.product((-1.0, 0.0, 1.0), repeat=2):
            img = poly + np.array(shift)
            lo, hi = img.min(0), img.max(0)
            if np.any(hi <= 0) or np.any(lo >= 1):
                continue
            lines = []
            for v0, v1 in zip(img, np.roll(img, -1, 0)):
                d = v1 - v0
                length = float(np.hypot(*d))
                if length >= 1e-14:
                    ax, ay = d[1] / length, -d[0] / length
                    lines.append((ax, ay, ax * v0[0] + ay * v0[1]))
            q = len(images)
            images.append(lines)
            for i in range(max(0, int(lo[0] * n)), min(n - 1, int(hi[0] * n)) + 1):
                for j in range(max(0, int(lo[1] * n)), min(n - 1, int(hi[1] * n)) + 1):
                    bucket.setdefault((i, j), []).append(q)
    snap = 1e-9 * h
    faces = []  # (i, j, polygon, in_band)
    for (i, j), cand in bucket.items():
        sq = [(i * h, j * h), ((i + 1) * h, j * h), ((i + 1) * h, (j + 1) * h), (i * h, (j + 1) * h)]
        cur = [sq]
        for q in cand:
            for ax, ay, b in images[q]:
                s = [ax * x + ay * y - b for x, y in sq]
                if min(s) >= -snap or max(s) <= snap:
                    continue  # the line does not cross this square
                nxt = []
                for f in cur:
                    for part in _split(f, (ax, ay), b, snap):
                        if len(part) >= 3 and _area(part) > 0.0:
                            nxt.append(part)
                cur = nxt
        for f in cur:
            cx, cy = sum(p[0] for p in f) / len(f), sum(p[1] for p in f) / len(f)
            inside = any(all(ax * cx + ay * cy <= b + 1e-15 for ax, ay, b in images[q]) for q in cand)
            faces.append((i, j, f, inside))
    tol = 1e-10 * h

    def wrap(k):
        return k % n if periodic else k

    def sides(i, j, x, y):
        """The square sides (key, parameter along it in [0, 1]) that point (x, y) of square (i, j) lies on."""
        out = []
        if abs(x - i * h) < tol:
            out.append((('v', wrap(i), j), (y - j * h) / h))
        if abs(x - (i + 1) * h) < tol:
            out.append((('v', wrap(i + 1), j), (y - j * h) / h))
        if abs(y - j * h) < tol:
            out.append((('h', i, wrap(j)), (x - i * h) / h))
        if abs(y - (j + 1) * h) < tol:
            out.append((('h', i, wrap(j + 1)), (x - i * h) / h))
        return out

    side_points = {}
    for i, j, f, _ in faces:
        for x, y in f:
            for key, t in sides(i, j, x, y):
                if 1e-9 < t < 1 - 1e-9:
                    side_points.setdefault(key, set()).add(t)
    cut = set(bucket)
    plain = []
    for i in range(n):
        for j in range(n):
            if (i, j) in cut:
                continue
            keys = (('v', wrap(i), j), ('v', wrap(i + 1), j), ('h', i, wrap(j)), ('h', i, wrap(j + 1)))
            if any(k in side_points for k in keys):
                sq = [(i * h, j * h), ((i + 1) * h, j * h), ((i + 1) * h, (j + 1) * h), (i * h, (j + 1) * h)]
                faces.append((i, j, sq, False))
            else:
                plain.append((i, j))
    tris, band = [], []
    for i, j, f, inside in faces:
        g = []
        m = len(f)
        for k in range(m):
            p, q = f[k], f[(k + 1) % m]
            g.append(p)
            sp_, sq_ = dict(sides(i, j, *p)), dict(sides(i, j, *q))
            for key in set(sp_) & set(sq_):
                t0, t1 = sp_[key], sq_[key]
                extra = sorted(t for t in side_points.get(key, ()) if min(t0, t1) + 1e-9 < t < max(t0, t1) - 1e-9)
                for t in extra[::-1] if t1 < t0 else extra:
                    g.append((p[0], (j + t) * h) if key[0] == 'v' else ((i + t) * h, p[1]))
        parts = _triangulate_convex(g)
        tris.extend(parts)
        band.extend([inside] * len(parts))
    P = np.array(tris, dtype=float).reshape(-1, 3, 2)
    if plain:
        ij = np.array(plain, dtype=float) * h
        c00, c10, c11, c01 = ij, ij + [h, 0.0], ij + [h, h], ij + [0.0, h]
        P = np.concatenate([P, np.stack([c00, c10, c11], axis=1), np.stack([c00, c11, c01], axis=1)])
        band = band + [False] * (2 * len(plain))
    flat = P.reshape(-1, 2)
    node = identify_nodes(flat, periodic=False, tol=1e-11 * h)
    x = np.zeros((node.max() + 1, 2))
    x[node] = flat
    cells = node.reshape(-1, 3)
    ok = (cells[:, 0] != cells[:, 1]) & (cells[:, 1] != cells[:, 2]) & (cells[:, 0] != cells[:, 2])
    cells, band = cells[ok], np.array(band, bool)[ok]
    used, cells = np.unique(cells, return_inverse=True)
    return x[used], cells.reshape(-1, 3), band


def identify_nodes(x, periodic, tol=1e-9):
    """Index of the distinct node of each point of ``x`` (n, dim) in the unit cell: points closer than ``tol``
    are one node, and with ``periodic`` so are points on opposite faces (x_a = 1 is x_a = 0)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    x = np.array(x, float)
    if periodic:
        x[x > 1.0 - tol] -= 1.0
    pairs = cKDTree(x).query_pairs(tol, output_type='ndarray')
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(x), len(x)))
    return connected_components(graph, directed=False)[1]


# ------------------------------------------------------------------------------------------------ FE solve
class Solver:
    """P1 on the band-conforming cut-cell mesh of the unit square (2-D) or on a uniform tetrahedral mesh (3-D), with the
    periodic or fixed-gradient problem for each axis; one instance per band width (the mesh follows the band)."""

    def __init__(self, P, pieces=None):
        import ufl

        try:
            from . import fem_compat as fc
        except ImportError:
            import fem_compat as fc
        self.fc, self.ufl = fc, ufl
        dim = self.dim = P['dim']
        n = P['n']
        self.periodic = P['bcs'] == 'periodic'
        if fc.COMM.size > 1:
            raise common.InputError('the polycrystal model runs serially (one MPI rank)')
        if dim == 2:
            xs, cells, band = cut_cell_mesh(n, pieces, self.periodic)
            self.mesh = fc.triangle_mesh_from_cells(cells, xs)
            self.cut_band = (xs[cells].mean(axis=1), band)
        else:
            self.mesh = fc.box_mesh(1.0, 1.0, 1.0, n, n, n)
        self.V = fc.function_space(self.mesh, 'Lagrange', 1)
        self.Q = fc.function_space(self.mesh, 'DG', 0)
        xd = np.asarray(self.V.tabulate_dof_coordinates())[:, :dim]
        node = identify_nodes(xd, self.periodic)
        weights = [[(int(q), 1.0)] for q in node]
        self.prolongation = fc.constrained_prolongation(self.V, weights)
        self.n_free = self.prolongation.getSize()[1]
        if not self.periodic:  # Dirichlet rows per axis: reduced dofs on x_a = 0 (c = 1) and x_a = 1 (c = 0)
            red_x = np.zeros((self.n_free, dim))
            red_x[node] = xd
            self.fixed = []
            for a in range(dim):
                lo, hi = np.nonzero(red_x[:, a] < 1e-9)[0], np.nonzero(red_x[:, a] > 1 - 1e-9)[0]
                self.fixed.append((np.concatenate([lo, hi]), np.concatenate([np.ones(len(lo)), np.zeros(len(hi))])))
        self.pairs = [(a, b) for a in range(dim) for b in range(a, dim)]
        self.Dc = {ab: fc.dolfinx.fem.Function(self.Q) for ab in self.pairs}
        Dt = ufl.as_matrix([[self.Dc[(min(a, b), max(a, b))] for b in range(dim)] for a in range(dim)])
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        self.c = [fc.dolfinx.fem.Function(self.V) for _ in range(dim)]
        self.a = fc.form(ufl.inner(Dt * ufl.grad(u), ufl.grad(v)) * ufl.dx)
        unit = [ufl.as_vector([1.0 if i == a else 0.0 for i in range(dim)]) for a in range(dim)]
        if self.periodic:
            self.L = [fc.form(-ufl.inner(Dt * unit[a], ufl.grad(v)) * ufl.dx) for a in range(dim)]
            grads = [unit[a] + ufl.grad(self.c[a]) for a in range(dim)]
            pairs = self.pairs
        else:
            self.L = [fc.form(fc.constant(self.mesh, 0.0) * v * ufl.dx)] * dim
            grads = [ufl.grad(self.c[a]) for a in range(dim)]
            pairs = [(a, a) for a in range(dim)]
        self.energy = {(a, b): fc.form(ufl.inner(Dt * grads[a], grads[b]) * ufl.dx) for a, b in pairs}
        cells = fc.geometry_cells(self.mesh)
        X = self.mesh.geometry.x[:, :dim]
        if dim == 2:  # triangles, each inside the band or outside it
            from scipy.spatial import cKDTree

            self.vertices = X[cells[:, :3]]
            self.cell_volume = np.abs(polygon_area(self.vertices, np.full(len(self.vertices), 3)))
            _, nearest = cKDTree(self.cut_band[0]).query(self.vertices.mean(axis=1))
            self.band = self.cut_band[1][nearest]
        else:  # tetrahedra; k^2 fixed pseudo-random barycentric points per cell (uniform in the cell)
            self.vertices = X[cells[:, :4]]
            lam = np.random.default_rng(12345).dirichlet(np.ones(4), size=P['k'] ** 2)
            self.samples = np.einsum('sv,cvd->csd', lam, self.vertices)
            edges = np.stack([self.vertices[:, i] - self.vertices[:, 0] for i in range(1, 4)], axis=1)
            self.cell_volume = np.abs(np.linalg.det(edges)) / 6.0
        self.cell_dof = fc.cell_dofs(self.Q)[:, 0]

    def band_geometry_3d(self, seeds, half_width):
        """phi (sampled), phi_n, normal, junction flag per tetrahedron: the boundary is the face nearest to the
        first band sample point; phi_n is the part of the band [-w/2, w/2] around that face's plane that lies
        within the tetrahedron's extent along its normal, over that extent."""
        shape = self.samples.shape[:2]
        dist, normal, pair = nearest_boundary(np.mod(self.samples.reshape(-1, 3), 1.0), seeds)
        inside = (dist < half_width).reshape(shape)
        phi = inside.mean(axis=1)
        pair = pair.reshape(shape + (2,))
        normal = normal.reshape(shape + (3,))
        tiled, _ = _tiled(seeds)
        n_cells = shape[0]
        junction = np.zeros(n_cells, bool)
        nrm = np.zeros((n_cells, 3))
        phi_n = np.zeros(n_cells)
        for c in np.nonzero(inside.any(axis=1))[0]:
            keys = np.sort(pair[c][inside[c]], axis=1)
            junction[c] = len(np.unique(keys, axis=0)) > 1
            first = np.nonzero(inside[c])[0][0]
            nrm[c] = normal[c, first]
            mid = 0.5 * (tiled[pair[c, first, 0]] + tiled[pair[c, first, 1]])
            sv = (self.vertices[c] - mid) @ nrm[c]
            lo, hi = sv.min(), sv.max()
            phi_n[c] = max(0.0, min(hi, half_width) - max(lo, -half_width)) / (hi - lo)
        return phi, phi_n, nrm, junction

    def d_eff(self, D):
        """Effective tensor / D_b for cell tensors D (n_cells, dim, dim) / D_b (NaN where not defined)."""
        fc = self.fc
        for a, b in self.pairs:
            self.Dc[(a, b)].x.array[self.cell_dof] = D[:, a, b]
        out = np.full((self.dim, self.dim), np.nan)
        fc.solve_constrained(self.a, self.L, self.c, self.prolongation, None if self.periodic else self.fixed)
        for (a, b), f in self.energy.items():
            out[a, b] = out[b, a] = fc.assemble_scalar(f)
        return out


def run(inp, base_dir='.', out_dir='.'):
    P = validate(inp, base_dir)
    t_start = time.perf_counter()
    dim = P['dim']
    S = Solver(P) if dim == 3 else None
    if P['geometry'] == 'laminate':
        seeds = np.column_stack([(np.arange(P['n_grains']) + 0.5) / P['n_grains'], np.full(P['n_grains'], 0.5)])
    elif P['seeds'] is not None:
        seeds = P['seeds']
    else:
        seeds = voronoi_seeds(P['n_grains'], P['seed'], dim)
    kB = common.BOLTZMANN_EV
    rows, arrays, geo_stats = [], {}, []
    nd, nt = len(P['sizes']), len(P['temps'])
    deff = np.zeros((nd, nt))
    tensors = np.zeros((nd, nt, dim, dim))
    fgb = np.zeros(nd)
    hs = np.zeros((nd, nt, 2))
    hart = np.zeros((nd, nt))
    reuss = np.zeros((nd, nt))
    t_solve = t_geometry = t_mesh = 0.0
    for i, d in enumerate(P['sizes']):
        t0 = time.perf_counter()
        L = d * (P['n_grains'] if P['geometry'] == 'laminate' else P['n_grains'] ** (1.0 / dim))
        half = 0.5 * P['w'] / L
        if dim == 2:
            if P['geometry'] == 'laminate':
                pieces, fgb[i] = laminate_band_pieces(P['n_grains'], half)
            else:
                pieces, fgb[i] = voronoi_band_pieces(seeds, half)
            t1 = time.perf_counter()
            S = Solver(P, pieces)
            t_mesh += time.perf_counter() - t1
            phi = S.band.astype(float)  # each triangle lies in the band or outside it
            phi_n, normal, junction = phi, np.zeros((len(phi), 2)), np.zeros(len(phi), bool)
        else:
            fgb[i] = voronoi_band_fraction_3d(seeds, half)
            phi, phi_n, normal, junction = S.band_geometry_3d(seeds, half)
        t_geometry += time.perf_counter() - t0
        f_mesh = float(np.sum(phi * S.cell_volume) / np.sum(S.cell_volume))
        geo_stats.append(
            dict(
                grain_size=d,
                gb_fraction=fgb[i],
                gb_fraction_mesh=f_mesh,
                band_width_in_cells=2.0 * half * P['n'],
                n_cells=int(len(S.cell_dof)),
                n_dofs=int(len(S.c[0].x.array)),
                n_free_dofs=int(S.n_free),
                cells_in_band=int(np.sum(phi > 0)),
            )
        )
        arrays[f'size{i}_gb_fraction_per_cell'] = phi
        for j, T in enumerate(P['temps']):
            d_b = P['db'][0] * np.exp(-P['db'][1] / (kB * T))
            d_g = P['dg'][0] * np.exp(-P['dg'][1] / (kB * T))
            t0 = time.perf_counter()
            tensor = S.d_eff(cell_tensors(phi, phi_n, normal, junction, d_g / d_b, dim)) * d_b
            t_solve += time.perf_counter() - t0
            tensors[i, j] = tensor
            deff[i, j] = np.trace(tensor) / dim
            hs[i, j] = hashin_shtrikman(fgb[i], d_g, d_b, dim)
            hart[i, j] = (1 - fgb[i]) * d_b + fgb[i] * d_g
            reuss[i, j] = 1.0 / ((1 - fgb[i]) / d_b + fgb[i] / d_g)
            if not np.isfinite(deff[i, j]) or deff[i, j] <= 0:
                raise common.UnphysicalStateError(f'D_eff = {deff[i, j]} at d = {d}, T = {T}')
            rows.append(
                dict(
                    grain_size=d,
                    temperature=T,
                    D_bulk=d_b,
                    D_gb=d_g,
                    D_gb_model=d_g,
                    D_eff=deff[i, j],
                    **{f'D_{a}{a}': tensor[q, q] for q, a in enumerate('xyz'[:dim])},
                    D_xy=tensor[0, 1],
                    gb_fraction=fgb[i],
                    hs_lower=hs[i, j, 0],
                    hs_upper=hs[i, j, 1],
                    parallel=hart[i, j],
                    series=reuss[i, j],
                    band_widened=False,
                )
            )
        if P['write_xdmf']:
            S.Dc[(0, 0)].x.array[S.cell_dof] = phi
            S.fc.write_xdmf(
                os.path.join(out_dir, f'polycrystal_size{i}_gb.xdmf'), S.mesh, [('gb_fraction', S.Dc[(0, 0)])]
            )
    e_app, e_local = [], []
    if nt >= 2:
        beta = 1.0 / (kB * np.asarray(P['temps']))
        for i in range(nd):
            slope = np.polyfit(beta, np.log(deff[i]), 1)[0]
            e_app.append(-slope)
            o = np.argsort(beta)
            e_local.append((-np.diff(np.log(deff[i][o])) / np.diff(beta[o])).tolist())
    arrays.update(
        grain_size=np.array(P['sizes']),
        temperature=np.array(P['temps']),
        D_eff=deff,
        D_tensor=tensors,
        **{f'D_{a}{a}': tensors[:, :, q, q] for q, a in enumerate('xyz'[:dim])},
        gb_fraction=fgb,
        hs_bounds=hs,
        seeds=seeds,
    )
    if P['bcs'] == 'periodic':
        bc_text = (
            'periodic: c = G.x + periodic fluctuation, G = each unit vector; D_eff tensor = volume average of '
            'D (G + grad c~); D_eff = trace / dim'
        )
    else:
        bc_text = (
            'fixed gradient: c=1 on x=0, c=0 on x=L, zero flux on the other faces (and the same along each axis); '
            'D_eff = mean of the diagonal components'
        )
    warnings = []
    if dim == 3 and any(g['band_width_in_cells'] < 2 for g in geo_stats):
        slow = [r['temperature'] for r in rows if r['D_gb'] < r['D_bulk']]
        if slow:
            warnings.append(
                f'3-D with the GB band thinner than 2 mesh cells and D_gb < D_bulk (at T = {slow} K): the '
                'cell-averaged band lets flux leak through it, so D_eff is an upper estimate; the 2-D model meshes '
                'the band exactly'
            )
    summary = dict(
        model='polycrystal',
        status='ok',
        units=dict(grain_size='m', gb_width='m', temperature='K', D='m^2/s', activation_energy='eV'),
        dimension=dim,
        geometry=P['geometry'],
        boundary_conditions=bc_text,
        gb_treatment='thin layer per cell: exact band fraction, series across / parallel along the boundary '
        '(laminate composite cell); isotropic coated-grain value in junction cells; no band widening',
        grain_size_definition='(mean grain area or volume)^(1/dim); sample side L = d n_grains^(1/dim) '
        '(laminate: layer thickness, L = d n_grains)',
        table=rows,
        apparent_activation_energy=dict(grain_size=P['sizes'], E_app=e_app, E_local=e_local),
        bulk_activation_energy=P['db'][1],
        gb_activation_energy=P['dg'][1],
        geometry_statistics=geo_stats,
        warnings=warnings,
        mesh=dict(
            cells_per_side=P['n'],
            n_cells=int(max(g['n_cells'] for g in geo_stats)),
            n_dofs=int(max(g['n_dofs'] for g in geo_stats)),
            subsamples=P['k'],
            cell_type='triangle (P1), cut along the GB band' if dim == 2 else 'tetrahedron (P1)',
        ),
        band_widened=[False] * nd,
        geometry_time=t_geometry,
        mesh_time=t_mesh,
        solve_time=t_solve,
        wall_time=time.perf_counter() - t_start,
    )
    common.write_results(out_dir, summary, arrays)
    return summary
