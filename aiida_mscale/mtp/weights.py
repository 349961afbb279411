"""Fit weights of local active learning: which configurations carry them, and which optimizer steps ignore them.

Pure numpy (no motep, no AiiDA import), so that input validation can use it before anything runs. The loss that
uses the weights is :mod:`aiida_mscale.mtp.weighted_loss`.
"""

from __future__ import annotations

import numpy as np

__all__ = ['LINEAR_STEPS', 'check_steps', 'has_weights', 'linear_steps']

#: motep optimizers that solve a linear least-squares problem built from the images, ignoring any weight.
LINEAR_STEPS = ('LLS', 'Level2MTP', 'NI')


def has_weights(energy_weights, stress_weights, force_weights) -> bool:
    """True if any weight differs from 1 (then the weighted loss is needed)."""
    return bool(
        np.any(np.asarray(energy_weights, dtype=float) != 1.0)
        or np.any(np.asarray(stress_weights, dtype=float) != 1.0)
        or any(np.any(np.asarray(w, dtype=float) != 1.0) for w in force_weights)
    )


def check_steps(steps) -> None:
    """Refuse optimizer steps that would ignore per-atom or per-configuration weights.

    :raises ValueError: naming the linear steps found.
    """
    linear = linear_steps(steps)
    if linear:
        named = ', '.join(f'step {k} ({method})' for k, method in linear)
        raise ValueError(
            f"the training set carries force/energy/stress weights (cut neighbourhoods) but {named} solves motep's "
            f'linear least-squares problem, which ignores weights: use gradient steps only (e.g. minimize/BFGS)'
        )


def linear_steps(steps) -> list[tuple[int, str]]:
    """(index, method) of the steps of ``steps`` that are motep linear solves (:data:`LINEAR_STEPS`)."""
    return [(k, step.get('method')) for k, step in enumerate(steps or []) if step.get('method') in LINEAR_STEPS]
