r"""Cahn-Hilliard phase-field model of an insertion particle: sphere (1-D radial) or disk (2-D).

Model (x = c / c_max, stoichiometry 0..1; SI units, energies per mole of host sites)
-----------------------------------------------------------------------------------
Homogeneous chemical potential mu_h(x) [J/mol], either

* regular solution:  mu_h = R_g T ln(x / (1 - x)) + Omega (1 - 2x)        (``omega`` [J/mol], or
  ``omega_RT`` = Omega / (R_g T)); the reference potential E0 [V] enters the voltage only;
* from an OCV table:  mu_h = -F (OCV(x) - E0)      (mu = -e OCV per ion; E0 defaults to mean OCV).

Total chemical potential and flux::

    mu = mu_h(x) - kappa (1/r^2) d/dr (r^2 dx/dr),      kappa = Omega lambda^2  (regular solution)
                                                        kappa = R_g T lambda^2  (OCV table)
    N = - c_max D(x) x (1 - x) / (R_g T) dmu/dr        [mol m^-2 s^-1]
    c_max dx/dt = - (1/r^2) d/dr (r^2 N)

so that in the ideal-solution limit N = -c_max D dx/dr: D(x) [m^2/s] (constant or table) is the
tracer-like diffusivity that MD provides; lambda = ``interface_width`` [m] sets the gradient energy.
Boundary conditions: symmetry at r = 0; at r = R, dx/dr = 0 (neutral wetting) and

* ``driving.type = "galvanostatic"``: N(R) = -j with j = C c_max R / (3 * 3600 s) (1C fills
  x = 0 -> 1 in one hour; ``direction`` lithiation (default) or delithiation);
* ``driving.type = "none"``: N(R) = 0 (closed particle; relaxes to equilibrium, mass conserved);
* ``driving.type = "potentiostatic"`` at applied voltage V_app [V]: Butler-Volmer influx
  j = (i0 / F) 2 sinh(alpha (mu_app - mu(R)) / (R_g T)) with mu_app = F (E0 - V_app), i.e. the
  surface overpotential eta = V_app - (E0 - mu(R)/F) drives insertion when negative.

Voltage vs a metal counter electrode with symmetric Butler-Volmer kinetics at the surface::

    V = E0 - mu(R)/F -/+ (R_g T / (alpha F)) asinh(i / (2 i0)),   i = F j    (- for lithiation)

Outputs: x(r) snapshots, phase-boundary position r_f(t) (outermost radius where x crosses 1/2),
surface and mean x, voltage against time and capacity, the plateau voltage (median V while a
front exists) and its spread, the mass balance error.

``dimension`` 2 solves the same equations in a disk of radius R (a cross-section of a long
cylindrical particle, 1C = c_max R / (2 * 3600 s) surface flux); the front position is then the
equivalent radius sqrt(A_poor / pi) of the Li-poor region (x < 1/2), and surface values are
averages over the circle. ``initial.noise`` (amplitude, with ``seed``) breaks the symmetry.

Discretisation: mixed P1/P1 (x, mu/(R_g T)); 1-D: uniform radial mesh, r^2-weighted weak form;
2-D: crossed triangle mesh of the square mapped onto the disk (``n_cells`` across the diameter);
variable-step BDF2 (first step backward Euler), Newton with the exact Jacobian and a damping that
keeps 0 < x < 1. Scaled variables rho = r/R, tau = t D_ref/R^2.

Input (JSON)::

    {"model": "phase_field",
     "particle": {"radius": 1e-6, "c_max": 2e4},                       # m, mol/m^3
     "free_energy": {"type": "regular_solution", "omega_RT": 3.0}      # or "omega" [J/mol]
                  | {"type": "ocv", "x": [...], "V": [...]},           # table over (0, 1)
     "E0": 3.4,                                                        # V
     "interface_width": 2e-8,                                          # m (>= 1 cell)
     "diffusivity": 1e-15 | {"x": [...], "D": [...]},                  # m^2/s, covers [0, 1]
     "driving": {"type": "galvanostatic", "c_rate": 1.0, "direction": "lithiation"}
              | {"type": "potentiostatic", "voltage": 3.35} | {"type": "none"},
     "kinetics": {"i0": 1.0, "alpha": 0.5, "concentration_dependent": false},
     "initial": {"type": "uniform", "x": 0.02}
              | {"type": "core_shell", "x_core": 0.2, "x_shell": 0.8, "front": 0.7},   # front in r/R
     "t_end": 3000, "x_end": 0.9,           # stop at t_end [s] or mean x (galvanostatic); one needed
     "temperature": 298.15, "dimension": 1, "mesh": {"n_cells": 200},   # 2-D default 48 across
     "n_snapshots": 60, "write_xdmf": false}

Output: results.json -> termination, x_center_final, x_surface_final, x_min/max_final,
front_final [m], plateau_voltage [V], plateau_spread [V], mass_balance_error, n_steps, newton
counts, timings. results.npz -> ``r``, ``time``, ``x_mean``, ``x_surface``, ``front_position`` [m]
(nan while no front), ``voltage``, ``capacity_mAh_per_cm3``, ``snapshot_times``, ``profiles``,
``final_profile``, ``final_mu`` [J/mol] (nodes sorted by radius; 2-D adds ``node_xy`` [m]),
``current_density`` [A/m^2, + = insertion], ``free_energy_RT`` (regular solution: mean g / RT).
"""

import copy
import os
import time
from types import SimpleNamespace

import numpy as np

try:
    from . import common
    from .common import require
except ImportError:
    import common
    from common import require

DEFAULTS = {
    'temperature': 298.15,
    'interface_width': None,
    'driving': {'type': 'galvanostatic', 'c_rate': 1.0, 'direction': 'lithiation'},
    'kinetics': {'i0': 1.0, 'alpha': 0.5, 'concentration_dependent': False},
    'initial': {'type': 'uniform', 'x': 0.02},
    'dimension': 1,
    'mesh': {'n_cells': None},
    'time_stepping': {'dtau_initial': 1e-6, 'dtau_max': 0.02, 'growth': 1.3, 'dx_max': 0.05, 'dtau_min': 1e-12},
    'newton': {'rtol': 1e-10, 'atol': 1e-12, 'max_it': 30},
    't_end': None,
    'x_end': None,
    'n_snapshots': 60,
    'write_xdmf': False,
}


def _merge(a, b):
    out = copy.deepcopy(a)
    for k, v in (b or {}).items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def validate(inp, base_dir='.'):
    p = _merge(DEFAULTS, inp)
    part = p.get('particle')
    require(isinstance(part, dict), "missing 'particle' (radius [m], c_max [mol/m^3])")
    R = common.get_number(part, 'radius', positive=True, where='particle.')
    cmax = common.get_number(part, 'c_max', positive=True, where='particle.')
    T = common.get_number(p, 'temperature', positive=True)
    RT = common.GAS_CONSTANT * T
    fe = p.get('free_energy')
    require(
        isinstance(fe, dict) and fe.get('type') in ('regular_solution', 'ocv'),
        "'free_energy' must be {'type': 'regular_solution', 'omega' [J/mol] or 'omega_RT'} "
        "or {'type': 'ocv', 'x', 'V'}",
    )
    if fe['type'] == 'regular_solution':
        if 'omega_RT' in fe:
            om = common.get_number(fe, 'omega_RT', where='free_energy.')
        else:
            om = common.get_number(fe, 'omega', where='free_energy.') / RT
        E0 = common.get_number(p, 'E0', default=0.0)
        otab = None
        kappa_scale = max(om, 1e-300)
        require(om > 0, 'free_energy.omega must be > 0 (a phase-separating regular solution)')
    else:
        otab = common.read_table(fe, base_dir, 'free_energy(ocv)', 'V')
        require(
            otab.covers(1e-3, 1 - 1e-3),
            f'OCV table covers x in [{otab.x[0]}, {otab.x[-1]}]; the phase-field model needs it over (0, 1)',
        )
        om = None
        E0 = common.get_number(p, 'E0', default=float(np.mean(otab.y)))
        kappa_scale = 1.0
    lam = common.get_number(p, 'interface_width', positive=True)
    require(lam < 0.5 * R, f'interface_width {lam} m must be well below the radius {R} m')
    dspec = p.get('diffusivity')
    require(dspec is not None, "missing 'diffusivity' (number [m^2/s] or {'x', 'D'})")
    if isinstance(dspec, dict):
        dtab = common.read_table(dspec, base_dir, 'diffusivity', 'D')
        require(np.all(dtab.y > 0), f'diffusivity table has non-positive values {dtab.y[dtab.y <= 0].tolist()}')
        require(dtab.covers(0.0, 1.0), f'diffusivity table covers [{dtab.x[0]}, {dtab.x[-1]}], needs [0, 1]')
    else:
        dval = common.get_number(p, 'diffusivity')
        require(dval > 0, f'diffusivity must be > 0, got {dval}')
        dtab = common.Table([0.0, 1.0], [dval, dval], 'diffusivity')
    drv = p['driving']
    require(
        drv.get('type') in ('galvanostatic', 'potentiostatic', 'none'),
        "driving.type must be 'galvanostatic', 'potentiostatic' or 'none'",
    )
    rate, sign, v_app = 0.0, 1.0, None
    if drv['type'] == 'potentiostatic':
        v_app = common.get_number(drv, 'voltage', where='driving.')
    if drv['type'] == 'galvanostatic':
        rate = common.get_number(drv, 'c_rate', where='driving.')
        require(rate > 0, f'driving.c_rate must be > 0, got {rate}')
        require(
            drv.get('direction', 'lithiation') in ('lithiation', 'delithiation'),
            'driving.direction: lithiation|delithiation',
        )
        sign = 1.0 if drv.get('direction', 'lithiation') == 'lithiation' else -1.0
    ini = p['initial']
    require(ini.get('type') in ('uniform', 'core_shell'), "initial.type must be 'uniform' or 'core_shell'")
    if ini['type'] == 'uniform':
        x0 = common.get_number(ini, 'x', where='initial.')
        require(0 < x0 < 1, f'initial.x must be in (0, 1), got {x0}')
    else:
        for k in ('x_core', 'x_shell'):
            v = common.get_number(ini, k, where='initial.')
            require(0 < v < 1, f'initial.{k} must be in (0, 1)')
        f = common.get_number(ini, 'front', where='initial.')
        require(0 < f < 1, 'initial.front (r/R) must be in (0, 1)')
    t_end = p.get('t_end')
    x_end = p.get('x_end')
    require(t_end is not None or x_end is not None, "give 't_end' [s] and/or 'x_end' (mean stoichiometry to stop at)")
    if t_end is not None:
        t_end = common.get_number(p, 't_end', positive=True)
    if x_end is not None:
        x_end = common.get_number(p, 'x_end')
        require(0 < x_end < 1, 'x_end must be in (0, 1)')
    dim = int(p['dimension'])
    require(dim in (1, 2), f'dimension must be 1 (sphere, radial) or 2 (disk), got {dim}')
    n = int(p['mesh']['n_cells'] or (200 if dim == 1 else 48))
    require(n >= 10, 'mesh.n_cells must be >= 10')
    h = 1.0 / n if dim == 1 else 2.0 / n  # 1-D: cells along the radius; 2-D: cells across the diameter
    if lam / R < h:  # the interface (about 4 lambda wide) must span at least 4 cells
        raise common.InputError(
            f'interface_width/R = {lam / R:.3g} is not resolved by {n} cells: need n_cells >= '
            f'{int(np.ceil(R / lam * (1 if dim == 1 else 2)))}'
        )
    kin = p['kinetics']
    return dict(
        R=R,
        cmax=cmax,
        T=T,
        RT=RT,
        om=om,
        otab=otab,
        E0=E0,
        kappa=kappa_scale * (lam / R) ** 2,
        lam=lam,
        dtab=dtab,
        kind=drv['type'],
        rate=rate,
        sign=sign,
        v_app=v_app,
        ini=ini,
        t_end=t_end,
        x_end=x_end,
        n=n,
        ts=p['time_stepping'],
        newton=p['newton'],
        dim=dim,
        n_snap=int(p['n_snapshots']),
        i0=common.get_number(kin, 'i0', positive=True, where='kinetics.'),
        alpha=common.get_number(kin, 'alpha', positive=True, where='kinetics.'),
        conc_dep=bool(kin.get('concentration_dependent', False)),
        write_xdmf=bool(p['write_xdmf']),
    )


def front_position(rho, x, level=0.5):
    """Outermost rho where x(rho) crosses ``level`` (linear interpolation); nan if none."""
    s = np.sign(x - level)
    idx = np.nonzero(s[:-1] * s[1:] < 0)[0]
    if len(idx) == 0:
        return np.nan
    i = idx[-1]
    return rho[i] + (level - x[i]) * (rho[i + 1] - rho[i]) / (x[i + 1] - x[i])


def _fem():
    """The dolfinx shim (:mod:`fem_compat`), imported only when a model is solved."""
    try:
        from . import fem_compat as fc
    except ImportError:
        import fem_compat as fc
    return fc


def assemble(P, fc):
    """The discrete problem of the validated parameters ``P``: mesh, mixed P1/P1 space of (x, mu/(R_g T)), the
    variable-step BDF2 weak form with its surface flux, the damped Newton solver, and the functionals recorded at
    every step (mean and surface x, surface mu, influx, Li-poor fraction, free energy). Nothing is solved here.

    :return: a namespace of the dolfinx objects and the radius-sorted node indices (``rho_nodes`` in r/R).
    """
    import ufl

    dim = P['dim']
    if dim == 1:
        mesh = fc.interval_mesh(np.linspace(0.0, 1.0, P['n'] + 1))
    else:
        mesh = fc.disk_mesh(P['n'])
    W = fc.mixed_space(mesh, 2)
    U, U_n, U_nm1 = (fc.dolfinx.fem.Function(W) for _ in range(3))
    u, mu = ufl.split(U)
    u_n, _ = ufl.split(U_n)
    u_nm1, _ = ufl.split(U_nm1)
    q, v = ufl.TestFunctions(W)
    w = ufl.SpatialCoordinate(mesh)[0] ** 2 if dim == 1 else fc.constant(mesh, 1.0)
    vol = fc.assemble_scalar(w * ufl.dx)  # 1/3 (sphere, scaled) or the discrete disk area ~ pi
    surf = fc.assemble_scalar(w * ufl.ds)  # 1 or ~ 2 pi (w = 0 at rho = 0 removes the centre in 1-D)
    dtab = P['dtab']
    D_ref = float(np.max(dtab.y))
    Du = common.ufl_table(dtab, u, fc.constant(mesh, dtab.x), fc.constant(mesh, dtab.y / D_ref))
    if P['otab'] is None:
        mu_h = ufl.ln(u / (1 - u)) + P['om'] * (1 - 2 * u)
    else:
        ot = P['otab']
        mu_h = -(common.FARADAY / P['RT']) * (
            common.ufl_table(
                ot, u, fc.constant(mesh, ot.x), fc.constant(mesh, ot.y), smooth=0.02 * float(np.min(np.diff(ot.x)))
            )
            - P['E0']
        )
    dtau = fc.constant(mesh, 1e-6)
    flux = fc.constant(mesh, 0.0)
    a = fc.constant(mesh, np.array([1.0, 1.0, 0.0]))
    kappa = P['kappa']
    if P['kind'] == 'potentiostatic':
        # scaled BV influx k (2 sinh(alpha (mu_app - mu))), k = i0 R / (F D_ref c_max)
        k_bv = P['i0'] * P['R'] / (common.FARADAY * D_ref * P['cmax'])
        mu_app = common.FARADAY * (P['E0'] - P['v_app']) / P['RT']
        i0_fac = (4 * u * (1 - u)) ** P['alpha'] if P['conc_dep'] else 1.0
        flux_expr = k_bv * i0_fac * 2 * ufl.sinh(P['alpha'] * (mu_app - mu))
    else:
        flux_expr = flux
    F = (
        (a[0] * u - a[1] * u_n + a[2] * u_nm1) * q * w
        + dtau * Du * u * (1 - u) * ufl.inner(ufl.grad(mu), ufl.grad(q)) * w
        + mu * v * w
        - mu_h * v * w
        - kappa * ufl.inner(ufl.grad(u), ufl.grad(v)) * w
    ) * ufl.dx - dtau * flux_expr * q * w * ufl.ds
    J = ufl.derivative(F, U, ufl.TrialFunction(W))
    iu, imu = fc.sub_dofs(W, 0), fc.sub_dofs(W, 1)
    eps = 1e-14

    def admissible(arr, step):
        x, dx = arr[iu], step[iu]
        lam = 1.0
        with np.errstate(divide='ignore', invalid='ignore'):
            lo = np.where(dx < 0, (eps - x) / dx, np.inf)
            hi = np.where(dx > 0, (1 - eps - x) / dx, np.inf)
        m = min(np.min(lo), np.min(hi))
        if m < 1.0:
            lam = 0.9 * m
        return lam

    nw = P['newton']
    newton = fc.NewtonSolver(
        F, J, U, rtol=float(nw['rtol']), atol=float(nw['atol']), max_it=int(nw['max_it']), admissible=admissible
    )
    energy_form = (
        fc.form(
            1.0
            / vol
            * (
                (u * ufl.ln(u) + (1 - u) * ufl.ln(1 - u) + (P['om'] or 0.0) * u * (1 - u))
                + 0.5 * kappa * ufl.inner(ufl.grad(u), ufl.grad(u))
            )
            * w
            * ufl.dx
        )
        if P['otab'] is None
        else None
    )
    Vu_xyz = W.sub(0).collapse()[0].tabulate_dof_coordinates()[:, :dim]
    Vu_r = np.sqrt((Vu_xyz**2).sum(axis=1))
    order = np.argsort(Vu_r, kind='stable')
    mu_r = np.sqrt((W.sub(1).collapse()[0].tabulate_dof_coordinates()[:, :dim] ** 2).sum(axis=1))
    return SimpleNamespace(
        mesh=mesh,
        U=U,
        U_n=U_n,
        U_nm1=U_nm1,
        dtau=dtau,
        flux=flux,
        a=a,
        newton=newton,
        vol=vol,
        surf=surf,
        D_ref=D_ref,
        mean_form=fc.form(u * w / vol * ufl.dx),
        influx_form=fc.form(flux_expr * w / vol * ufl.ds),  # d(mean x)/dtau through the surface
        us_form=fc.form(u * w / surf * ufl.ds),
        mus_form=fc.form(mu * w / surf * ufl.ds),
        poor_form=fc.form(ufl.conditional(ufl.lt(u, 0.5), 1.0, 0.0) * w / vol * ufl.dx),
        energy_form=energy_form,
        iu=iu,
        Vu_xyz=Vu_xyz,
        order=order,
        rho_nodes=Vu_r[order],
        iu_sorted=iu[order],
        imu_sorted=imu[np.argsort(mu_r, kind='stable')],
    )


def _front(P, fc, s, xsorted):
    """Front position [r/R]: the outermost x = 1/2 crossing (1-D) or sqrt of the Li-poor area fraction (disk)."""
    if P['dim'] == 1:
        return front_position(s.rho_nodes, xsorted)
    fpoor = fc.assemble_scalar(s.poor_form)  # equivalent radius of the Li-poor core (disk)
    return np.sqrt(fpoor) if 1e-3 < fpoor < 0.999 else np.nan


def initial_state(P, s):
    """Set x to the initial profile and mu consistently with it (a zero-length step); return x at the sorted nodes."""
    ini = P['ini']
    if ini['type'] == 'uniform':
        x_init = np.full_like(s.rho_nodes, float(ini['x']))
    else:
        width = P['lam'] / P['R']
        x_init = ini['x_core'] + (ini['x_shell'] - ini['x_core']) * 0.5 * (
            1 + np.tanh((s.rho_nodes - ini['front']) / (np.sqrt(2) * width))
        )
    if ini.get('noise'):
        x_init = np.clip(
            x_init + float(ini['noise']) * np.random.default_rng(int(ini.get('seed', 0))).uniform(-1, 1, x_init.shape),
            1e-6,
            1 - 1e-6,
        )
    s.U.x.array[s.iu_sorted] = x_init
    # consistent initial mu from the discrete equation (solve only the mu rows): project mu_h - kappa lap u
    # with a zero-length step (dtau = 0 leaves u unchanged)
    s.dtau.value = 0.0
    s.U_n.x.array[:] = s.U.x.array
    s.U_nm1.x.array[:] = s.U.x.array
    s.newton.solve()
    s.U_n.x.array[:] = s.U.x.array
    s.U_nm1.x.array[:] = s.U.x.array
    return x_init


def start_history(P, fc, s, x_init):
    """Set the driving flux; the stepping state (scaled time, step, 1C current) and the history at t = 0."""
    t_scale = P['R'] ** 2 / s.D_ref
    # 1C: the (discrete) volume/surface ratio, R/3 (sphere) or ~R/2 (disk), filled in one hour
    j_abs = P['rate'] * P['cmax'] * P['R'] * (s.vol / s.surf) / 3600.0
    s.flux.value = P['sign'] * j_abs * P['R'] / (s.D_ref * P['cmax'])
    mean0 = fc.assemble_scalar(s.mean_form)
    if P['kind'] == 'potentiostatic':
        s.flux.value = 0.0
    state = SimpleNamespace(
        t_scale=t_scale,
        i_abs=common.FARADAY * j_abs,
        tau_end=P['t_end'] / t_scale if P['t_end'] else np.inf,
        tau=0.0,
        dt=float(P['ts']['dtau_initial']),
        dt_prev=None,
        mean0=mean0,
        n_rejected=0,
    )
    hist = dict(
        influx=[fc.assemble_scalar(s.influx_form)],
        mass_residual=[0.0],
        tau=[0.0],
        x_mean=[mean0],
        x_surface=[fc.assemble_scalar(s.us_form)],
        mu_surface=[fc.assemble_scalar(s.mus_form)],
        front=[_front(P, fc, s, x_init)],
        newton=[0],
        energy=[],
    )
    if s.energy_form is not None:
        hist['energy'].append(fc.assemble_scalar(s.energy_form))
    return state, hist, [x_init.copy()]


def step(P, fc, s, state, hist, profiles):
    """One attempt at a BDF2 step of ``state.dt`` (capped by ``dtau_max`` and the end time).

    An accepted step (Newton converged, no node moved by more than 2 ``dx_max``) is recorded in ``hist`` and
    ``profiles`` and the next step grows; a rejected one is undone and the step halved.

    :return: why the run stops here (``'x_end'``, ``'surface_saturated'``), or None to go on.
    :raises common.ConvergenceError: when the step falls below ``dtau_min`` without a saturated surface.
    """
    ts = P['ts']
    U, U_n, U_nm1 = s.U, s.U_n, s.U_nm1
    dt = min(state.dt, state.tau_end - state.tau, float(ts['dtau_max']))
    if state.dt_prev is None:
        s.a.value[:] = [1.0, 1.0, 0.0]
        U.x.array[:] = U_n.x.array
    else:
        om = dt / state.dt_prev
        s.a.value[:] = [(1 + 2 * om) / (1 + om), 1 + om, om * om / (1 + om)]
        U.x.array[:] = U_n.x.array + om * (U_n.x.array - U_nm1.x.array)
        xg = U.x.array[s.iu]
        U.x.array[s.iu] = np.clip(xg, 1e-9, 1 - 1e-9)
    s.dtau.value = dt
    ok = True
    try:
        its = s.newton.solve()
    except fc.NewtonDivergence:
        ok = False
    if ok:
        xnew = U.x.array[s.iu_sorted]
        dmax = np.max(np.abs(xnew - U_n.x.array[s.iu_sorted]))
        ok = dmax <= 2 * ts['dx_max']
    if not ok:
        state.n_rejected += 1
        state.dt = dt * 0.5
        U.x.array[:] = U_n.x.array
        if state.dt < ts['dtau_min']:
            x_surf_nodes = U_n.x.array[s.iu_sorted][s.rho_nodes > s.rho_nodes[-1] - 1e-9]
            if P['kind'] == 'galvanostatic' and (x_surf_nodes.max() > 0.98 or x_surf_nodes.min() < 0.02):
                return 'surface_saturated'  # the imposed current can no longer be carried
            raise common.ConvergenceError(
                f'phase field: time step below dtau_min at t = {state.tau * state.t_scale:.4g} s'
            )
        return None
    xm = record(P, fc, s, state, hist, profiles, dt, xnew, its)
    if P['x_end'] is not None and P['kind'] != 'none':
        up = P['sign'] > 0 if P['kind'] == 'galvanostatic' else P['x_end'] > state.mean0
        if (up and xm >= P['x_end']) or (not up and xm <= P['x_end']):
            return 'x_end'
    if P['kind'] == 'galvanostatic' and (hist['x_surface'][-1] > 1 - 1e-6 or hist['x_surface'][-1] < 1e-6):
        return 'surface_saturated'
    state.dt = dt * min(ts['growth'], max(0.5, 0.9 * ts['dx_max'] / max(dmax, 1e-300)))
    return None


def record(P, fc, s, state, hist, profiles, dt, xnew, its):
    """Record an accepted step of ``dt``: its discrete mass balance, the functionals and the profile; advance the
    BDF2 history and the time. Returns the new mean x."""
    xm = fc.assemble_scalar(s.mean_form)
    jin = fc.assemble_scalar(s.influx_form)
    # discrete mass balance of this step: a0 M^{n+1} - a1 M^n + a2 M^{n-1} = dtau * influx^{n+1}
    m_n, m_nm1 = hist['x_mean'][-1], hist['x_mean'][-2] if len(hist['x_mean']) > 1 else 0.0
    av = s.a.value
    hist['mass_residual'].append(av[0] * xm - av[1] * m_n + av[2] * m_nm1 - dt * jin)
    hist['influx'].append(jin)
    s.U_nm1.x.array[:] = s.U_n.x.array
    s.U_n.x.array[:] = s.U.x.array
    state.tau += dt
    state.dt_prev = dt
    hist['tau'].append(state.tau)
    hist['x_mean'].append(xm)
    hist['x_surface'].append(fc.assemble_scalar(s.us_form))
    hist['mu_surface'].append(fc.assemble_scalar(s.mus_form))
    hist['front'].append(_front(P, fc, s, xnew))
    hist['newton'].append(its)
    if s.energy_form is not None:
        hist['energy'].append(fc.assemble_scalar(s.energy_form))
    profiles.append(xnew.copy())
    return xm


def summarise(P, s, state, hist, profiles, reason, wall):
    """The results of a finished run: (summary for results.json, arrays for results.npz), in SI units."""
    H = {k: np.asarray(v, float) for k, v in hist.items()}
    t_scale, mean0, i_abs = state.t_scale, state.mean0, state.i_abs
    t = H['tau'] * t_scale
    # per-step discrete balance (exact for BDF2 with the implicit surface flux), accumulated
    mass_err = float(np.sum(np.abs(H['mass_residual'])))
    if P['kind'] != 'potentiostatic':  # constant influx: the mean is known in closed form
        mass_err = max(mass_err, float(np.max(np.abs(H['x_mean'] - (mean0 + H['influx'][0] * H['tau'])))))
    xs = H['x_surface']
    if P['conc_dep']:
        i0 = P['i0'] * (np.clip(4 * xs * (1 - xs), 0, None) ** P['alpha'])
    else:
        i0 = np.full_like(xs, P['i0'])
    with np.errstate(divide='ignore'):
        eta = P['RT'] / (P['alpha'] * common.FARADAY) * np.arcsinh(i_abs / (2 * i0)) if i_abs > 0 else 0 * xs
    volt = P['E0'] - P['RT'] * H['mu_surface'] / common.FARADAY - P['sign'] * eta
    current = common.FARADAY * P['cmax'] * P['R'] * s.vol / s.surf * H['influx'] / t_scale  # A/m^2, + = insertion
    if P['kind'] == 'potentiostatic':
        volt = np.full_like(volt, P['v_app'])
    has_front = np.isfinite(H['front']) & (H['front'] < 0.98)
    plateau = float(np.median(volt[has_front])) if has_front.any() else None
    plateau_spread = (
        float(np.percentile(volt[has_front], 90) - np.percentile(volt[has_front], 10)) if has_front.sum() > 2 else None
    )
    prof = np.array(profiles)
    sel = np.unique(np.linspace(0, len(prof) - 1, min(P['n_snap'], len(prof))).round().astype(int))
    arrays = dict(
        r=s.rho_nodes * P['R'],
        time=t,
        current_density=current,
        x_mean=H['x_mean'],
        x_surface=xs,
        front_position=H['front'] * P['R'],
        voltage=volt,
        capacity_mAh_per_cm3=common.FARADAY * P['cmax'] * np.abs(H['x_mean'] - mean0) / 3.6e6,
        snapshot_times=t[sel],
        profiles=prof[sel],
        final_profile=prof[-1],
        final_mu=s.U.x.array[s.imu_sorted] * P['RT'],
    )
    if P['dim'] == 2:
        arrays['node_xy'] = s.Vu_xyz[s.order] * P['R']
    if len(H['energy']):
        arrays['free_energy_RT'] = H['energy']
    summary = dict(
        model='phase_field',
        status='ok',
        termination=reason,
        units=dict(time='s', r='m', voltage='V', mu='J/mol', x='c/c_max', capacity='mAh/cm^3'),
        n_steps=len(t) - 1,
        n_rejected=state.n_rejected,
        newton_iterations=int(H['newton'].sum()),
        newton_per_step=float(H['newton'][1:].mean()) if len(t) > 1 else 0.0,
        linear_solve_time=s.newton.linear_solve_time,
        wall_time=wall,
        mass_balance_error=mass_err,
        x_min_final=float(prof[-1].min()),
        x_max_final=float(prof[-1].max()),
        x_center_final=float(prof[-1][0]),
        x_surface_final=float(xs[-1]),
        dimension=P['dim'],
        front_final=float(H['front'][-1] * P['R']) if np.isfinite(H['front'][-1]) else None,
        plateau_voltage=plateau,
        plateau_spread=plateau_spread,
        kappa_dimensionless=P['kappa'],
        omega_RT=P['om'],
        t_scale=t_scale,
        mesh=dict(n_cells=P['n'], n_dofs=int(len(s.U.x.array))),
    )
    return summary, arrays


def run(inp, base_dir='.', out_dir='.'):
    """Solve the model of ``inp``: :func:`assemble`, :func:`initial_state`, :func:`step` until the end time,
    ``x_end`` or a saturated surface, :func:`summarise`; write results.json / results.npz (and the XDMF field) into
    ``out_dir``. Returns the summary."""
    P = validate(inp, base_dir)
    fc = _fem()
    t_start = time.perf_counter()
    s = assemble(P, fc)
    x_init = initial_state(P, s)
    state, hist, profiles = start_history(P, fc, s, x_init)
    reason = 't_end'
    while state.tau < state.tau_end * (1 - 1e-12):
        stop = step(P, fc, s, state, hist, profiles)
        if stop:
            reason = stop
            break
    wall = time.perf_counter() - t_start
    summary, arrays = summarise(P, s, state, hist, profiles, reason, wall)
    if P['write_xdmf']:
        uf = s.U.sub(0).collapse()
        fc.write_xdmf(os.path.join(out_dir, 'phase_field_final.xdmf'), s.mesh, [('x', uf)])
        summary['xdmf'] = ['phase_field_final.xdmf']
    common.write_results(out_dir, summary, arrays)
    return summary
