"""The MTP chain on a Li host-guest oxide, in one provenance graph.

Li_{2-x}O (antifluorite: an O host lattice, Li guests) labelled with real pw.x -> MTP trained with motep ->
MaxVol active set -> hot MD in LAMMPS with pair_style mtp grading on the fly -> the extrapolative
configurations graded again and the most informative ones selected for the next round of DFT.
"""

import re

import numpy as np
import pytest
from ase.build import bulk


def _li2o_configurations():
    """Li2O cells (3 atoms) strained by -3..+3 % and rattled, and Li-deficient Li1O cells."""
    structures = {}
    rng = np.random.default_rng(0)
    for k, strain in enumerate(np.linspace(-0.03, 0.03, 6)):
        atoms = bulk('OLi2', 'fluorite', a=4.61 * (1 + strain))
        atoms.rattle(0.12, seed=20 + k)
        structures[f'li2o_{k}'] = atoms
    for k in range(3):
        atoms = bulk('OLi2', 'fluorite', a=4.61) * (1, 1, 2)
        del atoms[[int(rng.integers(1, 3)) + 3 * int(rng.integers(0, 2))]]  # one Li vacancy: Li_1.5O
        atoms.rattle(0.12, seed=40 + k)
        structures[f'li1p5o_{k}'] = atoms
    return structures


@pytest.fixture(scope='module')
def chain(pw_code, mtp_train_code, mtp_select_code, lammps_code, cheap_dft):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.calculations.lammps_mtp import LammpsMtpCalculation
    from aiida_mscale.calculations.mtp_select import MtpSelectCalculation
    from aiida_mscale.calculations.mtp_train import MtpTrainCalculation
    from aiida_mscale.data.mtp_potential import MtpPotentialData
    from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain

    structures = {label: orm.StructureData(ase=atoms) for label, atoms in _li2o_configurations().items()}
    builder = DftLabelingWorkChain.get_builder_from_protocol(
        pw_code, structures, protocol='fast', overrides=cheap_dft[0], options=cheap_dft[1]
    )
    labelled, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    training_set = labelled['training_set']

    trained, node = run_get_node(
        MtpTrainCalculation,
        code=mtp_train_code,
        training_set=training_set,
        potential=MtpPotentialData.from_template(8, ['Li', 'O'], min_dist=1.6, max_dist=4.5),
        parameters=orm.Dict(
            {
                'validation_fraction': 0.0,
                'loss': {'energy_weight': 1.0, 'forces_weight': 0.01, 'stress_weight': 0.0},
                'steps': [{'method': 'minimize', 'kwargs': {'method': 'BFGS', 'options': {'maxiter': 300}}}],
            }
        ),
    )
    assert node.is_finished_ok, node.exit_message

    graded, node = run_get_node(
        MtpSelectCalculation,
        code=mtp_select_code,
        potential=trained['potential'],
        training_set=training_set,
        candidates=training_set,
    )
    assert node.is_finished_ok, node.exit_message
    potential = graded['potential']

    supercell = bulk('OLi2', 'fluorite', a=4.61, cubic=True) * (2, 2, 2)
    md, md_node = run_get_node(
        LammpsMtpCalculation,
        code=lammps_code,
        structure=orm.StructureData(ase=supercell),
        potential=potential,
        parameters=orm.Dict(
            {
                'ensemble': 'nvt',
                'temperature': 1000.0,
                'timestep': 0.0005,
                'steps': 400,
                'thermo_every': 10,
                'extrapolation': {'every': 1, 'save_threshold': 1.5, 'break_threshold': 5.0},
            }
        ),
    )
    assert md_node.exit_status in (0, 250), md_node.exit_message

    selected, node = run_get_node(
        MtpSelectCalculation,
        code=mtp_select_code,
        potential=potential,
        training_set=training_set,
        candidates=md['extrapolative_configurations'],
        parameters=orm.Dict({'threshold': 1.5, 'max_count': 3}),
    )
    assert node.is_finished_ok, node.exit_message
    return {'training_set': training_set, 'potential': potential, 'md': md, 'md_node': md_node, 'selected': selected}


def test_hot_md_finds_and_grades_extrapolative_configurations(chain):
    md = chain['md']
    saved = md['extrapolative_configurations']
    assert len(saved) >= 1 and saved.number_labelled == 0
    assert md['max_grade'].value > 1.5
    # The grade pair_style mtp wrote for each saved configuration equals MtpSelect's grade of it (same active set).
    retrieved = chain['md_node'].outputs.retrieved
    text = retrieved.base.repository.get_object_content('extrapolative.cfg')
    lammps_grades = np.array([float(g) for g in re.findall(r'Feature\s+MV_grade\s+(\S+)', text)])
    select_grades = chain['selected']['grades'].get_array('max_grades')
    np.testing.assert_allclose(select_grades, lammps_grades, rtol=1e-8)
    print(
        f'\nLi2O MTP: {len(saved)} extrapolative configurations, grades {np.round(lammps_grades, 2).tolist()}; '
        f'MD exit {chain["md_node"].exit_status}: {chain["md_node"].exit_message}; '
        f'thermo max grade {md["thermo"].get_array("max_grade").tolist()}'
    )


def test_selection_is_bounded_and_traceable_to_dft(chain):
    from aiida import orm

    from aiida_mscale.data.training_set import TrainingSetData

    selected = chain['selected']['selected']
    assert 1 <= len(selected) <= 3 and selected.number_labelled == 0
    # One provenance graph: the configurations chosen for the next DFT round descend from the pw.x runs.
    query = orm.QueryBuilder()
    query.append(orm.CalcJobNode, filters={'process_type': 'aiida.calculations:quantumespresso.pw'}, tag='pw')
    query.append(TrainingSetData, with_ancestors='pw', filters={'uuid': selected.uuid}, project='uuid')
    assert query.count() >= 1
    pw_ancestors = orm.QueryBuilder()
    pw_ancestors.append(TrainingSetData, filters={'uuid': selected.uuid}, tag='selected')
    pw_ancestors.append(
        orm.CalcJobNode,
        with_descendants='selected',
        filters={'process_type': 'aiida.calculations:quantumespresso.pw'},
        project='uuid',
    )
    labels = chain['training_set'].get_array('source_uuids').tolist()
    assert set(labels) <= set(pw_ancestors.all(flat=True))
