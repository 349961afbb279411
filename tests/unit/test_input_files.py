"""Snapshots of every input file the CalcJobs write (``prepare_for_submission`` into a folder, no binary).

A change of a writer shows as a diff of the snapshot under ``tests/unit/test_input_files/``; regenerate with
``pytest tests/unit/test_input_files.py --force-regen`` after checking that the change is intended.
"""

import pytest

#: (entry point, variant of the inputs, files to snapshot)
CASES = [
    ('mscale.lammps.mtp', 'default', ['input.in', 'structure.data']),
    ('mscale.lammps.mtp', 'extrapolation', ['input.in']),
    ('mscale.lammps.mtp', 'gcmc_npt', ['input.in']),
    ('mscale.lammps.mtp.static', 'default', ['input.in', 'structure.data']),
    ('mscale.lammps.mtp.static', 'minimize', ['input.in']),
    ('mscale.mtp.train', 'default', ['input.json', 'train.cfg', 'validation.cfg']),
    ('mscale.mtp.select', 'default', ['input.json']),
    ('mscale.continuum', 'default', ['input.json']),
    ('mscale.pseudo.generate', 'default', ['ld1_1.in', 'ld1_2.in', 'ld1_bessel.in']),
    ('mscale.transport.analysis', 'default', ['input.json']),
]


def _basename(entry_point, variant, filename):
    return f'{entry_point.replace(".", "_")}-{variant}-{filename.replace(".", "_")}'


@pytest.mark.parametrize('entry_point, variant, filenames', CASES)
def test_input_files(generate_calc_job, calc_inputs, file_regression, data_regression, entry_point, variant, filenames):
    folder, calcinfo = generate_calc_job(entry_point, calc_inputs(entry_point, variant))
    for filename in filenames:
        extension = '.' + filename.rsplit('.', 1)[-1]
        file_regression.check(
            (folder / filename).read_text(), basename=_basename(entry_point, variant, filename), extension=extension
        )
    data_regression.check(
        {
            'files': sorted(p.name for p in folder.iterdir()),
            'retrieve_list': [str(name) for name in calcinfo.retrieve_list],
            'retrieve_temporary_list': [str(name) for name in (calcinfo.retrieve_temporary_list or [])],
            'codes': [
                {'cmdline': list(c.cmdline_params or []), 'stdin': c.stdin_name, 'stdout': c.stdout_name}
                for c in calcinfo.codes_info
            ],
        },
        basename=_basename(entry_point, variant, 'calcinfo'),
    )


def test_potential_and_active_set_are_written_unchanged(generate_calc_job, calc_inputs):
    """The potential and the active set go into the sandbox byte for byte (no writer of ours in between)."""
    inputs = calc_inputs('mscale.lammps.mtp', 'extrapolation')
    folder, _ = generate_calc_job('mscale.lammps.mtp', inputs)
    assert (folder / 'potential.mtp').read_text() == inputs['potential'].get_text()
    assert (folder / 'active_set.als').read_text() == inputs['potential'].get_active_set()
