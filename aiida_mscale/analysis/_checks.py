"""Input validation shared by the analysis modules.

Every public analysis function funnels its arrays through these helpers so that bad input
fails early with a ``ValueError`` that names the problem (shape, species, time axis).
"""

import numpy as np

__all__ = [
    'as_positions',
    'as_cells',
    'as_times',
    'as_frame',
    'species_indices',
]


def as_positions(positions, name='positions'):
    """Return ``positions`` as a float array of shape (n_frames, n_atoms, 3) [Angstrom]."""
    arr = np.asarray(positions, dtype=float)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f'{name} must have shape (n_frames, n_atoms, 3), got {arr.shape}')
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f'{name} is empty: shape {arr.shape}')
    if not np.all(np.isfinite(arr)):
        raise ValueError(f'{name} contains NaN or infinite values')
    return arr


def as_cells(cells, n_frames):
    """Return cells as (n_frames, 3, 3) [Angstrom], rows are lattice vectors.

    A single (3, 3) cell is broadcast to every frame. Cells with NaN or infinite entries and
    singular cells are rejected.
    """
    arr = np.asarray(cells, dtype=float)
    if arr.shape == (3, 3):
        arr = np.broadcast_to(arr, (n_frames, 3, 3))
    elif arr.ndim != 3 or arr.shape[1:] != (3, 3):
        raise ValueError(f'cells must have shape (3, 3) or (n_frames, 3, 3), got {arr.shape}')
    if arr.shape[0] != n_frames:
        raise ValueError(f'cells has {arr.shape[0]} frames but positions has {n_frames}')
    if not np.all(np.isfinite(arr)):
        raise ValueError('cells contain NaN or infinite values')
    det = np.linalg.det(arr)
    if np.any(np.abs(det) < 1e-8):
        raise ValueError('cells contain a singular (zero-volume) cell')
    return arr


def as_times(times, n_frames, require_uniform=True, rtol=1e-6):
    """Return times [ps] as a float array of length ``n_frames``.

    Raises if a time is NaN or infinite (NaN compares false with everything, so it would pass the
    ordering checks below), if time is not strictly increasing or, when ``require_uniform``, not uniformly
    spaced (FFT-based MSD assumes a constant frame interval).
    """
    t = np.asarray(times, dtype=float)
    if t.ndim != 1 or t.shape[0] != n_frames:
        raise ValueError(f'times must be 1-D with {n_frames} entries (one per frame), got shape {t.shape}')
    if not np.all(np.isfinite(t)):
        bad = int(np.flatnonzero(~np.isfinite(t))[0])
        raise ValueError(f'times contain NaN or infinite values (first at frame {bad}: {t[bad]})')
    if n_frames > 1:
        dt = np.diff(t)
        if np.any(dt <= 0):
            bad = int(np.argmax(dt <= 0))
            raise ValueError(
                f'time is not strictly increasing (non-monotonic at frame {bad + 1}: {t[bad]} -> {t[bad + 1]} ps)'
            )
        if require_uniform and np.any(np.abs(dt - dt[0]) > rtol * max(abs(dt[0]), 1e-300) + 1e-12):
            raise ValueError('time steps are not uniform; the MSD estimator requires a constant frame interval')
    return t


def as_frame(frame, cell, name='frame'):
    """Return one frame (n_atoms, 3) [Angstrom] and its cell (3, 3) [Angstrom] as float arrays.

    Raises ``ValueError`` naming the input for a wrong shape, NaN or infinite values, or a
    singular cell.
    """
    pos = np.asarray(frame, dtype=float)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f'{name} must have shape (n_atoms, 3), got {pos.shape}')
    if not np.all(np.isfinite(pos)):
        raise ValueError(f'{name} contains NaN or infinite values')
    h = np.asarray(cell, dtype=float)
    if h.shape != (3, 3):
        raise ValueError(f'cell must have shape (3, 3), got {h.shape}')
    if not np.all(np.isfinite(h)):
        raise ValueError('cell contains NaN or infinite values')
    if abs(np.linalg.det(h)) < 1e-8:
        raise ValueError('cell is singular (zero volume)')
    return pos, h


def species_indices(species, target, n_atoms=None):
    """Indices of atoms whose symbol is ``target`` (a symbol or a list of symbols).

    Raises ``ValueError`` if the species list has the wrong length or the target species is
    absent from the trajectory.
    """
    sp = np.asarray(species).astype(str)
    if sp.ndim != 1:
        raise ValueError(f'species must be a 1-D list of symbols, got shape {sp.shape}')
    if n_atoms is not None and sp.shape[0] != n_atoms:
        raise ValueError(f'species has {sp.shape[0]} entries but the trajectory has {n_atoms} atoms')
    targets = [target] if isinstance(target, str) else list(target)
    idx = np.flatnonzero(np.isin(sp, targets))
    if idx.size == 0:
        present = sorted(set(sp.tolist()))
        raise ValueError(f'species {targets} absent from the trajectory (present: {present})')
    return idx
