r"""Pseudo-two-dimensional (Newman/Doyle-Fuller) half cell: Li metal | separator | porous electrode.

Model (SI; x across the cell, 0 = metal foil, L_sep = separator/electrode interface, L = current
collector; r inside the spherical active particles, radius R_p; isothermal, binary electrolyte
with activity factor 1, galvanostatic discharge = lithiation of the porous electrode)
-----------------------------------------------------------------------------------------------
Electrolyte salt c_e [mol/m^3] and potential phi_e [V] (whole cell), solid potential phi_s [V] and
solid concentration c_s(x, r) [mol/m^3] (electrode only)::

    eps d c_e/dt   = d/dx (eps^b D_e dc_e/dx) - (1 - t+) a_s j
    d i_e/dx       = -F a_s j,   i_e = -kappa eps^b (d phi_e/dx - 2 R_g T/F (1 - t+) d ln c_e/dx)
    d i_s/dx       = +F a_s j,   i_s = -sigma d phi_s/dx   (sigma: effective solid conductivity)
    dc_s/dt        = 1/r^2 d/dr (r^2 D_s(c_s) dc_s/dr),  D_s dc_s/dr|_{R_p} = j,  dc_s/dr|_0 = 0
    j = -(2 i0 / F) sinh(alpha F eta / (R_g T)),  eta = phi_s - phi_e - OCV(c_s(R_p)/c_max)
    i0 = i0_ref (c_e/c_e0)^alpha (4 x_s (1 - x_s))^alpha,      a_s = 3 eps_s / R_p

j is the molar flux INTO the particles (> 0 on discharge). Boundary conditions: at x = 0 the Li
foil is the reference (phi_e = 0, ideal kinetics) and injects the salt flux (1 - t+) I/F; at x = L
no salt flux, i_e = 0, i_s = I; at x = L_sep, i_s = 0. The separator has porosity eps_sep and no
solid. Cell voltage V = phi_s(L). I = C-rate * Q / 1 h, Q = F c_max |x_final - x_initial| eps_s
(L - L_sep) [C/m^2].

Discretisation: one 2-D (x, r) mesh of [0, L] x [0, R_p] (scaled to the unit square); c_s uses the
r^2-weighted radial operator only, the 1-D fields (c_e, phi_e, phi_s) are P1 on the same mesh and
kept independent of r by a stiff penalty on their r-derivative, and the particle-surface coupling
is a line integral along r = R_p. Backward Euler with step control, Newton with the exact Jacobian,
Dirichlet rows pin c_s and phi_s in the separator. Salt and lithium balances are checked.

Input (JSON)::

    {"model": "porous_electrode",
     "electrode": {"thickness": 7e-5, "porosity": 0.3, "active_fraction": 0.6, "bruggeman": 1.5,
                   "sigma": 10.0},                                      # m, -, -, -, S/m (effective)
     "separator": {"thickness": 2.5e-5, "porosity": 0.5},
     "particle": {"radius": 5e-6, "c_max": 4.9e4, "density": 4.7},
     "electrolyte": {"c0": 1000.0, "D": 3e-10, "kappa": 1.0, "t_plus": 0.38},   # mol/m^3, m^2/s, S/m
     "diffusivity": 1e-14 | {"x": [...], "D": [...]}, "ocv": {"x": [...], "V": [...]},
     "kinetics": {"i0": 2.0, "alpha": 0.5},
     "x_initial": 0.05, "x_final": 0.99, "c_rates": [0.5, 1, 2], "cutoff_voltage": 3.0,
     "temperature": 298.15, "mesh": {"n_x": 30, "n_r": 20, "r_grading": 4.0}}

Output: results.json -> ``rate_capability`` {c_rate, capacity (mAh/g of active material if density,
else mAh/cm^2 of electrode), soc_delivered}, ``runs`` (termination, n_steps, newton counts, salt and
lithium balance errors, timings). results.npz -> ``x`` [m] and per rate k: ``rate{k}_time``,
``_voltage`` [V], ``_soc`` (fraction of the window), ``_c_e`` (steps, n_x+1) [mol/m^3] along x,
``_x_surface`` (mean particle-surface stoichiometry over the electrode). No XDMF output yet.
"""

import time

import numpy as np

try:
    from . import common
    from . import particle_diffusion as pd
    from .common import require
except ImportError:
    import common
    import particle_diffusion as pd
    from common import require

DEFAULTS = {
    'temperature': 298.15,
    'electrode': {'thickness': 7e-5, 'porosity': 0.3, 'active_fraction': 0.6, 'bruggeman': 1.5, 'sigma': 10.0},
    'separator': {'thickness': 2.5e-5, 'porosity': 0.5},
    'electrolyte': {'c0': 1000.0, 'D': 3e-10, 'kappa': 1.0, 't_plus': 0.38},
    'kinetics': {'i0': 2.0, 'alpha': 0.5},
    'mesh': {'n_x': 30, 'n_r': 20, 'r_grading': 4.0},
    'time_stepping': {'dsoc_max': 0.01, 'dsoc_initial': 1e-4, 'dtau_min': 1e-10, 'growth': 1.5},
    'newton': {'rtol': 1e-10, 'atol': 1e-11, 'max_it': 30},
}


def validate(inp, base_dir='.'):
    p = pd._merge(DEFAULTS, inp)
    # reuse the particle checks (tables, window, C-rates, cut-off) on a particle-model view
    view = {
        k: p[k]
        for k in ('particle', 'diffusivity', 'ocv', 'x_initial', 'x_final', 'c_rates', 'cutoff_voltage', 'temperature')
        if k in p
    }
    view['kinetics'] = {'i0': p['kinetics']['i0'], 'alpha': p['kinetics']['alpha']}
    P = pd.validate(view, base_dir)
    require(P['sign'] > 0, 'porous_electrode models discharge (lithiation): x_final must exceed x_initial')
    el, sep, ely = p['electrode'], p['separator'], p['electrolyte']
    g = common.get_number
    P.update(
        L_pos=g(el, 'thickness', positive=True, where='electrode.'),
        eps=g(el, 'porosity', positive=True, where='electrode.'),
        eps_s=g(el, 'active_fraction', positive=True, where='electrode.'),
        brug=g(el, 'bruggeman', positive=True, where='electrode.'),
        sigma=g(el, 'sigma', positive=True, where='electrode.'),
        L_sep=g(sep, 'thickness', positive=True, where='separator.'),
        eps_sep=g(sep, 'porosity', positive=True, where='separator.'),
        ce0=g(ely, 'c0', positive=True, where='electrolyte.'),
        De=g(ely, 'D', positive=True, where='electrolyte.'),
        kappa=g(ely, 'kappa', positive=True, where='electrolyte.'),
        tplus=g(ely, 't_plus', where='electrolyte.'),
        n_x=int(p['mesh']['n_x']),
        n_r=int(p['mesh']['n_r']),
        r_grading=g(p['mesh'], 'r_grading', positive=True, where='mesh.'),
        ts2=p['time_stepping'],
        newton=p['newton'],
    )
    require(P['eps'] + P['eps_s'] < 1.0, 'electrode porosity + active_fraction must be < 1')
    require(P['eps_sep'] < 1.0 and P['eps'] < 1.0, 'porosities must be < 1')
    require(0.0 <= P['tplus'] < 1.0, 'electrolyte.t_plus must be in [0, 1)')
    require(P['n_x'] >= 6 and P['n_r'] >= 4, 'mesh.n_x >= 6 and mesh.n_r >= 4')
    return P


class P2D:
    def __init__(self, P):
        import ufl

        try:
            from . import fem_compat as fc
        except ImportError:
            import fem_compat as fc
        self.fc, self.P = fc, P
        L = P['L_sep'] + P['L_pos']
        self.L, self.xs = L, P['L_sep'] / L  # scaled interface position
        # place a mesh line on the interface: n_x cells split proportionally
        n_sep = max(2, int(round(P['n_x'] * self.xs)))
        n_pos = max(2, P['n_x'] - n_sep)
        mesh = fc.rectangle_mesh(1.0, 1.0, n_sep + n_pos, P['n_r'], 'right')
        X = mesh.geometry.x
        xu = np.concatenate([np.linspace(0, self.xs, n_sep + 1), np.linspace(self.xs, 1, n_pos + 1)[1:]])
        X[:, 0] = np.interp(X[:, 0], np.linspace(0, 1, n_sep + n_pos + 1), xu)
        # radial cells graded toward the particle surface, as in particle_diffusion
        X[:, 1] = np.interp(X[:, 1], np.linspace(0, 1, P['n_r'] + 1), pd.radial_vertices(P['n_r'], P['r_grading']))
        self.mesh = mesh
        W = fc.mixed_space(mesh, 4)  # (c_e / c_e0, F phi_e / RT, F phi_s / RT, c_s / c_max)
        self.W = W
        self.U, self.U_n = fc.dolfinx.fem.Function(W), fc.dolfinx.fem.Function(W)
        ce, pe, ps, u = ufl.split(self.U)
        ce_n, _, _, u_n = ufl.split(self.U_n)
        v_ce, v_pe, v_ps, v_u = ufl.TestFunctions(W)
        xx = ufl.SpatialCoordinate(mesh)
        rho = xx[1]
        Q = fc.function_space(mesh, 'DG', 0)
        chi = fc.dolfinx.fem.Function(Q)  # 1 in the electrode cells
        chi.interpolate(lambda x: (x[0] > self.xs + 1e-12).astype(float))
        # top edge (rho = 1) measure, marked 1
        fdim = 1
        top = fc.dolfinx.mesh.locate_entities_boundary(mesh, fdim, lambda x: np.isclose(x[1], 1.0))
        left = fc.dolfinx.mesh.locate_entities_boundary(mesh, fdim, lambda x: np.isclose(x[0], 0.0))
        right = fc.dolfinx.mesh.locate_entities_boundary(mesh, fdim, lambda x: np.isclose(x[0], 1.0))
        idx = np.concatenate([top, left, right]).astype(np.int32)
        val = np.concatenate([np.full(len(top), 1), np.full(len(left), 2), np.full(len(right), 3)]).astype(np.int32)
        o = np.argsort(idx)
        tags = fc.dolfinx.mesh.meshtags(mesh, fdim, idx[o], val[o])
        ds = ufl.Measure('ds', domain=mesh, subdomain_data=tags)
        # chi on the top edge: use the continuous indicator of x > x_sep (edges lie on one side)
        chi_top = ufl.conditional(ufl.gt(xx[0], self.xs + 1e-9), 1.0, 0.0)

        RT = P['RT'] = common.GAS_CONSTANT * P['T']
        Fc = common.FARADAY
        Rp, cmax = P['R'], P['cmax']
        eps_x = P['eps_sep'] + (P['eps'] - P['eps_sep']) * chi  # porosity field
        brug = eps_x ** P['brug']
        a_s = 3.0 * P['eps_s'] / Rp
        self.dt = fc.constant(mesh, 1.0)
        self.i_app = fc.constant(mesh, 0.0)
        dtab, otab = P['dtab'], P['otab']
        self.Ds_ref = float(np.max(dtab.y))
        Ds = common.ufl_table(dtab, u, fc.constant(mesh, dtab.x), fc.constant(mesh, dtab.y))
        U_ocv = common.ufl_table(
            otab, u, fc.constant(mesh, otab.x), fc.constant(mesh, otab.y), smooth=0.02 * float(np.min(np.diff(otab.x)))
        )
        alpha = P['alpha']
        ce_pos = ufl.max_value(ce, 1e-8)
        i0 = P['i0'] * ce_pos**alpha * (4 * ufl.max_value(u * (1 - u), 1e-12)) ** alpha
        eta = ps - pe - Fc / RT * U_ocv  # scaled
        j = -(2 * i0 / Fc) * ufl.sinh(alpha * eta)  # mol m^-2 s^-1 into the particles
        self.j_expr = j
        tp = P['tplus']
        K = 1e4  # r-independence penalty (relative to the x-transport coefficient of each field)
        dx = ufl.dx
        # salt balance (per unit scaled length, divided by c_e0): [1/s]
        cD = P['De'] / L**2
        F1 = (
            (eps_x * (ce - ce_n) / self.dt * v_ce + cD * brug * ce.dx(0) * v_ce.dx(0) + K * cD * ce.dx(1) * v_ce.dx(1))
            * dx
            + chi_top * (1 - tp) * a_s * j / P['ce0'] * v_ce * ds(1)
            - (1 - tp) * self.i_app / (Fc * P['ce0'] * L) * v_ce * ds(2)
        )
        # electrolyte current, divided by kappa RT / (F L^2)
        sj = Fc * a_s * L**2 / (P['kappa'] * RT / Fc)
        F2 = (
            brug * (pe.dx(0) - 2 * (1 - tp) * ce.dx(0) / ce_pos) * v_pe.dx(0) + K * pe.dx(1) * v_pe.dx(1)
        ) * dx + chi_top * sj * j * v_pe * ds(1)
        # solid current, divided by sigma RT / (F L^2)
        ss = Fc * a_s * L**2 / (P['sigma'] * RT / Fc)
        F3 = (
            chi * (ps.dx(0) * v_ps.dx(0) + K * ps.dx(1) * v_ps.dx(1)) * dx
            - chi_top * ss * j * v_ps * ds(1)
            + self.i_app * L * Fc / (P['sigma'] * RT) * v_ps * ds(3)
        )
        # particles: r^2-weighted radial diffusion only, divided by D_ref / R_p^2
        w = rho**2
        ct = Rp**2 / self.Ds_ref
        F4 = chi * (
            (u - u_n) / self.dt * ct * v_u * w + Ds / self.Ds_ref * u.dx(1) * v_u.dx(1) * w
        ) * dx - chi_top * j * Rp / (cmax * self.Ds_ref) * v_u * w * ds(1)
        Fres = F1 + F2 + F3 + F4
        J = ufl.derivative(Fres, self.U, ufl.TrialFunction(W))
        sep_marker = lambda x: x[0] < self.xs - 1e-9  # noqa: E731
        self.bcs = [
            fc.vertex_bc(W.sub(2), 0.0, sep_marker),
            fc.vertex_bc(W.sub(3), P['x0'], sep_marker),
            fc.vertex_bc(W.sub(1), 0.0, lambda x: np.isclose(x[0], 0.0)),
        ]
        # phi_s in the separator is pinned to 0 but the Dirichlet value changes nothing physical; the
        # initial phi_s in the electrode is set to the OCV below
        iu = fc.sub_dofs(W, 3)
        eps_ = 1e-12

        def admissible(arr, step):
            x, d = arr[iu], step[iu]
            with np.errstate(divide='ignore', invalid='ignore'):
                lo = np.where(d < 0, (eps_ - x) / d, np.inf)
                hi = np.where(d > 0, (1 - eps_ - x) / d, np.inf)
            m = min(np.min(lo), np.min(hi))
            return 1.0 if m >= 1.0 else 0.9 * m

        nw = P['newton']
        self.newton = fc.NewtonSolver(
            Fres,
            J,
            self.U,
            rtol=float(nw['rtol']),
            atol=float(nw['atol']),
            max_it=int(nw['max_it']),
            admissible=admissible,
            bcs=self.bcs,
        )
        # diagnostics
        self.salt_form = fc.form(eps_x * ce * P['ce0'] * L * dx)  # mol/m^2 (r-independent field, int d rho = 1)
        self.li_form = fc.form(chi * 3 * u * w * cmax * P['eps_s'] * L * dx)  # mol/m^2 in the solid
        self.v_form = fc.form(ps * RT / Fc * ds(3))  # V at the collector (edge length 1)
        self.xsurf_form = fc.form(chi_top * u / (1 - self.xs) * ds(1))
        self.sub = {k: fc.sub_dofs(W, k) for k in range(4)}
        coords = W.sub(0).collapse()[0].tabulate_dof_coordinates()
        self.ce_line = self.sub[0][np.isclose(coords[:, 1], 1.0)][np.argsort(coords[np.isclose(coords[:, 1], 1.0), 0])]
        self.x_line = np.sort(coords[np.isclose(coords[:, 1], 1.0), 0]) * L

    def initial(self):
        P = self.P
        a = self.U.x.array
        a[self.sub[0]] = 1.0
        a[self.sub[1]] = 0.0
        coords = self.W.sub(2).collapse()[0].tabulate_dof_coordinates()
        a[self.sub[2]] = np.where(
            coords[:, 0] < self.xs - 1e-9, 0.0, common.FARADAY / P['RT'] * float(P['otab'](P['x0']))
        )
        a[self.sub[3]] = P['x0']
        self.U_n.x.array[:] = a


def discharge(model, P, rate):
    fc = model.fc
    window = abs(P['x1'] - P['x0'])
    Q = common.FARADAY * P['cmax'] * window * P['eps_s'] * P['L_pos']  # C/m^2
    i_app = rate * Q / 3600.0
    model.initial()
    model.i_app.value = i_app
    ts = P['ts2']
    t_end = 3600.0 / rate
    dt = ts['dsoc_initial'] * t_end
    t, hist_t, hist_v, hist_soc, hist_ce, hist_xs = 0.0, [0.0], [], [0.0], [], []
    salt0 = fc.assemble_scalar(model.salt_form)
    li0 = fc.assemble_scalar(model.li_form)
    model.U.x.array[:] = model.U_n.x.array
    hist_v.append(fc.assemble_scalar(model.v_form))
    hist_ce.append(model.U.x.array[model.ce_line] * P['ce0'])
    hist_xs.append(fc.assemble_scalar(model.xsurf_form))
    its_total, n_rej, reason = 0, 0, 'window_delivered'
    salt_err = li_err = 0.0
    t0 = time.perf_counter()
    lin0 = model.newton.linear_solve_time
    while t < t_end * (1 - 1e-12):
        dt = min(dt, t_end - t)
        model.dt.value = dt
        model.U.x.array[:] = model.U_n.x.array
        try:
            its = model.newton.solve()
            ok = True
        except fc.NewtonDivergence:
            ok = False
        if ok:
            ce = model.U.x.array[model.sub[0]]
            ok = np.all(ce > 0)
        if not ok:
            n_rej += 1
            dt *= 0.5
            if dt < ts['dtau_min'] * t_end:
                if hist_v[-1] - P['vcut'] < 0.3 or np.min(model.U_n.x.array[model.sub[0]]) < 0.05:
                    reason = 'electrolyte_depleted_or_voltage_collapse'
                    break
                raise common.ConvergenceError(f'porous electrode: no convergence at C-rate {rate}, t = {t:.4g} s')
            continue
        model.U_n.x.array[:] = model.U.x.array
        t += dt
        its_total += its
        v = fc.assemble_scalar(model.v_form)
        salt_err = max(salt_err, abs(fc.assemble_scalar(model.salt_form) - salt0) / salt0)
        li_err = max(
            li_err, abs(fc.assemble_scalar(model.li_form) - li0 - i_app * t / common.FARADAY) / (Q / common.FARADAY)
        )
        hist_t.append(t)
        hist_v.append(v)
        hist_soc.append(i_app * t / Q)
        hist_ce.append(model.U.x.array[model.ce_line] * P['ce0'])
        hist_xs.append(fc.assemble_scalar(model.xsurf_form))
        if v <= P['vcut']:
            reason = 'cutoff_voltage'
            break
        dt = min(dt * ts['growth'], ts['dsoc_max'] * t_end)
    wall = time.perf_counter() - t0
    V, soc = np.array(hist_v), np.array(hist_soc)
    soc_end = soc[-1]
    if reason == 'cutoff_voltage' and len(V) > 1:
        th = float(np.clip((P['vcut'] - V[-2]) / (V[-1] - V[-2]), 0, 1)) if V[-1] != V[-2] else 1.0
        soc_end = soc[-2] + th * (soc[-1] - soc[-2])
    cap_cm2 = Q * soc_end / 3.6 / 1e4  # mAh/cm^2
    out = dict(
        c_rate=rate,
        current_density=i_app,
        termination=reason,
        soc_delivered=float(soc_end),
        capacity_mAh_per_cm2=cap_cm2,
        n_steps=len(hist_t) - 1,
        n_rejected=n_rej,
        newton_iterations=its_total,
        newton_per_step=its_total / max(len(hist_t) - 1, 1),
        wall_time=wall,
        linear_solve_time=model.newton.linear_solve_time - lin0,
        salt_balance_error=salt_err,
        lithium_balance_error=li_err,
        time=np.array(hist_t),
        voltage=V,
        soc=soc,
        c_e=np.array(hist_ce),
        x_surface=np.array(hist_xs),
    )
    if P['density']:
        mass = P['density'] * 1e3 * P['eps_s'] * P['L_pos']  # kg/m^2 of active material
        out['capacity_mAh_per_g'] = Q * soc_end / 3.6 / (mass * 1e3)
    return out


def run(inp, base_dir='.', out_dir='.'):
    P = validate(inp, base_dir)
    t_start = time.perf_counter()
    model = P2D(P)
    results, arrays = [], {'x': model.x_line}
    by = {k: discharge(model, P, P['rates'][k]) for k in np.argsort(P['rates'])}
    for k in range(len(P['rates'])):
        r = by[k]
        for key in ('time', 'voltage', 'soc', 'c_e', 'x_surface'):
            arrays[f'rate{k}_{key}'] = r.pop(key)
        results.append(r)
    key = 'capacity_mAh_per_g' if P['density'] else 'capacity_mAh_per_cm2'
    summary = dict(
        model='porous_electrode',
        status='ok',
        units=dict(time='s', voltage='V', x='m', c_e='mol/m^3', capacity=key.split('_', 1)[1]),
        rate_capability=dict(
            c_rate=P['rates'], capacity=[r[key] for r in results], soc_delivered=[r['soc_delivered'] for r in results]
        ),
        runs=results,
        wall_time=time.perf_counter() - t_start,
        mesh=dict(n_x=P['n_x'], n_r=P['n_r'], n_dofs=len(model.U.x.array)),
    )
    common.write_results(out_dir, summary, arrays)
    return summary
