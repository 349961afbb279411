"""A MultiscaleWorkChain survives a killed daemon: SIGKILL every daemon process mid-run, start a new daemon, and the
run finishes without running again what had finished (tests/scripts/multiscale_daemon_restart.py does the run in a
profile of its own, SQLite + ZeroMQ, under a temporary AIIDA_PATH)."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest

SCRIPT = pathlib.Path(__file__).parent / 'scripts' / 'multiscale_daemon_restart.py'


@pytest.mark.integration
def test_killed_daemon_run_finishes_without_recomputing():
    profile = f'mscale-daemon-{uuid.uuid4().hex[:8]}'
    # a folder of its own (not pytest's tmp_path: the daemon outlives the test's view of it)
    folder = tempfile.mkdtemp(prefix='mscale-daemon-')
    env = {**os.environ, 'AIIDA_PATH': folder}
    env['PYTHONPATH'] = os.pathsep.join(
        filter(None, [str(pathlib.Path(__file__).parent.parent), env.get('PYTHONPATH')])
    )
    try:
        result = subprocess.run(
            [sys.executable, str(SCRIPT), profile], env=env, capture_output=True, text=True, timeout=1500, check=False
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary['killed_pids'], 'no daemon process was killed'
    assert summary['state_when_killed'] in ('waiting', 'running')
    assert summary['exit_status'] == 0, summary['exit_message']
    assert summary['electrode_workchains'] == 1  # the stage was not launched again
    # 4 draws + the nominal run: each continuum calculation ran exactly once, those finished before the kill kept
    assert len(summary['continuum_calculations']) == 5
    assert set(summary['finished_before_kill']) <= set(summary['continuum_calculations'])
    assert 1 <= len(summary['finished_before_kill']) < 5  # killed mid-stage
    assert summary['continuum_ok']
    assert summary['band_draws'] == 4
