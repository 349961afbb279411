"""MLIP's ``.cfg`` configuration format: read and write, exactly.

Pure Python and numpy, no AiiDA import.

Format (Novikov, Gubaev, Podryabinkin, Shapeev, Mach. Learn.: Sci. Technol. 2, 025002 (2021), the
MLIP package manual)::

    BEGIN_CFG
     Size
        2
     Supercell
        a1x a1y a1z
        a2x a2y a2z
        a3x a3y a3z
     AtomData:  id type  cartes_x  cartes_y  cartes_z  fx  fy  fz
        1  0  0.0  0.0  0.0  0.1  0.0  0.0
        ...
     Energy
        -3.71
     PlusStress:  xx  yy  zz  yz  xz  xy
        ...
     Feature  name  value
    END_CFG

Units: Angstrom for lengths, eV for the energy, eV/Angstrom for forces, and eV for
``PlusStress``, which is the virial: ``PlusStress = -V * sigma`` with ``sigma`` the stress in ASE's
sign convention (``sigma = (1/V) dE/d(strain)``, negative under compression) and ``V`` the cell
volume in Angstrom^3. ``type`` is a 0-based index into a species list that the file does not
carry; the caller supplies it (the order of the potential's species).

Floats are written as the shortest positional decimal that reads back to the same double (no exponent,
as MLIP writes), so that text -> numbers -> text is bit-exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ['CfgConfiguration', 'CfgFormatError', 'read_cfg', 'write_cfg', 'virial_from_stress', 'stress_from_virial']

#: Order of the six independent components in ``PlusStress`` lines.
VOIGT_ORDER = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


@dataclass
class CfgConfiguration:
    """One configuration of a ``.cfg`` file.

    :ivar cell: (3, 3) lattice vectors as rows [Angstrom], or ``None`` for a non-periodic cluster.
    :ivar types: (n,) integer species indices (0-based).
    :ivar positions: (n, 3) Cartesian positions [Angstrom].
    :ivar forces: (n, 3) forces [eV/Angstrom] or ``None``.
    :ivar energy: total energy [eV] or ``None``.
    :ivar virial: (3, 3) symmetric virial ``PlusStress`` [eV] or ``None``.
    :ivar features: ``Feature`` lines as an ordered mapping name -> value text.
    :ivar ids: (n,) atom ids as written (1-based in MLIP's files).
    :ivar grades: (n,) per-atom extrapolation grades (``nbh_grades`` column) or ``None``.
    """

    types: np.ndarray
    positions: np.ndarray
    cell: np.ndarray | None = None
    forces: np.ndarray | None = None
    energy: float | None = None
    virial: np.ndarray | None = None
    features: dict = field(default_factory=dict)
    ids: np.ndarray | None = None
    grades: np.ndarray | None = None


def virial_from_stress(stress, cell):
    """MLIP virial ``PlusStress`` [eV] from a (3, 3) stress in ASE's convention [eV/Angstrom^3]."""
    return -np.asarray(stress, dtype=float) * abs(np.linalg.det(np.asarray(cell, dtype=float)))


def stress_from_virial(virial, cell):
    """Stress in ASE's convention [eV/Angstrom^3] from the MLIP virial ``PlusStress`` [eV]."""
    return -np.asarray(virial, dtype=float) / abs(np.linalg.det(np.asarray(cell, dtype=float)))


def _fmt(value) -> str:
    # Shortest positional (never exponent) text that reads back to the same double: exact, and parseable by
    # readers that, like MLIP's and motep's, expect plain decimals.
    return np.format_float_positional(float(value), unique=True, trim='0')


def write_cfg(configurations, handle=None) -> str:
    """Write configurations in MLIP's ``.cfg`` format.

    :param configurations: iterable of :class:`CfgConfiguration`.
    :param handle: optional open text file; the text is also returned.
    :return: the text.
    """
    lines = []
    for conf in configurations:
        n = len(conf.types)
        lines.append('BEGIN_CFG')
        lines.append(' Size')
        lines.append(f'    {n}')
        if conf.cell is not None:
            lines.append(' Supercell')
            for row in np.asarray(conf.cell, dtype=float):
                lines.append('    ' + ' '.join(_fmt(x) for x in row))
        columns = ['id', 'type', 'cartes_x', 'cartes_y', 'cartes_z']
        if conf.forces is not None:
            columns += ['fx', 'fy', 'fz']
        if conf.grades is not None:
            columns += ['nbh_grades']
        lines.append(' AtomData:  ' + ' '.join(columns))
        ids = conf.ids if conf.ids is not None else np.arange(1, n + 1)
        for i in range(n):
            fields = [str(int(ids[i])), str(int(conf.types[i]))]
            fields += [_fmt(x) for x in conf.positions[i]]
            if conf.forces is not None:
                fields += [_fmt(x) for x in conf.forces[i]]
            if conf.grades is not None:
                fields.append(_fmt(conf.grades[i]))
            lines.append('    ' + ' '.join(fields))
        if conf.energy is not None:
            lines.append(' Energy')
            lines.append('    ' + _fmt(conf.energy))
        if conf.virial is not None:
            virial = np.asarray(conf.virial, dtype=float)
            lines.append(' PlusStress:  xx yy zz yz xz xy')
            lines.append('    ' + ' '.join(_fmt(virial[i, j]) for i, j in VOIGT_ORDER))
        for name, value in conf.features.items():
            lines.append(f' Feature   {name}\t{value}')
        lines.append('END_CFG')
        lines.append('')
    text = '\n'.join(lines)
    if handle is not None:
        handle.write(text)
    return text


_SECTIONS = {'BEGIN_CFG', 'END_CFG', 'Size', 'Supercell', 'AtomData', 'Energy', 'PlusStress', 'Feature'}


class CfgFormatError(ValueError):
    """A ``.cfg`` text that does not follow MLIP's format."""


def read_cfg(text: str) -> list[CfgConfiguration]:
    """Parse the text of a ``.cfg`` file into a list of :class:`CfgConfiguration`.

    :raises CfgFormatError: with the line number for anything malformed.
    """
    configurations = []
    lines = text.splitlines()
    i = 0
    current = None

    def fail(message, lineno):
        raise CfgFormatError(f'.cfg line {lineno + 1}: {message}')

    while i < len(lines):
        raw = lines[i]
        line = raw.strip()
        if not line:
            i += 1
            continue
        if line == 'BEGIN_CFG':
            if current is not None:
                fail('BEGIN_CFG inside a configuration (missing END_CFG)', i)
            current = {'size': None, 'cell': None, 'features': {}}
            i += 1
            continue
        if current is None:
            fail(f'text outside BEGIN_CFG/END_CFG: {line!r}', i)
        if line == 'END_CFG':
            configurations.append(_finish(current, i, fail))
            current = None
            i += 1
            continue
        key = line.split()[0].rstrip(':')
        if key == 'Size':
            try:
                current['size'] = int(lines[i + 1].split()[0])
            except (IndexError, ValueError):
                fail('Size must be followed by an integer line', i + 1)
            i += 2
        elif key == 'Supercell':
            rows = []
            j = i + 1
            while j < len(lines) and len(rows) < 3:
                parts = lines[j].split()
                try:
                    rows.append([float(x) for x in parts])
                except ValueError:
                    break
                if len(rows[-1]) != 3:
                    fail('a Supercell row needs three numbers', j)
                j += 1
            if not rows:
                fail('Supercell without lattice vectors', i)
            if len(rows) != 3:
                fail(f'Supercell with {len(rows)} lattice vectors; only 3-D periodic cells are supported', i)
            current['cell'] = np.array(rows)
            i = j
        elif key == 'AtomData':
            columns = line.split(':', 1)[1].split()
            if current['size'] is None:
                fail('AtomData before Size', i)
            for required in ('id', 'type', 'cartes_x', 'cartes_y', 'cartes_z'):
                if required not in columns:
                    fail(f'AtomData lacks the column {required!r}', i)
            n = current['size']
            rows = []
            for j in range(i + 1, i + 1 + n):
                if j >= len(lines):
                    fail(f'AtomData has fewer than Size={n} rows', j - 1)
                parts = lines[j].split()
                if parts and parts[0].rstrip(':') in _SECTIONS:
                    fail(f'AtomData has fewer than Size={n} rows', j)
                if len(parts) != len(columns):
                    fail(f'AtomData row has {len(parts)} values for {len(columns)} columns', j)
                try:
                    rows.append([float(x) for x in parts])
                except ValueError:
                    fail(f'AtomData row is not numeric: {lines[j].strip()!r}', j)
            current['atoms'] = (columns, np.array(rows, dtype=float).reshape(n, len(columns)), i)
            i += 1 + n
        elif key == 'Energy':
            try:
                current['energy'] = float(lines[i + 1].split()[0])
            except (IndexError, ValueError):
                fail('Energy must be followed by a number', i + 1)
            i += 2
        elif key == 'PlusStress':
            names = line.split(':', 1)[1].split()
            try:
                values = [float(x) for x in lines[i + 1].split()]
            except (IndexError, ValueError):
                fail('PlusStress must be followed by six numbers', i + 1)
            if names != ['xx', 'yy', 'zz', 'yz', 'xz', 'xy'] or len(values) != 6:
                fail('PlusStress must have the six components xx yy zz yz xz xy', i)
            virial = np.zeros((3, 3))
            for (a, b), value in zip(VOIGT_ORDER, values):
                virial[a, b] = virial[b, a] = value
            current['virial'] = virial
            i += 2
        elif key == 'Feature':
            parts = raw.strip().split(None, 2)
            if len(parts) < 2:
                fail('Feature without a name', i)
            current['features'][parts[1]] = parts[2] if len(parts) > 2 else ''
            i += 1
        else:
            fail(f'unknown section {key!r}', i)
    if current is not None:
        fail('file ends inside a configuration (missing END_CFG)', len(lines) - 1)
    return configurations


def _finish(current, lineno, fail) -> CfgConfiguration:
    if current['size'] is None or 'atoms' not in current:
        fail('configuration without Size or AtomData', lineno)
    columns, table, _ = current['atoms']
    col = {name: k for k, name in enumerate(columns)}
    forces = None
    if all(c in col for c in ('fx', 'fy', 'fz')):
        forces = table[:, [col['fx'], col['fy'], col['fz']]]
    grades = table[:, col['nbh_grades']] if 'nbh_grades' in col else None
    for name in ('type', 'id'):
        values = table[:, col[name]]
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            fail(f'AtomData column {name!r} must hold integers, got {values[values != np.round(values)][:3]}', lineno)
    if np.any(table[:, col['type']] < 0):
        fail("AtomData column 'type' must be >= 0", lineno)
    if not np.all(np.isfinite(table)):
        fail('AtomData holds non-finite values', lineno)
    return CfgConfiguration(
        types=table[:, col['type']].astype(int),
        positions=table[:, [col['cartes_x'], col['cartes_y'], col['cartes_z']]],
        cell=current['cell'],
        forces=forces,
        energy=current.get('energy'),
        virial=current.get('virial'),
        features=current['features'],
        ids=table[:, col['id']].astype(int),
        grades=grades,
    )


#: ``Feature`` names of the optional fit weights (MLIP's format has no column for them; readers that do not know
#: them, MLIP's and motep's, keep them as opaque features).
WEIGHT_FEATURES = ('energy_weight', 'stress_weight', 'force_weights')


def weight_features(energy_weight: float, stress_weight: float, force_weights) -> dict:
    """``Feature`` lines (name -> text) for weights other than 1: nothing for a configuration weighted as usual.

    ``force_weights`` (n,) is written as one comma-separated token (no blank: readers that split a Feature line
    on blanks see one value).
    """
    features = {}
    if energy_weight != 1.0:
        features['energy_weight'] = _fmt(energy_weight)
    if stress_weight != 1.0:
        features['stress_weight'] = _fmt(stress_weight)
    force_weights = np.asarray(force_weights, dtype=float).reshape(-1)
    if np.any(force_weights != 1.0):
        features['force_weights'] = ','.join(_fmt(w) for w in force_weights)
    return features


def weights_from_features(features: dict, number_of_atoms: int) -> tuple[float, float, np.ndarray]:
    """(energy weight, stress weight, (n,) force weights) of a configuration's features; 1 where absent.

    :raises CfgFormatError: for a malformed, negative or non-finite weight, or a force-weight count other than n.
    """
    try:
        energy = float(features.get('energy_weight', 1.0))
        stress = float(features.get('stress_weight', 1.0))
        text = features.get('force_weights')
        forces = np.ones(number_of_atoms) if text is None else np.array([float(w) for w in text.split(',')])
    except ValueError as exception:
        raise CfgFormatError(f'malformed weight feature: {exception}') from None
    if forces.shape != (number_of_atoms,):
        raise CfgFormatError(f'Feature force_weights has {forces.size} values for {number_of_atoms} atoms')
    values = np.concatenate([[energy, stress], forces])
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise CfgFormatError('weights must be finite and non-negative')
    return energy, stress, forces
