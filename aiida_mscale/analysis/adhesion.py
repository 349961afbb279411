"""Work of separation and interfacial energy of an interface between two slabs.

Pure functions (numpy); no AiiDA import.

The interface cell holds slab 1 on slab 2, periodic in the plane of the first two lattice vectors, with vacuum
along the third; slab 1 and slab 2 are the same slabs alone in cells of the same in-plane shape. With total
energies ``E_1``, ``E_2``, ``E_12`` [eV] (each relaxed with the same settings) and the in-plane area
``A = |a x b|`` of the interface cell:

- work of separation ``W_sep = (E_1 + E_2 - E_12) / A`` (positive for a bound interface);
- surface energies (when bulk energies per atom ``mu_1``, ``mu_2`` of each slab's crystal are given, each slab
  having two free surfaces): ``sigma_i = (E_i - N_i mu_i) / (2 A)``;
- interfacial energy ``gamma_12 = (E_12 - N_1 mu_1 - N_2 mu_2) / A - sigma_1 - sigma_2`` (one free surface of
  each slab remains in the interface cell), so that Dupre's relation ``W_sep = sigma_1 + sigma_2 - gamma_12``
  holds.

Results in eV/Angstrom^2 and J/m^2 (1 eV/Angstrom^2 = e * 1e20 J/m^2, ``scipy.constants.e``).
"""

from __future__ import annotations

import numpy as np

__all__ = ['DEFAULT_MISMATCH_TOLERANCE', 'in_plane_mismatch', 'work_of_separation']

#: Largest relative in-plane mismatch (lengths of a and b, and the a-b angle as a fraction of it) accepted
#: between the slabs and the interface cell.
DEFAULT_MISMATCH_TOLERANCE = 0.02


def in_plane_mismatch(cell_1, cell_2) -> float:
    """Largest relative difference of the in-plane lattice (|a|, |b|, the a-b angle) of two cells."""
    worst = 0.0
    c1, c2 = np.asarray(cell_1, dtype=float), np.asarray(cell_2, dtype=float)
    for k in (0, 1):
        l1, l2 = np.linalg.norm(c1[k]), np.linalg.norm(c2[k])
        worst = max(worst, abs(l1 - l2) / l2)

    def angle(c):
        return np.arccos(np.clip(c[0] @ c[1] / (np.linalg.norm(c[0]) * np.linalg.norm(c[1])), -1, 1))

    worst = max(worst, abs(angle(c1) - angle(c2)) / angle(c2))
    return float(worst)


def check_interface_cells(cells: dict, tolerance: float = DEFAULT_MISMATCH_TOLERANCE) -> None:
    """Refuse slabs whose in-plane cell differs from the interface's by more than ``tolerance``.

    :param cells: ``{'slab_1': cell, 'slab_2': cell, 'interface': cell}`` (3x3, rows are lattice vectors).
    :raises ValueError: naming the slab and its mismatch.
    """
    for name in ('slab_1', 'slab_2'):
        mismatch = in_plane_mismatch(cells[name], cells['interface'])
        if mismatch > tolerance:
            raise ValueError(
                f'{name}: its in-plane cell differs from the interface cell by {mismatch:.3%} '
                f'(tolerance {tolerance:.1%}); the slabs must share the interface plane'
            )


def work_of_separation(
    energies: dict, interface_cell, atom_counts: dict | None = None, bulk_energies: dict | None = None
) -> dict:
    """W_sep (and, given bulk references, surface and interfacial energies); see the module docstring.

    :param energies: ``{'slab_1', 'slab_2', 'interface'}`` total energies [eV].
    :param interface_cell: 3x3 cell of the interface [Angstrom] (rows; the plane is spanned by rows 0 and 1).
    :param atom_counts: ``{'slab_1': N_1, 'slab_2': N_2}`` (needed with ``bulk_energies``).
    :param bulk_energies: ``{'slab_1': mu_1, 'slab_2': mu_2}`` bulk energies per atom [eV/atom], optional.
    """
    from scipy.constants import e

    cell = np.asarray(interface_cell, dtype=float)
    area = float(np.linalg.norm(np.cross(cell[0], cell[1])))
    if area <= 0:
        raise ValueError('the interface cell has no in-plane area')
    to_si = e * 1e20
    w_sep = (energies['slab_1'] + energies['slab_2'] - energies['interface']) / area
    result = {
        'area': area,
        'work_of_separation': w_sep,
        'work_of_separation_si': w_sep * to_si,
        'units': 'eV/Angstrom^2 (and J/m^2 for *_si); area in Angstrom^2',
    }
    if bulk_energies:
        if not atom_counts:
            raise ValueError('bulk energies need the number of atoms of each slab')
        sigma = {k: (energies[k] - atom_counts[k] * bulk_energies[k]) / (2 * area) for k in ('slab_1', 'slab_2')}
        gamma = (
            (energies['interface'] - sum(atom_counts[k] * bulk_energies[k] for k in ('slab_1', 'slab_2'))) / area
            - sigma['slab_1']
            - sigma['slab_2']
        )
        result.update(
            {
                'surface_energy_1': sigma['slab_1'],
                'surface_energy_2': sigma['slab_2'],
                'interfacial_energy': gamma,
                'surface_energy_1_si': sigma['slab_1'] * to_si,
                'surface_energy_2_si': sigma['slab_2'] * to_si,
                'interfacial_energy_si': gamma * to_si,
            }
        )
    return result
