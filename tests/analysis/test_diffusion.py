"""Diffusivity with calibrated uncertainty on synthetic walks (GLS and blocks); MSD covariance against brute
force and Monte Carlo; drift correction; Haven ratio; Nernst-Einstein."""

import numpy as np
import pytest

from aiida_mscale.analysis.diffusion import (
    check_fit_window,
    collective_diffusivity,
    haven_ratio,
    nernst_einstein_conductivity,
    number_density,
    tracer_diffusivity,
)
from aiida_mscale.analysis.msd_gls import msd_covariance, msd_covariance_geometry

D_AXES = (0.05, 0.1, 0.2)  # A^2/ps, anisotropic
D_TRUE = np.mean(D_AXES)


@pytest.mark.parametrize('method', ['block', 'gls'])
def test_recovers_anisotropic_D_from_wrapped_triclinic_walk(rng, random_walk, triclinic_cell, method):
    x, w, t = random_walk(rng, 2000, 60, 0.1, D_AXES)
    r = tracer_diffusivity(w, t, cells=triclinic_cell, n_blocks=10, method=method)
    assert r.method == method
    # wrapped + cell gives exactly what the true unwrapped trajectory gives
    r_true = tracer_diffusivity(x, t, n_blocks=10, method=method)
    assert r.D_A2_ps == pytest.approx(r_true.D_A2_ps, rel=1e-10)
    assert r.D_A2_ps_err == pytest.approx(r_true.D_A2_ps_err, rel=1e-8)
    # a single draw: within 5 sigma (t with 9 dof: fails with probability ~0.1%)
    assert abs(r.D_A2_ps - D_TRUE) < 5 * r.D_A2_ps_err
    assert r.D_A2_ps_err / r.D_A2_ps < 0.2  # ~6% expected for 10 blocks of 200 frames x 60 walkers
    assert abs(r.D_full_A2_ps - r.D_A2_ps) < 2 * r.D_A2_ps_err
    np.testing.assert_allclose(r.D_cm2_s, r.D_A2_ps * 1e-4)
    np.testing.assert_allclose(r.D_cm2_s_err, r.D_A2_ps_err * 1e-4)
    for k in range(3):
        assert abs(r.D_components_A2_ps[k] - D_AXES[k]) < 5 * r.D_components_A2_ps_err[k]
    # 2-D analysis of the xy plane: D = (Dx + Dy) / 2 (blocks: exactly the mean of the components; GLS: the
    # components and the plane are separate fits, equal within their errors)
    r2 = tracer_diffusivity(x, t, n_blocks=10, dim=2, method=method)
    if method == 'block':
        assert r2.D_A2_ps == pytest.approx(r.D_components_A2_ps[:2].mean(), rel=1e-10)
    else:
        assert abs(r2.D_A2_ps - r.D_components_A2_ps[:2].mean()) < 0.5 * r2.D_A2_ps_err
        assert abs(r2.D_A2_ps - np.mean(D_AXES[:2])) < 5 * r2.D_A2_ps_err


def test_block_uncertainty_is_calibrated(rng, random_walk, triclinic_cell):
    # 150 independent walks: the 1-sigma interval must contain the truth ~68% of the time
    z_total, z_x, d_all = [], [], []
    for _ in range(150):
        _, w, t = random_walk(rng, 1000, 40, 0.1, D_AXES)
        r = tracer_diffusivity(w, t, cells=triclinic_cell, method='block')
        d_all.append(r.D_A2_ps)
        z_total.append((r.D_A2_ps - D_TRUE) / r.D_A2_ps_err)
        z_x.append((r.D_components_A2_ps[0] - D_AXES[0]) / r.D_components_A2_ps_err[0])
    cover = np.mean(np.abs(z_total) < 1)
    cover_x = np.mean(np.abs(z_x) < 1)
    assert 0.55 <= cover <= 0.82, cover
    assert 0.55 <= cover_x <= 0.82, cover_x
    # the estimate is unbiased (tested on D itself: z is skewed because D and its block error
    # are correlated), and the reported error matches the actual scatter of D on average
    assert abs(np.mean(d_all) - D_TRUE) < 3.5 * np.std(d_all) / np.sqrt(len(d_all))


def test_naive_ols_error_would_be_overconfident(rng, random_walk, triclinic_cell):
    # guard: the correlated-point problem is real; OLS residual error is much smaller than scatter
    _, w, t = random_walk(rng, 1000, 40, 0.1, D_AXES)
    r = tracer_diffusivity(w, t, cells=triclinic_cell, method='block')
    m = (r.lag_time >= r.fit_window[0]) & (r.lag_time <= r.fit_window[1])
    A = np.vstack([r.lag_time[m], np.ones(m.sum())]).T
    res = r.msd[m] - A @ np.linalg.lstsq(A, r.msd[m], rcond=None)[0]
    ols_err = np.sqrt(res @ res / (m.sum() - 2) * np.linalg.inv(A.T @ A)[0, 0]) / 6
    assert ols_err < 0.5 * r.D_A2_ps_err


def test_haven_ratio_and_collective(rng, random_walk):
    # independent walkers: D_sigma = D*, so H_R = 1; check the error bar over 100 draws
    z, h_all = [], []
    for _ in range(100):
        x, _, t = random_walk(rng, 2000, 30, 0.1, (0.2, 0.2, 0.2))
        tr = tracer_diffusivity(x, t, n_blocks=10, method='block')
        co = collective_diffusivity(x, t, n_blocks=10, method='block')
        h, herr = haven_ratio(tr, co)
        z.append((h - 1.0) / herr)
        h_all.append(h)
    z = np.asarray(z)
    assert 0.5 <= np.mean(np.abs(z) < 1) <= 0.85
    assert np.mean(np.abs(z) < 2) >= 0.8
    assert abs(np.median(h_all) - 1.0) < 0.1
    # fully correlated motion (all ions move together): D_sigma = N D*, H_R = 1/N exactly
    y = np.repeat(x[:, :1], 5, axis=1)
    for method in ('block', 'gls'):
        h2, _ = haven_ratio(tracer_diffusivity(y, t, method=method), collective_diffusivity(y, t, method=method))
        assert abs(h2 - 0.2) < 1e-10
        # charge-weighted collective MSD with charge 2: D_sigma scales by 4 for correlated motion
        c2 = collective_diffusivity(y, t, charges=np.full(5, 2.0), method=method)
        assert c2.D_A2_ps == pytest.approx(4 * collective_diffusivity(y, t, method=method).D_A2_ps, rel=1e-10)


def test_nernst_einstein_hand_value():
    # n = 1e22 cm^-3, z = 1, D = 1e-6 cm^2/s, T = 300 K:
    # sigma = 1e22 * (1.602176634e-19)^2 * 1e-6 / (1.380649e-23 * 300) = 6.1975e-2 S/cm
    s, serr = nernst_einstein_conductivity(1e-6, 1e22, 1, 300.0, D_cm2_s_err=1e-7)
    expected = 1e22 * 1.602176634e-19**2 * 1e-6 / (1.380649e-23 * 300.0)
    assert s == pytest.approx(expected, rel=1e-12)
    assert s == pytest.approx(6.1975e-2, rel=1e-4)
    assert serr == pytest.approx(0.1 * s)
    # divalent ions and a Haven ratio of 0.5: x4 and x2
    s2, _ = nernst_einstein_conductivity(1e-6, 1e22, 2, 300.0, haven_ratio=0.5)
    assert s2 == pytest.approx(8 * s)
    assert number_density(10, 1000.0) == pytest.approx(1e22)


def _rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def test_gls_uncertainty_is_calibrated_on_anisotropic_triclinic_walks(rng, triclinic_cell, wrap):
    """200 walks whose diffusion tensor (eigenvalues D_AXES) is rotated off the Cartesian axes, wrapped into a
    triclinic cell: the GLS 1-sigma interval covers the true D = tr(D)/3 in 60-76 % of the walks (68 % expected;
    binomial 1-sigma 3.3 %), and the errors match the actual scatter."""
    n_walks, n_frames, n_atoms, dt = 200, 400, 16, 0.1
    rot = _rotation(rng)
    steps = rng.normal(size=(n_walks, n_frames - 1, n_atoms, 3)) * np.sqrt(2 * np.asarray(D_AXES) * dt)
    steps = steps @ rot.T  # D tensor = R diag(D_AXES) R^T
    start = rng.uniform(size=(n_walks, 1, n_atoms, 3)) @ triclinic_cell
    x = np.concatenate([start, steps], axis=1).cumsum(axis=1)
    w = wrap(x, triclinic_cell)
    t = np.arange(n_frames) * dt
    d, err = np.empty(n_walks), np.empty(n_walks)
    for k in range(n_walks):
        r = tracer_diffusivity(w[k], t, cells=triclinic_cell)
        d[k], err[k] = r.D_A2_ps, r.D_A2_ps_err
    z = (d - D_TRUE) / err
    cover = np.mean(np.abs(z) < 1)
    print(f'\nGLS coverage {cover:.3f}, median sigma {np.median(err):.5f}, scatter of D {np.std(d):.5f}')
    assert 0.60 <= cover <= 0.76, cover
    assert abs(np.mean(d) - D_TRUE) < 3 * np.std(d) / np.sqrt(n_walks)  # unbiased
    assert 0.8 < np.std(d) / np.median(err) < 1.25  # the reported error is the actual scatter


def test_gls_is_narrower_than_blocks_at_the_same_calibration(rng, random_walk):
    """Same walks, same fit window: the GLS error is the smaller one, and both estimates agree (the block
    estimator is kept as a check)."""
    ratio, z = [], []
    for _ in range(20):
        x, _, t = random_walk(rng, 1000, 20, 0.1, D_AXES)
        g = tracer_diffusivity(x, t, fit_window=(2.0, 10.0))
        b = tracer_diffusivity(x, t, fit_window=(2.0, 10.0), method='block')
        ratio.append(b.D_A2_ps_err / g.D_A2_ps_err)
        z.append((g.D_A2_ps - b.D_A2_ps) / np.hypot(g.D_A2_ps_err, b.D_A2_ps_err))
    print(f'\nblock sigma / GLS sigma: median {np.median(ratio):.2f}')
    assert np.median(ratio) > 1.5
    assert np.all(np.abs(z) < 4)


def test_msd_covariance_geometry_equals_brute_force():
    # direct quadruple sum over time origins of the shared steps o and the noise pattern delta (module docstring)
    n = 9
    lags = np.arange(1, n)
    g_ss, g_sa, g_aa, n_orig = msd_covariance_geometry(lags, n)
    ref = np.zeros((3, n - 1, n - 1))
    for i, m in enumerate(lags.tolist()):
        for j, mp in enumerate(lags.tolist()):
            for t in range(n - m):
                for tp in range(n - mp):
                    o = max(0, min(t + m, tp + mp) - max(t, tp))
                    d = int(t + m == tp + mp) + int(t == tp) - int(t + m == tp) - int(t == tp + mp)
                    ref[:, i, j] += (o * o, o * d, d * d)
    np.testing.assert_array_equal(np.stack([g_ss, g_sa, g_aa]), ref)
    np.testing.assert_array_equal(n_orig, n - lags)


def test_msd_covariance_matches_monte_carlo(rng):
    """1-D random walk (step variance s2) plus position noise (variance a2): analytic covariance of the time-origin
    averaged MSD across lags against the empirical covariance of 40000 independent series."""
    n, s2, a2, n_rep = 24, 0.3, 0.2, 40000
    lags = np.array([1, 2, 5, 9, 16])
    walk = np.cumsum(rng.normal(scale=np.sqrt(s2), size=(n_rep, n)), axis=1)
    x = walk + rng.normal(scale=np.sqrt(a2), size=(n_rep, n))
    msd = np.stack([np.mean((x[:, m:] - x[:, :-m]) ** 2, axis=1) for m in lags], axis=1)
    np.testing.assert_allclose(msd.mean(axis=0), s2 * lags + 2 * a2, rtol=0.02)
    analytic = msd_covariance(msd_covariance_geometry(lags, n), s2, a2, 1)
    empirical = np.cov(msd, rowvar=False)
    scale = np.sqrt(np.outer(np.diag(analytic), np.diag(analytic)))
    np.testing.assert_allclose(empirical / scale, analytic / scale, atol=0.04)
    # averaging over 8 independent series divides the covariance by 8
    np.testing.assert_allclose(msd_covariance(msd_covariance_geometry(lags, n), s2, a2, 8), analytic / 8)


def test_gls_with_vibration_noise(rng):
    """Site hopping plus thermal vibration (a random walk with position noise, Bullerjahn et al.'s model): the
    noise only shifts the intercept; D is recovered and the error stays calibrated."""
    n_walks, n_frames, n_atoms, dt, d_true, vib = 60, 300, 16, 0.1, 0.05, 0.5
    z = []
    for _ in range(n_walks):
        walk = np.cumsum(rng.normal(scale=np.sqrt(2 * d_true * dt), size=(n_frames, n_atoms, 3)), axis=0)
        r = tracer_diffusivity(walk + rng.normal(scale=vib, size=walk.shape), np.arange(n_frames) * dt)
        z.append((r.D_A2_ps - d_true) / r.D_A2_ps_err)
        assert r.intercept == pytest.approx(6 * vib**2, abs=1.0)  # 2 tr(A) = 2 x 3 x vib^2
    assert 0.5 <= np.mean(np.abs(z) < 1) <= 0.85
    assert np.mean(np.abs(z) < 2) >= 0.85


def test_drift_correction_removes_framework_drift(rng, random_walk):
    """Mobile Na walk on a host that drifts as a whole (plus rattling): corrected D equals the walk's D on the
    host frame; uncorrected D carries the drift."""
    n_frames, dt = 600, 0.1
    na, _, t = random_walk(rng, n_frames, 30, dt, (0.05, 0.05, 0.05))
    drift = np.cumsum(rng.normal(scale=np.sqrt(2 * 0.5 * dt), size=(n_frames, 1, 3)), axis=0)  # D_drift 0.5
    host = rng.uniform(0, 10, size=(1, 20, 3)) + rng.normal(scale=0.05, size=(n_frames, 20, 3))
    pos = np.concatenate([host + drift, na + drift], axis=1)
    species = ['O'] * 20 + ['Na'] * 30
    plain = tracer_diffusivity(pos, t, species=species, target='Na')
    fixed = tracer_diffusivity(pos, t, species=species, target='Na', drift_correction=True)
    ref = tracer_diffusivity(na - (host.mean(axis=1, keepdims=True) - host[:1].mean(axis=1, keepdims=True)), t)
    assert fixed.D_A2_ps == pytest.approx(ref.D_A2_ps, rel=1e-9)
    assert abs(fixed.D_A2_ps - 0.05) < 5 * fixed.D_A2_ps_err
    assert plain.D_A2_ps > 3 * fixed.D_A2_ps
    with pytest.raises(ValueError, match='species must be given for the drift correction'):
        tracer_diffusivity(pos, t, drift_correction=True)
    with pytest.raises(ValueError, match='every atom is of the target species'):
        tracer_diffusivity(pos, t, species=['Na'] * 50, target='Na', drift_correction=True)


@pytest.mark.parametrize('where', ['times', 'positions', 'cells'])
@pytest.mark.parametrize('value', [np.nan, np.inf])
def test_non_finite_input_is_refused(rng, random_walk, triclinic_cell, where, value):
    x, w, t = random_walk(rng, 40, 3, 0.1, (0.1, 0.1, 0.1))
    cells = np.repeat(triclinic_cell[None], 40, axis=0)
    t = t.copy()
    if where == 'times':
        t[7] = value
    elif where == 'positions':
        w[5, 1, 2] = value
    else:
        cells[3, 1, 1] = value
    with pytest.raises(ValueError, match=f'{where} contain'):
        tracer_diffusivity(w, t, cells=cells)


def test_bad_inputs(rng, random_walk):
    x, _, t = random_walk(rng, 40, 3, 0.1, (0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match='too few frames for the fit window'):
        tracer_diffusivity(x, t, fit_window=(0.1, 2.0), method='block')  # block spans only 0.7 ps
    with pytest.raises(ValueError, match='the trajectory spans only 3.9 ps'):
        tracer_diffusivity(x, t, fit_window=(0.1, 4.5))
    assert check_fit_window(t, (0.1, 3.9)) == (0.1, 3.9)
    with pytest.raises(ValueError, match='too few frames for the fit window'):
        tracer_diffusivity(x, t, fit_window=(0.1, 0.25))  # 2 points
    with pytest.raises(ValueError, match='too few frames for the fit window'):
        check_fit_window(t, (0.1, 0.25), method='block')
    with pytest.raises(ValueError, match='too few frames'):
        tracer_diffusivity(x[:12], t[:12], method='block')
    with pytest.raises(ValueError, match='too few frames'):
        tracer_diffusivity(x[:3], t[:3])
    with pytest.raises(ValueError, match='method must be one of'):
        tracer_diffusivity(x, t, method='kinisi')
    with pytest.raises(ValueError, match='non-monotonic'):
        tracer_diffusivity(x, t[::-1])
    with pytest.raises(ValueError, match='not uniform'):
        tracer_diffusivity(x, t**1.1)
    with pytest.raises(ValueError, match='absent'):
        tracer_diffusivity(x, t, species=['Na', 'C', 'C'], target='Li')
    with pytest.raises(ValueError, match='n_blocks'):
        tracer_diffusivity(x, t, n_blocks=1, method='block')
    with pytest.raises(ValueError, match='temperature'):
        nernst_einstein_conductivity(1e-6, 1e22, 1, -1.0)
