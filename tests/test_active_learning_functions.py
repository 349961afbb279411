"""The calcfunctions of the active-learning loop, against values constructed by hand (no external code)."""

import numpy as np
import pytest
from ase.build import bulk

from tests.fit_inputs import training_set


def test_initial_configurations_hold_the_asked_guest_fractions(aiida_profile):
    from aiida import orm

    from aiida_mscale.calculations.functions.active_learning import generate_initial_configurations

    host = bulk('OLi2', 'fluorite', a=4.61, cubic=True)  # 8 Li sites, 4 O
    parameters = {'fractions': [1.0, 0.5, 0.25], 'per_fraction': 3, 'strain': 0.03, 'rattle': 0.05, 'seed': 4}
    structures = generate_initial_configurations(orm.StructureData(ase=host), orm.Str('Li'), orm.Dict(parameters))
    assert len(structures) == 9
    lithium = [s.get_ase().get_chemical_symbols().count('Li') for _, s in sorted(structures.items())]
    assert lithium == [8, 8, 8, 4, 4, 4, 2, 2, 2]
    for structure in structures.values():
        atoms = structure.get_ase()
        assert atoms.get_chemical_symbols().count('O') == 4
        ratios = np.linalg.norm(atoms.cell.array, axis=1) / 4.61
        assert np.all(np.abs(ratios - 1) <= 0.03 + 1e-12)
    # the orderings are random but seeded: the same seed gives the same configurations
    again = generate_initial_configurations(orm.StructureData(ase=host), orm.Str('Li'), orm.Dict(parameters))
    np.testing.assert_array_equal(
        again['structure_004'].get_ase().positions, structures['structure_004'].get_ase().positions
    )
    orderings = {
        tuple(np.round(s.get_ase().positions[:4].ravel(), 1)) for k, s in structures.items() if k >= 'structure_003'
    }
    assert len(orderings) > 1


def test_mu_grid_is_centred_on_the_guest_insertion_energy(aiida_profile):
    """E = mu_0 N_Li + e_O N_O exactly: the regression recovers mu_0, and the grid is mu_0 + offsets."""
    from aiida import orm

    from aiida_mscale.calculations.functions.active_learning import default_mu_grid

    mu_0, e_o = -196.25, -431.5
    configurations = []
    for removed in ([], [1], [1, 2, 5], [0, 3, 6, 9]):
        atoms = bulk('OLi2', 'fluorite', a=4.61, cubic=True)
        atoms = atoms[[k for k in range(len(atoms)) if not (atoms[k].symbol == 'Li' and k in removed)]]
        configurations.append(atoms)
    energies = [
        mu_0 * a.get_chemical_symbols().count('Li') + e_o * a.get_chemical_symbols().count('O') for a in configurations
    ]
    grid = default_mu_grid(training_set(configurations, energies), orm.Str('Li'), orm.List([-1.0, 0.0, 0.5]))
    assert grid.get_list() == pytest.approx([mu_0 - 1.0, mu_0, mu_0 + 0.5], abs=1e-9)


def test_mu_grid_needs_two_guest_counts(aiida_profile):
    from aiida import orm

    from aiida_mscale.calculations.functions.active_learning import default_mu_grid

    atoms = bulk('OLi2', 'fluorite', a=4.61, cubic=True)
    with pytest.raises(ValueError, match='two or more guest counts'):
        default_mu_grid(training_set([atoms, atoms], [-1.0, -1.1]), orm.Str('Li'), orm.List([0.0]))


def test_coverage_counts_guest_fractions(aiida_profile):
    from aiida import orm

    from aiida_mscale.calculations.functions.active_learning import build_coverage

    thermo_a, thermo_b = orm.ArrayData(), orm.ArrayData()
    thermo_a.set_array('atoms', np.array([12, 11, 10, 10]))  # 4 O + 8, 7, 6, 6 Li
    thermo_b.set_array('atoms', np.array([12, 12]))
    summary = {
        'host_atoms': 4,
        'guest_sites': 8,
        'keys': {'it001_sp000': [1, -2.0, 600.0], 'it001_sp001': [1, -1.0, 600.0]},
    }
    coverage = build_coverage(orm.Dict(summary), it001_sp000=thermo_a, it001_sp001=thermo_b)
    np.testing.assert_allclose(coverage.get_array('x_min'), [0.75, 1.0])
    np.testing.assert_allclose(coverage.get_array('x_mean'), [(1 + 0.875 + 0.75 + 0.75) / 4, 1.0])
    x = coverage.get_array('x')
    assert x.shape == (2, 4) and np.isnan(x[1, 2:]).all()
    np.testing.assert_allclose(coverage.get_array('mu'), [-2.0, -1.0])


def test_learning_curve_reads_the_fit_errors(aiida_profile):
    from aiida import orm

    from aiida_mscale.calculations.functions.active_learning import build_learning_curve

    errors = {
        'training': {'energy_per_atom': {'rmse': 3.0}, 'forces': {'rmse': 80.0}, 'stress': {'rmse': None}},
        'validation': {'energy_per_atom': {'rmse': 4.0}, 'forces': {'rmse': 95.0}, 'stress': {'rmse': None}},
    }
    summary = {
        'iterations': [1, 2],
        'labels': [6, 9],
        'max_grades': [[3.0, None], [1.2, 1.4]],
        'state_points': [[-1.0, 600.0], [0.0, 600.0]],
    }
    curve = build_learning_curve(orm.Dict(summary), iteration_001=orm.Dict(errors))
    np.testing.assert_allclose(curve.get_array('train_rmse_forces'), [80.0, np.nan])
    np.testing.assert_allclose(curve.get_array('validation_rmse_energy'), [4.0, np.nan])
    assert np.isnan(curve.get_array('train_rmse_stress')).all()
    np.testing.assert_allclose(curve.get_array('max_grade'), [[3.0, np.nan], [1.2, 1.4]])
    assert curve.get_array('number_of_labels').tolist() == [6, 9]


def test_evaluate_potential_against_known_label_errors(aiida_profile):
    """Labels = the potential's own predictions + known offsets: the RMSEs are those of the offsets."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from aiida_mscale.calculations.functions.active_learning import evaluate_potential
    from aiida_mscale.data.training_set import TrainingSetData
    from tests.test_lammps_mtp import _cell, _potential

    potential = _potential(['Li'], with_active_set=False, seed=2)
    rng = np.random.default_rng(7)
    images, energy_offsets, force_offsets = [], [], []
    for seed in range(3):
        atoms = _cell(['Li'], 0.05, seed=seed)
        atoms.calc = potential.get_calculator()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        de, df = rng.normal(0, 0.05), rng.normal(0, 0.02, forces.shape)
        atoms.calc = SinglePointCalculator(atoms, energy=energy + de, forces=forces + df)
        images.append(atoms)
        energy_offsets.append(de / len(atoms))
        force_offsets.append(df)
    errors = evaluate_potential(potential, TrainingSetData.from_ase(images)).get_dict()['validation']
    assert errors['n'] == 3
    expected_energy = 1000 * np.sqrt(np.mean(np.square(energy_offsets)))  # meV/atom
    expected_forces = 1000 * np.sqrt(np.mean(np.square(np.concatenate(force_offsets))))  # meV/Angstrom
    assert errors['energy_per_atom']['rmse'] == pytest.approx(expected_energy, rel=1e-6)
    assert errors['forces']['rmse'] == pytest.approx(expected_forces, rel=1e-6)


def test_candidates_with_collapsed_atoms_are_left_out(aiida_profile):
    """A potential far outside its domain can pull two atoms to a fraction of an Angstrom in one MD step; such a
    configuration is not collected for labelling (DftLabelingWorkChain would refuse the whole batch)."""
    from aiida import orm

    from aiida_mscale.calculations.functions.active_learning import collect_candidates, shortest_distances

    good = bulk('OLi2', 'fluorite', a=4.61, cubic=True)  # Li-O 1.996 A
    collapsed = good.copy()
    collapsed.positions[1] = collapsed.positions[0] + [0.4, 0.0, 0.0]  # a Li 0.4 A from the O
    near = good.copy()
    near.positions[1] = near.positions[0] + [1.3, 0.0, 0.0]
    first = training_set([good, collapsed])
    second = training_set([near, good[:5]])
    np.testing.assert_allclose(shortest_distances(first), [4.61 * np.sqrt(3) / 4, 0.4], rtol=1e-9)

    kept = collect_candidates(min_distance=orm.Float(1.2), a=first, b=second)
    assert kept.get_array('numbers_of_atoms').tolist() == [12, 12, 5]
    np.testing.assert_allclose(kept.get_array('positions')[12:24], near.positions)
    np.testing.assert_array_equal(kept.get_array('atomic_numbers')[24:], good[:5].numbers)
    assert len(collect_candidates(a=first, b=second)) == 4  # without min_distance: everything
    with pytest.raises(ValueError, match='at least 1.5 Angstrom'):
        collect_candidates(min_distance=orm.Float(1.5), a=training_set([collapsed]))
