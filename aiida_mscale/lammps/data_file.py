"""LAMMPS data files (``atom_style atomic``) of ASE structures, in LAMMPS's restricted-triclinic frame.

Pure Python (numpy, ase), no AiiDA import; used by the CalcJobs (production) and by :mod:`.testing`.
Units: positions and cell in Angstrom, masses in g/mol, velocities in Angstrom/ps (LAMMPS ``metal``).

LAMMPS needs the cell as a lower-triangular matrix (``a`` along x, ``b`` in the xy plane): :func:`lammps_cell` gives
that cell and the rotation ``R`` with ``x_lammps = x R`` (positions, velocities and forces rotate alike; a tensor
``T`` goes back as ``R T R^T``). Every number is checked finite by :func:`aiida_mscale.schema.format_float` and
written with 17 significant digits (``%.17g``, exact for a double), so a structure goes through the file unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aiida_mscale.schema import format_float, format_int

__all__ = ['data_text', 'lammps_cell', 'write_data']


def _exact(value, what: str) -> str:
    """``value`` with 17 significant digits, after the schema's check that it is a finite real number."""
    format_float(value, what)  # raises ValueError for anything but a finite real number
    return f'{float(value):.17g}'


def lammps_cell(cell) -> tuple[np.ndarray, np.ndarray]:
    """LAMMPS's restricted-triclinic cell of an ASE cell (rows a, b, c [Angstrom]), and the rotation R (x' = x R).

    The cell is right-handed after rotation only if it was right-handed before (ASE's cells are).
    """
    cell = np.asarray(cell, dtype=float)
    a, b, c = cell
    ax = np.linalg.norm(a)
    ahat = a / ax
    bx = b @ ahat
    by = np.linalg.norm(b - bx * ahat)
    cx = c @ ahat
    cy = (c @ b - bx * cx) / by
    cz = np.sqrt(max(c @ c - cx * cx - cy * cy, 0.0))
    new = np.array([[ax, 0.0, 0.0], [bx, by, 0.0], [cx, cy, cz]])
    rotation = np.linalg.solve(cell, new)
    return new, rotation


def data_text(
    atoms,
    species: list[int],
    masses: list[float] | None = None,
    ntypes: int | None = None,
    velocities=None,
) -> str:
    """The text of a LAMMPS data file (``atom_style atomic``) of ASE ``atoms``.

    :param species: atomic numbers in type order: an atom of atomic number ``species[k]`` gets type ``k + 1``;
        every species has a type even when ``atoms`` has none of it (GCMC can insert it).
    :param masses: per type [g/mol]; default ASE's standard atomic masses of ``species``.
    :param ntypes: number of atom types (default ``len(species)``).
    :param velocities: optional (N, 3) Cartesian velocities [Angstrom/ps] in the frame of ``atoms``; written
        rotated to LAMMPS's frame as a ``Velocities`` section.
    :raises ValueError: for an atom whose species is not in ``species``, or a non-finite number.
    """
    from ase.data import atomic_masses

    cell, rotation = lammps_cell(atoms.cell.array)
    positions = np.asarray(atoms.positions, dtype=float) @ rotation
    ntypes = ntypes or len(species)
    missing = sorted(set(int(z) for z in atoms.numbers) - set(species))
    if missing:
        raise ValueError(f'atomic numbers {missing} have no atom type (types: {species})')
    types = [species.index(int(z)) + 1 for z in atoms.numbers]
    if masses is None:
        masses = [float(atomic_masses[z]) for z in species]
    x = _exact
    lines = [
        'LAMMPS data file (aiida_mscale.lammps.data_file)',
        '',
        f'{format_int(len(atoms))} atoms',
        f'{format_int(ntypes)} atom types',
        '',
        f'0.0 {x(cell[0, 0], "cell")} xlo xhi',
        f'0.0 {x(cell[1, 1], "cell")} ylo yhi',
        f'0.0 {x(cell[2, 2], "cell")} zlo zhi',
        f'{x(cell[1, 0], "cell")} {x(cell[2, 0], "cell")} {x(cell[2, 1], "cell")} xy xz yz',
        '',
        'Masses',
        '',
    ]
    for t in range(ntypes):
        lines.append(f'{t + 1} {x(masses[t] if t < len(masses) else 1.0, "mass")}')
    lines += ['', 'Atoms # atomic', '']
    for k, (t, p) in enumerate(zip(types, positions), start=1):
        lines.append(f'{k} {t} {x(p[0], "position")} {x(p[1], "position")} {x(p[2], "position")}')
    if velocities is not None:
        rotated = np.asarray(velocities, dtype=float) @ rotation
        if rotated.shape != (len(atoms), 3):
            raise ValueError(f'velocities must have shape ({len(atoms)}, 3), not {rotated.shape}')
        lines += ['', 'Velocities', '']
        for k, v in enumerate(rotated, start=1):
            lines.append(f'{k} {x(v[0], "velocity")} {x(v[1], "velocity")} {x(v[2], "velocity")}')
    return '\n'.join(lines) + '\n'


def write_data(path, atoms, species: list[int], masses=None, ntypes: int | None = None, velocities=None) -> Path:
    """Write :func:`data_text` of ``atoms`` to ``path``; returns the path."""
    path = Path(path)
    path.write_text(data_text(atoms, species, masses=masses, ntypes=ntypes, velocities=velocities))
    return path
