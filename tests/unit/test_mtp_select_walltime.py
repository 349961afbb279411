"""``MtpSelectParser`` on a run the scheduler cut: the recoverable walltime exit code (120), which
``MtpSelectBaseWorkChain`` reruns with a longer walltime, not the unrecoverable 300/301 of the output it lacks."""

import pytest

SELECT = 'mscale.mtp.select'


def exit_code(name):
    from aiida.plugins import CalculationFactory

    return CalculationFactory(SELECT).exit_codes[name].status


@pytest.mark.parametrize(
    'case, without_scheduler',
    [
        ('missing_output', 'ERROR_MISSING_OUTPUT_FILES'),  # killed before writing anything
        ('missing_grades', 'ERROR_MISSING_OUTPUT_FILES'),  # killed between two output files
        ('grades_garbled', 'ERROR_SELECTION_FAILED'),  # killed while writing grades.npz
    ],
)
def test_walltime_reported_by_the_scheduler_is_kept(parse, calc_inputs, case, without_scheduler):
    walltime = exit_code('ERROR_SCHEDULER_OUT_OF_WALLTIME')
    outputs, status, message = parse(SELECT, case, calc_inputs(SELECT), exit_status=walltime)
    assert status == walltime == 120, message
    assert not outputs
    # the same files without the scheduler's report are the script's failure, unrecoverable
    _, status, message = parse(SELECT, case, calc_inputs(SELECT))
    assert status == exit_code(without_scheduler), message
