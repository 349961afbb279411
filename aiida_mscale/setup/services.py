"""Server-backed setup on this machine: PostgreSQL + RabbitMQ profile, and the services' life cycle.

``aiida-mscale setup --storage postgres --broker rabbitmq`` runs :func:`run_postgres_profile`: it installs
Debian ``postgresql`` and ``rabbitmq-server`` if missing, starts them if they are not running (no systemd
is needed: ``pg_ctlcluster`` and the SysV init script), creates a database, a database role, a RabbitMQ
user and virtual host with generated passwords, and a profile (``core.psql_dos`` + ``core.rabbitmq``).
The passwords exist only in AiiDA's ``config.json`` (file mode 600): they reach ``psql`` and
``rabbitmqctl`` through standard input, never through a command line, the terminal or a node.

Every step is idempotent and returns a :class:`~aiida_mscale.setup.bootstrap.Step`. A port held by
another program, a service that does not come up and a profile of the same name with another backend
are reported as ``error`` steps, and nothing of an existing profile is changed.
"""

from __future__ import annotations

import os
import pathlib
import re
import secrets
import shutil
import socket
import subprocess
import time

from aiida_mscale.setup.bootstrap import Step

PG_PROFILE = 'mscale-pg'
PG_STORAGE = 'core.psql_dos'
RABBITMQ_BROKER = 'core.rabbitmq'
POSTGRES_PACKAGES = ('postgresql',)
RABBITMQ_PACKAGES = ('rabbitmq-server',)
RABBITMQ_PORT = 5672
RABBITMQ_INIT = pathlib.Path('/etc/init.d/rabbitmq-server')
RABBITMQ_LOG_DIR = pathlib.Path('/var/log/rabbitmq')
#: seconds to wait for a service to answer after it was started
START_TIMEOUT = 120
#: [s] ``runner.poll.interval`` of the PostgreSQL profile: how often a waiting process checks in the database
#: whether a child it waits for has terminated. It is only the fail-safe: RabbitMQ's broadcast of the child's
#: end wakes the parent at once. Every waiting process polls, so at 1 s 500 waiting work chains cost 500
#: queries a second and the workers' CPU; at 10 s a missed broadcast costs at most 10 s (AiiDA's default is 60).
RUNNER_POLL_INTERVAL = 10


class ServiceError(RuntimeError):
    """A system command needed by the setup failed; the message names the command and its output."""


def _as_root(command: list[str]) -> list[str]:
    """``command`` run as root: directly when we are root, else through ``sudo -n`` (never prompting)."""
    return command if os.geteuid() == 0 else ['sudo', '-n', *command]


def _run(command: list[str], stdin: str | None = None, timeout: float = 300, check: bool = True):
    """Run ``command``; ``stdin`` (which may carry a secret) is never echoed in errors."""
    try:
        result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exception:
        raise ServiceError(f'`{command[0]}` not found: {exception}') from None
    except subprocess.TimeoutExpired:
        raise ServiceError(f'`{" ".join(command)}` did not finish within {timeout:.0f} s') from None
    if check and result.returncode != 0:
        output = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise ServiceError(f'`{" ".join(command)}` failed (exit {result.returncode}): {" | ".join(output)}')
    return result


def port_open(port: int, host: str = '127.0.0.1', timeout: float = 1.0) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def amqp_answers(port: int = RABBITMQ_PORT, host: str = '127.0.0.1', timeout: float = 3.0) -> bool:
    """True if an AMQP 0-9-1 broker answers on ``host:port`` (its first frame is a ``connection.start`` method)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b'AMQP\x00\x00\x09\x01')
            header = sock.recv(11)
    except OSError:
        return False
    # frame type 1 (method), channel 0, then class 10 (connection), method 10 (start)
    return len(header) == 11 and header[0] == 1 and header[7:11] == b'\x00\x0a\x00\x0a'


# ---------------------------------------------------------------------------------- packages
def package_installed(package: str) -> bool:
    result = subprocess.run(['dpkg-query', '-W', '-f=${Status}', package], capture_output=True, text=True)
    return result.returncode == 0 and 'install ok installed' in result.stdout


def ensure_packages(packages: tuple[str, ...], create: bool = True) -> Step:
    """Install the Debian ``packages`` that are missing (``apt-get``, no recommends); idempotent."""
    name = f'debian {" ".join(packages)}'
    if shutil.which('dpkg-query') is None:
        return Step(name, 'error', 'not a Debian system (no dpkg-query): install them with your package manager')
    missing = [p for p in packages if not package_installed(p)]
    if not missing:
        return Step(name, 'exists', 'installed')
    if not create:
        return Step(name, 'missing', f'not installed: {" ".join(missing)}')
    env_install = [
        'env',
        'DEBIAN_FRONTEND=noninteractive',
        'apt-get',
        'install',
        '-y',
        '-qq',
        '--no-install-recommends',
    ]
    try:
        _run(_as_root(['apt-get', 'update', '-qq']), timeout=600)
        _run(_as_root([*env_install, *missing]), timeout=1800)
    except ServiceError as exception:
        return Step(name, 'error', f'could not install {" ".join(missing)}: {exception}')
    return Step(name, 'created', f'installed {" ".join(missing)}')


# ---------------------------------------------------------------------------------- PostgreSQL
def postgres_clusters() -> list[dict]:
    """The clusters ``pg_lsclusters`` lists: version, name, port (int), status, owner, data and log paths."""
    result = _run(['pg_lsclusters', '--no-header'], check=False)
    clusters = []
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 6:
            clusters.append(
                {
                    'version': fields[0],
                    'name': fields[1],
                    'port': int(fields[2]),
                    'status': fields[3],
                    'owner': fields[4],
                    'data': fields[5],
                    'log': fields[6] if len(fields) > 6 else '',
                }
            )
    return clusters


def postgres_cluster(port: int) -> dict | None:
    """The cluster configured on ``port`` (the newest version if several are)."""
    matching = [c for c in postgres_clusters() if c['port'] == port]
    return sorted(matching, key=lambda c: float(c['version']))[-1] if matching else None


def _log_tail(path: str | pathlib.Path, lines: int = 3) -> str:
    try:
        text = pathlib.Path(path).read_text(errors='replace').strip().splitlines()
    except OSError:
        return ''
    return ' | '.join(text[-lines:])


def ensure_postgres(create: bool = True, port: int = 5432) -> Step:
    """Find (or start) the PostgreSQL cluster on ``port``.

    A cluster that is down while another program holds its port is an error naming the port; so is a
    cluster that does not come up (the end of its log file is quoted).
    """
    name = 'service postgresql'
    if shutil.which('pg_lsclusters') is None:
        return Step(name, 'missing', 'PostgreSQL is not installed (Debian `postgresql`)')
    cluster = postgres_cluster(port)
    if cluster is None:
        known = ', '.join(f'{c["version"]}/{c["name"]} on port {c["port"]}' for c in postgres_clusters()) or 'none'
        return Step(name, 'error', f'no PostgreSQL cluster is configured on port {port} (clusters: {known})')
    label = f'cluster {cluster["version"]}/{cluster["name"]} on port {port}'
    if cluster['status'].startswith('online'):
        return Step(name, 'exists', f'{label} is running')
    if not create:
        return Step(name, 'missing', f'{label} is not running')
    if port_open(port):
        return Step(name, 'error', f'port {port} is in use by another program, so {label} cannot start')
    try:
        _run(_as_root(['pg_ctlcluster', cluster['version'], cluster['name'], 'start']), timeout=START_TIMEOUT)
    except ServiceError as exception:
        return Step(name, 'error', f'{label} failed to start: {exception} (log: {_log_tail(cluster["log"])})')
    return Step(name, 'created', f'started {label}')


def stop_postgres(port: int = 5432) -> None:
    """Stop the cluster on ``port`` (used by the tests for the services they started)."""
    cluster = postgres_cluster(port)
    if cluster and cluster['status'].startswith('online'):
        _run(_as_root(['pg_ctlcluster', cluster['version'], cluster['name'], 'stop']), timeout=START_TIMEOUT)


def _psql(sql: str, port: int, database: str = 'postgres') -> str:
    """Run ``sql`` (from standard input, so no secret is on a command line) as the ``postgres`` superuser."""
    command = ['psql', '-X', '-q', '-tA', '-v', 'ON_ERROR_STOP=1', '-p', str(port), '-d', database, '-f', '-']
    if os.geteuid() == 0:
        command = ['runuser', '-u', 'postgres', '--', *command]
    else:
        command = ['sudo', '-n', '-u', 'postgres', *command]
    return _run(command, stdin=sql, timeout=120).stdout.strip()


def database_name(profile: str) -> str:
    """Database and role name of ``profile``: ``aiida_`` and the profile name in lower-case letters, digits, ``_``."""
    return 'aiida_' + re.sub(r'[^a-z0-9_]', '_', profile.lower())


def ensure_database(profile: str, password: str, port: int = 5432) -> Step:
    """Create (or reuse, if empty) database and role for ``profile``; set the role's password to ``password``.

    A database of that name that already holds tables belongs to something else: it is left alone (error).
    """
    name = database_name(profile)
    step = f'postgres database {name}'
    try:
        role_exists = _psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{name}';", port) == '1'
        db_exists = _psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';", port) == '1'
        if db_exists:
            tables = _psql(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public';", port, database=name
            )
            if tables != '0':
                return Step(
                    step,
                    'error',
                    f'database `{name}` exists with {tables} tables but no AiiDA profile `{profile}` uses it: '
                    'not touching it (drop it, or choose another profile name)',
                )
        verb = 'ALTER' if role_exists else 'CREATE'
        _psql(f'{verb} ROLE "{name}" WITH LOGIN PASSWORD \'{password}\';', port)
        if not db_exists:
            _psql(f'CREATE DATABASE "{name}" OWNER "{name}" ENCODING \'UTF8\' TEMPLATE template0;', port)
        else:
            _psql(f'ALTER DATABASE "{name}" OWNER TO "{name}";', port)
    except ServiceError as exception:
        return Step(step, 'error', str(exception))
    return Step(step, 'created', f'database and role `{name}` ({"reused empty" if db_exists else "new"} database)')


# ---------------------------------------------------------------------------------- RabbitMQ
def rabbitmq_running(port: int = RABBITMQ_PORT) -> bool:
    return amqp_answers(port)


def ensure_rabbitmq(create: bool = True, port: int = RABBITMQ_PORT) -> Step:
    """Find (or start) RabbitMQ answering AMQP on ``port``; a port held by something else is an error."""
    name = 'service rabbitmq'
    if rabbitmq_running(port):
        return Step(name, 'exists', f'AMQP broker answering on port {port}')
    if port_open(port):
        return Step(
            name, 'error', f'port {port} is in use by a program that is not an AMQP broker: RabbitMQ cannot start'
        )
    if shutil.which('rabbitmq-server') is None and not RABBITMQ_INIT.exists():
        return Step(name, 'missing', 'RabbitMQ is not installed (Debian `rabbitmq-server`)')
    if not create:
        return Step(name, 'missing', f'no AMQP broker answers on port {port}')
    command = [str(RABBITMQ_INIT), 'start'] if RABBITMQ_INIT.exists() else ['rabbitmq-server', '-detached']
    try:
        _run(_as_root(command), timeout=START_TIMEOUT)
    except ServiceError as exception:
        return Step(name, 'error', f'RabbitMQ failed to start: {exception}')
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if rabbitmq_running(port):
            return Step(name, 'created', f'started RabbitMQ on port {port}')
        time.sleep(1)
    logs = sorted(RABBITMQ_LOG_DIR.glob('*.log'), key=lambda p: p.stat().st_mtime) if RABBITMQ_LOG_DIR.is_dir() else []
    tail = _log_tail(logs[-1]) if logs else 'no log file'
    return Step(name, 'error', f'RabbitMQ was started but does not answer on port {port} (log: {tail})')


def stop_rabbitmq() -> None:
    """Stop RabbitMQ (used by the tests for the services they started)."""
    if RABBITMQ_INIT.exists():
        _run(_as_root([str(RABBITMQ_INIT), 'stop']), timeout=START_TIMEOUT, check=False)
    else:
        _run(_as_root(['rabbitmqctl', 'stop']), timeout=START_TIMEOUT, check=False)
    if shutil.which('epmd'):  # Erlang's port mapper, started with the broker; it exits only when told to
        _run(_as_root(['epmd', '-kill']), timeout=60, check=False)


def _rabbitmqctl(*args: str, stdin: str | None = None) -> str:
    return _run(_as_root(['rabbitmqctl', '--quiet', *args]), stdin=stdin, timeout=120).stdout


def ensure_broker_user(profile: str, password: str) -> Step:
    """Create (or update) RabbitMQ user and virtual host ``aiida_<profile>`` with all permissions on that host."""
    name = database_name(profile)
    step = f'rabbitmq user {name}'
    try:
        users = {line.split()[0] for line in _rabbitmqctl('list_users').splitlines()[1:] if line.split()}
        if name in users:
            _rabbitmqctl('change_password', name, stdin=password)
        else:
            _rabbitmqctl('add_user', name, stdin=password)
        vhosts = {line.strip() for line in _rabbitmqctl('list_vhosts').splitlines()[1:]}
        if name not in vhosts:
            _rabbitmqctl('add_vhost', name)
        _rabbitmqctl('set_permissions', '-p', name, name, '.*', '.*', '.*')
    except ServiceError as exception:
        return Step(step, 'error', str(exception))
    return Step(step, 'created', f'user and virtual host `{name}`')


# ---------------------------------------------------------------------------------- profile
def _secure_config(config) -> None:
    """AiiDA writes config.json under umask 077; make sure of mode 600 even on a file made otherwise."""
    path = pathlib.Path(config.filepath)
    if path.exists():
        path.chmod(0o600)


def ensure_pg_profile(name: str = PG_PROFILE, create: bool = True, pg_port: int = 5432) -> list[Step]:
    """Services, database, broker user and profile ``name`` (``core.psql_dos`` + ``core.rabbitmq``).

    If the profile exists, only its backends are checked and its services started: its credentials and
    data are never changed. A profile of that name with another backend is an error, and nothing is changed.
    """
    from aiida.manage.configuration import create_profile, get_config, load_profile

    config = get_config(create=True)
    existing = config.get_profile(name) if name in config.profile_names else None
    if existing is not None and (
        existing.storage_backend != PG_STORAGE or existing.process_control_backend != RABBITMQ_BROKER
    ):
        return [
            Step(
                'profile',
                'error',
                f'`{name}` exists with storage {existing.storage_backend} and broker '
                f'{existing.process_control_backend or "none"}, not {PG_STORAGE} + {RABBITMQ_BROKER}: '
                'left unchanged; choose another name with --profile',
            )
        ]
    if existing is not None:
        pg_port = int(existing.storage_config.get('database_port', pg_port))
    steps = [ensure_packages(POSTGRES_PACKAGES, create), ensure_packages(RABBITMQ_PACKAGES, create)]
    if any(s.status != 'exists' and s.status != 'created' for s in steps):
        return steps
    steps += [ensure_postgres(create, pg_port), ensure_rabbitmq(create)]
    if any(s.status in ('missing', 'error') for s in steps):
        return steps
    if existing is not None:
        load_profile(name, allow_switch=True)
        _secure_config(config)
        steps.append(Step('profile', 'exists', f'`{name}` (storage {PG_STORAGE}, broker {RABBITMQ_BROKER})'))
        return steps
    if not create:
        return [*steps, Step('profile', 'missing', f'no profile `{name}`: run `aiida-mscale setup --storage postgres`')]

    db_password = secrets.token_urlsafe(24)
    broker_password = secrets.token_urlsafe(24)
    steps += [ensure_database(name, db_password, pg_port), ensure_broker_user(name, broker_password)]
    if any(s.status == 'error' for s in steps):
        return steps
    dbname = database_name(name)
    repository = pathlib.Path(config.dirpath) / 'repository' / name
    if repository.exists() and any(repository.iterdir()):
        return [
            *steps,
            Step('profile', 'error', f'file repository {repository} exists and is not empty: not touching it'),
        ]
    try:
        create_profile(
            config,
            name=name,
            email='mscale@localhost',
            first_name='aiida-mscale',
            last_name='user',
            institution='localhost',
            storage_backend=PG_STORAGE,
            storage_config={
                'database_engine': 'postgresql_psycopg',
                'database_hostname': 'localhost',
                'database_port': pg_port,
                'database_username': dbname,
                'database_password': db_password,
                'database_name': dbname,
                'repository_uri': repository.as_uri(),
            },
            broker_backend=RABBITMQ_BROKER,
            broker_config={
                'broker_protocol': 'amqp',
                'broker_username': dbname,
                'broker_password': broker_password,
                'broker_host': '127.0.0.1',
                'broker_port': RABBITMQ_PORT,
                'broker_virtual_host': dbname,
            },
        )
    except Exception as exception:  # storage initialisation: report, do not trace back
        return [*steps, Step('profile', 'error', f'could not create `{name}`: {exception}')]
    config.set_option('runner.poll.interval', RUNNER_POLL_INTERVAL, scope=name)
    config.store()
    _secure_config(config)
    load_profile(name, allow_switch=True)
    steps.append(Step('profile', 'created', f'`{name}` with {PG_STORAGE} storage and {RABBITMQ_BROKER} broker'))
    return steps


def run_postgres_profile(name: str = PG_PROFILE, create: bool = True, pg_port: int = 5432) -> list[Step]:
    """The PostgreSQL + RabbitMQ profile and then everything the default setup makes in it."""
    from aiida_mscale.setup import bootstrap

    steps = ensure_pg_profile(name, create=create, pg_port=pg_port)
    if any(s.status in ('missing', 'error') for s in steps):
        return steps
    # bootstrap.run finds the profile (status 'exists') and loads it; drop that duplicate line
    return steps + bootstrap.run(name, create=create)[1:]
