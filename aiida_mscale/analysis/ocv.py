"""Open-circuit voltage OCV(y) for a continuum model from the 0 K voltage steps of a convex hull.

Pure functions (numpy); no AiiDA import.

The convex hull of formation energies along the guest fraction x gives a *step* profile: between neighbouring hull
vertices x1 < x2 the two phases coexist at 0 K and the voltage is constant (Aydinol et al., Phys. Rev. B 56, 1354
(1997); :mod:`aiida_mscale.analysis.voltage`). A continuum electrode model needs OCV as a smooth, strictly falling
function of its state of charge. Here the configurational entropy of an ideal lattice gas of guests is added to the
0 K steps (the Nernst term of a solid solution; e.g. J. Newman, K. E. Thomas-Alyea, *Electrochemical Systems*, 3rd
ed. (2004), and the lattice-gas model of W. R. McKinnon, R. R. Haering, Mod. Aspects Electrochem. 15, 235 (1983))::

    OCV(y) = V_step(x(y)) - (k_B T / e) ln(y / (1 - y)),        x(y) = x_min + y (x_max - x_min)

with ``y`` the electrode's state of charge in the window [x_min, x_max] of the hull (y = 0 at the lowest guest
fraction computed, 1 at the highest). What this is and is not:

- with one hull step (a solid solution between the end members), it is the ideal-solution OCV around the average
  voltage: exact for non-interacting guests, and the usual first model of an intercalation electrode;
- with several steps, each plateau keeps its 0 K voltage and the entropy term rounds it; real two-phase plateaus are
  flatter than this (the term overestimates their slope): a phase-separating material belongs in the phase-field
  model, with a free energy of its own;
- the band: ``V_sigma(y)`` is the 1-sigma error of the step that contains x(y) (the hull's energy errors), the
  entropy term being exact for the model.

Units: voltages in V, temperature in K, fractions dimensionless.
"""

from __future__ import annotations

import numpy as np
from scipy.constants import Boltzmann, elementary_charge

__all__ = ['lattice_gas_ocv', 'window_fraction']

#: k_B / e [V/K]
KB_OVER_E = Boltzmann / elementary_charge


def window_fraction(x, x_min: float, x_max: float) -> np.ndarray:
    """State of charge ``y = (x - x_min) / (x_max - x_min)`` of guest fractions ``x`` in the window [x_min, x_max].

    :raises ValueError: for an empty window (x_max <= x_min).
    """
    if not x_max > x_min:
        raise ValueError(f'the window needs x_max > x_min, got [{x_min}, {x_max}]')
    return (np.asarray(x, dtype=float) - x_min) / (x_max - x_min)


def lattice_gas_ocv(steps: list[dict], temperature: float, points: int = 101, margin: float = 0.005) -> dict:
    """OCV(y) with its 1-sigma band from the hull steps (see the module docstring).

    :param steps: the hull's voltage steps, each ``{'x1', 'x2', 'voltage' [V], 'voltage_error' [V]}`` with x1 < x2,
        neighbouring and covering [x_min, x_max] (as :func:`aiida_mscale.analysis.voltage.hull_and_voltage` gives).
    :param temperature: temperature of the entropy term [K] (> 0).
    :param points: points of the table on y in [margin, 1 - margin].
    :param margin: distance of the table's ends from y = 0 and 1, where the entropy term diverges.
    :returns: ``{'y', 'x', 'V', 'V_sigma', 'x_min', 'x_max'}`` (arrays over the table; V, V_sigma in V).
    :raises ValueError: for no steps, gaps or overlaps between steps, non-finite voltages or bad settings.
    """
    if not steps:
        raise ValueError('no voltage steps: the hull needs at least two vertices')
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f'temperature must be positive [K], got {temperature}')
    if not (0 < margin < 0.5) or points < 2:
        raise ValueError(f'need 0 < margin < 0.5 and points >= 2, got margin={margin}, points={points}')
    ordered = sorted(steps, key=lambda s: s['x1'])
    for step in ordered:
        if not step['x2'] > step['x1']:
            raise ValueError(f'a step needs x2 > x1, got {step}')
        if not (np.isfinite(step['voltage']) and np.isfinite(step.get('voltage_error', 0.0))):
            raise ValueError(f'a step has a non-finite voltage or error: {step}')
    for left, right in zip(ordered, ordered[1:]):
        if not np.isclose(left['x2'], right['x1'], atol=1e-9):
            raise ValueError(f'the steps do not join: x2 = {left["x2"]} then x1 = {right["x1"]}')
    x_min, x_max = float(ordered[0]['x1']), float(ordered[-1]['x2'])
    y = np.linspace(margin, 1.0 - margin, points)
    x = x_min + y * (x_max - x_min)
    edges = np.array([s['x2'] for s in ordered[:-1]])
    index = np.searchsorted(edges, x, side='right')  # the step containing x (a vertex belongs to the richer step)
    v_step = np.array([ordered[i]['voltage'] for i in index], dtype=float)
    sigma = np.array([ordered[i].get('voltage_error', 0.0) for i in index], dtype=float)
    voltage = v_step - KB_OVER_E * temperature * np.log(y / (1.0 - y))
    return {'y': y, 'x': x, 'V': voltage, 'V_sigma': sigma, 'x_min': x_min, 'x_max': x_max}
