"""A single-node SLURM cluster on this machine, and the computers and codes that submit to it.

``aiida-mscale setup --scheduler slurm`` runs :func:`run_slurm`: Debian ``slurm-wlm`` and ``munge`` are
installed if missing, ``munged``, ``slurmctld`` and ``slurmd`` are started if not running (no systemd
needed), ``/etc/slurm/slurm.conf`` describes one node (this machine, its cores and memory as ``slurmd -C``
reports them) in one partition, and two computers submit to it with ``core.slurm`` over ``core.local``:

- ``localhost-slurm``: Debian's OpenMPI ``mpirun`` (pw.x, ld1.x, the continuum Python),
- ``localhost-slurm-mpich``: the ``mpich`` wheel's ``mpiexec`` (LAMMPS with the MTP plugin, motep),

with the same codes as ``localhost`` and ``localhost-mpich``. A ``slurm.conf`` not written by this module
is never overwritten.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import sys
import time

from aiida_mscale.setup.bootstrap import Step
from aiida_mscale.setup.services import ServiceError, _as_root, _log_tail, _run, ensure_packages

SLURM_PACKAGES = ('slurm-wlm', 'munge')
SLURM_CONF = pathlib.Path('/etc/slurm/slurm.conf')
MARKER = '# Written by `aiida-mscale setup --scheduler slurm`: a single-node cluster on this machine.'
PARTITION = 'mscale'
SLURMCTLD_PORT = 6817
SLURMD_PORT = 6818
STATE_DIR = pathlib.Path('/var/lib/slurm/slurmctld')
SPOOL_DIR = pathlib.Path('/var/lib/slurm/slurmd')
LOG_DIR = pathlib.Path('/var/log/slurm')
MUNGE_SOCKET_DIR = pathlib.Path('/run/munge')
SLURM_COMPUTER_LABEL = 'localhost-slurm'
SLURM_MPICH_COMPUTER_LABEL = 'localhost-slurm-mpich'
START_TIMEOUT = 60
#: [s] least time between two ``squeue`` calls of one daemon worker for ``localhost-slurm(-mpich)`` (all of that
#: worker's jobs in one call): a job's end is seen within 2 s, and four workers cost two ``squeue`` per second, not
#: eight. AiiDA's default for a remote cluster, 10 s, is what a shared login node should get (docs/scale-out.md).
SLURM_JOB_POLL_INTERVAL = 2.0


def node_description() -> str:
    """``NodeName=... CPUs=... RealMemory=...`` of this machine, as ``slurmd -C`` reports it."""
    first = _run(['slurmd', '-C'], timeout=60).stdout.splitlines()[0]
    if not first.startswith('NodeName='):
        raise ServiceError(f'`slurmd -C` printed no node line: {first}')
    return first


def slurm_conf_text(node: str) -> str:
    """The ``slurm.conf`` of the one-node cluster whose node line is ``node`` (from :func:`node_description`)."""
    hostname = node.split()[0].split('=', 1)[1]
    return '\n'.join(
        [
            MARKER,
            'ClusterName=mscale',
            f'SlurmctldHost={hostname}',
            'SlurmUser=slurm',
            'SlurmdUser=root',
            f'SlurmctldPort={SLURMCTLD_PORT}',
            f'SlurmdPort={SLURMD_PORT}',
            'AuthType=auth/munge',
            f'StateSaveLocation={STATE_DIR}',
            f'SlurmdSpoolDir={SPOOL_DIR}',
            f'SlurmctldLogFile={LOG_DIR}/slurmctld.log',
            f'SlurmdLogFile={LOG_DIR}/slurmd.log',
            'SlurmctldPidFile=/run/slurmctld.pid',
            'SlurmdPidFile=/run/slurmd.pid',
            # no cgroups in a container: track processes through /proc, bind no tasks
            'ProctrackType=proctrack/linuxproc',
            'TaskPlugin=task/none',
            'MpiDefault=none',
            'ReturnToService=2',
            'SchedulerType=sched/backfill',
            'SelectType=select/cons_tres',
            'SelectTypeParameters=CR_Core',
            'JobAcctGatherType=jobacct_gather/none',
            'AccountingStorageType=accounting_storage/none',
            'JobCompType=jobcomp/none',
            'MinJobAge=60',
            'SlurmctldTimeout=30',
            'SlurmdTimeout=60',
            'InactiveLimit=0',
            'KillWait=10',
            'Waittime=0',
            node + ' State=UNKNOWN',
            f'PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP',
            '',
        ]
    )


def ensure_slurm_conf(create: bool = True) -> Step:
    """Write ``/etc/slurm/slurm.conf`` for this machine, unless one not written here exists."""
    name = 'slurm.conf'
    try:
        text = slurm_conf_text(node_description())
    except ServiceError as exception:
        return Step(name, 'error', str(exception))
    if SLURM_CONF.exists():
        current = SLURM_CONF.read_text()
        if not current.startswith(MARKER):
            return Step(name, 'error', f'{SLURM_CONF} exists and was not written by aiida-mscale: not touching it')
        if current == text:
            return Step(name, 'exists', f'{SLURM_CONF}: partition `{PARTITION}`, {_cpus(text)} CPUs')
    if not create:
        return Step(name, 'missing', f'{SLURM_CONF} is missing or out of date')
    try:
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        for directory in (STATE_DIR, SPOOL_DIR, LOG_DIR):
            directory.mkdir(parents=True, exist_ok=True)
            shutil.chown(directory, 'slurm', 'slurm')
        SLURM_CONF.write_text(text)
    except (OSError, LookupError) as exception:
        return Step(name, 'error', f'cannot write {SLURM_CONF} (run as root): {exception}')
    return Step(name, 'created', f'{SLURM_CONF}: partition `{PARTITION}`, {_cpus(text)} CPUs')


def _cpus(text: str) -> str:
    for field in text.split():
        if field.startswith('CPUs='):
            return field.split('=')[1]
    return '?'


def _pid_alive(pidfile: pathlib.Path, executable: str) -> int | None:
    """The pid in ``pidfile`` if that process is running ``executable``."""
    try:
        pid = int(pidfile.read_text().strip())
        exe = os.readlink(f'/proc/{pid}/exe')
    except (OSError, ValueError):
        return None
    return pid if pathlib.Path(exe).name.startswith(executable) else None


def munge_works() -> bool:
    """True if a munge credential can be made and decoded (``munge -n | unmunge``)."""
    try:
        encoded = _run(['munge', '-n'], timeout=20)
        _run(['unmunge'], stdin=encoded.stdout, timeout=20)
    except ServiceError:
        return False
    return True


def ensure_munge(create: bool = True) -> Step:
    name = 'service munge'
    if munge_works():
        return Step(name, 'exists', 'munged answers')
    if not create:
        return Step(name, 'missing', 'munged is not running')
    try:
        MUNGE_SOCKET_DIR.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_SOCKET_DIR, 'munge', 'munge')
        command = (
            ['runuser', '-u', 'munge', '--', 'munged'] if os.geteuid() == 0 else ['sudo', '-n', '-u', 'munge', 'munged']
        )
        _run(command, timeout=START_TIMEOUT)
    except (OSError, LookupError, ServiceError) as exception:
        return Step(name, 'error', f'munged failed to start: {exception}')
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if munge_works():
            return Step(name, 'created', 'started munged')
        time.sleep(0.5)
    return Step(name, 'error', 'munged was started but `munge -n | unmunge` fails (log: /var/log/munge/munged.log)')


def slurmctld_up() -> bool:
    result = _run(['scontrol', 'ping'], timeout=30, check=False)
    return result.returncode == 0 and ' is UP' in result.stdout


def node_state() -> str:
    """State of this cluster's node as ``sinfo`` reports it (``idle``, ``mixed``, ``down*``, ...), or ''."""
    result = _run(['sinfo', '-h', '-N', '-o', '%T'], timeout=30, check=False)
    return result.stdout.strip().splitlines()[0] if result.returncode == 0 and result.stdout.strip() else ''


def _port_busy(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(('0.0.0.0', port))
        except OSError:
            return True
    return False


def ensure_slurmctld(create: bool = True) -> Step:
    name = 'service slurmctld'
    if slurmctld_up():
        return Step(name, 'exists', 'slurmctld answers `scontrol ping`')
    if not create:
        return Step(name, 'missing', 'slurmctld is not running')
    if _port_busy(SLURMCTLD_PORT):
        return Step(name, 'error', f'port {SLURMCTLD_PORT} is in use by another program: slurmctld cannot start')
    try:
        _run(_as_root(['slurmctld']), timeout=START_TIMEOUT)
    except ServiceError as exception:
        return Step(name, 'error', f'slurmctld failed to start: {exception}')
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if slurmctld_up():
            return Step(name, 'created', 'started slurmctld')
        time.sleep(0.5)
    return Step(name, 'error', f'slurmctld does not answer (log: {_log_tail(LOG_DIR / "slurmctld.log")})')


def ensure_slurmd(create: bool = True) -> Step:
    name = 'service slurmd'
    running = _pid_alive(pathlib.Path('/run/slurmd.pid'), 'slurmd')
    state = node_state()
    if running and state and not state.endswith('*') and not state.startswith(('down', 'drain')):
        return Step(name, 'exists', f'node {state}')
    if not create:
        return Step(name, 'missing', f'slurmd is not running or the node is not usable (state `{state}`)')
    if not running:
        if _port_busy(SLURMD_PORT):
            return Step(name, 'error', f'port {SLURMD_PORT} is in use by another program: slurmd cannot start')
        try:
            _run(_as_root(['slurmd']), timeout=START_TIMEOUT)
        except ServiceError as exception:
            return Step(name, 'error', f'slurmd failed to start: {exception}')
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        state = node_state()
        if state.startswith(('down', 'drain')) and not state.endswith('*'):
            hostname = node_description().split()[0].split('=', 1)[1]
            _run(_as_root(['scontrol', 'update', f'NodeName={hostname}', 'State=RESUME']), timeout=30, check=False)
        elif state and not state.endswith('*') and not state.startswith(('unknown', 'down', 'drain')):
            return Step(name, 'created', f'started slurmd; node {state}')
        time.sleep(1)
    return Step(name, 'error', f'the node is `{state}` (log: {_log_tail(LOG_DIR / "slurmd.log")})')


def slurm_pids() -> dict[str, int | None]:
    """Pids of the running slurmctld and slurmd (from their pid files), None where not running."""
    return {
        'slurmctld': _pid_alive(pathlib.Path('/run/slurmctld.pid'), 'slurmctld'),
        'slurmd': _pid_alive(pathlib.Path('/run/slurmd.pid'), 'slurmd'),
    }


def munged_pid() -> int | None:
    return _pid_alive(pathlib.Path('/run/munge/munged.pid'), 'munged')


def restart_slurmctld() -> None:
    """Stop slurmctld (SIGTERM, it saves its state) and start it again; jobs keep running on slurmd."""
    import signal

    pid = slurm_pids()['slurmctld']
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and _pid_alive(pathlib.Path('/run/slurmctld.pid'), 'slurmctld'):
            time.sleep(0.2)
    step = ensure_slurmctld()
    if step.status == 'error':
        raise ServiceError(step.message)


def stop_slurm(munge: bool = False) -> None:
    """Stop slurmd and slurmctld (and munged if ``munge``), each by the pid in its pid file."""
    import signal

    pids = [*slurm_pids().values(), munged_pid() if munge else None]
    for pid in pids:
        if pid:
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and any(pathlib.Path(f'/proc/{p}').exists() for p in pids if p):
        time.sleep(0.2)


def ensure_slurm_computers(create: bool = True) -> list[Step]:
    """``localhost-slurm`` (OpenMPI) and ``localhost-slurm-mpich`` (mpich wheel), both ``core.slurm``."""
    from aiida_mscale.lammps import lammps_paths
    from aiida_mscale.setup import bootstrap

    mpiexec = pathlib.Path(sys.executable).parent / 'mpiexec'
    return [
        bootstrap.ensure_computer(
            create=create,
            label=SLURM_COMPUTER_LABEL,
            scheduler_type='core.slurm',
            minimum_job_poll_interval=SLURM_JOB_POLL_INTERVAL,
            description=f"This machine through SLURM (partition `{PARTITION}`), Debian's OpenMPI, for pw.x.",
        ),
        bootstrap.ensure_computer(
            create=create,
            label=SLURM_MPICH_COMPUTER_LABEL,
            scheduler_type='core.slurm',
            minimum_job_poll_interval=SLURM_JOB_POLL_INTERVAL,
            mpirun_command=[str(mpiexec), '-n', '{tot_num_mpiprocs}'],
            prepend_text='\n'.join(
                ['export OMP_NUM_THREADS=1', f'export LD_LIBRARY_PATH={lammps_paths()["mpi_lib"]}:$LD_LIBRARY_PATH']
            ),
            description=f"This machine through SLURM (partition `{PARTITION}`), the mpich wheel's mpiexec.",
        ),
    ]


def run_slurm(create: bool = True) -> list[Step]:
    """Packages, munge, slurm.conf, slurmctld, slurmd; then the two SLURM computers and their codes.

    Needs a loaded profile (the default setup, or the PostgreSQL one, ran first).
    """
    from aiida_mscale.setup import bootstrap

    steps = [ensure_packages(SLURM_PACKAGES, create)]
    if steps[0].status in ('missing', 'error'):
        return steps
    for ensure in (ensure_munge, ensure_slurm_conf, ensure_slurmctld, ensure_slurmd):
        steps.append(ensure(create))
        if steps[-1].status in ('missing', 'error'):
            return steps
    steps += ensure_slurm_computers(create)
    if any(s.status in ('missing', 'error') for s in steps):
        return steps
    steps += bootstrap.ensure_codes(
        create=create, computer_label=SLURM_COMPUTER_LABEL, mpich_computer_label=SLURM_MPICH_COMPUTER_LABEL
    )
    return steps
