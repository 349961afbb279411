"""MtpSelectCalculation: MaxVol active set, grades and selection for an MTP fitted to bcc Li labelled by real pw.x.

References: motep's Grader run here directly, the grades of ``pair_style mtp`` in LAMMPS with the active-set file the
calculation wrote, and motep's MaxVol over the training set plus a selection.
"""

import numpy as np
import pytest
from ase.build import bulk

THRESHOLD = 5.0
MAX_COUNT = 2
#: (strain, rattle amplitude [Angstrom]) of the 2-atom bcc candidates; the training set spans -4..+4 % and 0.08 A.
CANDIDATES = [
    (0.0, 0.04),
    (0.02, 0.05),
    (-0.02, 0.06),
    (0.06, 0.1),
    (-0.06, 0.1),
    (0.1, 0.15),
    (-0.1, 0.15),
    (0.15, 0.25),
    (-0.12, 0.3),
    (0.0, 0.3),
    (0.04, 0.2),
]
EXTREME = 6  # a strongly extrapolative candidate: duplicated below
LAYOUT = 'moment+species'
OPTIMIZED = ['species_coeffs', 'moment_coeffs']


@pytest.fixture(scope='module')
def lithium_potential(mtp_train_code, lithium_training_set):
    """A level-6 MTP fitted (briefly: 40 BFGS iterations) to all eight configurations."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.calculations.mtp_train import MtpTrainCalculation
    from aiida_mscale.data.mtp_potential import MtpPotentialData

    builder = MtpTrainCalculation.get_builder()
    builder.code = mtp_train_code
    builder.training_set = lithium_training_set
    builder.potential = MtpPotentialData.from_template(6, ['Li'], min_dist=2.0, max_dist=5.0)
    builder.parameters = orm.Dict(
        {
            'validation_fraction': 0.0,
            'loss': {'energy_weight': 1.0, 'forces_weight': 0.01, 'stress_weight': 0.0},
            'steps': [{'method': 'minimize', 'kwargs': {'method': 'BFGS', 'options': {'maxiter': 40}}}],
        }
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    return results['potential']


def _candidate_images():
    images = []
    for k, (strain, rattle) in enumerate(CANDIDATES):
        atoms = bulk('Li', 'bcc', a=3.43 * (1 + strain), cubic=True)
        atoms.rattle(rattle, seed=100 + k)
        images.append(atoms)
    supercell = bulk('Li', 'bcc', a=3.43 * 1.05, cubic=True).repeat(2)  # 16 atoms
    supercell.rattle(0.2, seed=7)
    images.append(supercell)
    images.append(images[EXTREME].copy())  # the same configuration twice
    shifted = images[EXTREME].copy()
    shifted.positions += shifted.cell[0] - shifted.cell[2]  # the same again, one lattice vector away
    images.append(shifted)
    return images


@pytest.fixture(scope='module')
def candidates():
    from aiida_mscale.data.training_set import TrainingSetData

    return TrainingSetData.from_ase(_candidate_images())  # structures only: no labels


def _select(code, potential, training_set, candidates, **parameters):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.calculations.mtp_select import MtpSelectCalculation

    builder = MtpSelectCalculation.get_builder()
    builder.code = code
    builder.potential = potential
    builder.training_set = training_set
    builder.candidates = candidates
    builder.parameters = orm.Dict({'layout': LAYOUT, **parameters})
    return run_get_node(builder)


@pytest.fixture(scope='module')
def selection(mtp_select_code, lithium_potential, lithium_training_set, candidates):
    results, node = _select(
        mtp_select_code, lithium_potential, lithium_training_set, candidates, threshold=THRESHOLD, max_count=MAX_COUNT
    )
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    return results


def _motep_grader(potential, training_set):
    """motep's Grader (neighbourhood mode) for ``potential``, updated with ``training_set``, built here directly."""
    import tempfile
    from pathlib import Path

    from ase.data import atomic_numbers
    from motep.grade.grader import Grader
    from motep.grade.setting import GradeMode
    from motep.io.mlip.mtp import read_mtp

    with tempfile.TemporaryDirectory() as tmp:
        data = read_mtp(str(potential.write(Path(tmp) / 'pot.mtp')))
    data.species = [atomic_numbers[s] for s in potential.species]
    data.optimized = list(OPTIMIZED)
    grader = Grader(
        data,
        seed=42,
        engine='cext',
        mode=GradeMode.NEIGHBORHOOD,
        maxvol_setting={'algorithm': 'maxvol', 'init_method': 'qr', 'threshold': 1e-9, 'maxiter': 100_000},
    )
    grader.update(training_set if isinstance(training_set, list) else training_set.to_ase())
    return grader


def test_grades_equal_motep(selection, lithium_potential, lithium_training_set, candidates):
    grader = _motep_grader(lithium_potential, lithium_training_set)
    graded = grader.grade(candidates.to_ase())
    reference_nbh = np.concatenate([a.calc.results['nbh_grades'] for a in graded])
    reference_max = np.array([a.calc.results['MV_grade'] for a in graded])

    grades = selection['grades']
    print(f'\ncandidate grades: {np.round(grades.get_array("max_grades"), 3).tolist()}')
    np.testing.assert_allclose(grades.get_array('neighborhood_grades'), reference_nbh, rtol=1e-10, atol=0)
    np.testing.assert_allclose(grades.get_array('max_grades'), reference_max, rtol=1e-10, atol=0)
    assert grades.get_array('numbers_of_atoms').tolist() == [2] * len(CANDIDATES) + [16, 2, 2]
    # the grades span interpolation (< 1), mild extrapolation (1 .. threshold) and strong extrapolation
    assert reference_max.min() < 1.0 < THRESHOLD < reference_max.max()
    assert np.any((reference_max > 1.0) & (reference_max < THRESHOLD))

    # the attached active set is the pseudo-inverse of motep's MaxVol submatrix of the training set
    potential = selection['potential']
    assert potential.has_active_set and potential.base.attributes.get('active_set_layout') == LAYOUT
    assert potential.get_text() == lithium_potential.get_text()
    lines = potential.get_active_set().splitlines()
    inverse = np.array([[float(v) for v in ln.split()] for ln in lines[lines.index('inverse') + 1 :]])
    submatrix = grader.maxvol_result.submatrix
    assert inverse.shape == submatrix.shape == (potential.base.attributes.get('active_set_size'),) * 2
    residual = np.abs(inverse @ submatrix - np.eye(len(inverse))).max()
    condition = np.linalg.cond(submatrix)  # a narrow training set: nearly collinear rows
    print(f'active set: K = {len(inverse)}, condition number {condition:.2e}, |A^-1 A - 1| = {residual:.1e}')
    assert residual < 1e-13 * condition


def test_grades_equal_pair_style(selection, candidates, tmp_path):
    """``pair_style mtp`` with the active-set file the calculation wrote grades like the calculation."""
    from aiida_mscale.lammps.testing import run_lammps, write_data

    potential = selection['potential']
    potential.write(tmp_path / 'pot.mtp')
    (tmp_path / 'pot.als').write_text(potential.get_active_set())
    grades = selection['grades']
    max_grades = grades.get_array('max_grades')
    offsets = np.concatenate([[0], np.cumsum(grades.get_array('numbers_of_atoms'))])
    images = candidates.to_ase()
    checked = [int(np.argmax(max_grades)), len(CANDIDATES), 0, 3]  # extreme, 16-atom supercell, interpolating, mild
    for index in checked:
        workdir = tmp_path / f'candidate_{index}'
        workdir.mkdir()
        write_data(workdir / 'data.lmp', images[index], [3])
        run_lammps(
            f"""
units metal
atom_style atomic
atom_modify map array
read_data data.lmp
plugin load {{plugin}}
pair_style mtp active_set {tmp_path / 'pot.als'}
pair_coeff * * {tmp_path / 'pot.mtp'}
compute g all mtp/grade
dump d all custom 1 grades.dump id c_g
dump_modify d format float %.17g sort id
run 0
""",
            workdir,
        ).check()
        lines = (workdir / 'grades.dump').read_text().splitlines()
        start = [k for k, ln in enumerate(lines) if ln.startswith('ITEM: ATOMS')][-1] + 1
        rows = np.array([[float(v) for v in ln.split()] for ln in lines[start : start + len(images[index])]])
        lammps = rows[np.argsort(rows[:, 0]), 1]
        ours = grades.get_array('neighborhood_grades')[offsets[index] : offsets[index + 1]]
        print(f'candidate {index}: grade {ours.max():.6g}, pair_style rel diff {np.abs(lammps / ours - 1).max():.1e}')
        np.testing.assert_allclose(lammps, ours, rtol=1e-8, atol=0)


def test_selection(selection, mtp_select_code, lithium_potential, lithium_training_set, candidates):
    grades = selection['grades']
    max_grades = grades.get_array('max_grades')
    selected = grades.get_array('selected_indices').tolist()
    summary = selection['selection'].get_dict()
    print(
        f'\nselected {selected} (grades {max_grades[selected].round(3).tolist()}), log|det| '
        f'{summary["log_det_before"]:.3f} -> {summary["log_det_after"]:.3f}'
    )

    # threshold and count limit; the limit binds here (more candidates are above the threshold)
    assert all(max_grades[k] >= THRESHOLD for k in selected)
    assert len(selected) == MAX_COUNT < int((max_grades >= THRESHOLD).sum()) - 2
    # the copies of the extreme candidate are recognised (a lattice translation included) and never selected
    n = len(CANDIDATES) + 1
    assert grades.get_array('duplicate_of').tolist() == [-1] * n + [EXTREME, EXTREME]
    assert max_grades[n] == max_grades[EXTREME]
    assert len({EXTREME, n, n + 1} & set(selected)) <= 1

    # each swap multiplies |det| of the active set by its grade
    gain = sum(np.log(s['grade']) for s in summary['swaps'])
    assert summary['log_det_after'] - summary['log_det_before'] == pytest.approx(gain, rel=1e-9)
    assert all(s['grade'] >= THRESHOLD for s in summary['swaps'])

    # the selected configurations, without labels
    chosen = selection['selected']
    assert chosen.base.attributes.get('candidate_indices') == selected
    assert chosen.number_labelled == 0 and len(chosen) == MAX_COUNT
    images, originals = chosen.to_ase(), candidates.to_ase()
    for atoms, k in zip(images, selected):
        np.testing.assert_array_equal(atoms.positions, originals[k].positions)
        np.testing.assert_array_equal(atoms.cell.array, originals[k].cell.array)

    # MaxVol property, checked with motep's own MaxVol over the training set plus a pick: the selection raises
    # log|det| of the active set more than random picks of the same size from the same candidates
    training = lithium_training_set.to_ase()

    def log_det(indices):
        grader = _motep_grader(lithium_potential, training + [originals[k] for k in indices])
        return np.linalg.slogdet(grader.maxvol_result.submatrix)[1]

    rng = np.random.default_rng(0)
    random_picks = [log_det(rng.choice(len(originals), MAX_COUNT, replace=False)) for _ in range(20)]
    ours = log_det(selected)
    print(
        f'log|det|: training only {log_det([]):.3f}, selected {ours:.3f}, random picks '
        f'{np.round(sorted(random_picks), 3).tolist()}'
    )
    assert ours > log_det([]) + 1.0
    assert ours >= max(random_picks) - 1e-9

    # without a count limit: every selected candidate is above the threshold, the duplicates still count once
    results, node = _select(mtp_select_code, lithium_potential, lithium_training_set, candidates, threshold=THRESHOLD)
    assert node.is_finished_ok, node.exit_message
    unlimited = results['grades'].get_array('selected_indices').tolist()
    print(f'without a limit: {unlimited}')
    assert len(unlimited) > MAX_COUNT and all(max_grades[k] >= THRESHOLD for k in unlimited)
    assert len({EXTREME, n, n + 1} & set(unlimited)) == 1


def test_bad_inputs_are_refused_before_anything_runs(
    mtp_select_code, lithium_potential, lithium_training_set, candidates
):
    from aiida import orm

    from aiida_mscale.data.mtp_potential import MtpPotentialData
    from aiida_mscale.data.training_set import TrainingSetData

    count = orm.QueryBuilder().append(orm.CalcJobNode).count()
    lithium_cobalt = bulk('Li', 'bcc', a=3.43, cubic=True)
    lithium_cobalt.numbers[1] = 27
    with_cobalt = TrainingSetData.from_ase([lithium_cobalt])
    with pytest.raises(ValueError, match=r"the candidates have species \['Co'\] that the potential lacks"):
        _select(mtp_select_code, lithium_potential, lithium_training_set, with_cobalt)
    template = MtpPotentialData.from_template(6, ['Li'], min_dist=2.0, max_dist=5.0)
    with pytest.raises(ValueError, match='the potential is an untrained template'):
        _select(mtp_select_code, template, lithium_training_set, candidates)
    with pytest.raises(
        ValueError, match=r'parameters.threshold: Input should be greater than or equal to 1 \(got 0.9\)'
    ):
        _select(mtp_select_code, lithium_potential, lithium_training_set, candidates, threshold=0.9)
    with pytest.raises(ValueError, match=r'parameters.max_count: Input should be greater than or equal to 1 \(got 0\)'):
        _select(mtp_select_code, lithium_potential, lithium_training_set, candidates, max_count=0)
    too_small = TrainingSetData.from_ase(lithium_training_set.to_ase()[:2])  # 4 neighbourhoods for K = 6
    with pytest.raises(ValueError, match='4 atomic neighbourhoods but an active set'):
        _select(mtp_select_code, lithium_potential, too_small, candidates)
    assert orm.QueryBuilder().append(orm.CalcJobNode).count() == count  # nothing ran


def test_find_duplicates_and_greedy_maxvol_by_hand():
    """The pure pieces on small inputs whose answers are known."""
    from aiida_mscale.mtp.select import find_duplicates, greedy_maxvol

    images = _candidate_images()
    n = len(CANDIDATES) + 1
    assert find_duplicates(images).tolist() == [-1] * n + [EXTREME, EXTREME]
    moved = images[0].copy()
    moved.positions[0, 0] += 1e-3
    assert find_duplicates([images[0], moved]).tolist() == [-1, -1]

    # 2 x 2 active set = identity; row grades are the entries themselves
    rows = np.array([[3.0, 0.0], [0.0, 2.0], [0.0, 1.5], [1.2, 0.0]])
    owner = np.array([0, 1, 2, 3])
    everyone = np.ones(4, dtype=bool)
    result = greedy_maxvol(np.eye(2), rows, owner, everyone, threshold=1.1)
    assert result['selected'] == [0, 1]  # 3 into column 0, then 2 into column 1
    assert greedy_maxvol(np.eye(2), rows, owner, everyone, threshold=2.5)['selected'] == [0]
    assert greedy_maxvol(np.eye(2), rows, owner, everyone, threshold=1.1, max_count=1)['selected'] == [0]
    assert greedy_maxvol(np.eye(2), rows, owner, np.array([False, True, True, True]), threshold=1.1)['selected'] == [
        1,
        3,
    ]
    with pytest.raises(ValueError, match='at least 1'):
        greedy_maxvol(np.eye(2), rows, owner, everyone, threshold=0.5)


def test_executable_reports_errors(tmp_path, capsys):
    """``mscale-mtp-select`` itself refuses an untrained potential and a threshold below 1 (exit status 1)."""
    import json

    from aiida_mscale.mtp.cfg import CfgConfiguration, write_cfg
    from aiida_mscale.mtp.select import main
    from aiida_mscale.mtp.template import generate_untrained_mtp

    generate_untrained_mtp(6, 1, radial_basis_size=8, min_dist=2.0, max_dist=5.0).to_potential().write(
        tmp_path / 'potential.mtp'
    )
    atoms = _candidate_images()[0]
    text = write_cfg([CfgConfiguration(types=np.zeros(2, int), positions=atoms.positions, cell=atoms.cell.array)])
    (tmp_path / 'training.cfg').write_text(text)
    (tmp_path / 'candidates.cfg').write_text(text)
    inputs = {
        'species': ['Li'],
        'potential': 'potential.mtp',
        'training': 'training.cfg',
        'candidates': 'candidates.cfg',
    }
    (tmp_path / 'input.json').write_text(json.dumps(inputs))
    assert main([str(tmp_path / 'input.json')]) == 1
    assert 'ERROR: the potential is an untrained template' in capsys.readouterr().err
    (tmp_path / 'input.json').write_text(json.dumps({**inputs, 'threshold': 0.5}))
    assert main([str(tmp_path / 'input.json')]) == 1
    assert 'ERROR: the selection threshold must be at least 1' in capsys.readouterr().err
