"""OCV(y) from hull steps (aiida_mscale.analysis.ocv) against the ideal-solution formula worked by hand."""

import numpy as np
import pytest

from aiida_mscale.analysis.ocv import lattice_gas_ocv, window_fraction

KT_300 = 8.617333262e-5 * 300.0  # eV (CODATA 2018 k_B), written out on purpose


def test_one_step_is_the_nernst_curve_around_the_step_voltage():
    result = lattice_gas_ocv([{'x1': 0.5, 'x2': 1.0, 'voltage': 3.2, 'voltage_error': 0.04}], 300.0, points=201)
    y, v = result['y'], result['V']
    assert result['x_min'] == 0.5 and result['x_max'] == 1.0
    assert np.allclose(result['x'], 0.5 + 0.5 * y)
    assert v[100] == pytest.approx(3.2, abs=1e-12)  # y = 1/2: ln 1 = 0
    assert np.allclose(v + v[::-1], 6.4, atol=1e-12)  # odd around y = 1/2
    slope = np.gradient(v, y)[100]
    assert slope == pytest.approx(-4 * KT_300, rel=1e-3)  # d/dy [-kT ln(y/(1-y))] = -kT/(y(1-y)) = -4 kT at 1/2
    assert v[0] == pytest.approx(3.2 - KT_300 * np.log(0.005 / 0.995), rel=1e-9)
    assert np.allclose(result['V_sigma'], 0.04)
    assert np.all(np.diff(v) < 0)


def test_two_steps_keep_their_plateaus_and_errors():
    steps = [
        {'x1': 0.75, 'x2': 1.0, 'voltage': 2.9, 'voltage_error': 0.02},  # any order
        {'x1': 0.0, 'x2': 0.75, 'voltage': 3.4, 'voltage_error': 0.05},
    ]
    result = lattice_gas_ocv(steps, 300.0, points=5, margin=0.1)
    y = np.linspace(0.1, 0.9, 5)
    expected_step = np.where(y < 0.75, 3.4, 2.9)
    assert np.allclose(result['V'], expected_step - KT_300 * np.log(y / (1 - y)), atol=1e-12)
    assert np.allclose(result['V_sigma'], np.where(y < 0.75, 0.05, 0.02))


@pytest.mark.parametrize(
    ('steps', 'message'),
    [
        ([], 'no voltage steps'),
        ([{'x1': 0.0, 'x2': 0.4, 'voltage': 3.0}, {'x1': 0.5, 'x2': 1.0, 'voltage': 2.0}], 'do not join'),
        ([{'x1': 0.5, 'x2': 0.5, 'voltage': 3.0}], 'x2 > x1'),
        ([{'x1': 0.0, 'x2': 1.0, 'voltage': float('nan')}], 'non-finite'),
    ],
)
def test_bad_steps_are_refused(steps, message):
    with pytest.raises(ValueError, match=message):
        lattice_gas_ocv(steps, 300.0)


def test_bad_temperature_and_window():
    with pytest.raises(ValueError, match='temperature'):
        lattice_gas_ocv([{'x1': 0.0, 'x2': 1.0, 'voltage': 3.0}], 0.0)
    with pytest.raises(ValueError, match='x_max > x_min'):
        window_fraction([0.5], 0.7, 0.7)
    assert np.allclose(window_fraction([0.5, 0.625, 0.75], 0.5, 0.75), [0.0, 0.5, 1.0])
