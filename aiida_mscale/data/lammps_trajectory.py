"""``LammpsTrajectoryData``: the frames of a LAMMPS ``dump custom`` file, stored as compressed arrays.

Entry point ``mscale.lammps.trajectory``. One node holds a trajectory of a fixed set of atoms (a dump whose number of
atoms, or set of atom ids, changes between frames, as GCMC makes it, is refused: :class:`DumpError`).

Storage: one file in the node's repository, ``frames.npz``, a zip (deflated, fixed entry dates, so the same frames
always give the same bytes and the same node hash) of ``.npy`` arrays; atoms are in the order of their LAMMPS id in
every frame. ``n`` frames, ``N`` atoms:

==================  ============  =====================================================================================
array               shape         meaning and unit
==================  ============  =====================================================================================
``steps``           (n,)          MD step of each frame (LAMMPS ``TIMESTEP``; times are steps x the MD timestep)
``cells``           (n, 3, 3)     lattice vectors as rows [Angstrom]: a = (lx, 0, 0), b = (xy, ly, 0), c = (xz, yz, lz)
``origins``         (n, 3)        box origin (xlo, ylo, zlo) [Angstrom]
``positions``       (n, N, 3)     Cartesian positions [Angstrom] (``x y z`` of the dump: wrapped into the box, unless
                                  the node is ``unwrapped``); float64, or float32 for a compact copy
``images``          (n, N, 3)     image flags ``ix iy iz`` (if dumped): the unwrapped position is r + ix a + iy b + iz c
``velocities``      (n, N, 3)     ``vx vy vz`` [Angstrom/ps, metal units] (if dumped); same precision as positions
``column_<name>``   (n, N)        any other per-atom column of the dump (float64)
``ids``             (N,)          LAMMPS atom ids (ascending)
``types``           (N,)          LAMMPS atom types (if dumped)
``elements``        (N,)          element symbols (if dumped: ``dump_modify element``)
==================  ============  =====================================================================================

Attributes (cheap to query, no file read): ``number_steps``, ``number_atoms``, ``elements`` (sorted distinct
symbols), ``field_names`` (the dump's columns), ``boundary`` (LAMMPS boundary flags, e.g. ``['pp', 'pp', 'pp']``),
``precision`` (``float64`` or ``float32``), ``unwrapped`` (positions already continuous across boundaries), and
``dropped_incomplete_frame`` (the dump ended inside a frame, which was left out).

The LAMMPS dump layout read here is the one documented for the ``dump`` command (``ITEM:`` sections; the triclinic
``BOX BOUNDS xy xz yz`` lines give the bounding box, from which the box is recovered as the LAMMPS manual's
"triclinic (non-orthogonal) simulation boxes" page describes).
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
from aiida import orm
from aiida.common.exceptions import ValidationError

__all__ = ['DumpError', 'DumpFrames', 'LammpsTrajectoryData', 'read_dump', 'read_last_frame']

#: The one repository file of a node.
FRAMES_FILE = 'frames.npz'
#: Per-frame arrays with three components per atom, and the dump columns they come from.
VECTOR_COLUMNS = {'positions': ('x', 'y', 'z'), 'images': ('ix', 'iy', 'iz'), 'velocities': ('vx', 'vy', 'vz')}
#: Per-atom columns that never change along a fixed-atom trajectory.
ATOM_COLUMNS = {'ids': 'id', 'types': 'type', 'elements': 'element'}
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class DumpError(ValueError):
    """A dump that is not a trajectory of a fixed set of atoms (or not a ``dump custom`` file at all)."""


# ------------------------------------------------------------------------------------------------ dump reading
class DumpFrames(dict):
    """Arrays of a dump (the names of the module table) plus ``field_names``, ``boundary`` and
    ``dropped_incomplete_frame``; what :func:`read_dump` returns and :meth:`LammpsTrajectoryData.from_frames` takes."""


def _cell_from_bounds(header: list[str], lines: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(cell rows [A], origin [A], boundary flags) of a ``BOX BOUNDS`` section: its header words and 3 lines."""
    bounds = np.array([[float(v) for v in line.split()] for line in lines])
    triclinic = header[:3] == ['xy', 'xz', 'yz']
    boundary = header[3:] if triclinic else header
    if bounds.shape != (3, 3 if triclinic else 2):
        raise ValueError(f'BOX BOUNDS has rows of {bounds.shape[1]} numbers')
    if triclinic:
        xy, xz, yz = bounds[:, 2]
        # the dump gives the bounding box of the tilted cell: remove the tilts' extent to get the box itself
        xlo = bounds[0, 0] - min(0.0, xy, xz, xy + xz)
        xhi = bounds[0, 1] - max(0.0, xy, xz, xy + xz)
        ylo, yhi = bounds[1, 0] - min(0.0, yz), bounds[1, 1] - max(0.0, yz)
    else:
        xy = xz = yz = 0.0
        (xlo, xhi), (ylo, yhi) = bounds[0], bounds[1]
    zlo, zhi = bounds[2, 0], bounds[2, 1]
    cell = np.array([[xhi - xlo, 0.0, 0.0], [xy, yhi - ylo, 0.0], [xz, yz, zhi - zlo]])
    return cell, np.array([xlo, ylo, zlo]), boundary


def _frame(lines: list[str], start: int) -> tuple[dict, int]:
    """One frame from ``lines[start]`` (an ``ITEM: TIMESTEP`` line): (its values, the index after it).

    :raises ValueError, IndexError: for a frame that is cut or malformed.
    """
    frame: dict = {}
    k = start
    while k < len(lines):
        line = lines[k]
        if not line.startswith('ITEM:'):
            raise ValueError(f'line {k + 1}: expected an `ITEM:` line, found {line[:40]!r}')
        item = line[5:].split()
        if item[0] == 'TIMESTEP':
            if 'step' in frame:
                break  # the next frame
            frame['step'] = int(lines[k + 1])
            k += 2
        elif item[:3] == ['NUMBER', 'OF', 'ATOMS']:
            frame['natoms'] = int(lines[k + 1])
            k += 2
        elif item[:2] == ['BOX', 'BOUNDS']:
            frame['cell'], frame['origin'], frame['boundary'] = _cell_from_bounds(item[2:], lines[k + 1 : k + 4])
            k += 4
        elif item[0] == 'ATOMS':
            natoms = frame['natoms']
            rows = lines[k + 1 : k + 1 + natoms]
            table = [row.split() for row in rows]
            if len(table) != natoms or any(len(row) != len(item) - 1 for row in table):
                raise ValueError(f'line {k + 2}: the frame of step {frame.get("step")} has incomplete atom rows')
            frame['columns'] = item[1:]
            frame['table'] = np.array(table, dtype=str).reshape(natoms, len(item) - 1)
            k += 1 + natoms
        else:  # UNITS, TIME (dump_modify units/time): one value line, not kept
            k += 2
    missing = {'step', 'natoms', 'cell', 'columns'} - set(frame)
    if missing:
        raise ValueError(f'the frame at line {start + 1} lacks {sorted(missing)}')
    return frame, k


def _lines(text: str) -> tuple[list[str], list[int], bool]:
    """(the lines of a dump text, the indices of its ``ITEM: TIMESTEP`` lines, whether its last line was cut).

    A text that does not end with a newline was cut while being written: its last line is left out.
    """
    lines = text.splitlines()
    cut = bool(lines) and not text.endswith('\n')
    if cut:
        lines = lines[:-1]
    return lines, [k for k, line in enumerate(lines) if line.startswith('ITEM: TIMESTEP')], cut


def _frame_arrays(frame: dict) -> dict[str, np.ndarray]:
    """The per-atom arrays of a frame of :func:`_frame`, atoms sorted by id: the ``ATOM_COLUMNS`` (as text), the
    ``VECTOR_COLUMNS`` dumped (``images`` as integers, the others as float64) and ``column_<name>`` of the others."""
    columns = frame['columns']
    table = frame['table']
    table = table[np.argsort(table[:, columns.index('id')].astype(np.int64), kind='stable')]
    arrays = {key: table[:, columns.index(name)] for key, name in ATOM_COLUMNS.items() if name in columns}
    used = set(ATOM_COLUMNS.values())
    for key, names in VECTOR_COLUMNS.items():
        if all(name in columns for name in names):
            block = table[:, [columns.index(name) for name in names]]
            arrays[key] = block.astype(np.int64 if key == 'images' else np.float64)
            used.update(names)
    for name in columns:
        if name not in used:
            arrays[f'column_{name}'] = table[:, columns.index(name)].astype(np.float64)
    return arrays


def read_last_frame(text: str) -> dict:
    """The last complete frame of a LAMMPS ``dump custom`` text, whatever the frames before it hold (GCMC changes
    the number of atoms between frames; a run cut while writing leaves a partial last frame, which is skipped).

    :return: ``step`` (MD step), ``cell`` (3, 3) [Angstrom], ``origin`` (3,) [Angstrom], ``boundary``,
        ``field_names`` and the per-atom arrays of the module table without the frame axis (``ids``, ``elements``,
        ``positions`` (N, 3) [Angstrom], ``velocities`` (N, 3) [Angstrom/ps], ... as dumped), atoms sorted by id.
    :raises DumpError: for a text without a complete frame, or without ``id x y z`` columns.
    """
    lines, starts, _ = _lines(text)
    for start in reversed(starts):
        try:
            frame, _ = _frame(lines, start)
        except (ValueError, IndexError, KeyError):
            continue
        missing = [name for name in ('id', 'x', 'y', 'z') if name not in frame['columns']]
        if missing:
            raise DumpError(f'the dump has no {missing} columns (columns: {frame["columns"]})')
        result = {
            'step': frame['step'],
            'cell': frame['cell'],
            'origin': frame['origin'],
            'boundary': list(frame['boundary']),
            'field_names': list(frame['columns']),
            **_frame_arrays(frame),
        }
        result['ids'] = result['ids'].astype(np.int64)
        return result
    raise DumpError('the dump holds no complete frame')


def read_dump(text: str) -> DumpFrames:
    """The frames of a LAMMPS ``dump custom`` text as arrays (see the module docstring), atoms sorted by id.

    A frame cut by the end of the file (a run stopped while writing, or a file system that filled up) is left out
    and reported as ``dropped_incomplete_frame``; the dump must have ``x y z`` and ``id`` columns.

    :raises DumpError: for a text without a complete frame, a malformed frame before the last, or frames whose
        atoms (number, ids, types, elements) or columns differ.
    """
    lines, starts, cut = _lines(text)  # a cut last line: its frame is incomplete
    columns, first, dropped = None, None, cut
    per_frame: dict[str, list] = {}
    for n, start in enumerate(starts):
        last = n == len(starts) - 1
        try:
            frame, end = _frame(lines, start)
            if end != (len(lines) if last else starts[n + 1]):
                raise ValueError('unexpected lines after its atoms')
        except (ValueError, IndexError, KeyError) as exception:
            if last:
                dropped = True
                break
            raise DumpError(f'frame {n} of the dump is malformed: {exception}') from None
        if columns is None:
            columns, first = frame['columns'], frame
            for name in ('id', 'x', 'y', 'z'):
                if name not in columns:
                    raise DumpError(f'the dump has no `{name}` column (columns: {columns})')
        elif frame['columns'] != columns:
            raise DumpError(f'frame {n} has the columns {frame["columns"]}, frame 0 has {columns}')
        elif frame['natoms'] != first['natoms']:
            raise DumpError(f'the number of atoms changes from {first["natoms"]} to {frame["natoms"]} at frame {n}')
        arrays = _frame_arrays(frame)
        for key, name in ATOM_COLUMNS.items():
            if key in arrays:
                if key not in per_frame:
                    per_frame[key] = arrays[key]
                elif np.any(arrays[key] != per_frame[key]):
                    raise DumpError(f'the atoms change along the dump: column `{name}` differs at frame {n}')
        per_frame.setdefault('steps', []).append(frame['step'])
        per_frame.setdefault('cells', []).append(frame['cell'])
        per_frame.setdefault('origins', []).append(frame['origin'])
        for key, values in arrays.items():
            if key not in ATOM_COLUMNS:
                per_frame.setdefault(key, []).append(values)
    if columns is None:
        raise DumpError('the dump holds no complete frame')
    result = DumpFrames(field_names=list(columns), boundary=list(first['boundary']), dropped_incomplete_frame=dropped)
    for key, values in per_frame.items():
        if key in ATOM_COLUMNS:
            result[key] = values if key == 'elements' else values.astype(np.int64)
        else:
            result[key] = np.array(values)
    result['steps'] = result['steps'].astype(np.int64)
    return result


# ------------------------------------------------------------------------------------------------ the data type
def _smallest_int(array: np.ndarray) -> np.ndarray:
    """``array`` (integers) in the narrowest signed integer type that holds it: image flags are small."""
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if array.size == 0 or (array.min() >= info.min and array.max() <= info.max):
            return array.astype(dtype)
    return array.astype(np.int64)


def _pack(arrays: dict[str, np.ndarray]) -> bytes:
    """A deflated ``.npz`` of ``arrays`` whose bytes depend on the arrays only (fixed entry dates)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            entry = io.BytesIO()
            np.lib.format.write_array(entry, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f'{name}.npy', date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entry.getvalue())
    return buffer.getvalue()


class LammpsTrajectoryData(orm.Data):
    """MD frames of a fixed set of atoms from LAMMPS (module docstring: arrays, units, attributes).

    Build it with :meth:`from_dump` (a dump text) or :meth:`from_frames` (arrays); read it with :meth:`get_steps`,
    :meth:`get_cells`, :meth:`get_positions` (optionally unwrapped with the image flags), :meth:`get_array` and the
    per-atom :attr:`ids`, :attr:`types`, :attr:`symbols`; :meth:`select` makes a smaller copy (frames, species,
    precision).
    """

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dump(cls, text: str) -> LammpsTrajectoryData:
        """A node of the frames of a LAMMPS dump text (:func:`read_dump`).

        :raises DumpError: if the dump is not a trajectory of a fixed set of atoms.
        """
        return cls.from_frames(read_dump(text))

    @classmethod
    def from_frames(cls, frames: dict, precision: str = 'float64', unwrapped: bool = False) -> LammpsTrajectoryData:
        """A node of the arrays ``frames`` (names of the module table; ``steps``, ``cells``, ``positions`` and
        ``ids`` required), plus optional ``field_names``, ``boundary`` and ``dropped_incomplete_frame``.

        :param precision: ``float64``, or ``float32`` (positions and velocities stored in single precision,
            about 7 significant digits: ~1e-6 Angstrom at 10 Angstrom).
        :param unwrapped: the positions are continuous across the boundaries (no image flags needed).
        :raises ValueError: naming the array of the wrong shape or the unknown precision.
        """
        if precision not in ('float64', 'float32'):
            raise ValueError(f"precision must be 'float64' or 'float32', got {precision!r}")
        steps = np.asarray(frames['steps'], dtype=np.int64).reshape(-1)
        n = len(steps)
        if n == 0:
            raise ValueError('a trajectory needs at least one frame')
        positions = np.asarray(frames['positions'], dtype=np.float64)
        if positions.ndim != 3 or positions.shape[0] != n or positions.shape[2] != 3:
            raise ValueError(f'positions must have the shape ({n}, atoms, 3), not {positions.shape}')
        natoms = positions.shape[1]
        arrays = {
            'steps': steps,
            'cells': np.asarray(frames['cells'], dtype=np.float64),
            'origins': np.asarray(frames.get('origins', np.zeros((n, 3))), dtype=np.float64),
            'positions': positions.astype(precision),
            'ids': np.asarray(frames['ids'], dtype=np.int64),
        }
        expected = {'cells': (n, 3, 3), 'origins': (n, 3), 'ids': (natoms,)}
        for name, value in frames.items():
            if name in ('velocities', 'images'):
                value = np.asarray(value)
                arrays[name] = value.astype(precision) if name == 'velocities' else _smallest_int(value)
                expected[name] = (n, natoms, 3)
            elif name in ('types', 'elements'):
                arrays[name] = np.asarray(value, dtype=np.int64 if name == 'types' else str)
                expected[name] = (natoms,)
            elif name.startswith('column_'):
                arrays[name] = np.asarray(value, dtype=np.float64)
                expected[name] = (n, natoms)
        for name, shape in expected.items():
            if arrays[name].shape != shape:
                raise ValueError(f'`{name}` must have the shape {shape}, not {arrays[name].shape}')
        node = cls()
        node.base.repository.put_object_from_bytes(_pack(arrays), FRAMES_FILE)
        elements = sorted(set(arrays['elements'].tolist())) if 'elements' in arrays else []
        node.base.attributes.set_many(
            {
                'number_steps': n,
                'number_atoms': natoms,
                'elements': elements,
                'field_names': list(frames.get('field_names') or []),
                'boundary': list(frames.get('boundary') or ['pp', 'pp', 'pp']),
                'precision': precision,
                'unwrapped': bool(unwrapped),
                'dropped_incomplete_frame': bool(frames.get('dropped_incomplete_frame', False)),
            }
        )
        return node

    def _validate(self):
        super()._validate()
        if self.base.attributes.get('number_steps', None) is None:
            raise ValidationError('no frames were set: build the node with from_dump or from_frames')

    # ------------------------------------------------------------------ reading
    def _arrays(self, *names: str) -> dict[str, np.ndarray]:
        """The stored arrays ``names`` (those present)."""
        if FRAMES_FILE not in self.base.repository.list_object_names():
            raise ValueError(f'{self.__class__.__name__}<{self.pk}> holds no frames (omitted when it was exported)')
        with self.base.repository.open(FRAMES_FILE, 'rb') as handle:
            content = io.BytesIO(handle.read())
        with np.load(content, allow_pickle=False) as archive:
            return {name: archive[name] for name in names if name in archive.files}

    def array_names(self) -> list[str]:
        """Names of the stored arrays."""
        with self.base.repository.open(FRAMES_FILE, 'rb') as handle, zipfile.ZipFile(io.BytesIO(handle.read())) as z:
            return sorted(name[: -len('.npy')] for name in z.namelist())

    def get_array(self, name: str) -> np.ndarray:
        """The stored array ``name`` (module table).

        :raises KeyError: if the node has no such array.
        """
        arrays = self._arrays(name)
        if name not in arrays:
            raise KeyError(f'{self.__class__.__name__} has no array `{name}` (it has {self.array_names()})')
        return arrays[name]

    @property
    def number_steps(self) -> int:
        """Number of frames."""
        return self.base.attributes.get('number_steps')

    @property
    def number_atoms(self) -> int:
        """Number of atoms (the same in every frame)."""
        return self.base.attributes.get('number_atoms')

    @property
    def time_steps(self) -> list[int]:
        """MD step of each frame."""
        return self.get_steps().tolist()

    @property
    def is_unwrapped(self) -> bool:
        """Whether :meth:`get_positions` (``unwrap=True``) gives continuous positions: stored unwrapped, or image
        flags present."""
        return bool(self.base.attributes.get('unwrapped', False)) or 'images' in self.array_names()

    def get_steps(self) -> np.ndarray:
        """(n,) MD step of each frame."""
        return self.get_array('steps')

    def get_cells(self) -> np.ndarray:
        """(n, 3, 3) lattice vectors as rows [Angstrom]."""
        return self.get_array('cells')

    def get_positions(self, unwrap: bool = False) -> np.ndarray:
        """(n, N, 3) positions [Angstrom] in float64, atoms in id order.

        :param unwrap: add the image flags' lattice vectors (``r + ix a + iy b + iz c``), when they were dumped.
        """
        arrays = self._arrays('positions', 'images', 'cells')
        positions = arrays['positions'].astype(np.float64)
        if unwrap and 'images' in arrays:
            positions = positions + np.matmul(arrays['images'].astype(np.float64), arrays['cells'])
        return positions

    @property
    def ids(self) -> np.ndarray:
        """(N,) LAMMPS atom ids, ascending."""
        return self.get_array('ids')

    @property
    def types(self) -> np.ndarray | None:
        """(N,) LAMMPS atom types, or None if they were not dumped."""
        return self._arrays('types').get('types')

    @property
    def symbols(self) -> list[str]:
        """Element symbol of each atom (id order); the LAMMPS type as a string if the elements were not dumped."""
        arrays = self._arrays('elements', 'types')
        if 'elements' in arrays:
            return [str(s) for s in arrays['elements']]
        if 'types' in arrays:
            return [str(t) for t in arrays['types']]
        raise ValueError(f'{self.__class__.__name__}<{self.pk}> has neither elements nor types')

    # ------------------------------------------------------------------ derived copies
    def select(
        self,
        frames=None,
        species: list[str] | None = None,
        precision: str | None = None,
        unwrap: bool = False,
        velocities: bool = True,
    ) -> LammpsTrajectoryData:
        """A new (unstored) node with some of this one's frames and atoms.

        :param frames: indices of the frames to keep (all if None).
        :param species: element symbols of the atoms to keep (all if None or empty).
        :param precision: ``float32`` or ``float64`` (this node's if None).
        :param unwrap: store the positions unwrapped with the image flags (and no image flags).
        :param velocities: keep the velocities (if any).
        """
        arrays = self._arrays(*self.array_names())
        keep_frames = np.arange(self.number_steps) if frames is None else np.asarray(frames, dtype=np.int64)
        atoms = np.ones(self.number_atoms, bool)
        if species:
            atoms = np.isin(np.asarray(self.symbols), list(species))
        if unwrap:
            arrays['positions'] = self.get_positions(unwrap=True)
            arrays.pop('images', None)
        if not velocities:
            arrays.pop('velocities', None)
        selected = {}
        for name, value in arrays.items():
            if name in ('ids', 'types', 'elements'):
                selected[name] = value[atoms]
            elif name in ('steps', 'cells', 'origins'):
                selected[name] = value[keep_frames]
            else:
                selected[name] = value[keep_frames][:, atoms]
        attributes = self.base.attributes
        dropped = (VECTOR_COLUMNS['images'] if unwrap else ()) + (() if velocities else VECTOR_COLUMNS['velocities'])
        selected['field_names'] = [f for f in attributes.get('field_names', []) if f not in dropped]
        selected['boundary'] = attributes.get('boundary')
        return self.from_frames(
            selected,
            precision=precision or attributes.get('precision', 'float64'),
            unwrapped=unwrap or attributes.get('unwrapped', False),
        )

    def frames_file(self) -> bytes:
        """The bytes of the repository file (what an archive stores for this node)."""
        with self.base.repository.open(FRAMES_FILE, 'rb') as handle:
            return handle.read()
