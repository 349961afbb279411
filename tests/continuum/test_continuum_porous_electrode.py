"""porous_electrode (P2D half cell): single-particle limit, electrolyte losses, salt/Li balances."""

import json
import os
import subprocess

import numpy as np
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
SOLVER = os.path.join(REPO, 'aiida_mscale', 'continuum', 'solver.py')
FENICS_PYTHON = os.environ.get('MSCALE_FENICS_PYTHON', '/usr/bin/python3')


def run_solver(path, inp, expect=0):
    path.mkdir(parents=True, exist_ok=True)
    (path / 'input.json').write_text(json.dumps(inp))
    env = dict(os.environ, OMP_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1', PYTHONPATH='')
    proc = subprocess.run(
        ['nice', '-n', '10', FENICS_PYTHON, SOLVER, str(path / 'input.json')],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == expect, proc.stderr
    res = json.loads((path / 'results.json').read_text())
    z = dict(np.load(path / 'results.npz')) if (path / 'results.npz').exists() else None
    return res, z


def tables():
    x = np.linspace(0.0, 1.0, 41)
    ocv = (
        4.3
        - 0.9 * x
        - 0.024 * np.log(np.clip(x, 1e-4, None) / np.clip(1 - x, 1e-4, None))
        - 0.5 * np.exp(-(1 - x) / 0.03)
    )
    return x, ocv, 1e-14 * (1 - 0.9 * x)


def common_input():
    x, ocv, d = tables()
    return {
        'particle': {'radius': 5e-6, 'c_max': 4.9e4, 'density': 4.7},
        'diffusivity': {'x': x.tolist(), 'D': d.tolist()},
        'ocv': {'x': x.tolist(), 'V': ocv.tolist()},
        'x_initial': 0.05,
        'x_final': 0.99,
        'c_rates': [1.0, 5.0],
        'cutoff_voltage': 3.0,
        'kinetics': {'i0': 2.0, 'alpha': 0.5},
    }


def test_single_particle_limit_and_electrolyte_losses(tmp_path):
    spm, zs = run_solver(tmp_path / 'spm', dict(common_input(), model='particle_diffusion'))
    fast_inp = dict(
        common_input(),
        model='porous_electrode',
        electrolyte={'D': 1e-7, 'kappa': 1e3},
        electrode={'sigma': 1e3},
        mesh={'n_x': 8, 'n_r': 20},
    )
    fast, zf = run_solver(tmp_path / 'fast', fast_inp)
    real, zr = run_solver(
        tmp_path / 'real', dict(common_input(), model='porous_electrode', mesh={'n_x': 16, 'n_r': 20})
    )
    cap_spm = np.array(spm['rate_capability']['capacity'])
    cap_fast = np.array(fast['rate_capability']['capacity'])
    cap_real = np.array(real['rate_capability']['capacity'])
    # fast electrolyte and electronic transport: every particle sees the same current -> SPM
    assert np.all(np.abs(cap_fast / cap_spm - 1) < 0.005), (cap_fast, cap_spm)
    for k in range(2):  # voltage curves against delivered fraction agree to a few mV
        v_spm = np.interp(0.3, zs[f'rate{k}_soc'], zs[f'rate{k}_voltage'])
        v_p2d = np.interp(0.3, zf[f'rate{k}_soc'], zf[f'rate{k}_voltage'])
        assert abs(v_spm - v_p2d) < 0.005, (k, v_spm, v_p2d)
    # finite electrolyte transport only costs capacity, more at the higher rate; monotone in rate
    assert np.all(cap_real < cap_fast) and (1 - cap_real[1] / cap_fast[1]) > (1 - cap_real[0] / cap_fast[0])
    assert cap_real[1] < cap_real[0]
    for res in (fast, real):
        for run in res['runs']:
            assert run['termination'] == 'cutoff_voltage'
            assert run['salt_balance_error'] < 1e-10 and run['lithium_balance_error'] < 1e-10
    # salt piles up at the separator and depletes toward the current collector during discharge
    ce = zr['rate1_c_e'][-1]
    assert ce.min() > 0 and np.all(np.diff(ce) < 0) and ce[0] > 1000.0 > ce[-1]
    print(
        f'\nP2D: SPM {np.round(cap_spm, 2)}, P2D fast-transport {np.round(cap_fast, 2)}, P2D 1 M electrolyte '
        f'{np.round(cap_real, 2)} mAh/g at C = 1, 5; c_e {ce[0]:.0f} -> {ce[-1]:.0f} mol/m^3 at 5C cut-off; '
        f'wall {real["wall_time"]:.1f} s'
    )


@pytest.mark.parametrize(
    'change, words',
    [
        ({'x_initial': 0.9, 'x_final': 0.1, 'cutoff_voltage': 4.4}, ['lithiation']),
        ({'electrode': {'porosity': 0.5, 'active_fraction': 0.6}}, ['porosity', '< 1']),
        ({'c_rates': [0.0]}, ['c_rates']),
    ],
)
def test_porous_electrode_refuses_bad_input(tmp_path, change, words):
    inp = dict(common_input(), model='porous_electrode')
    inp.update(change)
    res, z = run_solver(tmp_path, inp, expect=2)
    assert res['status'] == 'error' and z is None
    for w in words:
        assert w in res['message'], res['message']
