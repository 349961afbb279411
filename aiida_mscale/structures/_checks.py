"""Checks every builder of :mod:`aiida_mscale.structures` runs on its own output, and its argument checks.

A builder returns a structure only after it has verified it: the space group (spglib, at a stated
``symprec`` in Angstrom), the composition, and that no two atoms are closer than a stated distance
(periodic images included). A failed check is a bug of the builder, so it raises ``RuntimeError``;
a bad argument raises ``ValueError`` naming the argument.

Pure Python (numpy, ase, spglib): no AiiDA import.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter

import numpy as np

__all__ = [
    'SYMPREC',
    'as_seed',
    'check_composition',
    'check_no_overlap',
    'check_space_group',
    'minimum_distance',
    'real_in_range',
    'space_group',
]

#: Default tolerance of the space-group checks [Angstrom] (spglib's ``symprec``). The builders place every
#: atom exactly, so 1e-3 A is loose enough for round-off and far tighter than any physical distortion.
SYMPREC = 1e-3


def real_in_range(value, name: str, low: float, high: float, *, low_open: bool = False, high_open: bool = False):
    """``value`` as a float if it is a finite real number in [low, high] (open ends on request).

    :raises ValueError: naming ``name``, the value and the allowed range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f'{name} must be a finite number, not {value!r}')
    value = float(value)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        left = '(' if low_open else '['
        right = ')' if high_open else ']'
        raise ValueError(f'{name} = {value!r} is out of range: allowed {left}{low}, {high}{right}')
    return value


def as_seed(seed, name: str = 'seed') -> int:
    """``seed`` as a non-negative int (numpy's ``default_rng`` accepts any such integer)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise ValueError(f'{name} must be a non-negative integer, not {seed!r}')
    return int(seed)


def as_positive_int(value, name: str, low: int = 1, high: int | None = None) -> int:
    """``value`` as an int in [low, high]; refuses bools, floats and out-of-range values, naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f'{name} must be an integer, not {value!r}')
    value = int(value)
    if value < low or (high is not None and value > high):
        allowed = f'[{low}, {high}]' if high is not None else f'>= {low}'
        raise ValueError(f'{name} = {value} is out of range: allowed {allowed}')
    return value


def as_repeat(repeat, name: str = 'supercell') -> tuple[int, int, int]:
    """A supercell repetition: an int n (n x n x n) or three ints, each in [1, 10]."""
    if isinstance(repeat, numbers.Integral) and not isinstance(repeat, bool):
        repeat = (repeat,) * 3
    try:
        values = tuple(repeat)
    except TypeError:
        raise ValueError(f'{name} must be an integer or three integers, not {repeat!r}') from None
    if len(values) != 3:
        raise ValueError(f'{name} must be an integer or three integers, not {repeat!r}')
    return tuple(as_positive_int(v, name, 1, 10) for v in values)


def space_group(atoms, symprec: float = SYMPREC) -> tuple[int, str]:
    """(international number, Hermann-Mauguin symbol) of ``atoms`` found by spglib at ``symprec`` [Angstrom]."""
    import spglib

    cell = (np.asarray(atoms.cell.array), atoms.get_scaled_positions(wrap=True), atoms.get_atomic_numbers())
    dataset = spglib.get_symmetry_dataset(cell, symprec=symprec)
    if dataset is None:
        raise RuntimeError('spglib found no symmetry at all (not even P1): the cell is degenerate')
    return int(dataset.number), str(dataset.international)


def check_space_group(atoms, expected: int, what: str, symprec: float = SYMPREC) -> None:
    """Raise ``RuntimeError`` unless spglib finds space group number ``expected`` for ``atoms``."""
    number, symbol = space_group(atoms, symprec)
    if number != expected:
        raise RuntimeError(f'{what}: space group {symbol} ({number}) found, {expected} expected (symprec {symprec} A)')


def check_composition(atoms, expected: dict, what: str) -> None:
    """Raise ``RuntimeError`` unless ``atoms`` has exactly the element counts ``expected`` (zeros ignored)."""
    found = Counter(atoms.get_chemical_symbols())
    wanted = {k: int(v) for k, v in expected.items() if int(v)}
    if dict(found) != wanted:
        raise RuntimeError(
            f'{what}: composition {dict(sorted(found.items()))}, expected {dict(sorted(wanted.items()))}'
        )


def minimum_distance(atoms) -> float:
    """Shortest interatomic distance [Angstrom], periodic images included (inf for fewer than two atoms)."""
    from ase.neighborlist import neighbor_list

    if len(atoms) < 2 and not any(atoms.pbc):
        return math.inf
    cutoff = 3.0
    while cutoff <= 48.0:
        distances = neighbor_list('d', atoms, cutoff)
        if len(distances):
            return float(distances.min())
        cutoff *= 2
    return math.inf


def check_no_overlap(atoms, min_distance: float, what: str) -> float:
    """Raise ``RuntimeError`` if two atoms are closer than ``min_distance`` [Angstrom]; return the shortest distance."""
    shortest = minimum_distance(atoms)
    if shortest < min_distance:
        raise RuntimeError(f'{what}: two atoms are {shortest:.3f} A apart (minimum allowed {min_distance} A)')
    return shortest
