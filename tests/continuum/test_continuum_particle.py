"""particle_diffusion: analytic sphere solution, mass balance, rate capability, input refusals.

The solver runs under Debian's /usr/bin/python3 (python3-dolfinx) as a subprocess, exactly as the
CalcJob runs it; the references here are computed independently with numpy/scipy in the test env.
"""

import json
import os
import shutil
import subprocess
import time

import numpy as np
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
CONTINUUM = os.path.join(REPO, 'aiida_mscale', 'continuum')
FENICS_PYTHON = os.environ.get('MSCALE_FENICS_PYTHON', '/usr/bin/python3')


def run_solver(tmp_path, inp, name='input.json', script=None, arrays=None):
    """Write inp (+ arrays as .npy) into tmp_path, run solver.py on it; return (proc, results, npz)."""
    for fname, arr in (arrays or {}).items():
        np.save(tmp_path / fname, np.asarray(arr))
    (tmp_path / name).write_text(json.dumps(inp))
    env = dict(os.environ, OMP_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1', PYTHONPATH='')
    cmd = ['nice', '-n', '10', FENICS_PYTHON, script or os.path.join(CONTINUUM, 'solver.py'), str(tmp_path / name)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    res_file = tmp_path / inp.get('output_dir', '.') / 'results.json'
    res = json.loads(res_file.read_text()) if res_file.exists() else None
    npz_file = tmp_path / inp.get('output_dir', '.') / 'results.npz'
    npz = dict(np.load(npz_file)) if npz_file.exists() else None
    return proc, res, npz


R, D, CMAX = 5e-6, 1e-14, 2.0e4


def sphere_constant_flux(tau, rho, J, terms=3000):
    """Crank, Mathematics of Diffusion, eq. 6.43 / Carslaw & Jaeger 9.3: sphere, zero initial
    concentration, constant influx D dc/dr = F0 at r = R. In u = c/c_max, rho = r/R, tau = D t/R^2,
    J = F0 R / (D c_max):  u = J [3 tau + rho^2/2 - 3/10 - 2 sum_n sin(a_n rho) / (a_n^2 rho sin a_n)
    exp(-a_n^2 tau)],  a_n the positive roots of a cot a = 1 (tan a = a)."""
    n = np.arange(1, terms + 1)
    lo, hi = n * np.pi + 1e-12, n * np.pi + np.pi / 2 - 1e-12  # root of tan a = a in (n pi, n pi + pi/2)
    for _ in range(80):  # bisection, vectorised
        mid = 0.5 * (lo + hi)
        pos = np.tan(mid) - mid > 0
        hi = np.where(pos, mid, hi)
        lo = np.where(pos, lo, mid)
    a = 0.5 * (lo + hi)
    tau = np.atleast_1d(tau)[:, None]
    if rho == 1.0:
        series = np.exp(-(a**2) * tau) / a**2
    else:
        series = np.sin(a * rho) / (a**2 * rho * np.sin(a)) * np.exp(-(a**2) * tau)
    return J * (3 * tau[:, 0] + rho**2 / 2 - 0.3 - 2 * series.sum(axis=1))


def base_input(**kw):
    inp = {
        'model': 'particle_diffusion',
        'particle': {'radius': R, 'c_max': CMAX},
        'diffusivity': D,
        'ocv': {'x': [0.0, 1.0], 'V': [4.0, 3.0]},
        'x_initial': 0.0,
        'x_final': 1.0,
        'c_rates': [1.0],
        'cutoff_voltage': 0.0,
        'kinetics': {'concentration_dependent': False},
    }
    inp.update(kw)
    return inp


def test_series_reference_is_consistent():
    # the reference itself: zero at tau = 0 (series reproduces rho^2/2 - 3/10), and mean = 3 J tau
    assert abs(sphere_constant_flux(0.0, 1.0, 1.0)[0]) < 2e-3
    assert abs(sphere_constant_flux(0.0, 0.5, 1.0)[0]) < 2e-3
    assert abs(sphere_constant_flux(2.0, 1.0, 1.0)[0] - (6.0 + 0.2)) < 1e-12


def test_constant_flux_matches_analytic_sphere(tmp_path):
    t0 = time.perf_counter()
    proc, res, z = run_solver(tmp_path, base_input())
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    run = res['runs'][0]
    t, xs, xm = z['rate0_time'], z['rate0_x_surface'], z['rate0_x_mean']
    tau = t * D / R**2
    J = 1.0 * CMAX * 1.0 * R / (3 * 3600.0) * R / (D * CMAX)  # 1C over x in [0, 1]
    # surface concentration: within 1 % of the analytic value for tau >= 1e-3 (t >= 2.5 s here)
    m = tau >= 1e-3
    assert m.sum() > 50
    exact_s = sphere_constant_flux(tau[m], 1.0, J)
    rel_s = np.abs(xs[m] - exact_s) / exact_s
    assert rel_s.max() < 0.01, rel_s.max()
    # average concentration: analytic 3 J tau; discrete mass balance to 1e-8
    exact_m = 3 * J * tau
    assert np.max(np.abs(xm - exact_m)) < 1e-8
    assert run['mass_balance_error'] < 1e-8
    # concentration profile at the last step against the series at r = R/2
    rho = z['r'] / R
    k = np.argmin(np.abs(rho - 0.5))
    exact_mid = sphere_constant_flux(tau[-1:], rho[k], J)[0]
    assert abs(z['rate0_profiles'][-1, k] - exact_mid) / exact_mid < 0.01
    print(
        f'\nparticle analytic: max rel err surface {rel_s.max():.2e}, mass {run["mass_balance_error"]:.1e}, '
        f'{run["n_steps"]} steps, {wall:.1f} s wall'
    )


def realistic_tables():
    x = np.linspace(0.0, 1.0, 41)
    ocv = (
        4.3
        - 0.9 * x
        - 0.024 * np.log(np.clip(x, 1e-4, None) / np.clip(1 - x, 1e-4, None))
        - 0.5 * np.exp(-(1 - x) / 0.03)
    )
    d = 1e-14 * (1 - 0.9 * x)
    return x, ocv, d


def test_rate_capability_monotone_and_fast(tmp_path):
    x, ocv, d = realistic_tables()
    np.savez(tmp_path / 'tabs.npz', V=ocv, D=d)
    rates = [0.1, 0.2, 0.5, 1, 2, 3, 5, 7, 10, 20]
    inp = {
        'model': 'particle_diffusion',
        'particle': {'radius': 5e-6, 'c_max': 4.9e4, 'density': 4.7},
        'diffusivity': {'x': 'x.npy', 'D': 'tabs.npz:D'},
        'ocv': {'x': 'x.npy', 'V': 'tabs.npz:V'},
        'x_initial': 0.05,
        'x_final': 0.99,
        'c_rates': rates[::-1],
        'cutoff_voltage': 3.0,
        'kinetics': {'i0': 2.0, 'concentration_dependent': True},
        'write_xdmf': True,
    }
    t0 = time.perf_counter()
    proc, res, z = run_solver(tmp_path, inp, arrays={'x.npy': x})
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    rc = res['rate_capability']
    assert rc['c_rate'] == rates[::-1]  # reported in input order
    order = np.argsort(rc['c_rate'])
    cap = np.array(rc['capacity'])[order]
    assert np.all(np.diff(cap) < 0), cap  # higher C-rate never delivers more
    theoretical = res['theoretical_capacity_mAh_per_cm3'] / 4.7  # mAh/g of the x = 0.05 -> 0.99 window
    assert abs(theoretical - 96485.33212 * 4.9e4 * 0.94 / 3.6e6 / 4.7) < 1e-9 * theoretical
    assert 0.9 * theoretical < cap[0] < theoretical
    for k, run in enumerate(res['runs']):
        assert run['termination'] == 'cutoff_voltage'
        v = z[f'rate{k}_voltage']
        assert v[0] > 3.0 and np.all(v[:-1] > 3.0)
        assert run['mass_balance_error'] < 1e-8
    assert os.path.exists(tmp_path / 'particle_rate0.xdmf')
    assert res['wall_time'] < 30.0  # ten C-rates: seconds, not minutes
    print(
        f'\nrate capability (mAh/g): {dict(zip(np.array(rc["c_rate"])[order], np.round(cap, 1)))}; '
        f'solve {res["wall_time"]:.1f} s, wall {wall:.1f} s'
    )


def test_copied_folder_runs_as_calcjob_would(tmp_path):
    for f in os.listdir(CONTINUUM):  # what a CalcJob copies: the flat folder of scripts
        if f.endswith('.py') and f != '__init__.py':
            shutil.copy(os.path.join(CONTINUUM, f), tmp_path / f)
    inp = base_input(c_rates=[2.0], mesh={'n_cells': 20})
    proc, res, z = run_solver(tmp_path, inp, script=str(tmp_path / 'solver.py'))
    assert proc.returncode == 0, proc.stderr
    assert res['status'] == 'ok' and res['model'] == 'particle_diffusion'
    assert 'rate0_voltage' in z


@pytest.mark.parametrize(
    'change, words',
    [
        ({'diffusivity': {'x': [0.0, 0.5, 1.0], 'D': [1e-14, 0.0, 1e-14]}}, ['non-positive', 'diffusivity']),
        ({'diffusivity': {'x': [0.0, 0.5, 1.0], 'D': [1e-14, -1e-15, 1e-14]}}, ['non-positive', 'diffusivity']),
        ({'ocv': {'x': [0.1, 0.8], 'V': [4.0, 3.5]}}, ['OCV', 'covers']),
        ({'c_rates': [1.0, 0.0, 2.0]}, ['c_rates', 'zero']),
        ({'c_rates': []}, ['c_rates']),
        ({'particle': {'radius': -1.0, 'c_max': 1.0}}, ['radius', '> 0']),
        ({'cutoff_voltage': 4.5}, ['cutoff_voltage']),
        ({'model': 'no_such_model'}, ['unknown', 'model']),
    ],
)
def test_bad_input_refused_before_solve(tmp_path, change, words):
    inp = base_input()
    inp.update(change)
    proc, res, z = run_solver(tmp_path, inp)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert res['status'] == 'error' and res['exit_code'] == 2 and res['error_type'] == 'input'
    for w in words:
        assert w in res['message'], res['message']
        assert w in proc.stderr
    assert z is None  # nothing solved, no arrays written
    assert 'Traceback' not in proc.stderr
