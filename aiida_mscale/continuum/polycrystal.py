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

Grain-boundary treatment: band-refined mesh with thin-layer cells
-----------------------------------------------------------------
2-D: Q1 elements on a quadtree of squares: the ``cells_per_side``^2 base grid is split where the band cuts it
until the band is ``mesh.band_cells`` (default 2) cells wide (at most ``mesh.max_levels`` splits), then 2:1
balanced (periodically); continuity at hanging nodes is imposed by constraints (a hanging node is the mean of its
edge's ends). Each cell gets an anisotropic diffusivity from the exact GB area fraction phi of that cell (square
clipped against the band's convex pieces, Sutherland & Hodgman 1974) and the boundary's normal n in it (the
"laminate composite voxel" of Kabel, Merkert & Schneider, CMAME 294 (2015) 168)::

    D_cell = D_par (I - n n) + D_ser n n,   D_par = (1-phi) D_b + phi D_gb,   D_ser = 1 / ((1-phi_n)/D_b + phi_n/D_gb)

with phi_n the band thickness inside the cell along n over the cell's extent along n: the boundary conducts in
series across it and in parallel along it, the two limits of the thin-interphase model of conduction (Hashin,
J. Appl. Phys. 89 (2001) 2261: "low-conducting" interface, jump resistance w/D_gb; "highly conducting" interface,
tangential conductance w D_gb). A cell holding band of more than one boundary (triple junctions) gets the isotropic
D_ser (max phi_n) when D_gb < D_b and D_par when D_gb > D_b. Refinement is what makes blocking boundaries right: a
cell tensor alone cannot stop flux through mesh nodes that lie inside a band thinner than the cell. The laminate
is exact on this mesh (cell columns are layered) whatever w/h; for Voronoi grains the error falls about linearly
with the cell size in the band (docs/continuum.md gives measured numbers). There is no band widening.
3-D: P1 on a uniform tetrahedral mesh (no refinement), phi from k^2 sample points per tetrahedron and the same
cell rule; use it for fast boundaries or bands resolved by the mesh.

Boundary conditions (``boundary_conditions``)
---------------------------------------------
"periodic" (default; serial runs): c = G.x + c~ with c~ periodic on the unit cell, for G = each unit vector;
the full effective tensor D_eff,ab = <(e_a + grad c~_a) . D (e_b + grad c~_b)> (volume average). The periodic and
hanging-node constraints are imposed with a prolongation matrix P (reduced system P^T A P, one node pinned): the
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
     "mesh": {"cells_per_side": 96,     # base grid, 2-D default 96 (3-D 20, at most 64)
              "band_cells": 2,          # 2-D: cells across the band after refinement (0: no refinement)
              "max_levels": 10,         # 2-D: at most this many splits
              "max_cells": 2000000,     # 2-D: refuse (exit 2) a refined mesh larger than this
              "subsamples": 4},         # 3-D: subsamples^2 sample points per tetrahedron for phi
     "write_xdmf": false}

``band_widening`` (the former widened-band treatment) is accepted only as false. Unknown keys are refused.

Output: results.json -> ``table`` (one row per (d, T): D_bulk, D_gb, D_gb_model (= D_gb), D_eff, D_xx, D_yy
(D_zz), D_xy, gb_fraction, hs_lower, hs_upper, parallel, series, band_widened (always false)),
``apparent_activation_energy`` {grain_size, E_app [eV], E_local}, ``geometry_statistics`` per grain size (exact and
mesh-integrated GB fraction, number of cells cut by the band and of junction cells), BC and grain-size
definitions, mesh, timings. results.npz -> ``D_eff``, ``D_xx``, ``D_yy`` (n_sizes, n_T), ``D_tensor``
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
    'mesh': {'cells_per_side': None, 'subsamples': 4, 'band_cells': 2, 'max_levels': 10, 'max_cells': 2000000},
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
MESH_KEYS = ('cells_per_side', 'subsamples', 'band_cells', 'max_levels', 'max_cells')
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
        "'mesh' must be an object {cells_per_side, subsamples, band_cells, max_levels, max_cells}",
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
    band_cells = mesh['band_cells']
    require(
        _is_number(band_cells) and 0 <= band_cells <= 16,
        f'mesh.band_cells (cells across the GB band after refinement; 0 = no refinement) must be a number in [0, 16], '
        f'got {band_cells!r}',
    )
    max_levels = mesh['max_levels']
    require(
        _is_int(max_levels) and 0 <= max_levels <= 14,
        f'mesh.max_levels must be an integer in [0, 14], got {max_levels!r}',
    )
    max_cells = mesh['max_cells']
    require(_is_int(max_cells) and max_cells >= 64, f'mesh.max_cells must be an integer >= 64, got {max_cells!r}')
    require(
        dim == 2 or ('band_cells' not in mesh_in and 'max_levels' not in mesh_in),
        'mesh.band_cells and mesh.max_levels apply to the 2-D band-refined mesh only',
    )
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
        band_cells=float(band_cells),
        max_levels=max_levels,
        max_cells=max_cells,
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


def _line_key(normal, offset):
    """The line n . x = offset with a sign convention (n_x > 0, or n_x = 0 and n_y > 0)."""
    flip = normal[0] < -1e-12 or (abs(normal[0]) <= 1e-12 and normal[1] < 0)
    return (-normal, -offset) if flip else (normal, offset)


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


def cell_band_geometry(cells, pieces):
    """Band geometry per convex mesh cell (N, m, 2: vertices in cyclic order) of the unit square.

    Returns ``phi`` (exact band area fraction), ``phi_n`` (normal fraction: thickness of the band inside the cell
    along its normal over the cell's extent along that normal), ``normal`` (unit normal of the boundary line
    with the largest band area in the cell) and ``junction`` (the cell holds band of more than one boundary
    line; then ``phi_n`` is the largest over its lines). The pieces (unit-cell coordinates) are imaged
    periodically onto the square; each cell is clipped against each piece its bounding box may overlap.
    """
    cells = np.array(cells, float)
    n_vertices = cells.shape[1]
    signed = polygon_area(cells, np.full(len(cells), n_vertices))
    cw = signed < 0
    cells[cw] = cells[cw][:, ::-1]
    area_c = np.abs(signed)
    lo, hi = cells.min(axis=1), cells.max(axis=1)
    by_x = np.argsort(lo[:, 0], kind='stable')
    lo_x = lo[by_x, 0]
    widest = float((hi[:, 0] - lo[:, 0]).max()) if len(cells) else 0.0
    # every periodic image of every piece that overlaps the square, as half-planes a . x <= b (padded)
    images, planes, lines = [], [], []
    for poly, normal, offset in pieces:
        for shift in itertools.product((-1.0, 0.0, 1.0), repeat=2):
            shift = np.array(shift)
            img = poly + shift
            plo, phi_ = img.min(axis=0), img.max(axis=0)
            if np.any(phi_ <= 0.0) or np.any(plo >= 1.0):
                continue
            hp = []
            for v0, v1 in zip(img, np.roll(img, -1, axis=0)):
                d = v1 - v0
                if np.hypot(*d) >= 1e-14:
                    a = np.array([d[1], -d[0]])
                    hp.append((a[0], a[1], a @ v0))
            images.append((plo, phi_))
            planes.append(hp)
            n_key, off_key = _line_key(normal, offset + normal @ shift)
            lines.append(np.append(n_key, off_key))
    pair_cell, pair_img = [], []
    for q, (plo, phi_) in enumerate(images):
        cand = by_x[np.searchsorted(lo_x, plo[0] - widest) : np.searchsorted(lo_x, phi_[0])]
        cand = cand[np.all(hi[cand] > plo, axis=1) & np.all(lo[cand] < phi_, axis=1)]
        pair_cell.append(cand)
        pair_img.append(np.full(len(cand), q))
    rec = None
    if images and sum(len(c) for c in pair_cell):
        e_max = max(len(hp) for hp in planes)
        H = np.tile(np.array([0.0, 0.0, 1.0]), (len(images), e_max, 1))
        for q, hp in enumerate(planes):
            H[q, : len(hp)] = hp
        lines = np.array(lines)
        pc_, pi_ = np.concatenate(pair_cell), np.concatenate(pair_img)
        P, cnt = cells[pc_].copy(), np.full(len(pc_), n_vertices)
        for k in range(e_max):
            P, cnt = clip_convex(P, cnt, H[pi_, k, :2], H[pi_, k, 2])
        area = polygon_area(P, cnt)
        ok = area > 1e-12 * area_c[pc_]
        line = lines[pi_[ok]]
        proj = np.where(
            np.arange(P.shape[1])[None, :] < cnt[ok, None], np.einsum('nmk,nk->nm', P[ok], line[:, :2]), np.nan
        )
        rec = dict(cell=pc_[ok], area=area[ok], line=line, pmin=np.nanmin(proj, axis=1), pmax=np.nanmax(proj, axis=1))
    N = len(cells)
    phi, phi_n = np.zeros(N), np.zeros(N)
    normal = np.zeros((N, 2))
    junction = np.zeros(N, bool)
    if rec is not None and len(rec['cell']):
        idx, ar, line, pmin, pmax = (rec[k] for k in ('cell', 'area', 'line', 'pmin', 'pmax'))
        np.add.at(phi, idx, ar)
        # group the records by (cell, boundary line): both halves of a band (two grains' rims) form one group
        key = np.column_stack([idx, np.round(line * 1e8)]).astype(np.int64)
        groups, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
        g_cell = idx[first]
        g_area, g_min, g_max = np.zeros(len(groups)), np.full(len(groups), np.inf), np.full(len(groups), -np.inf)
        np.add.at(g_area, inverse, ar)
        np.minimum.at(g_min, inverse, pmin)
        np.maximum.at(g_max, inverse, pmax)
        g_normal = line[first, :2]
        # extent of each group's cell along the group's normal
        proj = np.einsum('gvk,gk->gv', cells[g_cell], g_normal)
        g_phi_n = np.clip((g_max - g_min) / (proj.max(axis=1) - proj.min(axis=1)), 0.0, 1.0)
        count = np.bincount(g_cell, minlength=N)
        junction = count > 1
        np.maximum.at(phi_n, g_cell, g_phi_n)
        biggest = np.zeros(N)
        np.maximum.at(biggest, g_cell, g_area)
        top = g_area >= biggest[g_cell]
        normal[g_cell[top]] = g_normal[top]
    phi = np.clip(phi / area_c, 0.0, 1.0)
    return phi, phi_n, normal, junction


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


# ------------------------------------------------------------------------------------------------ meshes
def _leaf_polygons(level, i, j, n):
    """Squares (m, 4, 2), counter-clockwise, of quadtree leaves (level, i, j) on an n x n base grid."""
    h = 1.0 / (n * 2.0**level)
    x0, y0 = i * h, j * h
    return np.stack([np.column_stack(c) for c in ((x0, y0), (x0 + h, y0), (x0 + h, y0 + h), (x0, y0 + h))], axis=1)


def band_quadtree(n, levels, pieces):
    """Leaves (level, i, j) of a periodic quadtree on the n x n grid of the unit square: every leaf cut by the
    band (0 < phi < 1) is split, ``levels`` times, then leaves are split until edge neighbours (across the
    periodic boundary too) differ by at most one level (2:1 balance, one hanging node per edge at most)."""
    jy, ix = np.meshgrid(np.arange(n), np.arange(n), indexing='ij')
    lev, ix, jy = np.zeros(n * n, int), ix.ravel(), jy.ravel()
    for level in range(levels):
        sel = np.nonzero(lev == level)[0]
        phi = cell_band_geometry(_leaf_polygons(lev[sel], ix[sel], jy[sel], n), pieces)[0]
        split = sel[(phi > 1e-12) & (phi < 1.0 - 1e-12)]
        if not len(split):
            break
        keep = np.ones(len(lev), bool)
        keep[split] = False
        kids = [(2 * ix[split] + a, 2 * jy[split] + b) for a in (0, 1) for b in (0, 1)]
        lev = np.concatenate([lev[keep]] + [lev[split] + 1] * 4)
        ix = np.concatenate([ix[keep]] + [k[0] for k in kids])
        jy = np.concatenate([jy[keep]] + [k[1] for k in kids])
    leaves = set(zip(lev.tolist(), ix.tolist(), jy.tolist()))

    def find(level, i, j):
        size = n << level
        i, j = i % size, j % size
        for m in range(level, -1, -1):
            key = (m, i >> (level - m), j >> (level - m))
            if key in leaves:
                return key
        return None

    changed = True
    while changed:
        changed = False
        for leaf in sorted(leaves, reverse=True):
            level, i, j = leaf
            if level < 2 or leaf not in leaves:
                continue
            for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                key = find(level - 1, (i >> 1) + di, (j >> 1) + dj)
                if key is not None and key[0] < level - 1:
                    m, a, b = key
                    leaves.remove(key)
                    leaves.update((m + 1, 2 * a + p, 2 * b + q) for p in (0, 1) for q in (0, 1))
                    changed = True
    out = np.array(sorted(leaves), dtype=np.int64)
    return out[:, 0], out[:, 1], out[:, 2]


def quadtree_mesh(n, level, i, j, periodic):
    """Vertices (integer coordinates on the finest grid N = n 2^max level), cells (tensor-product order) and the
    constraint rows of a 1-irregular quadtree: each vertex is written as a combination of the free ("regular")
    vertices, identified across the periodic boundary if ``periodic`` (hanging node = mean of its edge's ends).

    Returns (x (m, 2) in [0, 1], cells (c, 4), N, rows: dict integer key (X, Y) -> {free index: weight}, n_free).
    """
    top = int(level.max())
    N = n << top
    s = (1 << (top - level)).astype(np.int64)
    X0, Y0 = i * s, j * s
    corners = np.stack(
        [np.column_stack(p) for p in ((X0, Y0), (X0 + s, Y0), (X0, Y0 + s), (X0 + s, Y0 + s))], axis=1
    )  # (c, 4, 2), tensor-product order
    flat = corners.reshape(-1, 2)
    keys = flat[:, 0] * (N + 1) + flat[:, 1]
    uniq, inverse = np.unique(keys, return_inverse=True)
    cells = inverse.reshape(-1, 4)
    vx = np.column_stack([uniq // (N + 1), uniq % (N + 1)])

    def torus(key):
        return (key[0] % N, key[1] % N) if periodic else (key[0], key[1])

    present = {torus(tuple(v)) for v in vx.tolist()}
    hanging = {}
    for c in range(len(cells)):
        if s[c] < 2:
            continue
        x0, y0, sc = int(X0[c]), int(Y0[c]), int(s[c])
        h = sc // 2
        for (ax, ay), (bx, by) in (
            ((x0, y0), (x0 + sc, y0)),
            ((x0 + sc, y0), (x0 + sc, y0 + sc)),
            ((x0, y0 + sc), (x0 + sc, y0 + sc)),
            ((x0, y0), (x0, y0 + sc)),
        ):
            mid = torus((ax + (bx - ax) // 2 if bx != ax else ax, ay + (by - ay) // 2 if by != ay else ay))
            if mid in present:
                hanging[mid] = (torus((ax, ay)), torus((bx, by)))
        del h
    free = sorted(present - set(hanging))
    index = {k: q for q, k in enumerate(free)}
    resolved = {}

    def resolve(key):
        if key in index:
            return {index[key]: 1.0}
        if key not in resolved:
            out = {}
            for end in hanging[key]:
                for q, w in resolve(end).items():
                    out[q] = out.get(q, 0.0) + 0.5 * w
            resolved[key] = out
        return resolved[key]

    rows = {tuple(v): resolve(torus(tuple(v))) for v in vx.tolist()}
    return vx / N, cells, N, rows, len(free)


# ------------------------------------------------------------------------------------------------ FE solve
class Solver:
    """Q1 on a band-refined quadtree of the unit square (2-D), or P1 on a uniform tetrahedral mesh (3-D), with the
    periodic or fixed-gradient problem for each axis; one instance per band width (the mesh follows the band)."""

    def __init__(self, P, pieces=None, half_width=None):
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
        self.levels = 0
        if dim == 2:
            h0 = 1.0 / n
            if P['band_cells'] > 0:
                self.levels = max(0, int(np.ceil(np.log2(P['band_cells'] * h0 / (2.0 * half_width) - 1e-9))))
            self.levels = min(self.levels, P['max_levels'])
            lev, ix, jy = band_quadtree(n, self.levels, pieces)
            self.levels = int(lev.max())
            xs, cells, N, rows, n_free = quadtree_mesh(n, lev, ix, jy, self.periodic)
            require(
                len(cells) <= P['max_cells'],
                f'the band-refined mesh would have {len(cells)} cells (> mesh.max_cells {P["max_cells"]}): lower '
                'mesh.band_cells or mesh.cells_per_side, or raise mesh.max_cells',
            )
            self.mesh = fc.quadrilateral_mesh_from_cells(cells, xs)
            self.h_min = 1.0 / N
        else:
            self.mesh = fc.box_mesh(1.0, 1.0, 1.0, n, n, n)
            N = n
            self.h_min = 1.0 / n
        self.V = fc.function_space(self.mesh, 'Lagrange', 1)
        self.Q = fc.function_space(self.mesh, 'DG', 0)
        xd = np.asarray(self.V.tabulate_dof_coordinates())[:, :dim]
        key = np.rint(xd * N).astype(np.int64)
        if dim == 2:
            weights = [list(rows[tuple(k)].items()) for k in key.tolist()]
        else:
            tk = key % N if self.periodic else key
            _, inv = np.unique(tk, axis=0, return_inverse=True)
            weights = [[(int(q), 1.0)] for q in np.asarray(inv).ravel()]
        self.prolongation = fc.constrained_prolongation(self.V, weights)
        self.n_free = self.prolongation.getSize()[1]
        if not self.periodic:  # Dirichlet rows per axis: reduced dofs on x_a = 0 (c = 1) and x_a = 1 (c = 0)
            red_key = np.zeros((self.n_free, dim), np.int64)
            for k, row in zip(key, weights):
                if len(row) == 1 and row[0][1] == 1.0:
                    red_key[row[0][0]] = k
            self.fixed = []
            for a in range(dim):
                lo, hi = np.nonzero(red_key[:, a] == 0)[0], np.nonzero(red_key[:, a] == N)[0]
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
        if dim == 2:  # squares, vertices in cyclic order
            self.vertices = X[cells[:, [0, 1, 3, 2]]]
            self.cell_volume = np.abs(polygon_area(self.vertices, np.full(len(self.vertices), 4)))
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
            S = Solver(P, pieces, half)
            t_mesh += time.perf_counter() - t1
            phi, phi_n, normal, junction = cell_band_geometry(S.vertices, pieces)
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
                band_width_in_cells=2.0 * half / S.h_min,
                refinement_levels=S.levels,
                n_cells=int(len(S.cell_dof)),
                n_dofs=int(len(S.c[0].x.array)),
                n_free_dofs=int(S.n_free),
                cells_cut=int(np.sum((phi > 0) & (phi < 1))),
                junction_cells=int(junction.sum()),
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
        mesh=dict(
            cells_per_side=P['n'],
            band_cells=P['band_cells'],
            n_cells=int(max(g['n_cells'] for g in geo_stats)),
            n_dofs=int(max(g['n_dofs'] for g in geo_stats)),
            subsamples=P['k'],
            cell_type='quadrilateral (Q1), band-refined quadtree' if dim == 2 else 'tetrahedron (P1)',
        ),
        band_widened=[False] * nd,
        geometry_time=t_geometry,
        mesh_time=t_mesh,
        solve_time=t_solve,
        wall_time=time.perf_counter() - t_start,
    )
    common.write_results(out_dir, summary, arrays)
    return summary
