r"""Effective diffusivity of a 2-D polycrystal with grain-boundary (GB) fast or slow paths.

Model
-----
Microstructure: periodic 2-D Voronoi tessellation of ``n_grains`` random seeds (numpy RNG with
``seed``; the same seeds for every grain size, so all samples are geometrically similar and only
w/d changes). Square sample of side L = d sqrt(n_grains), i.e. the grain size d [m] is the square
root of the mean grain area. A point belongs to the GB band when its distance to the nearest
Voronoi edge is below w/2 (w = ``gb_width`` [m]); the distance to the edge between seeds i (nearest)
and j is (|p - s_j|^2 - |p - s_i|^2) / (2 |s_j - s_i|), minimised over the 12 (3-D: 24) nearest seeds.

Diffusivities [m^2/s], Arrhenius in temperature T [K] with activation energies in eV::

    D_bulk(T) = D0_bulk exp(-Ea_bulk / (k_B T)),    D_gb(T) = D0_gb exp(-Ea_gb / (k_B T))

Steady state, fixed-gradient boundary conditions (stated): for the x direction

    div(D(x) grad c) = 0 in the square,  c = 1 on x = 0,  c = 0 on x = L,  D dc/dn = 0 on y = 0, L

and likewise for y. The effective diffusivity is the one a homogeneous sample would need to carry
the same steady flux under the same mean gradient 1/L::

    D_eff,xx = (flux through x = L) * L / (L * 1) = int D |grad c|^2 dA      (2-D, Delta c = 1)

(the energy identity; it equals the boundary flux of the exact solution and converges at twice the
rate of a point flux). Reported D_eff = (D_xx + D_yy) / 2, plus both components.

``dimension`` 3: the same in a cube (periodic 3-D Voronoi, GB = band around the Voronoi faces,
tetrahedral mesh with ``cells_per_side`` (default 20, at most 64) cubes per side, k^2 fixed
pseudo-random sample points per tetrahedron), D_eff = (D_xx + D_yy + D_zz) / 3, 3-D HS bounds,
grain size = cube root of the mean grain volume.

Discretisation: P1 elements on a crossed triangle mesh of the square with ``cells_per_side`` squares
per side; D is piecewise constant per triangle, the arithmetic mean of D at ``subsamples``^2
equal-area sub-triangle centroids (so the GB volume fraction is integrated accurately).
If the band is thinner than 2 mesh cells and ``band_widening`` is true (default), it is widened to
2 cells and D_gb is replaced by D_bulk + (D_gb - D_bulk) w / w_eff, which keeps the excess
conductance along the boundary; the reported flag ``band_widened`` says when that happened.

Also reported: GB area (volume) fraction f, the 2-D (3-D) Hashin-Shtrikman bounds for (f, D_gb, D_bulk), the
parallel (Hart) estimate (1-f) D_bulk + f D_gb, and per grain size the apparent activation energy
E_app = -d ln D_eff / d(1/(k_B T)) from a least-squares Arrhenius fit, plus its local values
between adjacent temperatures (non-Arrhenius behaviour shows as a T-dependent E_app).

Input (JSON)::

    {"model": "polycrystal",
     "grain_sizes": [1e-8, 5e-8], "temperatures": [300, 400, 600],   # m, K
     "gb_width": 1e-9,                                               # m (< smallest grain size)
     "D_bulk": {"D0": 1e-6, "Ea": 0.6}, "D_gb": {"D0": 1e-6, "Ea": 0.3},   # m^2/s, eV (or a number)
     "n_grains": 25, "seed": 1, "band_widening": true,
     "dimension": 2, "mesh": {"cells_per_side": 96, "subsamples": 4}, "write_xdmf": false}

Output: results.json -> ``table`` (one row per (d, T): D_bulk, D_gb, D_gb_model, D_eff, D_xx, D_yy,
gb_fraction, hs_lower, hs_upper, parallel, band_widened), ``apparent_activation_energy``
{grain_size, E_app [eV], E_local}, BC and grain-size definitions, mesh, timings.
results.npz -> ``D_eff``, ``D_xx``, ``D_yy`` (n_sizes, n_T), ``hs_bounds`` (n_sizes, n_T, 2),
``gb_fraction``, ``grain_size``, ``temperature``, ``seeds``, ``size{i}_gb_fraction_per_cell``.
XDMF (if asked): GB fraction per cell, ``polycrystal_size{i}_gb.xdmf``.
"""

import copy
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
    'mesh': {'cells_per_side': None, 'subsamples': 4},
    'band_widening': True,
    'write_xdmf': False,
}


def _arrhenius(spec, name):
    if isinstance(spec, (int, float)):
        v = float(spec)
        require(np.isfinite(v) and v > 0, f'{name} must be > 0, got {v}')
        return v, 0.0
    require(isinstance(spec, dict), f"{name}: a number [m^2/s] or {{'D0': m^2/s, 'Ea': eV}}")
    d0 = common.get_number(spec, 'D0', positive=True, where=f'{name}.')
    ea = common.get_number(spec, 'Ea', default=0.0, where=f'{name}.')
    return d0, ea


def validate(inp, base_dir='.'):
    p = copy.deepcopy(DEFAULTS)
    for k, v in inp.items():
        if isinstance(v, dict) and isinstance(p.get(k), dict):
            p[k].update(v)
        else:
            p[k] = v
    sizes = p.get('grain_sizes')
    require(isinstance(sizes, (list, tuple)) and sizes, "'grain_sizes' must be a non-empty list [m]")
    sizes = [float(s) for s in sizes]
    require(all(np.isfinite(s) and s > 0 for s in sizes), f'grain sizes must be > 0, got {sizes}')
    temps = p.get('temperatures', [298.15])
    require(isinstance(temps, (list, tuple)) and temps, "'temperatures' must be a non-empty list [K]")
    temps = [float(t) for t in temps]
    require(all(np.isfinite(t) and t > 0 for t in temps), f'temperatures must be > 0 K, got {temps}')
    w = common.get_number(p, 'gb_width', positive=True)
    require(w < min(sizes), f'gb_width {w} m must be smaller than the smallest grain size {min(sizes)} m')
    require('D_bulk' in p and 'D_gb' in p, "missing 'D_bulk' or 'D_gb' (number or {'D0', 'Ea'})")
    db, dg = _arrhenius(p['D_bulk'], 'D_bulk'), _arrhenius(p['D_gb'], 'D_gb')
    n_grains = int(p['n_grains'])
    require(4 <= n_grains <= 2000, f'n_grains must be in [4, 2000], got {n_grains}')
    dim = int(p.get('dimension', 2))
    require(dim in (2, 3), f'dimension must be 2 or 3, got {dim}')
    n = int(p['mesh']['cells_per_side'] or (96 if dim == 2 else 20))
    nmax = 1024 if dim == 2 else 64
    require(8 <= n <= nmax, f'mesh.cells_per_side must be in [8, {nmax}] in {dim}-D, got {n}')
    k = int(p['mesh']['subsamples'])
    require(1 <= k <= 10, 'mesh.subsamples must be in [1, 10]')
    return dict(
        sizes=sizes,
        temps=temps,
        w=w,
        db=db,
        dg=dg,
        n_grains=n_grains,
        seed=int(p['seed']),
        n=n,
        k=k,
        dim=dim,
        widen=bool(p['band_widening']),
        write_xdmf=bool(p['write_xdmf']),
    )


def voronoi_seeds(n_grains, seed, dim=2):
    return np.random.default_rng(seed).random((n_grains, dim))


def gb_distance(points, seeds):
    """Distance (unit-square/cube coordinates, periodic) from each point to the nearest Voronoi
    edge (2-D) or face (3-D)."""
    import itertools

    dim = seeds.shape[1]
    shifts = np.array(list(itertools.product((-1, 0, 1), repeat=dim)), float)
    tiled = (seeds[None, :, :] + shifts[:, None, :]).reshape(-1, dim)
    k = min(12 if dim == 2 else 24, len(tiled))
    try:
        from scipy.spatial import cKDTree

        _, idx = cKDTree(tiled).query(points, k=k)
    except ImportError:  # pure numpy, chunked
        idx = np.empty((len(points), k), int)
        for a in range(0, len(points), 4096):
            d2 = ((points[a : a + 4096, None, :] - tiled[None]) ** 2).sum(-1)
            idx[a : a + 4096] = np.argsort(d2, axis=1)[:, :k]
    s = tiled[idx]  # (n, k, 2), sorted by distance
    s1 = s[:, :1, :]
    d1 = ((points[:, None, :] - s1) ** 2).sum(-1)
    dj = ((points[:, None, :] - s[:, 1:, :]) ** 2).sum(-1)
    sep = np.sqrt(((s[:, 1:, :] - s1) ** 2).sum(-1))
    return np.min((dj - d1) / (2.0 * sep), axis=1)


def _subtriangle_centroids(k):
    """Barycentric coordinates of the k^2 equal-area sub-triangle centroids."""
    pts = []
    for i in range(k):
        for j in range(k - i):
            pts.append(((i + 1 / 3) / k, (j + 1 / 3) / k))
            if i + j <= k - 2:
                pts.append(((i + 2 / 3) / k, (j + 2 / 3) / k))
    lam = np.array(pts)
    return np.column_stack([1 - lam.sum(1), lam])


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


class Solver:
    def __init__(self, P):
        import ufl

        try:
            from . import fem_compat as fc
        except ImportError:
            import fem_compat as fc
        self.fc, self.ufl = fc, ufl
        dim = self.dim = P['dim']
        n = P['n']
        self.mesh = fc.rectangle_mesh(1.0, 1.0, n, n, 'crossed') if dim == 2 else fc.box_mesh(1, 1, 1, n, n, n)
        self.V = fc.function_space(self.mesh, 'Lagrange', 1)
        self.Q = fc.function_space(self.mesh, 'DG', 0)
        self.D = fc.dolfinx.fem.Function(self.Q)
        self.c = fc.dolfinx.fem.Function(self.V)
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        self.a = fc.form(self.D * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx)
        self.L = fc.form(fc.constant(self.mesh, 0.0) * v * ufl.dx)
        self.energy = fc.form(self.D * ufl.inner(ufl.grad(self.c), ufl.grad(self.c)) * ufl.dx)
        self.area = fc.form(fc.constant(self.mesh, 1.0) * ufl.dx)
        self.bcs = {}
        for ax in range(dim):
            self.bcs[ax] = [
                fc.dirichlet_bc(self.V, 1.0, lambda x, a=ax: np.isclose(x[a], 0.0)),
                fc.dirichlet_bc(self.V, 0.0, lambda x, a=ax: np.isclose(x[a], 1.0)),
            ]
        cells = fc.geometry_cells(self.mesh)
        X = self.mesh.geometry.x[:, :dim]
        if dim == 2:
            lam = _subtriangle_centroids(P['k'])
        else:  # k^2 fixed pseudo-random barycentric points per tetrahedron (uniform in the cell)
            lam = np.random.default_rng(12345).dirichlet(np.ones(4), size=P['k'] ** 2)
        self.samples = np.einsum('sv,cvd->csd', lam, X[cells[:, : dim + 1]])  # (n_cells, n_sub, dim)
        self.cell_dof = fc.cell_dofs(self.Q)[:, 0]
        edges = np.stack([X[cells[:, i]] - X[cells[:, 0]] for i in range(1, dim + 1)], axis=1)
        self.cell_area = np.abs(np.linalg.det(edges)) / (2.0 if dim == 2 else 6.0)  # area or volume

    def band_fraction(self, seeds, half_width):
        pts = self.samples.reshape(-1, self.dim)
        dist = gb_distance(np.mod(pts, 1.0), seeds)
        return (dist < half_width).reshape(self.samples.shape[:2]).mean(axis=1)

    def d_eff(self, phi, d_b, d_g):
        """Scaled D_eff / d_b components (xx, yy) for cell GB fractions phi and scaled D values."""
        self.D.x.array[self.cell_dof] = (1.0 - phi) * 1.0 + phi * (d_g / d_b)
        out = []
        for ax in range(self.dim):
            self.c.x.array[:] = 0.0
            self.fc.solve_linear(self.a, self.L, self.c, self.bcs[ax])
            out.append(self.fc.assemble_scalar(self.energy))
        return np.array(out)


def run(inp, base_dir='.', out_dir='.'):
    P = validate(inp, base_dir)
    t_start = time.perf_counter()
    S = Solver(P)
    seeds = voronoi_seeds(P['n_grains'], P['seed'], P['dim'])
    kB = common.BOLTZMANN_EV
    h = 1.0 / P['n']
    rows, arrays = [], {}
    nd, nt = len(P['sizes']), len(P['temps'])
    deff = np.zeros((nd, nt))
    dim = P['dim']
    comps = np.zeros((nd, nt, dim))
    fgb = np.zeros(nd)
    widened = []
    hs = np.zeros((nd, nt, 2))
    hart = np.zeros((nd, nt))
    t_solve = 0.0
    for i, d in enumerate(P['sizes']):
        L = d * P['n_grains'] ** (1.0 / dim)
        w_unit = P['w'] / L
        w_eff = w_unit
        wid = False
        if P['widen'] and w_unit < 2.0 * h:
            w_eff, wid = 2.0 * h, True
        widened.append(wid)
        phi = S.band_fraction(seeds, 0.5 * w_eff)
        fgb[i] = float(np.sum(phi * S.cell_area) / np.sum(S.cell_area))
        arrays[f'size{i}_gb_fraction_per_cell'] = phi
        for j, T in enumerate(P['temps']):
            d_b = P['db'][0] * np.exp(-P['db'][1] / (kB * T))
            d_g = P['dg'][0] * np.exp(-P['dg'][1] / (kB * T))
            d_g_model = d_b + (d_g - d_b) * (w_unit / w_eff)
            t0 = time.perf_counter()
            comp = S.d_eff(phi, d_b, d_g_model) * d_b
            t_solve += time.perf_counter() - t0
            comps[i, j] = comp
            deff[i, j] = comp.mean()
            hs[i, j] = hashin_shtrikman(fgb[i], d_g_model, d_b, dim)
            hart[i, j] = (1 - fgb[i]) * d_b + fgb[i] * d_g_model
            if not np.isfinite(deff[i, j]) or deff[i, j] <= 0:
                raise common.UnphysicalStateError(f'D_eff = {deff[i, j]} at d = {d}, T = {T}')
            rows.append(
                dict(
                    grain_size=d,
                    temperature=T,
                    D_bulk=d_b,
                    D_gb=d_g,
                    D_gb_model=d_g_model,
                    D_eff=deff[i, j],
                    **{f'D_{a}{a}': comps[i, j, q] for q, a in enumerate('xyz'[:dim])},
                    gb_fraction=fgb[i],
                    hs_lower=hs[i, j, 0],
                    hs_upper=hs[i, j, 1],
                    parallel=hart[i, j],
                    band_widened=wid,
                )
            )
        if P['write_xdmf']:
            S.D.x.array[S.cell_dof] = phi
            S.fc.write_xdmf(os.path.join(out_dir, f'polycrystal_size{i}_gb.xdmf'), S.mesh, [('gb_fraction', S.D)])
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
        **{f'D_{a}{a}': comps[:, :, q] for q, a in enumerate('xyz'[:dim])},
        gb_fraction=fgb,
        hs_bounds=hs,
        seeds=seeds,
    )
    summary = dict(
        model='polycrystal',
        status='ok',
        units=dict(grain_size='m', gb_width='m', temperature='K', D='m^2/s', activation_energy='eV'),
        dimension=dim,
        boundary_conditions='fixed gradient: c=1 on x=0, c=0 on x=L, zero flux on the other faces (and the same '
        'along each axis); D_eff = mean of the diagonal components',
        grain_size_definition='(mean grain area or volume)^(1/dim); sample side L = d n_grains^(1/dim)',
        table=rows,
        apparent_activation_energy=dict(grain_size=P['sizes'], E_app=e_app, E_local=e_local),
        bulk_activation_energy=P['db'][1],
        gb_activation_energy=P['dg'][1],
        mesh=dict(cells_per_side=P['n'], n_cells=int(len(S.cell_dof)), n_dofs=int(len(S.c.x.array)), subsamples=P['k']),
        band_widened=widened,
        solve_time=t_solve,
        wall_time=time.perf_counter() - t_start,
    )
    common.write_results(out_dir, summary, arrays)
    return summary
