"""Calculation functions of local active learning: cut the selected configurations, weight their labels.

The cutting itself is :mod:`aiida_mscale.mtp.neighbourhood` (pure); these wrap it so that every cut cell and every
weighted label is a node with its provenance.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_mscale.data.training_set import TrainingSetData

__all__ = ['cut_selected_neighbourhoods', 'per_atom_grades', 'weight_cut_labels']

#: Keys of the ``neighbourhood`` settings and their defaults (lengths in Angstrom).
NEIGHBOURHOOD_DEFAULTS = {'r_core': 2.5, 'max_centres': 1, 'padding': 3.0}


def per_atom_grades(grades: orm.ArrayData, candidate_indices) -> list[np.ndarray]:
    """The per-atom grades of the candidates ``candidate_indices`` from MtpSelectCalculation's ``grades`` output.

    :raises ValueError: if the output lacks ``neighborhood_grades`` / ``numbers_of_atoms`` or they disagree.
    """
    names = set(grades.get_arraynames())
    missing = sorted({'neighborhood_grades', 'numbers_of_atoms'} - names)
    if missing:
        raise ValueError(f'the grades output lacks {missing}: neighbourhood selection needs per-atom grades')
    counts = grades.get_array('numbers_of_atoms').astype(int)
    values = grades.get_array('neighborhood_grades')
    if counts.sum() != len(values):
        raise ValueError(f'{len(values)} per-atom grades for {int(counts.sum())} atoms of the candidates')
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return [values[offsets[k] : offsets[k + 1]] for k in candidate_indices]


@calcfunction
def cut_selected_neighbourhoods(
    selected: TrainingSetData, grades: orm.ArrayData, settings: orm.Dict
) -> TrainingSetData:
    """Cut cells around the most extrapolative atoms of each selected configuration (unlabelled, weighted).

    :param selected: MtpSelectCalculation's ``selected`` (attribute ``candidate_indices``).
    :param grades: its ``grades`` (per-atom grades of all candidates).
    :param settings: ``r_core``, ``r_mtp`` [Angstrom], ``threshold``, ``max_centres``, ``padding`` [Angstrom].
    :return: the cut cells with ``energy_weights`` and ``stress_weights`` 0 and ``force_weights`` 1 on core atoms
        only; attribute ``cuts`` lists per cut its candidate index, centre, grade, atoms, core atoms and the atoms
        of the sampled configuration.

    A selected configuration with no atom at ``threshold`` (MaxVol selected it for a swap below it) is cut around
    its highest-graded atom.
    """
    from aiida_mscale.mtp.neighbourhood import cut_neighbourhoods

    values = settings.get_dict()
    indices = list(selected.base.attributes.get('candidate_indices'))
    configurations = selected.to_ase()
    if len(indices) != len(configurations):
        raise ValueError(f'{len(indices)} candidate indices for {len(configurations)} selected configurations')
    cut_atoms, force_weights, table = [], [], []
    for candidate, atoms, atom_grades in zip(indices, configurations, per_atom_grades(grades, indices)):
        if len(atom_grades) != len(atoms):
            raise ValueError(f'candidate {candidate}: {len(atom_grades)} grades for {len(atoms)} atoms')
        threshold = min(float(values['threshold']), float(np.max(atom_grades)))
        cuts = cut_neighbourhoods(
            atoms,
            atom_grades,
            r_mtp=float(values['r_mtp']),
            r_core=float(values['r_core']),
            threshold=threshold,
            max_centres=int(values['max_centres']),
            padding=float(values['padding']),
        )
        for cut in cuts:
            cut_atoms.append(cut.atoms)
            force_weights.append(cut.force_weights)
            table.append(
                {
                    'candidate': int(candidate),
                    'centre': int(cut.centre),
                    'grade': float(cut.grade),
                    'atoms': len(cut.atoms),
                    'core_atoms': cut.number_of_core_atoms,
                    'sampled_atoms': len(atoms),
                    'box_edge': float(cut.atoms.cell[0, 0]),
                }
            )
    node = TrainingSetData.from_arrays(
        numbers_of_atoms=[len(a) for a in cut_atoms],
        cells=np.array([a.cell.array for a in cut_atoms]),
        pbc=np.array([a.pbc for a in cut_atoms]),
        positions=np.concatenate([a.positions for a in cut_atoms]),
        atomic_numbers=np.concatenate([a.numbers for a in cut_atoms]),
        energy_weights=np.zeros(len(cut_atoms)),
        stress_weights=np.zeros(len(cut_atoms)),
        force_weights=np.concatenate(force_weights),
    )
    node.base.attributes.set('cuts', table)
    return node


def _same_cell(a, b, tolerance: float) -> bool:
    if len(a) != len(b) or not np.array_equal(a.numbers, b.numbers):
        return False
    if not np.allclose(a.cell.array, b.cell.array, rtol=0, atol=tolerance):
        return False
    delta = a.positions - b.positions
    fractional = np.linalg.solve(a.cell.array.T, delta.T).T
    delta = (fractional - np.round(fractional)) @ a.cell.array
    return bool(np.all(np.linalg.norm(delta, axis=1) <= tolerance))


@calcfunction
def weight_cut_labels(labelled: TrainingSetData, cuts: TrainingSetData) -> TrainingSetData:
    """The labels of cut cells with the cuts' weights: energy and stress weight 0, force weight 1 on core atoms.

    Each labelled configuration is matched to its cut by geometry (same elements in the same order, positions
    within 1e-3 Angstrom modulo the cell), so failed labels (left out by DftLabelingWorkChain) do not shift the
    weights onto the wrong cell.

    :raises ValueError: if a labelled configuration matches no cut.
    """
    labels = labelled.to_ase()
    cells = cuts.to_ase()
    weights = cuts.get_weights()
    offsets = cuts.get_offsets()
    arrays = labelled.get_arrays()
    energy_weights, stress_weights, force_weights = [], [], []
    for k, atoms in enumerate(labels):
        match = next((m for m, cut in enumerate(cells) if _same_cell(atoms, cut, 1e-3)), None)
        if match is None:
            raise ValueError(f'labelled configuration {k} matches none of the {len(cells)} cut cells')
        energy_weights.append(weights['energy_weights'][match])
        stress_weights.append(weights['stress_weights'][match])
        force_weights.append(weights['force_weights'][offsets[match] : offsets[match + 1]])
    arrays.update(
        energy_weights=np.array(energy_weights),
        stress_weights=np.array(stress_weights),
        force_weights=np.concatenate(force_weights),
    )
    return TrainingSetData.from_arrays(**arrays)
