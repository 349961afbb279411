"""Local active learning with real pw.x: one neighbourhood cut out of a 324-atom Li2O cell is labelled.

The chain of the work chain's neighbourhood mode on one selected configuration: cut_selected_neighbourhoods ->
split_configurations -> DftLabelingWorkChain (pw.x at the active-learning tests' cheap settings) ->
weight_cut_labels. r_mtp = 3 Angstrom and r_core = 0.2 Angstrom (the centre alone is core): the cut is the O atom
and its 8 Li neighbours (1.996 A; the next shell, 12 O at 3.26 A, lies beyond 3.2 A) in a 7.4 Angstrom cube
(padding 1 A: the Li atoms sit 1.996 A from the centre, not 3.2 A, so atoms of neighbouring images are still
5.1 A apart). To stay within CI's budget the SCF threshold is 1e-6 Ry instead of the protocol's 4e-10 Ry per atom:
measured, pw.x ran 23 SCF steps in 123 s on the 9.4 A box of the default 3 A padding at the protocol's threshold
(machine load ~6 on 2 cores).

Reference for the label: symmetry. The O centre sits at the middle of a perfect Li8 cube in a cubic box, so its
force vanishes (a cut misplaced across the periodic boundary, or a box too small, would break the symmetry),
while the Li atoms of the cut surface carry large forces - the reason they get force weight 0.
"""

import copy

import numpy as np
import pytest
from ase.build import bulk

from tests.fit_inputs import training_set
from tests.test_active_learning import DFT, OPTIONS

pytestmark = pytest.mark.integration


def test_a_cut_neighbourhood_is_labelled_with_pw(pw_code):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.calculations.functions.active_learning import split_configurations
    from aiida_mscale.calculations.functions.neighbourhood import cut_selected_neighbourhoods, weight_cut_labels
    from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain

    sampled = bulk('OLi2', 'fluorite', a=4.61, cubic=True).repeat(3)
    assert len(sampled) == 324 and sampled[0].symbol == 'O'
    selected = training_set([sampled])
    selected.base.attributes.set('candidate_indices', [0])
    grades = orm.ArrayData()
    atom_grades = np.full(len(sampled), 0.5)
    atom_grades[0] = 6.0
    grades.set_array('neighborhood_grades', atom_grades)
    grades.set_array('numbers_of_atoms', np.array([len(sampled)]))
    settings = {'r_core': 0.2, 'r_mtp': 3.0, 'threshold': 2.0, 'max_centres': 1, 'padding': 1.0}
    cuts = cut_selected_neighbourhoods(selected.store(), grades.store(), orm.Dict(settings))
    structures = split_configurations(cuts)
    assert [len(s.sites) for s in structures.values()] == [9]  # of 324
    structure = structures['structure_000']
    assert structure.cell == pytest.approx(np.eye(3) * 7.4)  # 2 (0.2 + 3) + 1

    overrides = copy.deepcopy(DFT)
    overrides['pw_base']['pw']['parameters']['ELECTRONS'] = {'conv_thr': 1e-6}
    builder = DftLabelingWorkChain.get_builder_from_protocol(
        pw_code, structures, protocol='fast', overrides=overrides, options=OPTIONS
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    labelled = weight_cut_labels(labelled=results['training_set'], cuts=cuts)

    assert len(labelled) == 1 and labelled.get_array('numbers_of_atoms').tolist() == [9]
    weights = labelled.get_weights()
    assert weights['energy_weights'].tolist() == [0.0] and weights['stress_weights'].tolist() == [0.0]
    assert weights['force_weights'].tolist() == [1.0] + [0.0] * 8
    forces = labelled.get_array('forces')
    numbers = labelled.get_array('atomic_numbers')
    assert numbers[0] == 8 and np.all(numbers[1:] == 3)
    assert np.all(np.isfinite(forces)) and np.isfinite(labelled.get_array('energies')[0])
    core, surface = np.linalg.norm(forces[0]), np.linalg.norm(forces[1:], axis=1)
    assert core < 1e-3  # [eV/A] the centre of a symmetric Li8O cut
    assert surface.min() > 0.1 and np.allclose(surface, surface.mean(), rtol=1e-3)  # equal by symmetry, not small
