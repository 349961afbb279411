"""Diffusivity with calibrated uncertainty on synthetic walks; Haven ratio; Nernst-Einstein."""

import numpy as np
import pytest

from aiida_mscale.analysis.diffusion import (
    collective_diffusivity,
    haven_ratio,
    nernst_einstein_conductivity,
    number_density,
    tracer_diffusivity,
)

D_AXES = (0.05, 0.1, 0.2)  # A^2/ps, anisotropic
D_TRUE = np.mean(D_AXES)


def test_recovers_anisotropic_D_from_wrapped_triclinic_walk(rng, random_walk, triclinic_cell):
    x, w, t = random_walk(rng, 2000, 60, 0.1, D_AXES)
    r = tracer_diffusivity(w, t, cells=triclinic_cell, n_blocks=10)
    # wrapped + cell gives exactly what the true unwrapped trajectory gives
    r_true = tracer_diffusivity(x, t, n_blocks=10)
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
    # 2-D analysis of the xy plane: D = (Dx + Dy) / 2
    r2 = tracer_diffusivity(x, t, n_blocks=10, dim=2)
    assert r2.D_A2_ps == pytest.approx(r.D_components_A2_ps[:2].mean(), rel=1e-10)


def test_uncertainty_is_calibrated(rng, random_walk, triclinic_cell):
    # 150 independent walks: the 1-sigma interval must contain the truth ~68% of the time
    z_total, z_x, d_all = [], [], []
    for _ in range(150):
        _, w, t = random_walk(rng, 1000, 40, 0.1, D_AXES)
        r = tracer_diffusivity(w, t, cells=triclinic_cell)
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
    r = tracer_diffusivity(w, t, cells=triclinic_cell)
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
        tr = tracer_diffusivity(x, t, n_blocks=10)
        co = collective_diffusivity(x, t, n_blocks=10)
        h, herr = haven_ratio(tr, co)
        z.append((h - 1.0) / herr)
        h_all.append(h)
    z = np.asarray(z)
    assert 0.5 <= np.mean(np.abs(z) < 1) <= 0.85
    assert np.mean(np.abs(z) < 2) >= 0.8
    assert abs(np.median(h_all) - 1.0) < 0.1
    # fully correlated motion (all ions move together): D_sigma = N D*, H_R = 1/N exactly
    y = np.repeat(x[:, :1], 5, axis=1)
    h2, _ = haven_ratio(tracer_diffusivity(y, t), collective_diffusivity(y, t))
    assert abs(h2 - 0.2) < 1e-10
    # charge-weighted collective MSD with charge 2: D_sigma scales by 4 for correlated motion
    c2 = collective_diffusivity(y, t, charges=np.full(5, 2.0))
    assert c2.D_A2_ps == pytest.approx(4 * collective_diffusivity(y, t).D_A2_ps, rel=1e-10)


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


def test_bad_inputs(rng, random_walk):
    x, _, t = random_walk(rng, 40, 3, 0.1, (0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match='too few frames for the fit window'):
        tracer_diffusivity(x, t, fit_window=(0.1, 2.0))  # block spans only 0.7 ps
    with pytest.raises(ValueError, match='too few frames for the fit window'):
        tracer_diffusivity(x, t, fit_window=(0.1, 0.25))  # 2 points
    with pytest.raises(ValueError, match='too few frames'):
        tracer_diffusivity(x[:12], t[:12])
    with pytest.raises(ValueError, match='non-monotonic'):
        tracer_diffusivity(x, t[::-1])
    with pytest.raises(ValueError, match='not uniform'):
        tracer_diffusivity(x, t**1.1)
    with pytest.raises(ValueError, match='absent'):
        tracer_diffusivity(x, t, species=['Na', 'C', 'C'], target='Li')
    with pytest.raises(ValueError, match='n_blocks'):
        tracer_diffusivity(x, t, n_blocks=1)
    with pytest.raises(ValueError, match='temperature'):
        nernst_einstein_conductivity(1e-6, 1e22, 1, -1.0)
