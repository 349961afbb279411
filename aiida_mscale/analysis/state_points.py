"""Averages of an MD state point and trends along the guest fraction x: volume, lattice parameters, transformations.

Pure functions (numpy, pymatgen); no AiiDA import.

- :func:`block_average`: mean and standard error of a correlated time series by block averaging (Flyvbjerg and
  Petersen, J. Chem. Phys. 91, 461 (1989)): the series is cut into ``n_blocks`` equal blocks (the remainder at
  the start dropped, i.e. the equilibration end), and the standard error is the standard deviation of the block
  means over sqrt(n_blocks - 1).
- :func:`lattice_parameters`: a, b, c [Angstrom] and alpha, beta, gamma [degree] of a cell.
- :func:`volume_trend`: V(x) and lattice parameters vs x, the relative volume change from x_min to x_max, and
  the detection of a structural transformation along x by two documented tests:

  1. *symmetry of the mean cell*: pymatgen's ``SpacegroupAnalyzer`` on the mean cell with one atom at the origin
     gives the lattice system of the mean box (``symprec`` [Angstrom], default 0.05, and ``angle_tolerance``
     [degree], default 1.0: thermal noise of a block-averaged cell is far below these, a tetragonal or
     rhombohedral distortion of 1 % of a 10 Angstrom cell is above); a change of lattice system between
     neighbouring x is a transformation;
  2. *lattice-parameter discontinuity*: a lattice parameter (a, b, c) that changes between neighbouring x by more
     than ``jump_tolerance`` (relative, default 0.01) *and* by more than 5 combined standard errors.
"""

from __future__ import annotations

import numpy as np

__all__ = ['block_average', 'lattice_parameters', 'volume_trend']

DEFAULT_SYMPREC = 0.05
DEFAULT_ANGLE_TOLERANCE = 1.0
DEFAULT_JUMP_TOLERANCE = 0.01
JUMP_SIGMAS = 5.0


def block_average(series, n_blocks: int = 5) -> tuple[float, float]:
    """(mean, standard error) of ``series`` by block averaging over ``n_blocks`` blocks."""
    values = np.asarray(series, dtype=float)
    if n_blocks < 2:
        raise ValueError(f'block averaging needs at least 2 blocks, got {n_blocks}')
    if len(values) < n_blocks:
        raise ValueError(f'{len(values)} samples cannot make {n_blocks} blocks')
    size = len(values) // n_blocks
    blocks = values[len(values) - size * n_blocks :].reshape(n_blocks, size).mean(axis=1)
    return float(blocks.mean()), float(blocks.std(ddof=1) / np.sqrt(n_blocks))


def lattice_parameters(cell) -> dict:
    """``{'a','b','c'}`` [Angstrom] and ``{'alpha','beta','gamma'}`` [degree] of ``cell`` (rows)."""
    cell = np.asarray(cell, dtype=float)
    lengths = np.linalg.norm(cell, axis=1)

    def angle(i, j):
        return float(np.degrees(np.arccos(np.clip(cell[i] @ cell[j] / (lengths[i] * lengths[j]), -1, 1))))

    return {
        'a': float(lengths[0]),
        'b': float(lengths[1]),
        'c': float(lengths[2]),
        'alpha': angle(1, 2),
        'beta': angle(0, 2),
        'gamma': angle(0, 1),
    }


def lattice_system(cell, symprec: float = DEFAULT_SYMPREC, angle_tolerance: float = DEFAULT_ANGLE_TOLERANCE) -> str:
    """The lattice system of ``cell`` (one atom at the origin), by pymatgen's SpacegroupAnalyzer."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    structure = Structure(Lattice(np.asarray(cell, dtype=float)), ['H'], [[0.0, 0.0, 0.0]])
    return SpacegroupAnalyzer(structure, symprec=symprec, angle_tolerance=angle_tolerance).get_lattice_type()


def _merge_orderings(points: list[dict]) -> list[dict]:
    """One point per x: orderings at the same x averaged (errors combined as the error of the mean)."""
    groups: dict[float, list[dict]] = {}
    for point in points:
        groups.setdefault(round(float(point['x']), 10), []).append(point)
    merged = []
    for x in sorted(groups):
        group = groups[x]
        n = len(group)
        names = ('a', 'b', 'c', 'alpha', 'beta', 'gamma')
        merged.append(
            {
                'x': x,
                'volume': float(np.mean([p['volume'] for p in group])),
                'volume_error': float(np.sqrt(sum(p.get('volume_error', 0.0) ** 2 for p in group)) / n),
                'cell': np.mean([np.asarray(p['cell'], dtype=float) for p in group], axis=0),
                'lattice': {k: float(np.mean([p['lattice'][k] for p in group])) for k in names},
                'lattice_error': {
                    k: float(np.sqrt(sum(p['lattice_error'].get(k, 0.0) ** 2 for p in group)) / n) for k in names
                },
                'orderings': n,
            }
        )
    return merged


def volume_trend(
    points: list[dict],
    symprec: float = DEFAULT_SYMPREC,
    angle_tolerance: float = DEFAULT_ANGLE_TOLERANCE,
    jump_tolerance: float = DEFAULT_JUMP_TOLERANCE,
) -> dict:
    """Volume and lattice parameters vs x, relative volume change and transformations (module docstring).

    :param points: one dict per state point: ``x``, ``volume`` and ``volume_error`` [Angstrom^3], ``cell`` (3x3
        mean cell), ``lattice`` ({a, b, c, alpha, beta, gamma}) and ``lattice_error`` (same keys, standard errors).
        Points at the same x (orderings) are averaged first.
    """
    ordered = _merge_orderings(points)
    if len(ordered) < 2:
        raise ValueError(f'a trend along x needs state points at two or more x, got {[p["x"] for p in points]}')
    xs = [p['x'] for p in ordered]
    systems = [lattice_system(p['cell'], symprec, angle_tolerance) for p in ordered]
    transformations = []
    for k in range(len(ordered) - 1):
        p, q = ordered[k], ordered[k + 1]
        reasons = []
        if systems[k] != systems[k + 1]:
            reasons.append(f'lattice system {systems[k]} -> {systems[k + 1]}')
        for name in ('a', 'b', 'c'):
            change = q['lattice'][name] - p['lattice'][name]
            error = np.hypot(p['lattice_error'].get(name, 0.0), q['lattice_error'].get(name, 0.0))
            if abs(change) > jump_tolerance * p['lattice'][name] and abs(change) > JUMP_SIGMAS * error:
                reasons.append(f'{name} jumps by {change / p["lattice"][name]:+.2%}')
        if reasons:
            transformations.append({'x_low': p['x'], 'x_high': q['x'], 'reasons': reasons})
    volumes = np.array([p['volume'] for p in ordered])
    errors = np.array([p.get('volume_error', 0.0) for p in ordered])
    change = (volumes[-1] - volumes[0]) / volumes[0]
    change_error = float(np.hypot(errors[-1] / volumes[0], volumes[-1] * errors[0] / volumes[0] ** 2))
    return {
        'x': xs,
        'volume': volumes.tolist(),
        'volume_error': errors.tolist(),
        'lattice': {name: [p['lattice'][name] for p in ordered] for name in ('a', 'b', 'c', 'alpha', 'beta', 'gamma')},
        'lattice_error': {
            name: [p['lattice_error'].get(name, 0.0) for p in ordered]
            for name in ('a', 'b', 'c', 'alpha', 'beta', 'gamma')
        },
        'orderings': [p['orderings'] for p in ordered],
        'lattice_system': systems,
        'relative_volume_change': float(change),
        'relative_volume_change_error': change_error,
        'transformations': transformations,
        'settings': {'symprec': symprec, 'angle_tolerance': angle_tolerance, 'jump_tolerance': jump_tolerance},
    }
