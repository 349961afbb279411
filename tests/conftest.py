"""Shared fixtures: a temporary AiiDA profile (sqlite, no broker) with the embedded-default setup."""

import pytest

pytest_plugins = ['aiida.tools.pytest_fixtures']


@pytest.fixture(scope='session')
def mscale_setup(aiida_profile):
    """Both computers, every code and the PBEsol pseudo family, made by the bootstrap code itself."""
    from aiida_mscale.setup import bootstrap

    steps = [bootstrap.ensure_computer(), bootstrap.ensure_mpich_computer()]
    steps += bootstrap.ensure_codes()
    steps.append(bootstrap.ensure_pseudo_family())
    bad = [str(s) for s in steps if s.status in ('missing', 'error')]
    assert not bad, bad
    return steps


def _code(label):
    from aiida import orm

    return orm.load_code(label)


@pytest.fixture(scope='session')
def pw_code(mscale_setup):
    return _code('pw@localhost')


@pytest.fixture(scope='session')
def fenics_code(mscale_setup):
    """Debian's /usr/bin/python3 with python3-dolfinx."""
    return _code('fenics@localhost')


@pytest.fixture(scope='session')
def mtp_train_code(mscale_setup):
    return _code('mtp-train@localhost-mpich')


@pytest.fixture(scope='session')
def mtp_select_code(mscale_setup):
    return _code('mtp-select@localhost-mpich')


@pytest.fixture(scope='session')
def lammps_code(mscale_setup):
    return _code('lmp@localhost-mpich')


#: Cheap but real pw.x settings for test labels (low cutoffs, coarse k-points).
CHEAP_DFT = {
    'max_concurrent': 2,
    'pw_base': {
        'kpoints_distance': 0.6,
        'pw': {'parameters': {'SYSTEM': {'ecutwfc': 25.0, 'ecutrho': 200.0}}},
    },
}
SERIAL = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 600}


@pytest.fixture(scope='session')
def lithium_training_set(pw_code):
    """Eight bcc Li cells (2 atoms), strained by -4..+4 % and rattled, labelled with real pw.x."""
    import numpy as np
    from aiida import orm
    from aiida.engine import run_get_node
    from ase.build import bulk

    from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain

    structures = {}
    for k, strain in enumerate(np.linspace(-0.04, 0.04, 8)):
        atoms = bulk('Li', 'bcc', a=3.43 * (1 + strain), cubic=True)
        atoms.rattle(0.08, seed=10 + k)
        structures[f'li_{k}'] = orm.StructureData(ase=atoms)
    builder = DftLabelingWorkChain.get_builder_from_protocol(
        pw_code, structures, protocol='fast', overrides=CHEAP_DFT, options=SERIAL
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    return results['training_set']


@pytest.fixture(scope='session')
def cheap_dft():
    """(overrides, options) for DftLabelingWorkChain.get_builder_from_protocol in tests."""
    return CHEAP_DFT, SERIAL


@pytest.fixture(scope='session')
def ld1_code(mscale_setup):
    """Debian's ld1.x (Quantum ESPRESSO's atomic code), for PseudoGenerationCalculation."""
    return _code('ld1@localhost')


#: Exports the ld1 families of the profile `aiida-mscale setup` made, with their provenance: the PseudoFamilyWorkChain,
#: its ld1.x calculations (retrieved files, transferability reports) and the verification summary the family points at.
_EXPORT_LD1_FAMILIES = """
import sys
from aiida import load_profile, orm
from aiida.tools.archive import create_archive

load_profile(sys.argv[2])
groups = [orm.load_group(label) for label in sys.argv[3:]]
summaries = [orm.load_node(group.base.extras.get('verification_uuid')) for group in groups]
create_archive([*groups, *summaries], sys.argv[1], return_backward=True, call_calc_backward=True,
               call_work_backward=True)
"""


class _InBackground:
    """Commands run one after the other in subprocesses, on a thread of the pytest process that only waits for them.

    Started as soon as the session is collected (:func:`pytest_collection_finish`), they overlap the tests that come
    before the first one needing their results. The AiiDA engine of a test is one Python thread, so one of CI's two
    cores is mostly idle while pw.x-free tests run: the commands take that core instead of adding to the wall time.
    They run under `nice -n 10`, so they take the CPU the tests leave idle rather than share it with them. Each
    finished command is an attribute (a ``subprocess.CompletedProcess``) named as in the plan.
    """

    def __init__(self, plan, path):
        import os
        import threading

        self.path = path
        self.env = {**os.environ, 'AIIDA_PATH': str(path)}  # never the test profile's configuration
        self.process = None  # the subprocess running now
        self.stopped = False
        self.error = None
        self.thread = threading.Thread(target=self._run_plan, args=(plan,), name=plan.__name__, daemon=True)
        self.thread.start()

    def run(self, name, command, timeout, cwd=None):
        import subprocess

        if self.stopped:
            raise RuntimeError(f'the session ended before `{" ".join(command)}` was run')
        self.process = subprocess.Popen(
            ['nice', '-n', '10', *command],
            env=self.env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            stdout, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            stdout, stderr = self.process.communicate()
        completed = subprocess.CompletedProcess(command, self.process.returncode, stdout, stderr)
        setattr(self, name, completed)
        return completed

    def _run_plan(self, plan):
        try:
            plan(self)
        except Exception as exception:  # reported by the fixture, in the test that needs the runs
            self.error = exception

    def result(self):
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self

    def stop(self):
        """End the subprocess that runs now (the session is over) and run no further one."""
        self.stopped = True
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        self.thread.join(timeout=60)


def _setup_cli_plan(runs):
    """`aiida-mscale setup` on a fresh AIIDA_PATH, as a user runs it: `--check` before, setup twice, `--check` after;
    then an archive of the two ld1 families it generated (:data:`_EXPORT_LD1_FAMILIES`). About 2 minutes on an idle
    machine, nearly all of it the two families (16 ld1.x datasets each)."""
    import pathlib
    import sys

    from aiida_mscale.setup import bootstrap

    setup = [str(pathlib.Path(sys.executable).parent / 'aiida-mscale'), 'setup']
    runs.archive = runs.path / 'ld1_families.aiida'
    runs.export = None
    runs.run('before', [*setup, '--check'], 300)
    first = runs.run('first', setup, 1200)
    runs.run('second', setup, 300)
    runs.run('check', [*setup, '--check'], 300)
    if first.returncode == 0:
        labels = bootstrap.LD1_FAMILY_LABELS.values()
        command = [sys.executable, '-c', _EXPORT_LD1_FAMILIES, str(runs.archive), bootstrap.DEFAULT_PROFILE, *labels]
        runs.run('export', command, 600)


def _sphinx_site_plan(runs):
    """The HTML site of docs/, built as CI builds it (every warning an error, all of them reported): ~30 s of CPU."""
    import pathlib
    import sys

    root = pathlib.Path(__file__).resolve().parent.parent
    runs.html = runs.path / 'html'
    command = [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-q', '-b', 'html', 'docs', str(runs.html)]
    runs.run('build', command, 600, cwd=root)


#: Session fixtures whose subprocesses start in the background once the session is collected (:class:`_InBackground`).
_BACKGROUND_PLANS = {'setup_cli': _setup_cli_plan, 'sphinx_site': _sphinx_site_plan}
_BACKGROUND = {}


def pytest_collection_finish(session):
    """Start the plans of :data:`_BACKGROUND_PLANS` that a selected test needs (each on its own thread, at once)."""
    for name, plan in _BACKGROUND_PLANS.items():
        if any(name in getattr(item, 'fixturenames', ()) for item in session.items):
            _BACKGROUND[name] = _InBackground(plan, session.config._tmp_path_factory.mktemp(name))


def pytest_sessionfinish(session):
    for runs in _BACKGROUND.values():
        runs.stop()
    _BACKGROUND.clear()


def _background(name, tmp_path_factory):
    """The finished runs of plan ``name``, waited for here; started now if the collection did not start them."""
    runs = _BACKGROUND.get(name)
    if runs is None:
        runs = _BACKGROUND[name] = _InBackground(_BACKGROUND_PLANS[name], tmp_path_factory.mktemp(name))
    return runs.result()


@pytest.fixture(scope='session')
def setup_cli(tmp_path_factory):
    """The runs of `aiida-mscale setup` (:func:`_setup_cli_plan`: `--check`, setup, setup, `--check`, then the archive
    of the ld1 families), started in the background when the session was collected."""
    runs = _background('setup_cli', tmp_path_factory)
    if runs.export is not None:
        assert runs.export.returncode == 0, runs.export.stderr
    return runs


@pytest.fixture(scope='session')
def sphinx_site(tmp_path_factory):
    """The sphinx-build of docs/ (:func:`_sphinx_site_plan`), started in the background when the session was
    collected: ``.build`` is the completed process, ``.html`` the site."""
    return _background('sphinx_site', tmp_path_factory)


@pytest.fixture(scope='session')
def ld1_families(mscale_setup, setup_cli):
    """Both ld1 families (`mscale/ld1/PBEsol`, `mscale/ld1/PBE`, 16 ld1.x-generated PAW datasets each) in the test
    profile: the ones `aiida-mscale setup` generated (:func:`setup_cli`), imported with their provenance, then found
    by the bootstrap code itself."""
    from aiida import orm
    from aiida.tools.archive import import_archive

    from aiida_mscale.setup import bootstrap

    assert setup_cli.first.returncode == 0, setup_cli.first.stdout + setup_cli.first.stderr
    labels = bootstrap.LD1_FAMILY_LABELS
    present = {label for (label,) in orm.QueryBuilder().append(orm.Group, project='label').all()}
    assert not present & set(labels.values()), 'an ld1 family exists before the import'
    import_archive(setup_cli.archive, create_group=False)
    families = {}
    for functional, label in labels.items():
        step = bootstrap.ensure_ld1_pseudo_family(functional, create=False)
        assert step.status == 'exists', str(step)
        families[functional] = orm.load_group(label)
    return families


@pytest.fixture(scope='session')
def ld1_pseudo_family_pbesol(ld1_code, ld1_families):
    """The family `mscale/ld1/PBEsol` (16 elements, ld1.x-generated PAW datasets), made by `aiida-mscale setup`."""
    return ld1_families['PBEsol']


@pytest.fixture(scope='session')
def ld1_pseudo_family_pbe(ld1_code, ld1_families):
    """The family `mscale/ld1/PBE` (16 elements, ld1.x-generated PAW datasets), made by `aiida-mscale setup`."""
    return ld1_families['PBE']


# ------------------------------------------------------------------------------------------ unit / integration
#: Fixtures that need the real codes (pw.x, ld1.x, LAMMPS, motep, dolfinx) or the profile's computers.
INTEGRATION_FIXTURES = {'mscale_setup', 'aiida_localhost'}
#: Test folders and files whose tests run a real code directly (a subprocess or the LAMMPS library).
INTEGRATION_PATHS = (
    'continuum/',
    'lammps/',
    'mtp/test_motep_interop.py',
    'structures/test_hard_carbon.py',
    'structures/test_structures_house_rules.py',
    'analysis/test_house_rules.py',
    'analysis/test_lj_argon_diffusion.py',
    'test_setup_cli.py',
    'test_transport_workchain.py',
)

#: Tests of pure Python that take more than a few seconds on two shared cores (Gaussian-mixture model selection over
#: many windows, every template level up to 28, calibration of uncertainties over hundreds of random walks): they are
#: `slow`, run by `make test` and not by `make test-fast`. Node-id prefixes, relative to tests/.
SLOW_TESTS = (
    'analysis/test_modes_importance.py::test_hoppers_and_trapped_ions_split_into_two_modes',
    'analysis/test_modes_importance.py::test_known_populations_give_their_number_of_modes',
    'analysis/test_modes_importance.py::test_single_population_gives_one_mode',
    'analysis/test_modes_importance.py::test_bad_inputs',
    'analysis/test_modes_importance.py::test_importance_matches_analytic_permutation_drop',
    'analysis/test_environments_polyhedra.py::test_two_phase_per_atom_classification',
    'analysis/test_environments_polyhedra.py::test_trained_classifier_on_a_pure_phase',
    'analysis/test_arrhenius.py::test_single_arrhenius_not_flagged',
    'test_thermodynamics_analysis.py::test_formation_energies_are_relative_to_the_end_members',
    'analysis/test_diffusion.py::test_haven_ratio_and_collective',
    'analysis/test_diffusion.py::test_gls_uncertainty_is_calibrated',
    'analysis/test_diffusion.py::test_block_uncertainty_is_calibrated',
    'mtp/test_template.py::test_radial_funcs_count_rule',
    'mtp/test_template.py::test_basis_is_rotation_invariant[28]',
    'mtp/test_template.py::test_levels_are_valid_files[28]',
    'mtp/test_template.py::test_levels_are_valid_files[26]',
    'test_thermodynamics_analysis.py::test_voltage_profile_equals_pymatgen_insertion_electrode',
    'test_active_learning_functions.py::test_initial_configurations_hold_the_asked_guest_fractions',
    'test_cli.py::test_export_with_trajectory_policy',
)


def _throwaway_sqlite_without_fsync():
    """The test profiles are temporary: their sqlite commits need not wait for the disk (``PRAGMA synchronous=OFF``).

    Measured on the parser tests (tests/unit/test_parsers.py, 2 shared cores): about 10 s of their wall time was
    sqlite waiting on fsync at each commit (``cProfile``: ``sqlite3.Connection.commit``). Only connections opened in
    this process are affected, i.e. the pytest profiles, never a user's profile in another process.
    """
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, 'connect')
    def _no_sync(dbapi_connection, _):
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.execute('PRAGMA synchronous=OFF')


def pytest_configure(config):
    _throwaway_sqlite_without_fsync()
    config.addinivalue_line('markers', 'integration: runs a real code (pw.x, ld1.x, LAMMPS, motep, dolfinx)')
    config.addinivalue_line('markers', 'unit: seconds, no external binary (`make test-fast`)')
    config.addinivalue_line('markers', 'slow: no external binary but more than a few seconds (not in `make test-fast`)')
    config.addinivalue_line(
        'markers',
        'packaging: a fresh venv and `pip install .` (minutes, the first time tens of minutes: it fills a wheelhouse '
        'from the index); `make test-packaging`, not in `make test`',
    )


def pytest_collection_modifyitems(config, items):
    """Mark every test `integration` or `unit`: by the fixtures it needs, its folder, or its own marker.

    tests/unit/ is the unit layer by construction (stored outputs, input files written into a folder): its tests are
    `unit`, and one that asks for a fixture of the real codes is an error of the test.
    """
    import pathlib

    root = pathlib.Path(__file__).parent
    for item in items:
        relative = pathlib.Path(str(item.fspath)).relative_to(root).as_posix()
        if relative.startswith('unit/'):
            needs_codes = INTEGRATION_FIXTURES & set(getattr(item, 'fixturenames', ()))
            assert not needs_codes, f'{item.nodeid}: a unit test cannot use {sorted(needs_codes)}'
            item.add_marker(pytest.mark.unit)
            continue
        needs_codes = INTEGRATION_FIXTURES & set(getattr(item, 'fixturenames', ()))
        if item.get_closest_marker('integration') or needs_codes or relative.startswith(INTEGRATION_PATHS):
            item.add_marker(pytest.mark.integration)
        elif item.get_closest_marker('slow') or f'{relative}::{item.name}'.startswith(SLOW_TESTS):
            item.add_marker(pytest.mark.slow)
        else:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True)
def _cli_logging_does_not_leak():
    """A click command run in-process (CliRunner) switches AiiDA's logging to CLI mode for the whole session
    (``aiida.common.log.CLI_ACTIVE``), after which process reports are no longer stored: restore it after each test."""
    from aiida.common import log

    active, level = log.CLI_ACTIVE, log.CLI_LOG_LEVEL
    yield
    if (log.CLI_ACTIVE, log.CLI_LOG_LEVEL) != (active, level):
        log.CLI_ACTIVE, log.CLI_LOG_LEVEL = active, level
        log.configure_logging(with_orm=True)
