"""``mscale-mtp-select``: MaxVol active set, extrapolation grades and selection of extrapolative configurations.

Runs as the executable of ``MtpSelectCalculation`` (no AiiDA import). Reads ``input.json``::

    {
      "species": ["Li"],                      # type order of the potential
      "potential": "potential.mtp",           # a trained MTP
      "training": "training.cfg",             # configurations the active set is built from (labels unused)
      "candidates": "candidates.cfg",         # configurations to grade and select from
      "layout": "moment+species",             # parameters whose site-energy derivatives span the active set
      "threshold": 1.1,                       # minimal grade to be selected (>= 1)
      "max_count": 10,                        # at most this many selected configurations, or null
      "duplicate_tolerance": 1e-6,            # [Angstrom] two candidates closer than this are one
      "engine": "cext",
      "seed": 42,
      "maxvol": {"algorithm": "maxvol", "init_method": "qr", "threshold": 1e-9, "maxiter": 100000}
    }

and writes

- ``active_set.als``: the active set of the training set in the format ``pair_style mtp ... active_set FILE``
  reads (the (pseudo-)inverse of the K x K MaxVol submatrix; see ``aiida_mscale/lammps/pair_mtp.h``);
- ``grades.npz``: ``max_grades`` (N,) the largest per-atom grade of each candidate, ``neighborhood_grades`` (M,)
  the per-atom grades of all candidates concatenated, ``numbers_of_atoms`` (N,), ``duplicate_of`` (N,) (index of
  the first identical candidate, -1 for none) and ``selected_indices`` (S,) (sorted candidate indices);
- ``selection.json``: the selected indices, ``log|det|`` of the active set before and after the selection,
  the swaps made, and the sizes.

Method (Podryabinkin & Shapeev, Comput. Mater. Sci. 140, 171 (2017); Novikov et al., Mach. Learn.: Sci.
Technol. 2, 025002 (2021), MLIP's ``calc-grade`` and ``select-add`` in neighbourhood mode). Each atomic
neighbourhood i is the row b_i = dV_i/dtheta of derivatives of its site energy with respect to the parameters
of ``layout`` (``moment``: the moment coefficients, i.e. the basis functions B_l; ``moment+species``: and the
species coefficients; ``full``: and the radial coefficients). The active set A is the K x K submatrix of the
training set's rows with maximal |det| (motep's ``Grader`` in neighbourhood mode, MaxVol from a pivoted-QR
start). The grade of a neighbourhood is ``gamma = max_k |(b A^-1)_k|`` (computed as motep does, by
``lstsq(A.T, b.T)``), that of a configuration the largest over its atoms.

Training configurations with per-atom force weights (cells cut around extrapolative atoms by local active learning,
``Feature force_weights`` in ``training.cfg``, :mod:`aiida_mscale.mtp.neighbourhood`): only the rows of atoms with
weight > 0 (the cut's core atoms, whose neighbourhoods are complete) may enter the active set; the surface atoms of
a cut have neighbourhoods truncated by the cut and would claim directions no real environment has. Without such
features every atom's row may enter, as before.

Selection is greedy MaxVol over the candidates' rows: while some eligible row has |c_ij| = |(b_i A^-1)_j| >=
``threshold`` (and > 1), the largest one replaces row j of A, which multiplies |det A| by |c_ij|. Eligible are
the rows of candidates whose grade is >= ``threshold`` and that are not duplicates of an earlier candidate;
once ``max_count`` distinct candidates own rows of A, only rows of those candidates may enter. The selected
configurations are those owning rows of the final A, so their count never exceeds ``max_count``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from aiida_mscale.mtp.script import run_script

#: motep's ``MTPData.optimized`` for each active-set layout (``aiida_mscale.lammps.active_set_layout`` inverts it).
OPTIMIZED = {
    'moment': ['moment_coeffs'],
    'moment+species': ['species_coeffs', 'moment_coeffs'],
    'full': ['species_coeffs', 'moment_coeffs', 'radial_coeffs'],
}

#: ``maxvol`` settings passed to motep's ``Grader`` (its defaults).
MAXVOL_DEFAULTS = {'algorithm': 'maxvol', 'init_method': 'qr', 'threshold': 1e-9, 'maxiter': 100_000}


def active_set_size(layout: str, alpha_scalar_moments: int, species_count: int, radial_size: int = 0) -> int:
    """K, the number of parameters (columns) of an active set in ``layout``.

    :param radial_size: ``radial_funcs_count * radial_basis_size`` (used by layout ``full`` only).
    """
    if layout not in OPTIMIZED:
        raise ValueError(f'unknown layout {layout!r}; known: {sorted(OPTIMIZED)}')
    size = alpha_scalar_moments
    if layout != 'moment':
        size += species_count
    if layout == 'full':
        size += species_count**2 * radial_size
    return size


def read_configurations(path: Path, species: list[str]) -> list:
    """ASE Atoms of a ``.cfg`` file (types are indices into ``species``; labels are ignored)."""
    from ase import Atoms

    from aiida_mscale.mtp.cfg import read_cfg

    images = []
    for k, conf in enumerate(read_cfg(Path(path).read_text())):
        if conf.types.min() < 0 or conf.types.max() >= len(species):
            raise ValueError(f'{Path(path).name}: configuration {k} has a type outside the species {species}')
        symbols = [species[t] for t in conf.types]
        if conf.cell is None:
            atoms = Atoms(symbols=symbols, positions=conf.positions, pbc=False)
        else:
            atoms = Atoms(symbols=symbols, positions=conf.positions, cell=conf.cell, pbc=True)
        images.append(atoms)
    return images


def training_rows_allowed(path: Path) -> np.ndarray | None:
    """(M,) bool over all atoms of a ``.cfg``: True where the atom's force weight is > 0; None if no configuration
    carries force weights (then every row may enter the active set)."""
    from aiida_mscale.mtp.cfg import read_cfg, weights_from_features

    configurations = read_cfg(Path(path).read_text())
    if not any('force_weights' in c.features for c in configurations):
        return None
    return np.concatenate([weights_from_features(c.features, len(c.types))[2] > 0 for c in configurations])


def neighborhood_matrix(mtp_data, images, engine: str = 'cext') -> np.ndarray:
    """(M, K) rows b_i = dV_i/dtheta of all atoms of ``images`` (in order), as motep's ``Grader`` builds them."""
    from copy import copy

    from motep.calculator import make_calculator

    mode = 'train' if 'radial_coeffs' in mtp_data.optimized else 'run'
    rows = []
    for atoms in images:
        atoms = copy(atoms)
        atoms.calc = make_calculator(mtp_data, engine=engine, mode=mode, relax_magmoms=False)
        atoms.get_potential_energy()
        rows.append(atoms.calc.engine.jac_energies(atoms).parameters.T)
    if not rows:
        return np.zeros((0, 0))
    return np.vstack(rows)


def grade_rows(active_set: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """c = b A^-1 for each row b (least squares, as motep's ``Grader.grade``): (M, K)."""
    if len(rows) == 0:
        return np.zeros((0, active_set.shape[0]))
    return np.linalg.lstsq(active_set.T, rows.T, rcond=None)[0].T


def _same_configuration(a, b, tolerance: float) -> bool:
    if len(a) != len(b) or not np.array_equal(a.numbers, b.numbers) or not np.array_equal(a.pbc, b.pbc):
        return False
    if not np.allclose(a.cell.array, b.cell.array, rtol=0.0, atol=tolerance):
        return False
    delta = a.positions - b.positions
    if a.pbc.all():
        fractional = np.linalg.solve(a.cell.array.T, delta.T).T
        delta = (fractional - np.round(fractional)) @ a.cell.array
    return bool(np.all(np.linalg.norm(delta, axis=1) <= tolerance))


def find_duplicates(images, tolerance: float = 1e-6, keys=None, key_rtol: float = 1e-3) -> np.ndarray:
    """For each configuration, the index of the first earlier one identical to it, else -1.

    Identical: same cell and periodicity (to ``tolerance``), same atomic numbers in the same order, and every
    atom within ``tolerance`` [Angstrom] of its counterpart, modulo lattice translations when periodic.

    :param keys: optional (N,) numbers that identical configurations share (e.g. their grades): only pairs whose
        keys agree to ``key_rtol`` are compared, so a long trajectory is not compared pair by pair.
    """
    n = len(images)
    duplicate_of = np.full(n, -1, dtype=np.int64)
    if keys is None:
        keys = np.zeros(n)
    keys = np.asarray(keys, dtype=float)
    order = np.argsort(keys, kind='stable')
    ordered = keys[order]
    for k in range(n):
        spread = key_rtol * abs(keys[k]) + 1e-12
        lo = np.searchsorted(ordered, keys[k] - spread, side='left')
        hi = np.searchsorted(ordered, keys[k] + spread, side='right')
        for m in sorted(int(i) for i in order[lo:hi] if i < k and duplicate_of[i] < 0):
            if _same_configuration(images[k], images[m], tolerance):
                duplicate_of[k] = m
                break
    return duplicate_of


def log_abs_det(matrix: np.ndarray) -> float:
    """log |det(matrix)| (-inf when singular)."""
    sign, value = np.linalg.slogdet(matrix)
    return float(value) if sign != 0 else float('-inf')


def greedy_maxvol(
    active_set: np.ndarray,
    rows: np.ndarray,
    row_owner: np.ndarray,
    eligible: np.ndarray,
    threshold: float,
    max_count: int | None = None,
    maxiter: int = 10_000,
    refresh: int = 16,
) -> dict:
    """Greedy MaxVol: swap candidate rows into the active set while one has |c_ij| >= ``threshold``.

    :param active_set: (K, K) the active set of the training set (not modified).
    :param rows: (M, K) the candidates' rows b_i.
    :param row_owner: (M,) the candidate (configuration) index of each row.
    :param eligible: (N,) bool, the candidates whose rows may enter.
    :param threshold: minimal |c_ij| of a swap (a swap multiplies |det| by |c_ij|); at least 1.
    :param max_count: at most this many distinct candidates own rows of the result (None: no limit).
    :param refresh: c = B A^-1 is updated by rank-1 updates (O(M K) per swap) and recomputed every ``refresh`` swaps.
    :return: ``{'selected': sorted candidate indices, 'active_set': the new (K, K) matrix, 'owners': (K,) owner
        candidate of each row (-1 for the training set), 'swaps': [(row, column, |c|), ...]}``.
    """
    if threshold < 1.0:
        raise ValueError(f'the threshold must be at least 1, not {threshold}')
    matrix = np.array(active_set, dtype=float, copy=True)
    owners = np.full(matrix.shape[0], -1, dtype=np.int64)
    allowed_rows = np.flatnonzero(eligible[row_owner]) if len(rows) else np.zeros(0, dtype=np.int64)
    allowed_owner = row_owner[allowed_rows]
    swaps = []
    floor = max(threshold, 1.0 + 1e-9)  # a swap must grow |det| (also when threshold is exactly 1)
    c = grade_rows(matrix, rows[allowed_rows])  # c = B A^-1, kept up to date by rank-1 updates
    for iteration in range(maxiter):
        if len(allowed_rows) == 0:
            break
        represented = sorted(set(int(o) for o in owners if o >= 0))
        magnitude = np.abs(c)
        if max_count is not None and len(represented) >= max_count:
            magnitude[~np.isin(allowed_owner, represented)] = 0.0
        i, j = np.divmod(int(np.argmax(magnitude)), magnitude.shape[1])
        if not magnitude[i, j] >= floor:
            break
        row = int(allowed_rows[i])
        swaps.append((row, int(j), float(magnitude[i, j])))
        matrix[j] = rows[row]
        owners[j] = row_owner[row]
        if (iteration + 1) % refresh == 0:
            c = grade_rows(matrix, rows[allowed_rows])  # against the accumulation of rounding errors
        else:  # Sherman-Morrison: row j of A replaced by b_i gives c <- c - c[:, j] (c_i - e_j) / c_ij
            pivot_row = c[i].copy()
            pivot_row[j] -= 1.0
            c -= np.outer(c[:, j] / c[i, j], pivot_row)
    selected = sorted(set(int(o) for o in owners if o >= 0))
    return {'selected': selected, 'active_set': matrix, 'owners': owners, 'swaps': swaps}


def select(inputs: dict, workdir: Path = Path('.')) -> dict:
    """Build the active set, grade the candidates and select (see the module docstring); return the summary."""
    from ase.data import atomic_numbers
    from motep.grade.grader import Grader
    from motep.grade.setting import GradeMode
    from motep.io.mlip.mtp import read_mtp

    from aiida_mscale.lammps import active_set_layout, write_active_set
    from aiida_mscale.mtp.potential_file import read_mtp as read_mtp_exact

    species = list(inputs['species'])
    layout = inputs.get('layout', 'moment+species')
    threshold = float(inputs.get('threshold', 1.1))
    max_count = inputs.get('max_count')
    engine = inputs.get('engine', 'cext')
    if threshold < 1.0:
        raise ValueError(f'the selection threshold must be at least 1 (a grade below 1 is interpolation): {threshold}')
    if max_count is not None and int(max_count) < 1:
        raise ValueError(f'max_count must be at least 1 or null, not {max_count}')

    path = workdir / inputs['potential']
    potential = read_mtp_exact(path)  # a malformed file fails here with a message naming the line
    if not potential.is_trained:
        raise ValueError('the potential is an untrained template: it has no coefficients to grade with')
    if potential.species_count != len(species):
        raise ValueError(f'the potential has {potential.species_count} species but {len(species)} were given')
    data = read_mtp(str(path))
    data.species = [atomic_numbers[s] for s in species]
    data.optimized = list(OPTIMIZED[layout])
    assert active_set_layout(data.optimized) == layout

    training = read_configurations(workdir / inputs['training'], species)
    candidates = read_configurations(workdir / inputs['candidates'], species)
    allowed = training_rows_allowed(workdir / inputs['training'])  # None: every atom's row
    size = active_set_size(
        layout,
        potential.alpha_scalar_moments,
        potential.species_count,
        potential.radial_funcs_count * potential.radial_basis_size,
    )
    neighbourhoods = sum(len(a) for a in training) if allowed is None else int(allowed.sum())
    if neighbourhoods < size:
        raise ValueError(
            f'the training set has {neighbourhoods} atomic neighbourhoods but the active set (layout {layout}) '
            f'needs at least {size}'
        )

    grader = Grader(
        data,
        seed=int(inputs.get('seed', 42)),
        engine=engine,
        mode=GradeMode.NEIGHBORHOOD,
        maxvol_setting={**MAXVOL_DEFAULTS, **(inputs.get('maxvol') or {})},
    )
    if allowed is None:
        grader.update(training)
        training_indices = np.asarray(grader.maxvol_result.indices)
    else:  # the rows Grader.update would build, restricted to the weighted atoms
        rows_allowed = np.flatnonzero(allowed)
        grader.maxvol_result = grader.maxvol.run(neighborhood_matrix(data, training, engine=engine)[rows_allowed])
        training_indices = rows_allowed[np.asarray(grader.maxvol_result.indices)]
    active_set = np.array(grader.maxvol_result.submatrix, dtype=float)
    write_active_set(
        workdir / 'active_set.als',
        active_set,
        layout=layout,
        species_count=potential.species_count,
        alpha_scalar_moments=potential.alpha_scalar_moments,
        radial_funcs_count=potential.radial_funcs_count,
        radial_basis_size=potential.radial_basis_size,
    )

    rows = neighborhood_matrix(data, candidates, engine=engine)
    counts = np.array([len(a) for a in candidates], dtype=np.int64)
    row_owner = np.repeat(np.arange(len(candidates)), counts)
    neighborhood_grades = np.max(np.abs(grade_rows(active_set, rows)), axis=1)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    max_grades = np.array([neighborhood_grades[offsets[k] : offsets[k + 1]].max() for k in range(len(candidates))])

    duplicate_of = find_duplicates(candidates, float(inputs.get('duplicate_tolerance', 1e-6)), keys=max_grades)
    eligible = (max_grades >= threshold) & (duplicate_of < 0)
    result = greedy_maxvol(
        active_set,
        rows,
        row_owner,
        eligible,
        threshold,
        None if max_count is None else int(max_count),
        maxiter=10 * size + 100,
    )
    selected = np.array(result['selected'], dtype=np.int64)

    np.savez(
        workdir / 'grades.npz',
        max_grades=max_grades,
        neighborhood_grades=neighborhood_grades,
        numbers_of_atoms=counts,
        duplicate_of=duplicate_of,
        selected_indices=selected,
    )
    summary = {
        'layout': layout,
        'active_set_size': int(active_set.shape[0]),
        'training_neighborhoods': int(neighbourhoods),
        'training_indices': [int(i) for i in training_indices],
        'maxvol_success': bool(grader.maxvol_result.success),
        'number_of_candidates': len(candidates),
        'number_above_threshold': int((max_grades >= threshold).sum()),
        'number_of_duplicates': int((duplicate_of >= 0).sum()),
        'threshold': threshold,
        'max_count': max_count,
        'selected_indices': selected.tolist(),
        'max_grade': float(max_grades.max()) if len(max_grades) else None,
        'log_det_before': log_abs_det(active_set),
        'log_det_after': log_abs_det(result['active_set']),
        'swaps': [{'row': r, 'column': c, 'grade': g} for r, c, g in result['swaps']],
    }
    (workdir / 'selection.json').write_text(json.dumps(summary, indent=2))
    return summary


def main(argv=None) -> int:
    """Command-line entry point: ``mscale-mtp-select input.json``."""

    def report(summary):
        return {key: value for key, value in summary.items() if key != 'swaps'}

    return run_script('mscale-mtp-select', select, argv, report=report)


if __name__ == '__main__':
    sys.exit(main())
