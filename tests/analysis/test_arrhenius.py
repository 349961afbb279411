"""Arrhenius / two-regime / VTF fits and the non-Arrhenius verdict on synthetic laws."""

import numpy as np
import pytest

from aiida_mscale.analysis.arrhenius import (
    BOLTZMANN_EV,
    apparent_activation_energy,
    arrhenius_fit,
    compare_models,
    extrapolate,
    two_regime_fit,
    vtf_fit,
)

T = np.linspace(500.0, 1200.0, 8)


def arrhenius_data(rng, Ea=0.3, A=1e-3, rel=0.05):
    D = A * np.exp(-Ea / (BOLTZMANN_EV * T))
    return D * np.exp(rng.normal(scale=rel, size=T.size)), rel * D


def test_arrhenius_exact_without_noise():
    D = 2e-3 * np.exp(-0.45 / (BOLTZMANN_EV * T))
    f = arrhenius_fit(T, D)
    assert f['Ea'] == pytest.approx(0.45, rel=1e-10)
    assert f['prefactor'] == pytest.approx(2e-3, rel=1e-8)
    e = extrapolate(f, 300.0)
    assert e['value'] == pytest.approx(2e-3 * np.exp(-0.45 / (BOLTZMANN_EV * 300)), rel=1e-8)


def test_arrhenius_recovers_Ea_within_uncertainty_and_is_calibrated(rng):
    inside = []
    for i in range(300):
        D, err = arrhenius_data(rng)
        f = arrhenius_fit(T, D, err)
        inside.append(abs(f['Ea'] - 0.3) < f['Ea_err'])
        if i == 0:
            assert abs(f['Ea'] - 0.3) < 3 * f['Ea_err']
            assert abs(np.log(f['prefactor'] / 1e-3)) < 3 * f['ln_prefactor_err']
    assert 0.6 <= np.mean(inside) <= 0.76


def test_single_arrhenius_not_flagged(rng):
    flagged = 0
    for _ in range(30):
        D, err = arrhenius_data(rng)
        r = compare_models(T, D, err)
        flagged += r['verdict'] != 'arrhenius'
    assert flagged <= 3  # AICc with delta=2: rare false alarms


def test_vtf_data_flagged_non_arrhenius(rng):
    for _ in range(10):
        D0 = 1e-3 * np.exp(-800.0 / (T - 250.0))
        D = D0 * np.exp(rng.normal(scale=0.05, size=T.size))
        r = compare_models(T, D, 0.05 * D0)
        assert r['verdict'] == 'non-arrhenius'
        assert r['best_model'] in ('vtf', 'two_regime')
    f = vtf_fit(T, D, 0.05 * D0)
    # T0 is weakly determined and non-Gaussian: check the truth against the profile likelihood
    grid, m2 = f['T0_profile']
    assert np.interp(250.0, grid, m2) < 9.0  # inside the 3-sigma profile interval
    lo, hi = f['T0_interval']
    assert lo <= f['T0'] <= hi
    # exact data: parameters recovered
    g = vtf_fit(T, D0, 0.05 * D0)
    assert g['T0'] == pytest.approx(250.0, rel=1e-4)
    assert g['B'] == pytest.approx(800.0, rel=1e-4)
    assert g['A'] == pytest.approx(1e-3, rel=1e-4)
    # apparent Ea grows on cooling: k_B B T^2/(T-T0)^2
    ea = apparent_activation_energy(f, [600.0, 1000.0])
    assert ea[0] > ea[1]
    assert ea[1] == pytest.approx(BOLTZMANN_EV * f['B'] * 1000**2 / (1000 - f['T0']) ** 2)


def test_two_regime_break_point():
    # exact broken line at 800 K: Ea 0.6 eV below, 0.2 eV above
    xb = 1 / 800.0
    T2 = np.linspace(500, 1200, 12)
    x2 = 1 / T2
    lnD = -8.0 - 0.2 / BOLTZMANN_EV * np.minimum(x2 - xb, 0) - 0.6 / BOLTZMANN_EV * np.maximum(x2 - xb, 0)
    f = two_regime_fit(T2, np.exp(lnD), 0.01 * np.exp(lnD))
    assert f['T_break'] == pytest.approx(800.0, rel=1e-3)
    assert f['Ea_low'] == pytest.approx(0.6, rel=1e-3)
    assert f['Ea_high'] == pytest.approx(0.2, rel=1e-3)
    r = compare_models(T2, np.exp(lnD), 0.01 * np.exp(lnD))
    assert r['verdict'] == 'non-arrhenius' and r['best_model'] == 'two_regime'
    # apparent Ea at the input temperatures and extrapolation along the low-T branch
    np.testing.assert_allclose(r['apparent_Ea'], np.where(T2 < 800, 0.6, 0.2), rtol=1e-3)
    ln300 = -8.0 - 0.6 / BOLTZMANN_EV * (1 / 300.0 - xb)
    assert r['extrapolation']['value'] == pytest.approx(np.exp(ln300), rel=1e-2)
    np.testing.assert_allclose(apparent_activation_energy(f, [600, 1000]), [0.6, 0.2], rtol=1e-3)


def test_extrapolation_band_covers_truth(rng):
    inside = 0
    for _ in range(200):
        D, err = arrhenius_data(rng)
        e = extrapolate(arrhenius_fit(T, D, err), 300.0)
        truth = 1e-3 * np.exp(-0.3 / (BOLTZMANN_EV * 300.0))
        assert e['lower'] < e['value'] < e['upper']
        inside += e['lower'] <= truth <= e['upper']
    assert 0.58 <= inside / 200 <= 0.78


def test_bad_inputs():
    with pytest.raises(ValueError, match='at least 3'):
        arrhenius_fit([300, 400], [1e-6, 1e-5])
    with pytest.raises(ValueError, match='positive'):
        arrhenius_fit([300, 400, 500], [1e-6, -1e-5, 1e-4])
    with pytest.raises(ValueError, match='differ in length'):
        arrhenius_fit([300, 400, 500], [1e-6, 1e-5])
    with pytest.raises(ValueError, match='two-regime fit needs'):
        two_regime_fit([300, 400, 500, 600], [1e-6, 1e-5, 1e-4, 1e-3])
    with pytest.raises(ValueError, match='criterion'):
        compare_models(T, np.exp(-1000 / T), criterion='R2')
