"""The continuum solvers run under Debian's /usr/bin/python3 with python3-dolfinx (installed by `make install`)."""

import os
import subprocess

import pytest

FENICS_PYTHON = os.environ.get('MSCALE_FENICS_PYTHON', '/usr/bin/python3')


@pytest.fixture(scope='session', autouse=True)
def fenics_python():
    """Fail loudly, not skip, when the continuum Python lacks dolfinx: that is a broken install."""
    probe = subprocess.run(
        [FENICS_PYTHON, '-c', 'import numpy, dolfinx; print(dolfinx.__version__)'],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert probe.returncode == 0, (
        f'{FENICS_PYTHON} cannot import dolfinx (apt-get install python3-dolfinx): {probe.stderr}'
    )
    return FENICS_PYTHON
