"""Scale-out on real engines: PostgreSQL + RabbitMQ profile, single-node SLURM, load and faults, DFT through SLURM.

The services are started by the setup code itself (``aiida_mscale.setup.services`` / ``slurm``) in a
throw-away AiiDA configuration; the ones this module started are stopped at the end, and the test
database, role, broker user and virtual host are dropped. `make test` installs the packages first; an
incomplete install or a service that does not come up fails the tests with the reason. Everything AiiDA
runs in subprocesses, so the session's own test profile is never switched.
"""

import json
import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import warnings

import pytest

pytestmark = pytest.mark.integration

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYTHON = sys.executable
ENTRY = str(pathlib.Path(sys.executable).parent / 'aiida-mscale')
PACKAGES = ('postgresql', 'rabbitmq-server', 'slurm-wlm', 'munge')


def _python(code: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, '-c', code], env=env, capture_output=True, text=True, timeout=timeout)


def _last_json(result: subprocess.CompletedProcess, prefix: str):
    lines = [line for line in result.stdout.splitlines() if line.startswith(prefix)]
    assert lines, f'exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}'
    return json.loads(lines[-1][len(prefix) :])


def _missing_install() -> str | None:
    """What the install (`make test` runs `make scale-out-packages`) left undone, or None."""
    from aiida_mscale.setup.services import package_installed

    if os.geteuid() != 0:
        sudo = subprocess.run(['sudo', '-n', 'true'], capture_output=True) if shutil.which('sudo') else None
        if sudo is None or sudo.returncode != 0:
            return 'scale-out services need root or password-less sudo to start PostgreSQL, RabbitMQ and SLURM'
    if shutil.which('dpkg-query') is None:
        return 'scale-out services are set up with Debian packages; this is not a Debian system'
    missing = [p for p in PACKAGES if not package_installed(p)]
    if missing:
        return f'Debian packages not installed: {" ".join(missing)} (`make scale-out-packages` installs them)'
    return None


SETUP = """
import json
from aiida_mscale.setup import bootstrap, services, slurm
steps = services.ensure_pg_profile({profile!r})
if not any(s.status in ('missing', 'error') for s in steps):
    steps += slurm.run_slurm()
if not any(s.status in ('missing', 'error') for s in steps):
    steps += [bootstrap.ensure_computer(), bootstrap.ensure_mpich_computer(), bootstrap.ensure_pseudo_family()]
    steps += bootstrap.ensure_codes()
print('STEPS ' + json.dumps([[s.name, s.status, s.message] for s in steps]))
"""

STATE = """
import json
from aiida_mscale.setup import services, slurm
print('STATE ' + json.dumps({
    'postgres': bool(services.postgres_cluster(5432)) and services.postgres_cluster(5432)['status'] == 'online',
    'rabbitmq': services.rabbitmq_running(),
    'munge': slurm.munge_works(),
    'slurm': {k: bool(v) for k, v in slurm.slurm_pids().items()},
}))
"""

TEARDOWN = """
import subprocess, sys
from aiida_mscale.setup import services, slurm
name = services.database_name({profile!r})
before = {before!r}
executable = sys.executable.rsplit('/', 1)[0] + '/verdi'
steps = [
    lambda: subprocess.run([executable, '-p', {profile!r}, 'daemon', 'stop'], capture_output=True, timeout=300),
    lambda: services._psql(f'DROP DATABASE IF EXISTS "{{name}}" WITH (FORCE);', 5432),
    lambda: services._psql(f'DROP ROLE IF EXISTS "{{name}}";', 5432),
    lambda: services._rabbitmqctl('delete_vhost', name),
    lambda: services._rabbitmqctl('delete_user', name),
]
if not before['slurm']['slurmd'] or not before['slurm']['slurmctld']:
    steps.append(lambda: slurm.stop_slurm(munge=not before['munge']))
if not before['rabbitmq']:
    steps.append(services.stop_rabbitmq)
if not before['postgres']:
    steps.append(services.stop_postgres)
for step in steps:  # each on its own: one failure must not leave the services running
    try:
        step()
    except Exception as exception:
        print('teardown:', exception, file=sys.stderr)
"""


@pytest.fixture(scope='session')
def _teardowns():
    """Teardowns (:data:`TEARDOWN`) that run in the background while the session's other tests go on: waited for
    at the end of the session, so no service this module started outlives it.

    Measured on the shared 2-core machine: the teardown (daemon stop, database and role dropped, the broker's vhost
    and user deleted, SLURM, RabbitMQ and PostgreSQL stopped) took 41 s of wall time, most of it waiting for
    `rabbitmqctl` and the services to stop; the tests after this module need none of it.
    """
    processes = []
    yield processes
    for process, log in processes:
        try:
            process.wait(timeout=600)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.seek(0)
        errors = log.read()
        log.close()
        if process.returncode != 0 or errors.strip():
            warnings.warn(f'scale-out teardown (exit {process.returncode}):\n{errors[-4000:]}', stacklevel=1)


@pytest.fixture(scope='module')
def scale_out(tmp_path_factory, _teardowns):
    """(environment, profile name) of a PostgreSQL + RabbitMQ profile with the SLURM computers."""
    missing = _missing_install()
    assert missing is None, f'the scale-out install is incomplete: {missing}'
    aiida_path = tmp_path_factory.mktemp('scale_out')
    env = {**os.environ, 'AIIDA_PATH': str(aiida_path), 'PATH': f'{pathlib.Path(PYTHON).parent}:{os.environ["PATH"]}'}
    profile = f'mscale-pg-test-{secrets.token_hex(3)}'
    before = _last_json(_python(STATE, env, timeout=120), 'STATE ')
    result = _python(SETUP.format(profile=profile), env, timeout=900)
    try:
        steps = _last_json(result, 'STEPS ')
        services_down = [f'{n}: {m}' for n, s, m in steps if s in ('missing', 'error') and n.startswith('service ')]
        assert not services_down, f'a scale-out service did not start: {"; ".join(services_down)}'
        bad = [f'{n}: {m}' for n, s, m in steps if s in ('missing', 'error')]
        assert not bad, bad
        # the generated credentials are in the config (mode 600) and were never printed
        config_file = aiida_path / '.aiida' / 'config.json'
        assert oct(config_file.stat().st_mode & 0o777) == '0o600'
        stored = json.loads(config_file.read_text())['profiles'][profile]
        secrets_ = [
            stored['storage']['config']['database_password'],
            stored['process_control']['config']['broker_password'],
        ]
        assert all(len(s) >= 24 and s not in result.stdout + result.stderr for s in secrets_)
        yield env, profile
    finally:
        log = tempfile.TemporaryFile(mode='w+')  # the teardown's errors, reported when it is waited for
        code = TEARDOWN.format(profile=profile, before=before)
        process = subprocess.Popen([PYTHON, '-c', code], env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
        _teardowns.append((process, log))


def test_setup_is_idempotent_and_check_reports_both_services(scale_out):
    env, profile = scale_out
    args = [ENTRY, 'setup', '--storage', 'postgres', '--broker', 'rabbitmq', '--profile', profile, '--check']
    check = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert '[ exists] service postgresql: cluster' in check.stdout, check.stdout
    assert '[ exists] service rabbitmq: AMQP broker answering on port 5672' in check.stdout
    assert f'[ exists] profile: `{profile}` (storage core.psql_dos, broker core.rabbitmq)' in check.stdout
    assert '[created]' not in check.stdout


def test_load_and_faults_through_slurm_with_four_workers(scale_out):
    """12 work chains (36 processes, 12 SLURM jobs); a daemon worker killed, slurmctld restarted: nothing lost."""
    env, profile = scale_out
    command = [PYTHON, str(ROOT / 'benchmarks' / 'load_test.py'), '--profile', profile, '--processes', '12']
    command += ['--workers', '4', '--timeout', '900']
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
    summary = _last_json(result, 'RESULT ')
    assert summary['storage'] == 'core.psql_dos' and summary['broker'] == 'core.rabbitmq'
    assert summary['outcomes'] == {'finished_ok': 12}, summary
    assert summary['wrong_results'] == [] and summary['calcjobs_run'] == 12 and summary['calcjobs_not_ok'] == 0
    assert [f['fault'] for f in summary['faults']] == ['SIGKILL daemon worker', 'slurmctld stopped and started']
    # the polling the setup chose for this machine (docs/scale-out.md): squeue every 2 s per worker, the transport
    # opened without delay, the fail-safe database poll of waiting processes every 10 s (broadcasts do the work)
    assert summary['settings']['minimum_job_poll_interval'] == 2.0 and summary['settings']['safe_interval'] == 0
    assert summary['settings']['runner.poll.interval'] == 10
    assert result.returncode == 0, result.stderr[-2000:]


DFT = """
import json
from aiida import load_profile, orm
from aiida.engine import run_get_node
from ase.build import bulk
from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain
load_profile({profile!r})
overrides = {overrides!r}
options = {options!r}
out = {{}}
for computer in ('localhost-slurm', 'localhost'):
    atoms = bulk('Li', 'bcc', a=3.44)  # one atom, primitive cell
    builder = DftLabelingWorkChain.get_builder_from_protocol(
        orm.load_code(f'pw@{{computer}}'), [orm.StructureData(ase=atoms)], protocol='fast',
        overrides=overrides, options=options)
    _, node = run_get_node(builder)
    pw = [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]
    images = node.outputs.training_set.to_ase() if node.is_finished_ok else []
    out[computer] = {{
        'ok': node.is_finished_ok, 'exit': node.exit_status,
        'energy': images[0].get_potential_energy() if images else None,
        'scheduler': [p.computer.scheduler_type for p in pw], 'job_ids': [p.get_job_id() for p in pw],
    }}
print('DFT ' + json.dumps(out))
"""


def test_dft_labelling_through_slurm_on_postgres(scale_out, cheap_dft):
    """One Li atom (bcc, 25 Ry) labelled by pw.x through SLURM equals the same label through the direct scheduler."""
    env, profile = scale_out
    overrides, options = cheap_dft
    result = _python(DFT.format(profile=profile, overrides=overrides, options=options), env, timeout=900)
    labels = _last_json(result, 'DFT ')
    slurm, direct = labels['localhost-slurm'], labels['localhost']
    assert slurm['ok'] and direct['ok'], labels
    assert slurm['scheduler'] == ['core.slurm'] and slurm['job_ids'][0].isdigit()
    assert direct['scheduler'] == ['core.direct']
    # same pw.x, same input: the scheduler must not change the number (eV)
    assert abs(slurm['energy'] - direct['energy']) < 1e-6
    # Li with the 1s semicore in valence (3 electrons, pslibrary): about -14.69 Ry = -199.9 eV per atom
    assert -201.0 < slurm['energy'] < -199.0, slurm['energy']


# ------------------------------------------------------------------------------------------ bad input, no services
def test_existing_profile_with_another_backend_is_refused_and_left_untouched(tmp_path):
    env = {**os.environ, 'AIIDA_PATH': str(tmp_path)}
    made = _python('from aiida_mscale.setup import bootstrap; print(bootstrap.ensure_profile("mscale"))', env)
    assert 'created' in made.stdout, made.stderr
    config_file = tmp_path / '.aiida' / 'config.json'
    before = config_file.read_bytes()
    args = [ENTRY, 'setup', '--storage', 'postgres', '--profile', 'mscale']
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert (
        '[  error] profile: `mscale` exists with storage core.sqlite_dos and broker core.zeromq, '
        'not core.psql_dos + core.rabbitmq: left unchanged' in result.stdout
    )
    assert 'Traceback' not in result.stderr
    assert config_file.read_bytes() == before


def test_storage_and_broker_must_match(tmp_path):
    env = {**os.environ, 'AIIDA_PATH': str(tmp_path)}
    args = [ENTRY, 'setup', '--storage', 'postgres', '--broker', 'zeromq']
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and '--storage postgres goes with --broker rabbitmq' in result.stderr


def test_a_port_held_by_another_program_is_named():
    from aiida_mscale.setup import services

    with socket.socket() as listener:
        listener.bind(('127.0.0.1', 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert services.port_open(port) and not services.amqp_answers(port, timeout=1)
        step = services.ensure_rabbitmq(port=port)
    assert step.status == 'error'
    assert step.message == f'port {port} is in use by a program that is not an AMQP broker: RabbitMQ cannot start'
    free = services.ensure_postgres(create=False, port=port)
    assert free.status in ('error', 'missing') and (f'port {port}' in free.message or 'not installed' in free.message)
