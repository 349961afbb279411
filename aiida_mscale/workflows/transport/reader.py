"""Read a trajectory node into plain arrays for :mod:`aiida_mscale.analysis`.

Two node types are understood:

- :class:`~aiida_mscale.data.lammps_trajectory.LammpsTrajectoryData` (``mscale.lammps.trajectory``, as written by
  ``LammpsMtpCalculation`` and ``MdProductionWorkChain``). With image flags the positions are unwrapped exactly,
  ``r + ix a + iy b + iz c``; the time of a frame is its LAMMPS step times the MD timestep, taken from the
  creator's ``parameters`` (``timestep``, default :data:`aiida_mscale.lammps.inputs.DEFAULTS`) unless a
  ``timestep`` is given.
- ``orm.TrajectoryData``: positions as stored (wrapped or unwrapped; the analysis unwraps them with the
  cells), times from the ``times`` array [ps] if present, else ``stepids * timestep``.

Nothing here runs a process: the calcfunctions call :func:`read_trajectory` on their own inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from aiida import orm

__all__ = ['TrajectoryArrays', 'trajectory_metadata', 'read_trajectory', 'creator_parameters']


@dataclass
class TrajectoryArrays:
    """A trajectory as arrays: positions (n_frames, n_atoms, 3) [A], cells (n_frames, 3, 3) [A] (rows are
    lattice vectors), species (n_atoms,), times (n_frames,) [ps]; ``unwrapped`` says whether the positions are
    already continuous (image flags applied)."""

    positions: np.ndarray
    cells: np.ndarray
    species: list
    times: np.ndarray
    unwrapped: bool

    @property
    def cells_for_unwrapping(self):
        """The cells to hand to the analysis functions: None when positions are already unwrapped."""
        return None if self.unwrapped else self.cells


def _is_lammps_trajectory(node) -> bool:
    from aiida_mscale.data.lammps_trajectory import LammpsTrajectoryData

    return isinstance(node, LammpsTrajectoryData)


def creator_parameters(node) -> dict | None:
    """The MD parameters of the calculation that made ``node`` (merged with LAMMPS defaults), or None."""
    creator = node.creator
    if creator is None or 'parameters' not in creator.inputs:
        return None
    from aiida_mscale.lammps.inputs import DEFAULTS

    return {**DEFAULTS, **creator.inputs.parameters.get_dict()}


def _lammps_timestep(node, timestep: float | None) -> float:
    if timestep is not None:
        return float(timestep)
    parameters = creator_parameters(node)
    if parameters is None:
        raise ValueError(
            f'LammpsTrajectoryData<{node.pk}> has no creator with MD `parameters`: give the MD `timestep` [ps]'
        )
    return float(parameters['timestep'])


def trajectory_metadata(node, timestep: float | None = None) -> dict:
    """Cheap summary without reading positions: ``species`` (set of symbols), ``n_frames``, ``times`` [ps].

    :raises ValueError: when the times cannot be derived (no ``times`` array, no creator, no ``timestep``).
    """
    if _is_lammps_trajectory(node):
        steps = np.asarray(node.get_steps(), dtype=float)
        elements = set(node.base.attributes.get('elements') or []) or set(node.symbols)
        return {'species': elements, 'n_frames': len(steps), 'times': steps * _lammps_timestep(node, timestep)}
    if isinstance(node, orm.TrajectoryData):
        return {'species': set(node.symbols), 'n_frames': node.numsteps, 'times': _trajectory_times(node, timestep)}
    raise ValueError(f'{node.__class__.__name__}<{node.pk}> is not a LammpsTrajectoryData or TrajectoryData')


def _trajectory_times(node: orm.TrajectoryData, timestep: float | None) -> np.ndarray:
    if 'times' in node.get_arraynames():
        return np.asarray(node.get_array('times'), dtype=float)
    if timestep is None:
        raise ValueError(
            f'TrajectoryData<{node.pk}> has no `times` array: give the `timestep` [ps] (times = stepids * timestep)'
        )
    return np.asarray(node.get_stepids(), dtype=float) * float(timestep)


def read_trajectory(node, timestep: float | None = None) -> TrajectoryArrays:
    """Positions, cells, species and times of a ``LammpsTrajectoryData`` or ``TrajectoryData``."""
    if _is_lammps_trajectory(node):
        return _read_lammps(node, timestep)
    if isinstance(node, orm.TrajectoryData):
        if node.get_cells() is None:
            raise ValueError(f'TrajectoryData<{node.pk}> has no cells: periodic analysis needs them')
        cells = np.asarray(node.get_cells(), dtype=float)
        return TrajectoryArrays(
            positions=np.asarray(node.get_positions(), dtype=float),
            cells=cells,
            species=list(node.symbols),
            times=_trajectory_times(node, timestep),
            unwrapped=False,
        )
    raise ValueError(f'{node.__class__.__name__}<{node.pk}> is not a LammpsTrajectoryData or TrajectoryData')


def _read_lammps(node, timestep: float | None) -> TrajectoryArrays:
    """Atoms in id order; positions unwrapped with the image flags when the dump had them (or stored unwrapped)."""
    times = np.asarray(node.get_steps(), dtype=float) * _lammps_timestep(node, timestep)
    positions = node.get_positions(unwrap=True)
    return TrajectoryArrays(positions, node.get_cells(), node.symbols, times, unwrapped=node.is_unwrapped)
