r"""Single spherical particle: galvanostatic (de)lithiation, voltage curves and rate capability.

Model (SI units unless stated; x = c / c_max is the stoichiometry of the guest ion, 0..1)
-------------------------------------------------------------------------------------------
Solid diffusion in a sphere of radius R [m], 1-D radial, c(r, t) [mol/m^3]::

    dc/dt = 1/r^2 d/dr ( r^2 D(c) dc/dr ),        0 < r < R
    dc/dr = 0                                      at r = 0       (symmetry)
    D(c) dc/dr = j                                 at r = R       (j: molar flux INTO the particle)

``D(x)`` [m^2/s] is a constant or a piecewise-linear table over x. The current is set by the
C-rate: 1C (de)lithiates the window ``|x_final - x_initial|`` of the particle in one hour, so::

    |j| = C * c_max * |x_final - x_initial| * R / (3 * 3600 s)      [mol m^-2 s^-1]
    i   = F |j|                                                    [A/m^2 of particle surface]

Interface kinetics, symmetric Butler-Volmer (alpha_a = alpha_c = alpha)::

    i = 2 i0(x_s) sinh(alpha F eta / (R_g T))  ->  eta = R_g T / (alpha F) asinh(i / (2 i0))
    i0(x_s) = i0_ref * (4 x_s (1 - x_s))^alpha   if concentration_dependent, else i0_ref

Cell voltage against a metal counter/reference electrode (half cell), OCV(x) [V] from a table::

    V = OCV(x_s) - eta - i R_film      lithiation   (voltage falls, stops at V <= cutoff_voltage)
    V = OCV(x_s) + eta + i R_film      delithiation (voltage rises, stops at V >= cutoff_voltage)

A discharge at one C-rate ends at the cut-off voltage, when the surface concentration leaves the
OCV table, or when the whole window has been delivered. The capacity at the cut-off is linearly
interpolated inside the last time step. Delivered capacity is reported as a fraction of the window,
in mAh/cm^3 of particle and, if ``particle.density`` [g/cm^3] is given, in mAh/g.

Discretisation: P1 finite elements in r on a mesh graded toward the surface, with the r^2 weight
in every integral (so the discrete Li content int c r^2 dr changes by exactly dt j R^2 per step);
variable-step BDF2 in time (backward Euler for the first step) with step control on the surface
and mean stoichiometry increments;
Newton with the exact Jacobian of the tabulated D. Variables are scaled (rho = r/R,
tau = t D_ref / R^2, u = x) so tolerances are dimensionless.

Input (JSON; arrays inline or as "file.npy" / "file.npz:key"; defaults in ``DEFAULTS``)::

    {"model": "particle_diffusion",
     "particle": {"radius": 5e-6, "c_max": 4.9e4, "density": 4.7},      # m, mol/m^3, g/cm^3 (optional)
     "diffusivity": 1e-14  |  {"x": [...], "D": [...]},                 # m^2/s, all D > 0, covers window
     "ocv": {"x": [...], "V": [...]},                                   # V, must cover the window
     "x_initial": 0.05, "x_final": 0.99,        # window; x_final > x_initial = lithiation
     "c_rates": [0.1, 1, 10],                   # 1/h, all > 0
     "cutoff_voltage": 3.0,                     # V (below OCV(x_initial) for lithiation)
     "temperature": 298.15,                     # K
     "kinetics": {"i0": 1.0, "alpha": 0.5, "concentration_dependent": true, "film_resistance": 0.0},
                                                # A/m^2, -, -, ohm m^2
     "mesh": {"n_cells": 60, "grading": 4.0},   # radial cells; first/last cell width ratio
     "time_stepping": {"dx_surface_max": 0.01, "dx_mean_max": 0.004, "dtau_initial": 1e-7,
                       "growth": 1.5, "dtau_min": 1e-12},
     "write_xdmf": false}

Output: results.json -> ``rate_capability`` {c_rate, capacity (mAh/g if density else mAh/cm^3),
soc_delivered}, ``runs`` (per rate: termination, soc_delivered, capacity_*, current_density,
n_steps, newton_iterations, newton_per_step, wall_time, linear_solve_time, mass_balance_error),
``theoretical_capacity_mAh_per_cm3``, ``mass_balance_error``, timings. results.npz -> ``r`` [m] and
per rate k: ``rate{k}_time`` [s], ``_voltage`` [V], ``_x_surface``, ``_x_mean``, ``_soc``,
``_capacity_curve_mAh_per_cm3`` (and ``_per_g``), ``_profiles`` (n_steps+1, n_nodes) of x(r).
XDMF (if asked): final x(r) per rate, ``particle_rate{k}.xdmf``.
"""

import copy
import time

import numpy as np

try:
    from . import common
    from .common import InputError, require
except ImportError:  # run as a plain script next to common.py
    import common
    from common import InputError, require

DEFAULTS = {
    'temperature': 298.15,
    'kinetics': {'i0': 1.0, 'alpha': 0.5, 'concentration_dependent': True, 'film_resistance': 0.0},
    'mesh': {'n_cells': 60, 'grading': 4.0},
    'time_stepping': {
        'dx_surface_max': 0.01,
        'dx_mean_max': 0.004,
        'dtau_initial': 1e-7,
        'growth': 1.5,
        'dtau_min': 1e-12,
    },
    'newton': {'rtol': 1e-11, 'atol': 1e-13, 'max_it': 25},
    'write_xdmf': False,
}


def _merge(defaults, given):
    out = copy.deepcopy(defaults)
    for k, v in (given or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def validate(inp, base_dir='.'):
    """Check the input and return a normalised parameter dict. Raises InputError; never solves."""
    p = _merge(DEFAULTS, inp)
    part = p.get('particle')
    require(isinstance(part, dict), "missing 'particle' (radius [m], c_max [mol/m^3], optional density [g/cm^3])")
    R = common.get_number(part, 'radius', positive=True, where='particle.')
    cmax = common.get_number(part, 'c_max', positive=True, where='particle.')
    density = part.get('density')
    if density is not None:
        density = common.get_number(part, 'density', positive=True, where='particle.')
    T = common.get_number(p, 'temperature', positive=True)

    x0 = common.get_number(p, 'x_initial')
    x1 = common.get_number(p, 'x_final')
    require(0.0 <= x0 <= 1.0 and 0.0 <= x1 <= 1.0, f'x_initial ({x0}) and x_final ({x1}) must lie in [0, 1]')
    require(x0 != x1, 'x_initial and x_final must differ (they define the 1C current)')
    sign = 1.0 if x1 > x0 else -1.0  # +1 lithiation
    lo, hi = min(x0, x1), max(x0, x1)

    # diffusivity: constant or table
    dspec = p.get('diffusivity')
    require(dspec is not None, "missing 'diffusivity': a number [m^2/s] or {'x': [...], 'D': [...]}")
    if isinstance(dspec, dict):
        dtab = common.read_table(dspec, base_dir, 'diffusivity', 'D')
        bad = np.nonzero(dtab.y <= 0)[0]
        require(
            len(bad) == 0,
            f'diffusivity table has non-positive values D = {dtab.y[bad].tolist()} '
            f'at x = {dtab.x[bad].tolist()}; D must be > 0 everywhere',
        )
        require(
            dtab.covers(lo, hi),
            f'diffusivity table covers x in [{dtab.x[0]}, {dtab.x[-1]}] but the discharge window is [{lo}, {hi}]',
        )
    else:
        dval = common.get_number(p, 'diffusivity')
        require(dval > 0, f'diffusivity must be > 0, got {dval}')
        dtab = common.Table([0.0, 1.0], [dval, dval], 'diffusivity')

    otab = common.read_table(p.get('ocv') or {}, base_dir, 'ocv', 'V') if p.get('ocv') is not None else None
    require(otab is not None, "missing 'ocv': {'x': [...], 'V': [...]} (open-circuit voltage [V] vs x)")
    require(
        otab.covers(lo, hi),
        f'OCV table covers x in [{otab.x[0]}, {otab.x[-1]}] but the discharge window '
        f'is [{lo}, {hi}]: extend the OCV table or narrow x_initial/x_final',
    )

    rates = p.get('c_rates')
    require(isinstance(rates, (list, tuple)) and len(rates) > 0, "'c_rates' must be a non-empty list of C-rates [1/h]")
    try:
        rates = [float(r) for r in rates]
    except (TypeError, ValueError):
        raise InputError(f"'c_rates' must contain numbers, got {p.get('c_rates')!r}") from None
    bad = [r for r in rates if not (np.isfinite(r) and r > 0)]
    require(not bad, f"'c_rates' must be positive and finite; refused {bad} (a C-rate of zero never ends)")

    vcut = common.get_number(p, 'cutoff_voltage')
    v_start = float(otab(x0))
    if sign > 0:
        require(vcut < v_start, f'cutoff_voltage {vcut} V must be below the initial OCV {v_start:.4f} V for lithiation')
    else:
        require(
            vcut > v_start, f'cutoff_voltage {vcut} V must be above the initial OCV {v_start:.4f} V for delithiation'
        )

    kin = p['kinetics']
    i0 = common.get_number(kin, 'i0', positive=True, where='kinetics.')
    alpha = common.get_number(kin, 'alpha', positive=True, where='kinetics.')
    rfilm = common.get_number(kin, 'film_resistance', nonneg=True, where='kinetics.')
    m = p['mesh']
    n_cells = int(m['n_cells'])
    require(n_cells >= 4, 'mesh.n_cells must be >= 4')
    grading = common.get_number(m, 'grading', positive=True, where='mesh.')
    ts = p['time_stepping']
    for k in ('dx_surface_max', 'dx_mean_max', 'dtau_initial', 'growth', 'dtau_min'):
        common.get_number(ts, k, positive=True, where='time_stepping.')
    return dict(
        R=R,
        cmax=cmax,
        density=density,
        T=T,
        x0=x0,
        x1=x1,
        sign=sign,
        dtab=dtab,
        otab=otab,
        rates=rates,
        vcut=vcut,
        i0=i0,
        alpha=alpha,
        rfilm=rfilm,
        conc_dep=bool(kin['concentration_dependent']),
        n_cells=n_cells,
        grading=grading,
        ts=ts,
        newton=p['newton'],
        write_xdmf=bool(p['write_xdmf']),
    )


def radial_vertices(n, grading):
    """n+1 vertices on [0, 1]; cell widths shrink geometrically toward rho = 1 (first/last = grading)."""
    q = grading ** (-1.0 / max(n - 1, 1))
    w = q ** np.arange(n)
    return np.concatenate([[0.0], np.cumsum(w / w.sum())])


def overpotential(i, i0):
    return np.arcsinh(i / (2.0 * i0))


def voltage(P, xs, i_abs):
    """Cell voltage for surface stoichiometry ``xs`` (array) at current density i_abs [A/m^2]."""
    xs = np.asarray(xs, float)
    i0 = P['i0'] * (np.clip(4 * xs * (1 - xs), 0, None) ** P['alpha'] if P['conc_dep'] else np.ones_like(xs))
    with np.errstate(divide='ignore'):
        eta = common.GAS_CONSTANT * P['T'] / (P['alpha'] * common.FARADAY) * np.arcsinh(i_abs / (2.0 * i0))
    eta = np.where(i0 > 0, eta, np.inf)
    return P['otab'](xs) - P['sign'] * (eta + i_abs * P['rfilm'])


class RadialDiffusion:
    """The FE problem in scaled variables; ``advance(dtau, flux)`` does one backward-Euler step."""

    def __init__(self, P):
        import ufl

        try:
            from . import fem_compat as fc
        except ImportError:
            import fem_compat as fc
        self.fc = fc
        self.P = P
        self.mesh = fc.interval_mesh(radial_vertices(P['n_cells'], P['grading']))
        V = fc.function_space(self.mesh, 'Lagrange', 1)
        self.V = V
        self.u, self.u_n, self.u_nm1 = (fc.dolfinx.fem.Function(V) for _ in range(3))
        v, du = ufl.TestFunction(V), ufl.TrialFunction(V)
        rho = ufl.SpatialCoordinate(self.mesh)[0]
        w = rho**2
        dtab = P['dtab']
        self.D_ref = float(np.max(dtab.y))
        self.dtau = fc.constant(self.mesh, 1.0)
        self.flux = fc.constant(self.mesh, 0.0)  # scaled influx j R / (D_ref c_max)
        # BDF2 weights a0 u^{n+1} - a1 u^n + a2 u^{n-1} = dtau f(u^{n+1}); (1, 1, 0) is backward Euler
        self.bdf = fc.constant(self.mesh, np.array([1.0, 1.0, 0.0]))
        self.dtau_prev = None
        cx = fc.constant(self.mesh, dtab.x)
        cy = fc.constant(self.mesh, dtab.y / self.D_ref)
        Du = common.ufl_table(dtab, self.u, cx, cy)
        u, u_n, u_nm1, a = self.u, self.u_n, self.u_nm1, self.bdf
        F = (
            (a[0] * u - a[1] * u_n + a[2] * u_nm1) * v * w + self.dtau * Du * ufl.inner(ufl.grad(u), ufl.grad(v)) * w
        ) * ufl.dx - self.dtau * self.flux * v * w * ufl.ds  # w = 0 at rho = 0, so ds only acts at rho = 1
        J = ufl.derivative(F, u, du)
        nw = P['newton']
        self.newton = fc.NewtonSolver(F, J, u, rtol=float(nw['rtol']), atol=float(nw['atol']), max_it=int(nw['max_it']))
        self.content_form = fc.form(3.0 * u * w * ufl.dx)  # mean stoichiometry
        coords = V.tabulate_dof_coordinates()[:, 0]
        self.order = np.argsort(coords)
        self.rho = coords[self.order]
        self.surface_dof = self.order[-1]

    def set_uniform(self, x):
        for f in (self.u, self.u_n, self.u_nm1):
            f.x.array[:] = x
        self.dtau_prev = None

    def mean(self):
        return self.fc.assemble_scalar(self.content_form)

    def advance(self, dtau, flux):
        self.dtau.value = dtau
        self.flux.value = flux
        if self.dtau_prev is None:
            self.bdf.value[:] = [1.0, 1.0, 0.0]
            self.u.x.array[:] = self.u_n.x.array
        else:
            om = dtau / self.dtau_prev
            self.bdf.value[:] = [(1 + 2 * om) / (1 + om), 1 + om, om * om / (1 + om)]
            # linear extrapolation as the Newton initial guess
            self.u.x.array[:] = self.u_n.x.array + om * (self.u_n.x.array - self.u_nm1.x.array)
        self._dtau_try = dtau
        its = self.newton.solve()
        return its

    def accept(self):
        self.u_nm1.x.array[:] = self.u_n.x.array
        self.u_n.x.array[:] = self.u.x.array
        self.dtau_prev = self._dtau_try

    def reject(self):
        self.u.x.array[:] = self.u_n.x.array

    def profile(self):
        return self.u.x.array[self.order].copy()


def discharge(model, P, rate):
    """One galvanostatic discharge at ``rate`` [1/h]; returns a dict of arrays and scalars."""
    fc = model.fc
    R, cmax, D_ref = P['R'], P['cmax'], model.D_ref
    window = abs(P['x1'] - P['x0'])
    j_abs = rate * cmax * window * R / (3.0 * 3600.0)  # mol m^-2 s^-1
    i_abs = common.FARADAY * j_abs
    t_scale = R * R / D_ref  # s per unit tau
    flux = P['sign'] * j_abs * R / (D_ref * cmax)
    tau_end = 3600.0 / rate / t_scale  # full window
    ts = P['ts']
    # the discharge ends when the surface leaves the OCV table or [0, 1]
    lo_tab, hi_tab = max(P['otab'].x[0], 0.0), min(P['otab'].x[-1], 1.0)

    model.set_uniform(P['x0'])
    mean0 = model.mean()
    tau, dtau = 0.0, float(ts['dtau_initial'])
    taus, xs, xm, prof, its_hist = [0.0], [P['x0']], [mean0], [model.profile()], []
    reason = 'window_delivered'
    t0 = time.perf_counter()
    lin0 = model.newton.linear_solve_time
    n_rejected = 0
    while True:
        dtau = min(dtau, tau_end - tau)
        try:
            its = model.advance(dtau, flux)
            ok = True
        except fc.NewtonDivergence:
            ok = False
        if ok:
            prof_new = model.profile()
            dxs = abs(prof_new[-1] - xs[-1])
            dxm = abs(dtau * flux * 3.0)
            ok = dxs <= ts['dx_surface_max'] and dxm <= ts['dx_mean_max'] * 1.000001
        if not ok:
            model.reject()
            n_rejected += 1
            dtau *= 0.5
            if dtau < ts['dtau_min']:
                raise common.ConvergenceError(
                    f'time step fell below dtau_min at C-rate {rate} (t = {tau * t_scale:.4g} s)'
                )
            continue
        if not np.all(np.isfinite(prof_new)):
            raise common.UnphysicalStateError(f'non-finite concentration at C-rate {rate}')
        model.accept()
        tau += dtau
        taus.append(tau)
        xs.append(prof_new[-1])
        xm.append(model.mean())
        prof.append(prof_new)
        its_hist.append(its)
        if np.min(prof_new[:-1]) < -1e-3 or np.max(prof_new[:-1]) > 1 + 1e-3:  # P1 undershoots are ~1e-5
            raise common.UnphysicalStateError(
                f'concentration left [0, c_max] inside the particle at C-rate {rate} (x in '
                f'[{prof_new.min():.4g}, {prof_new.max():.4g}]) at t = {tau * t_scale:.4g} s'
            )
        if xs[-1] > hi_tab + 1e-12 or xs[-1] < lo_tab - 1e-12:
            reason = 'surface_concentration_limit'
            break
        v_now = voltage(P, xs[-1], i_abs)
        if (P['sign'] > 0 and v_now <= P['vcut']) or (P['sign'] < 0 and v_now >= P['vcut']):
            reason = 'cutoff_voltage'
            break
        if tau >= tau_end * (1 - 1e-12):
            break
        # step size proposal: keep increments below the limits, grow at most by `growth`
        lim = [ts['growth'] * dtau, ts['dx_mean_max'] / abs(3.0 * flux)]
        if dxs > 0:
            lim.append(dtau * 0.9 * ts['dx_surface_max'] / dxs)
        dtau = max(min(lim), ts['dtau_min'])
    wall = time.perf_counter() - t0

    taus, xs, xm, prof = np.array(taus), np.array(xs), np.array(xm), np.array(prof)
    t = taus * t_scale
    soc = np.abs(xm - P['x0']) / window
    # mass balance: mean content must equal x0 + 3 j t / (R c_max) exactly (discrete conservation)
    expected = P['x0'] + 3.0 * flux * taus
    mass_err = float(np.max(np.abs(xm - expected)))
    xs_in = np.clip(xs, lo_tab, hi_tab)
    V = voltage(P, xs_in, i_abs)
    # end point: interpolate to the cut-off inside the last step
    soc_end = soc[-1]
    if reason == 'cutoff_voltage' and len(V) >= 2 and np.isfinite(V[-2]):
        v_a, v_b = V[-2], V[-1]
        theta = 1.0 if not np.isfinite(v_b) else (P['vcut'] - v_a) / (v_b - v_a) if v_b != v_a else 1.0
        theta = float(np.clip(theta, 0.0, 1.0))
        soc_end = soc[-2] + theta * (soc[-1] - soc[-2])
    elif reason == 'surface_concentration_limit' and len(xs) >= 2:
        bound = hi_tab if xs[-1] > hi_tab else lo_tab
        theta = float(np.clip((bound - xs[-2]) / (xs[-1] - xs[-2]), 0.0, 1.0))
        soc_end = soc[-2] + theta * (soc[-1] - soc[-2])
    cap_vol = common.FARADAY * cmax * window * soc / 3.6 * 1e-6  # mAh/cm^3
    out = dict(
        c_rate=rate,
        current_density=i_abs,
        termination=reason,
        soc_delivered=float(soc_end),
        capacity_mAh_per_cm3=float(common.FARADAY * cmax * window * soc_end / 3.6e6),
        n_steps=len(taus) - 1,
        n_rejected=n_rejected,
        newton_iterations=int(np.sum(its_hist)),
        newton_per_step=float(np.mean(its_hist)) if its_hist else 0.0,
        wall_time=wall,
        linear_solve_time=model.newton.linear_solve_time - lin0,
        mass_balance_error=mass_err,
        time=t,
        voltage=V,
        x_surface=xs,
        x_mean=xm,
        soc=soc,
        capacity_curve_mAh_per_cm3=cap_vol,
        profiles=prof,
    )
    if P['density']:
        out['capacity_mAh_per_g'] = out['capacity_mAh_per_cm3'] / P['density']
        out['capacity_curve_mAh_per_g'] = cap_vol / P['density']
    return out


def run(inp, base_dir='.', out_dir='.'):
    P = validate(inp, base_dir)
    t_start = time.perf_counter()
    model = RadialDiffusion(P)
    setup_time = time.perf_counter() - t_start
    results, arrays = [], {'r': model.rho * P['R']}
    order = np.argsort(P['rates'])  # solve in increasing rate, report in input order
    by_rate = {}
    for k in order:
        by_rate[k] = discharge(model, P, P['rates'][k])
    for k in range(len(P['rates'])):
        res = by_rate[k]
        for key in (
            'time',
            'voltage',
            'x_surface',
            'x_mean',
            'soc',
            'capacity_curve_mAh_per_cm3',
            'capacity_curve_mAh_per_g',
            'profiles',
        ):
            if key in res:
                arrays[f'rate{k}_{key}'] = res.pop(key)
        results.append(res)
    cap = [r['capacity_mAh_per_g' if P['density'] else 'capacity_mAh_per_cm3'] for r in results]
    summary = dict(
        model='particle_diffusion',
        status='ok',
        units=dict(
            time='s',
            voltage='V',
            r='m',
            capacity='mAh/g' if P['density'] else 'mAh/cm^3',
            current_density='A/m^2',
            x='c/c_max',
        ),
        theoretical_capacity_mAh_per_cm3=common.FARADAY * P['cmax'] * abs(P['x1'] - P['x0']) / 3.6e6,
        rate_capability=dict(c_rate=P['rates'], capacity=cap, soc_delivered=[r['soc_delivered'] for r in results]),
        runs=results,
        mesh=dict(n_cells=P['n_cells'], grading=P['grading'], n_dofs=len(model.rho)),
        setup_time=setup_time,
        wall_time=time.perf_counter() - t_start,
        mass_balance_error=max(r['mass_balance_error'] for r in results),
    )
    if P['write_xdmf']:
        # final concentration profile of each rate (x = c/c_max) on the radial mesh
        import os

        for k in range(len(P['rates'])):
            model.u.x.array[model.order] = arrays[f'rate{k}_profiles'][-1]
            model.fc.write_xdmf(os.path.join(out_dir, f'particle_rate{k}.xdmf'), model.mesh, [('x', model.u)])
        summary['xdmf'] = [f'particle_rate{k}.xdmf' for k in range(len(P['rates']))]
    common.write_results(out_dir, summary, arrays)
    return summary
