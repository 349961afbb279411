"""Every parser of the package on stored outputs (``tests/fixtures/<entry point>/<case>/``): every branch, no binary.

Each case asserts the exit code by its name (numbers may be renumbered between the 3xx and 4xx bands) and, for the
successful ones, values read from the stored files independently of the parser (numpy on the same text).
"""

import json
import pathlib

import numpy as np
import pytest

FIXTURES = pathlib.Path(__file__).parent.parent / 'fixtures'


def exit_code(entry_point, name):
    """The status of the exit code ``name`` of the CalcJob."""
    from aiida.plugins import CalculationFactory

    return CalculationFactory(entry_point).exit_codes[name].status


# ------------------------------------------------------------------------------------------------ LAMMPS MD
MD = 'mscale.lammps.mtp'


def test_lammps_md_ok(parse, calc_inputs):
    outputs, status, _ = parse(MD, 'ok', calc_inputs(MD))
    assert status == 0
    table = np.loadtxt(FIXTURES / MD / 'ok' / 'thermo.dat')
    thermo = outputs['thermo']
    assert sorted(thermo.get_arraynames()) == sorted(['step', 'time', 'temp', 'pe', 'etotal', 'press', 'vol', 'atoms'])
    np.testing.assert_array_equal(thermo.get_array('step'), table[:, 0])
    np.testing.assert_array_equal(thermo.get_array('pe'), table[:, 3])
    trajectory = outputs['trajectory']
    assert trajectory.number_steps == 3  # steps 0, 10, 20 (dump every 10 of 20)
    assert trajectory.time_steps == [0, 10, 20] and trajectory.base.attributes.get('elements') == ['Li']
    # the frames as stored equal the dump's numbers (read here with plain string splitting), atoms in id order
    frames = (FIXTURES / MD / 'ok' / 'trajectory.dump').read_text().split('ITEM: TIMESTEP\n')[1:]
    rows = np.array([[line.split() for line in frame.splitlines()[8:10]] for frame in frames])
    np.testing.assert_array_equal(trajectory.get_positions(), rows[:, :, 3:6].astype(float))
    np.testing.assert_array_equal(trajectory.get_array('images'), rows[:, :, 6:9].astype(int))
    np.testing.assert_array_equal(trajectory.get_array('velocities'), rows[:, :, 9:12].astype(float))
    np.testing.assert_array_equal(trajectory.get_cells(), np.tile(np.eye(3) * 3.43, (3, 1, 1)))
    assert 'max_grade' not in outputs and 'extrapolative_configurations' not in outputs
    results = outputs['results'].get_dict()
    assert results['total_wall_time'] == '0:00:00' and results['total_wall_time_seconds'] == 0
    assert results['lammps_version'] == '22 Jul 2025 - Update 4'
    assert results['runs'] == [
        {'loop_time_s': 0.000241888, 'procs': 1, 'steps': 20, 'atoms': 2, 'timesteps_per_second': 82682.895}
    ]
    assert results['mpi_tasks'] == 1 and results['errors'] == [] and results['warnings'] == []


def test_lammps_md_gcmc_keeps_the_raw_dump(parse, calc_inputs):
    """GCMC changed the number of atoms (2, 4, 6): a trajectory holds a fixed set of atoms, the dump is kept."""
    outputs, status, _ = parse(MD, 'gcmc', calc_inputs(MD, 'gcmc'))
    assert status == 0
    assert 'trajectory' not in outputs
    text = outputs['trajectory_dump'].get_content()
    assert text == (FIXTURES / MD / 'gcmc' / 'trajectory.dump').read_text()
    atoms = outputs['thermo'].get_array('atoms')
    assert atoms[0] == 2 and atoms[-1] == 6


def test_lammps_md_extrapolation_break(parse, calc_inputs):
    outputs, status, message = parse(MD, 'extrapolation_break', calc_inputs(MD, 'extrapolation'))
    assert status == exit_code(MD, 'STOPPED_BY_EXTRAPOLATION_BREAK') == 250
    assert 'step 10' in message and '9.37512' in message
    # the largest grade: of the thermo column (9.375121058) and of the saved configurations' MV_grade features
    cfg = (FIXTURES / MD / 'extrapolation_break' / 'extrapolative.cfg').read_text()
    saved = [float(line.split()[-1]) for line in cfg.splitlines() if 'MV_grade' in line]
    assert outputs['max_grade'].value == pytest.approx(max(saved + [9.375121058]))
    assert len(outputs['extrapolative_configurations']) == len(saved) == cfg.count('BEGIN_CFG')
    np.testing.assert_allclose(outputs['thermo'].get_array('max_grade'), [1.768308035, 1.154836199, 9.375121058])


@pytest.mark.parametrize(
    'case, name',
    [
        ('missing_output', 'ERROR_OUTFILE_MISSING'),
        ('lammps_error', 'ERROR_PARSER_DETECTED_LAMMPS_RUN_ERROR'),
        ('plugin_not_loaded', 'ERROR_PLUGIN_NOT_LOADED'),
        ('missing_thermo', 'ERROR_MISSING_THERMO'),
        ('thermo_without_header', 'ERROR_MISSING_THERMO'),
        ('thermo_without_step_column', 'ERROR_MISSING_THERMO'),
        ('thermo_empty', 'ERROR_MISSING_THERMO'),
        ('thermo_garbled', 'ERROR_MISSING_THERMO'),
        ('out_of_walltime', 'ERROR_OUT_OF_WALLTIME'),
    ],
)
def test_lammps_md_errors(parse, calc_inputs, case, name):
    variant = 'gcmc_npt' if case == 'lammps_error' else 'default'
    outputs, status, message = parse(MD, case, calc_inputs(MD, variant))
    assert status == exit_code(MD, name), message
    if case == 'out_of_walltime':  # the stdout is cut mid-line: the thermo file decides
        assert 'step 10 of 20' in message
        assert list(outputs['thermo'].get_array('step')) == [0, 5, 10]
        assert outputs['results']['runs'] == [] and 'total_wall_time' not in outputs['results'].get_dict()
    if case == 'lammps_error':
        assert 'Non-numeric pressure' in message
        (error,) = outputs['results']['errors']
        assert error == {'message': 'ERROR: Non-numeric pressure - simulation unstable', 'input_line': 'run 20'}


def test_lammps_md_truncated_trajectory_keeps_its_complete_frames(parse, calc_inputs):
    """A dump cut in its last frame (the file system filled up): the complete frames are the trajectory."""
    outputs, status, _ = parse(MD, 'trajectory_truncated', calc_inputs(MD))
    assert status == 0
    trajectory = outputs['trajectory']
    assert trajectory.number_steps == 2  # of 3 written
    assert trajectory.base.attributes.get('dropped_incomplete_frame') is True


# ------------------------------------------------------------------------------------------------ LAMMPS static
STATIC = 'mscale.lammps.mtp.static'


def _results(case):
    from aiida_mscale.lammps.static_inputs import RESULT_COLUMNS

    values = np.loadtxt(FIXTURES / STATIC / case / 'results.dat')
    return dict(zip(RESULT_COLUMNS, values))


def test_lammps_static_energy(parse, calc_inputs):
    outputs, status, _ = parse(STATIC, 'ok', calc_inputs(STATIC))
    assert status == 0
    r = _results('ok')
    assert outputs['energy'].value == r['pe']
    stress = outputs['stress'].get_array('stress')
    # cubic cell: LAMMPS's frame is the input frame, stress = -pressure [bar -> GPa]
    np.testing.assert_allclose(np.diag(stress), -np.array([r['pxx'], r['pyy'], r['pzz']]) * 1e-4, rtol=1e-12)
    assert outputs['output_parameters']['pressure'] == pytest.approx((r['pxx'] + r['pyy'] + r['pzz']) / 3 * 1e-4)
    assert outputs['output_parameters']['number_of_atoms'] == 2
    assert outputs['structure'].get_cell_volume() == pytest.approx(r['vol'])


def test_lammps_static_minimize_converged(parse, calc_inputs):
    outputs, status, _ = parse(STATIC, 'minimize_converged', calc_inputs(STATIC, 'minimize_converged'))
    assert status == 0
    assert outputs['output_parameters']['stopping_criterion'] == 'quadratic factors are zero'
    assert outputs['output_parameters']['max_force'] <= 10 * 1e-3


@pytest.mark.parametrize(
    'case, variant, name',
    [
        ('minimize_not_converged', 'minimize', 'ERROR_MINIMIZATION_NOT_CONVERGED'),
        ('missing_output', 'default', 'ERROR_NO_RETRIEVED_FILES'),
        ('plugin_not_loaded', 'default', 'ERROR_PLUGIN_NOT_LOADED'),
        ('lammps_error', 'default', 'ERROR_LAMMPS'),
        ('missing_results', 'default', 'ERROR_MISSING_RESULTS'),
        ('results_garbled', 'default', 'ERROR_MISSING_RESULTS'),
        ('results_empty', 'default', 'ERROR_MISSING_RESULTS'),
        ('final_truncated', 'default', 'ERROR_MISSING_RESULTS'),
    ],
)
def test_lammps_static_errors(parse, calc_inputs, case, variant, name):
    outputs, status, message = parse(STATIC, case, calc_inputs(STATIC, variant))
    assert status == exit_code(STATIC, name), message
    if case == 'minimize_not_converged':
        assert 'max iterations' in message
        assert outputs['output_parameters']['iterations'] == 50  # the last configuration is still returned
    if case == 'lammps_error':
        assert 'cannot open potential file' in message


# ------------------------------------------------------------------------------------------------ MTP training
TRAIN = 'mscale.mtp.train'


def test_mtp_train_ok(parse, calc_inputs):
    outputs, status, _ = parse(TRAIN, 'ok', calc_inputs(TRAIN))
    assert status == 0
    curve = json.loads((FIXTURES / TRAIN / 'ok' / 'learning_curve.json').read_text())
    np.testing.assert_array_equal(outputs['learning_curve'].get_array('loss'), curve[0]['loss'])
    assert outputs['potential'].get_text() == (FIXTURES / TRAIN / 'ok' / 'final.mtp').read_text()
    assert outputs['potential'].base.attributes.get('training_set_size') == 3
    assert outputs['errors']['validation']['n'] == 1


def test_mtp_train_walltime_returns_the_checkpoint(parse, calc_inputs):
    outputs, status, _ = parse(TRAIN, 'walltime_with_checkpoint', calc_inputs(TRAIN), exit_status=120)
    assert status == exit_code(TRAIN, 'ERROR_SCHEDULER_OUT_OF_WALLTIME')
    checkpoint = outputs['potential']
    assert checkpoint.base.attributes.get('checkpoint') is True and checkpoint.base.attributes.get('is_trained')
    assert checkpoint.get_text() == (FIXTURES / TRAIN / 'walltime_with_checkpoint' / 'checkpoint.mtp').read_text()
    assert 'learning_curve' not in outputs and 'errors' not in outputs


@pytest.mark.parametrize(
    'case, name',
    [
        ('missing_output', 'ERROR_MISSING_OUTPUT_FILES'),
        ('training_failed', 'ERROR_TRAINING_FAILED'),
        ('walltime_without_checkpoint', 'ERROR_MISSING_OUTPUT_FILES'),
        ('missing_learning_curve', 'ERROR_MISSING_OUTPUT_FILES'),
        ('potential_truncated', 'ERROR_INVALID_POTENTIAL'),
        ('errors_garbled', 'ERROR_TRAINING_FAILED'),
        ('learning_curve_garbled', 'ERROR_TRAINING_FAILED'),
        ('diverged', 'ERROR_FIT_DIVERGED'),
        ('non_finite_errors', 'ERROR_FIT_DIVERGED'),
    ],
)
def test_mtp_train_errors(parse, calc_inputs, case, name):
    outputs, status, message = parse(TRAIN, case, calc_inputs(TRAIN))
    assert status == exit_code(TRAIN, name), message
    if case == 'training_failed':
        assert "No such file or directory: 'train.cfg'" in message
    if case == 'missing_output':
        assert 'final.mtp' in message
    if case == 'diverged':
        assert 'more than 100x the initial loss' in message


# ------------------------------------------------------------------------------------------------ MTP selection
SELECT = 'mscale.mtp.select'


def test_mtp_select_ok(parse, calc_inputs):
    inputs = calc_inputs(SELECT)
    outputs, status, _ = parse(SELECT, 'ok', inputs)
    assert status == 0
    summary = json.loads((FIXTURES / SELECT / 'ok' / 'selection.json').read_text())
    assert summary['selected_indices'] == [0]
    with np.load(FIXTURES / SELECT / 'ok' / 'grades.npz') as npz:
        np.testing.assert_array_equal(outputs['grades'].get_array('max_grades'), npz['max_grades'])
    selected = outputs['selected']
    assert len(selected) == 1 and selected.base.attributes.get('candidate_indices') == [0]
    np.testing.assert_array_equal(selected.get_array('cells')[0], inputs['candidates'].get_array('cells')[0])
    assert outputs['potential'].get_active_set() == (FIXTURES / SELECT / 'ok' / 'active_set.als').read_text()
    assert outputs['potential'].base.attributes.get('active_set_size') == summary['active_set_size'] == 5


@pytest.mark.parametrize(
    'case, name',
    [
        ('missing_output', 'ERROR_MISSING_OUTPUT_FILES'),
        ('selection_failed', 'ERROR_SELECTION_FAILED'),
        ('missing_grades', 'ERROR_MISSING_OUTPUT_FILES'),
        ('missing_active_set', 'ERROR_MISSING_OUTPUT_FILES'),
        ('active_set_truncated', 'ERROR_INVALID_ACTIVE_SET'),
        ('active_set_not_an_active_set', 'ERROR_INVALID_ACTIVE_SET'),
        ('selection_garbled', 'ERROR_SELECTION_FAILED'),
        ('grades_garbled', 'ERROR_SELECTION_FAILED'),
        ('non_finite_grades', 'ERROR_NON_FINITE_GRADES'),
    ],
)
def test_mtp_select_errors(parse, calc_inputs, case, name):
    outputs, status, message = parse(SELECT, case, calc_inputs(SELECT))
    assert status == exit_code(SELECT, name), message
    if case == 'selection_failed':
        assert "No such file or directory: 'candidates.cfg'" in message


# ------------------------------------------------------------------------------------------------ continuum
CONTINUUM = 'mscale.continuum'
TEMPORARY = ('results.npz', 'particle_rate0.xdmf', 'particle_rate0.h5')


def test_continuum_ok(parse, calc_inputs):
    outputs, status, _ = parse(CONTINUUM, 'ok', calc_inputs(CONTINUUM), temporary=TEMPORARY)
    assert status == 0
    results = json.loads((FIXTURES / CONTINUUM / 'ok' / 'results.json').read_text())
    assert outputs['results']['rate_capability'] == results['rate_capability']
    assert 'status' not in outputs['results'].get_dict()
    with np.load(FIXTURES / CONTINUUM / 'ok' / 'results.npz') as npz:
        assert sorted(outputs['arrays'].get_arraynames()) == sorted(npz.files)
        np.testing.assert_array_equal(outputs['arrays'].get_array('rate0_voltage'), npz['rate0_voltage'])
    assert 'fields' not in outputs


def test_continuum_xdmf(parse, calc_inputs):
    outputs, status, _ = parse(CONTINUUM, 'xdmf', calc_inputs(CONTINUUM, 'xdmf'), temporary=TEMPORARY)
    assert status == 0
    assert sorted(outputs['fields'].base.repository.list_object_names()) == ['particle_rate0.h5', 'particle_rate0.xdmf']


@pytest.mark.parametrize(
    'case, name, text',
    [
        ('missing_output', 'ERROR_MISSING_OUTPUT_FILES', 'results.json'),
        ('internal_error', 'ERROR_INTERNAL', 'PETSc error 73'),
        ('results_garbled', 'ERROR_INTERNAL', 'not valid JSON'),
        ('missing_arrays', 'ERROR_MISSING_OUTPUT_FILES', 'results.npz'),
        ('xdmf_missing', 'ERROR_MISSING_OUTPUT_FILES', 'particle_rate0.xdmf'),
        ('invalid_input', 'ERROR_INVALID_INPUT', 'radius'),
        ('not_converged', 'ERROR_NOT_CONVERGED', 'Newton'),
        ('unphysical_state', 'ERROR_UNPHYSICAL_STATE', 'c_max'),
        ('solver_internal', 'ERROR_INTERNAL', 'unexpected state'),
    ],
)
def test_continuum_errors(parse, calc_inputs, case, name, text):
    variant = 'xdmf' if case == 'xdmf_missing' else 'default'
    outputs, status, message = parse(CONTINUUM, case, calc_inputs(CONTINUUM, variant), temporary=TEMPORARY)
    assert status == exit_code(CONTINUUM, name), message
    assert text in message


# ------------------------------------------------------------------------------------------------ ld1.x
LD1 = 'mscale.pseudo.generate'


def test_ld1_ok(parse, calc_inputs):
    outputs, status, _ = parse(LD1, 'ok', calc_inputs(LD1))
    assert status == 0
    pseudo = outputs['pseudo']
    assert pseudo.element == 'Li' and pseudo.z_valence == 3
    assert max(len(line) for line in pseudo.get_content().splitlines()) <= 1024  # rewrapped for pw.x 6.7
    transferability = outputs['transferability']
    assert transferability['ghosts'] == [] and transferability['bessel_test_errors'] == []


@pytest.mark.parametrize(
    'case, name, text',
    [
        ('missing_test_output', 'ERROR_MISSING_OUTPUT_FILES', 'ld1_3.out'),
        ('missing_dataset', 'ERROR_MISSING_OUTPUT_FILES', 'Li.pbesol'),
        ('generation_failed', 'ERROR_GENERATION_FAILED', 'wrong main quantum number'),
        ('test_failed', 'ERROR_TEST_FAILED', 'wrong main quantum number'),
        ('dataset_truncated', 'ERROR_UNREADABLE_OUTPUT', 'truncated'),
        ('dataset_of_another_element', 'ERROR_UNREADABLE_OUTPUT', "'Na'"),
        ('ghost_state', 'ERROR_GHOST_STATE', 'l=0'),
    ],
)
def test_ld1_errors(parse, calc_inputs, case, name, text):
    outputs, status, message = parse(LD1, case, calc_inputs(LD1))
    assert status == exit_code(LD1, name), message
    assert text in message


def test_ld1_failed_bessel_test_is_only_recorded(parse, calc_inputs):
    """The Bessel-basis test can be ill-conditioned for semicore sets: its errors are kept, the dataset is not lost."""
    outputs, status, _ = parse(LD1, 'bessel_test_failed', calc_inputs(LD1))
    assert status == 0
    assert any('wrong main quantum number' in e for e in outputs['transferability']['bessel_test_errors'])
