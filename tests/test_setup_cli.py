"""`aiida-mscale setup`: creates the embedded default setup once, then finds it and says so."""

import os
import pathlib
import subprocess
import sys

EXECUTABLE = str(pathlib.Path(sys.executable).parent / 'aiida-mscale')


def _setup(tmp_path, *args):
    env = {**os.environ, 'AIIDA_PATH': str(tmp_path)}
    return subprocess.run([EXECUTABLE, 'setup', *args], env=env, capture_output=True, text=True, timeout=1200)


def test_setup_twice_then_check(setup_cli):
    """The runs of the session fixture ``setup_cli`` (tests/conftest.py), which also exports the two ld1 families it
    generated for the other tests: `--check` on nothing, setup, setup again, `--check`."""
    before = setup_cli.before
    assert before.returncode == 1
    assert 'no profile `mscale`' in before.stdout

    first = setup_cli.first
    assert first.returncode == 0, first.stderr
    for line in (
        '[created] profile: `mscale` with core.sqlite_dos storage and core.zeromq broker',
        '[created] computer localhost: core.local, core.direct, `mpirun --bind-to none -np {tot_num_mpiprocs}`',
        '[created] computer localhost-mpich: core.local, core.direct, `',
        '[created] code pw@localhost: /usr/bin/pw.x (quantumespresso.pw)',
        '[created] code fenics@localhost: /usr/bin/python3 (mscale.continuum)',
        '[created] code mtp-train@localhost-mpich:',
        '[created] code mtp-select@localhost-mpich:',
        '[created] code lmp@localhost-mpich:',
        '[created] pseudo family: `mscale/debian-qe/PBEsol` (Co, Fe, Li, Ni, O), cutoffs from UPF',
        '[created] code ld1@localhost: /usr/bin/ld1.x (mscale.pseudo.generate)',
        '[created] pseudo family mscale/ld1/PBEsol: 16 elements (coarse verification',
        '[created] pseudo family mscale/ld1/PBE: 16 elements (coarse verification',
    ):
        assert line in first.stdout, first.stdout

    second = setup_cli.second
    assert second.returncode == 0, second.stderr
    assert '[created]' not in second.stdout
    assert second.stdout.count('[ exists]') == 12
    assert 'Everything is already set up; nothing to do.' in second.stdout

    check = setup_cli.check
    assert check.returncode == 0 and check.stdout.count('[ exists]') == 12

    # The profile really is the embedded one: SQLite storage, ZeroMQ broker, default profile.
    listing = subprocess.run(
        [str(pathlib.Path(sys.executable).parent / 'verdi'), 'profile', 'show', 'mscale'],
        env=setup_cli.env,
        capture_output=True,
        text=True,
    )
    assert 'core.sqlite_dos' in listing.stdout and 'core.zeromq' in listing.stdout


def test_setup_on_a_missing_named_profile_is_a_cli_error(tmp_path):
    result = _setup(tmp_path, '--profile', 'nonexistent')
    assert result.returncode == 2
    assert 'no AiiDA profile named `nonexistent`' in result.stderr


def test_recommended_cutoffs_are_read_from_the_upf_header():
    from aiida_mscale.setup.bootstrap import PSEUDO_DIR, PSEUDO_FILES, recommended_cutoffs

    # Numbers printed in the pslibrary headers of Debian's files (checked by eye once).
    assert recommended_cutoffs(PSEUDO_DIR / PSEUDO_FILES['O']) == (47.0, 323.0)
    assert recommended_cutoffs(PSEUDO_DIR / PSEUDO_FILES['Co']) == (60.0, 445.0)
