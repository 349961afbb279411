"""The heavy transport analyses over a set of trajectories: diffusion modes with descriptor importance, and
local-environment classes. No AiiDA import.

Both the calcfunctions of :mod:`aiida_mscale.workflows.transport.functions` (in-process) and the script of
``TransportAnalysisCalculation`` (``mscale-transport-analysis input.json``, on a computer of the user's choice) call
:func:`modes_and_importance` and :func:`environment_classes` here, so the two paths give the same numbers.

The script reads ``input.json``::

    {"analysis": "modes" | "environments",
     "mobile_species": ["Li"],            # modes only
     "parameters": {...},                 # the validated settings (aiida_mscale.workflows.transport.settings)
     "trajectories": {"<label>": "trajectory_000.npz", ...}}

each ``.npz`` holding ``positions`` (n_frames, n_atoms, 3) [A], ``cells`` (n_frames, 3, 3) [A] (rows are lattice
vectors), ``times`` (n_frames,) [ps], ``species`` (n_atoms,) and ``unwrapped`` (positions already continuous); it
writes ``result.json`` (``{"result": {...}, "attributes": {...}}``) and ``arrays.npz``. Input the analysis refuses
ends the script with ``ERROR: <message>`` on stderr and exit status 1.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    'ANALYSES',
    'Trajectory',
    'environment_classes',
    'jsonable',
    'load_trajectory',
    'main',
    'modes_and_importance',
    'run',
    'save_trajectory',
]

#: the analyses the script runs
ANALYSES = ('modes', 'environments')


@dataclass
class Trajectory:
    """A trajectory as arrays: positions (n_frames, n_atoms, 3) [A], cells (n_frames, 3, 3) [A] (rows are lattice
    vectors), species (n_atoms,), times (n_frames,) [ps]; ``unwrapped``: positions already continuous."""

    positions: np.ndarray
    cells: np.ndarray
    species: list
    times: np.ndarray
    unwrapped: bool


def jsonable(value):
    """Numpy scalars/arrays -> Python numbers/lists, recursively; non-finite floats -> None (JSON has no inf)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    return value


# ---------------------------------------------------------------------------------- modes and importance
def modes_and_importance(trajectories: dict, symbol: str, p: dict) -> tuple[dict, dict, dict]:
    """Per-ion descriptors over sliding windows (pooled over ``trajectories``), diffusion modes and random-forest
    importance of the descriptors for the mobility of ``symbol``.

    :param trajectories: label -> :class:`Trajectory` (or any object with its attributes).
    :param p: the validated settings (``descriptor_*``, ``max_modes``, ``cluster_on``, ``importance_*``, ``seed``).
    :return: (summary, arrays, attributes): a JSON-able dict; named arrays (``X``, ``mobility``, ``mode``,
        ``embedding``, ``ion``, ``window_start``, ``trajectory_index``, ``importance``, ``importance_err``);
        ``descriptors``, ``trajectories`` and ``mode_labels``.
    :raises ValueError: for input the analysis refuses, with its reason.
    """
    from aiida_mscale.analysis.descriptors import ion_descriptors
    from aiida_mscale.analysis.importance import mobility_importance
    from aiida_mscale.analysis.modes import diffusion_modes

    labels = p['descriptor_trajectories'] or sorted(trajectories)
    missing = sorted(set(labels) - set(trajectories))
    if missing:
        raise ValueError(f'`descriptor_trajectories` {missing} are not among the trajectories {sorted(trajectories)}')
    blocks, names, cutoffs = [], None, {}
    for k, label in enumerate(labels):
        data = trajectories[label]
        positions, cells, times = data.positions, data.cells, data.times
        if p['descriptor_frames'] is not None:
            cut = slice(*p['descriptor_frames'])
            positions, cells, times = positions[cut], cells[cut], times[cut]
        d = ion_descriptors(
            positions,
            cells,
            times,
            data.species,
            symbol,
            window=int(p['descriptor_window']),
            stride=p['descriptor_stride'],
            frame_stride=int(p['descriptor_frame_stride']),
            cutoffs=p['descriptor_cutoffs'],
            wrapped=not data.unwrapped,
        )
        if names is not None and d['names'] != names:
            raise ValueError(f'trajectory `{label}` gives descriptors {d["names"]}, the others {names}')
        names = d['names']
        cutoffs[label] = d['cutoffs']
        n_atoms = len(data.species)
        blocks.append((d['X'], d['mobility'], d['ion'], d['window_start'], np.full(len(d['ion']), k), n_atoms))
    X = np.concatenate([b[0] for b in blocks])
    mobility = np.concatenate([b[1] for b in blocks])
    ion = np.concatenate([b[2] for b in blocks])
    start = np.concatenate([b[3] for b in blocks])
    source = np.concatenate([b[4] for b in blocks])
    groups = source * max(b[5] for b in blocks) + ion  # one group per ion per trajectory: no leakage
    modes = diffusion_modes(
        X,
        names,
        mobility,
        max_modes=int(p['max_modes']),
        seed=int(p['seed']),
        cluster_on=p['cluster_on'],
        ion=groups,
        window_start=start,
        window=int(p['descriptor_window']),
    )
    importance = mobility_importance(
        X,
        mobility,
        names,
        groups=groups,
        n_splits=int(p['importance_splits']),
        n_estimators=int(p['importance_estimators']),
        n_repeats=int(p['importance_repeats']),
        seed=int(p['seed']),
    )
    summary = {
        'species': symbol,
        'trajectories': list(labels),
        'descriptors': list(names),
        'n_samples': int(X.shape[0]),
        'cutoffs': cutoffs,
        'n_modes': modes['n_modes'],
        'n_components': modes['n_components'],
        'bic': {str(k): v for k, v in modes['bic'].items()},
        'merge_history': modes['merge_history'],
        'used_descriptors': modes['used_descriptors'],
        'modes': modes['modes'],
        'r2_cv': importance['r2_cv'],
        'r2_cv_std': importance['r2_cv_std'],
        'r2_folds': importance['r2_folds'],
        'importance': importance['importance'],
        'importance_err': importance['importance_err'],
        'ranking': importance['ranking'],
    }
    arrays = {
        'X': X,
        'mobility': mobility,
        'mode': np.asarray(modes['labels'], dtype=int),
        'embedding': np.asarray(modes['embedding'], dtype=float),
        'ion': ion.astype(int),
        'window_start': start.astype(int),
        'trajectory_index': source.astype(int),
        'importance': np.array([importance['importance'][n] for n in names]),
        'importance_err': np.array([importance['importance_err'][n] for n in names]),
    }
    attributes = {
        'descriptors': list(names),
        'trajectories': list(labels),
        'mode_labels': [m['label'] for m in modes['modes']],
    }
    return jsonable(summary), arrays, attributes


# ---------------------------------------------------------------------------------- environments
def _wrapped(data) -> np.ndarray:
    h = data.cells
    frac = np.einsum('fai,fij->faj', data.positions, np.linalg.inv(h))
    return np.einsum('fai,fij->faj', frac - np.floor(frac), h)


def environment_classes(trajectories: dict, p: dict) -> tuple[dict, dict, dict]:
    """Local-environment classes (Steinhardt q4/q6, coordination, bond angles; Gaussian mixture, BIC) learned on one
    trajectory, a classifier that labels every trajectory with the same classes, and the fraction of each class per
    frame.

    :param trajectories: label -> :class:`Trajectory`.
    :param p: the validated settings (``environment_*``, ``max_classes``, ``seed``).
    :return: (summary, arrays, attributes): a JSON-able dict; ``times_<label>`` [ps] and ``fractions_<label>``
        (n_frames, n_classes) per trajectory; ``labels`` and ``n_classes``.
    :raises ValueError: for input the analysis refuses, with its reason.
    """
    from aiida_mscale.analysis.environments import (
        DESCRIPTOR_NAMES,
        auto_cutoff,
        class_fractions,
        fit_environment_classes,
        local_environment_descriptors,
    )

    train = p['environment_train'] or sorted(trajectories)[0]
    if train not in trajectories:
        raise ValueError(f'`environment_train` {train!r} is not among the trajectories {sorted(trajectories)}')
    select = p['environment_species']
    data = trajectories
    positions = {label: _wrapped(d) for label, d in data.items()}
    n_train = len(data[train].times)
    frames = np.unique(np.linspace(0, n_train - 1, int(p['environment_train_frames'])).astype(int))
    cutoff = p['environment_cutoff']
    if cutoff is None:
        cutoff = auto_cutoff(positions[train], data[train].cells, frames=frames)
    X = np.concatenate(
        [
            local_environment_descriptors(
                positions[train][f], data[train].cells[f], cutoff, data[train].species, select
            )
            for f in frames
        ]
    )
    model = fit_environment_classes(X, cutoff, max_classes=int(p['max_classes']), seed=int(p['seed']))
    fractions, times = {}, {}
    for label in sorted(data):
        ids = np.arange(0, len(data[label].times), int(p['environment_frame_stride']))
        fractions[label] = class_fractions(
            positions[label], data[label].cells, model, data[label].species, select, frames=ids
        )
        times[label] = data[label].times[ids]
    summary = {
        'train': train,
        'train_frames': frames,
        'cutoff': float(cutoff),
        'species': select,
        'n_classes': model.n_classes,
        'bic': {str(k): v for k, v in model.bic.items()},
        'descriptors': list(DESCRIPTOR_NAMES),
        'centroids': [dict(zip(DESCRIPTOR_NAMES, c)) for c in model.centroids],
        'mean_fractions': {label: fr.mean(axis=0) for label, fr in fractions.items()},
    }
    arrays = {}
    for label in fractions:
        arrays[f'times_{label}'] = times[label]
        arrays[f'fractions_{label}'] = fractions[label]
    attributes = {'labels': sorted(fractions), 'n_classes': int(model.n_classes)}
    return jsonable(summary), arrays, attributes


# ---------------------------------------------------------------------------------- the script
def save_trajectory(path, data) -> None:
    """Write ``data`` (a :class:`Trajectory` or any object with its attributes) to the ``.npz`` the script reads."""
    np.savez(
        path,
        positions=np.asarray(data.positions, dtype=float),
        cells=np.asarray(data.cells, dtype=float),
        times=np.asarray(data.times, dtype=float),
        species=np.asarray([str(s) for s in data.species], dtype=str),
        unwrapped=np.asarray(bool(data.unwrapped)),
    )


def load_trajectory(path) -> Trajectory:
    """The :class:`Trajectory` of a file written by :func:`save_trajectory`.

    :raises ValueError: for a file without the arrays or with inconsistent shapes.
    """
    with np.load(path, allow_pickle=False) as npz:
        missing = sorted({'positions', 'cells', 'times', 'species', 'unwrapped'} - set(npz.files))
        if missing:
            raise ValueError(f'{Path(path).name} lacks the arrays {missing}')
        data = Trajectory(
            positions=npz['positions'],
            cells=npz['cells'],
            species=[str(s) for s in npz['species']],
            times=npz['times'],
            unwrapped=bool(npz['unwrapped']),
        )
    n_frames, n_atoms = data.positions.shape[:2] if data.positions.ndim == 3 else (-1, -1)
    if data.positions.shape != (n_frames, n_atoms, 3) or data.cells.shape != (n_frames, 3, 3):
        raise ValueError(f'{Path(path).name}: positions {data.positions.shape} and cells {data.cells.shape} disagree')
    if data.times.shape != (n_frames,) or len(data.species) != n_atoms:
        raise ValueError(
            f'{Path(path).name}: {len(data.times)} times and {len(data.species)} species for positions '
            f'{data.positions.shape}'
        )
    return data


def run(inputs: dict, workdir) -> dict:
    """Run the analysis ``inputs['analysis']`` on the trajectories of ``inputs``; write ``result.json`` and
    ``arrays.npz`` into ``workdir``; return what was written to ``result.json``."""
    workdir = Path(workdir)
    analysis = inputs['analysis']
    if analysis not in ANALYSES:
        raise ValueError(f'unknown analysis {analysis!r}; known: {list(ANALYSES)}')
    trajectories = {label: load_trajectory(workdir / name) for label, name in inputs['trajectories'].items()}
    if not trajectories:
        raise ValueError('no trajectories given')
    p = inputs['parameters']
    if analysis == 'modes':
        summary, arrays, attributes = modes_and_importance(trajectories, inputs['mobile_species'][0], p)
    else:
        summary, arrays, attributes = environment_classes(trajectories, p)
    np.savez(workdir / 'arrays.npz', **arrays)
    output = {'result': summary, 'attributes': attributes}
    (workdir / 'result.json').write_text(json.dumps(output, indent=1))
    return output


def main(argv=None) -> int:
    """Command-line entry point: ``mscale-transport-analysis input.json``."""
    from aiida_mscale.mtp.script import run_script

    return run_script('mscale-transport-analysis', run, argv, report=lambda _: None)


if __name__ == '__main__':
    sys.exit(main())
