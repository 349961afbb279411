"""Calculation functions that create or combine :class:`~aiida_mscale.data.training_set.TrainingSetData`."""

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_mscale.constants import EV_PER_ANG3_IN_GPA
from aiida_mscale.data.training_set import TrainingSetData


def stress_ase_from_pw_gpa(stress_gpa) -> np.ndarray:
    """Convert a stress tensor from pw.x (as parsed by aiida-quantumespresso, GPa) to ASE's convention.

    pw.x reports ``sigma_pw = -(1/V) dE/d(strain)`` (its pressure ``P = tr(sigma_pw)/3`` is positive when the
    cell wants to expand); ASE and :class:`TrainingSetData` use ``sigma = +(1/V) dE/d(strain)``
    [eV/Angstrom^3], so the sign flips.
    """
    return -np.asarray(stress_gpa, dtype=float) / EV_PER_ANG3_IN_GPA


def element_symbols(kind_names, structure: orm.StructureData | None) -> list[str]:
    """The element of each atom, given the kind names pw.x's parser wrote (``Li1``, ``fcc111``, ...).

    The structure the calculation ran maps kind names to elements; without one, the names must be elements.
    """
    if structure is None:
        return [str(name) for name in kind_names]
    mapping = {kind.name: kind.symbol for kind in structure.kinds}
    return [mapping[str(name)] for name in kind_names]


@calcfunction
def relabel_kinds_by_element(structure: orm.StructureData) -> orm.StructureData:
    """The same configuration with one kind per element, named by the element (``fcc111`` -> ``Cu``).

    pw.x reads species labels of at most three characters; kinds that differ only in name (ASE tags, slab site
    names) are merged, which leaves a non-magnetic SCF label unchanged. The mass of the first kind of each element
    is kept.
    """
    relabelled = orm.StructureData(cell=structure.cell, pbc=structure.pbc)
    masses = {}
    for kind in structure.kinds:
        masses.setdefault(kind.symbol, kind.mass)
    for site in structure.sites:
        symbol = structure.get_kind(site.kind_name).symbol
        relabelled.append_atom(position=site.position, symbols=symbol, name=symbol, mass=masses[symbol])
    return relabelled


@calcfunction
def build_training_set_from_pw(**trajectories) -> TrainingSetData:
    """Collect the final frame of each pw.x ``output_trajectory`` into one :class:`TrainingSetData`.

    Each input is the ``output_trajectory`` (``TrajectoryData``) of a successful ``PwCalculation``; its
    ``energy`` [eV], ``forces`` [eV/Angstrom] and ``stress`` [GPa, pw.x sign] arrays become the labels, and
    the calculation's UUID is recorded as the source of the label. Configurations are ordered by link label.
    Atoms are keyed by element (kind names such as ``Li1`` map to ``Li`` through the calculation's structure).
    """
    if not trajectories:
        raise ValueError('no trajectories to collect')
    counts, cells, pbc, positions, numbers, energies, forces, stresses, sources = ([] for _ in range(9))
    from ase.data import atomic_numbers

    for label in sorted(trajectories):
        trajectory = trajectories[label]
        names = trajectory.get_arraynames()
        for required in ('energy', 'forces', 'stress'):
            if required not in names:
                raise ValueError(f'trajectory `{label}` has no `{required}` array: was tprnfor/tstress set?')
        calculation = trajectory.creator
        structure = calculation.inputs.structure if calculation is not None else None
        symbols = element_symbols(trajectory.symbols, structure)
        counts.append(len(symbols))
        cells.append(trajectory.get_cells()[-1])
        pbc.append(structure.pbc if structure is not None else (True, True, True))
        positions.append(trajectory.get_positions()[-1])
        numbers.append([atomic_numbers[s] for s in symbols])
        energies.append(trajectory.get_array('energy')[-1])
        forces.append(trajectory.get_array('forces')[-1])
        stresses.append(stress_ase_from_pw_gpa(trajectory.get_array('stress')[-1]))
        sources.append(calculation.uuid if calculation is not None else '')
    return TrainingSetData.from_arrays(
        numbers_of_atoms=counts,
        cells=np.array(cells),
        pbc=np.array(pbc),
        positions=np.concatenate(positions),
        atomic_numbers=np.concatenate(numbers),
        energies=np.array(energies),
        forces=np.concatenate(forces),
        stresses=np.array(stresses),
        source_uuids=sources,
    )


@calcfunction
def merge_training_sets(**training_sets) -> TrainingSetData:
    """Concatenate training sets (ordered by link label) into one; every parent stays linked as an input."""
    if len(training_sets) < 1:
        raise ValueError('nothing to merge')
    parts = [training_sets[label].get_arrays() for label in sorted(training_sets)]
    merged = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    return TrainingSetData.from_arrays(**merged)


@calcfunction
def record_failures(reports: orm.Dict, **structures) -> orm.Dict:
    """Record the configurations whose labelling failed.

    :param reports: ``{label: {'exit_status': int, 'reason': str, 'process_uuid': str}}`` as gathered by the
        work chain from the failed child processes.
    :param structures: the failed configurations themselves, linked as inputs so that a provenance query
        finds them.
    :return: ``{label: {'structure_uuid', 'exit_status', 'reason', 'process_uuid'}}``.
    """
    reports = reports.get_dict()
    if set(reports) != set(structures):
        raise ValueError(f'reports for {sorted(reports)} but structures for {sorted(structures)}')
    return orm.Dict({label: {'structure_uuid': structures[label].uuid, **reports[label]} for label in sorted(reports)})
