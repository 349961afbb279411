"""Load and fault test of the engine: many small work chains through SLURM with several daemon workers.

Each work chain is aiida-core's ``MultiplyAddWorkChain`` (``core.arithmetic.multiply_add``): a
calcfunction (x * y), then an ``ArithmeticAddCalculation`` CalcJob (+ z, run by ``bash``) submitted
to the SLURM computer ``localhost-slurm``: three processes, one SLURM job. Half-way through (by the
number of finished work chains) one daemon worker is killed with SIGKILL (its tasks must go back to
the broker and be picked up again), then slurmctld is stopped and started again (queued and running
jobs must survive). At the end every work chain must have finished with exit status 0 and the right
sum; nothing may be lost (unfinished), excepted or killed.

Usage (after ``aiida-mscale setup --storage postgres --broker rabbitmq --scheduler slurm``)::

    python benchmarks/load_test.py --profile mscale-pg --processes 500 --workers 4
    python benchmarks/load_test.py --compare --processes 500 --workers 4   # sqlite+zmq vs postgres+rabbitmq

``--compare`` runs the same load and the same faults on the PostgreSQL profile and on a
``core.sqlite_dos`` + ``core.zeromq`` profile (``mscale-load-sqlite``, created in the same AiiDA
configuration if missing), each in its own Python process, and prints both results and their ratio.
Each run prints one JSON line prefixed ``RESULT`` (throughput in work chains per minute and in processes
per minute, wall time, counts by outcome, the faults applied).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

SQLITE_PROFILE = 'mscale-load-sqlite'
PG_PROFILE = 'mscale-pg'
COMPUTER = 'localhost-slurm'
CODE = 'add-bash'
#: processes per work chain: the work chain, the multiply calcfunction, the add CalcJob
PROCESSES_PER_CHAIN = 3
#: [s] how long `verdi daemon stop` and the worker list wait for the circus controller
DAEMON_TIMEOUT = 30


def verdi(profile: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    executable = str(pathlib.Path(sys.executable).parent / 'verdi')
    return subprocess.run([executable, '-p', profile, *args], capture_output=True, text=True, timeout=timeout)


def prepare(profile: str) -> None:
    """Load ``profile`` (creating the sqlite one if it is the comparison profile) and its SLURM ``add`` code."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent
    from aiida.manage.configuration import get_config, load_profile

    from aiida_mscale.setup import bootstrap, services, slurm

    config = get_config(create=True)
    if profile not in config.profile_names:
        if profile != SQLITE_PROFILE:
            raise SystemExit(f'no profile `{profile}`: run `aiida-mscale setup --storage postgres --scheduler slurm`')
        bootstrap.ensure_profile(profile, set_default=False)
        # the same load on the same settings: the fail-safe poll of the PostgreSQL profile (services.py)
        config.set_option('runner.poll.interval', services.RUNNER_POLL_INTERVAL, scope=profile)
        config.store()
    # on a loaded machine the circus controller answers `verdi daemon stop` and the worker list after seconds,
    # not within AiiDA's default 2 s: a stop that times out would leave the daemon running
    if (config.get_option('daemon.timeout', scope=profile) or 0) < DAEMON_TIMEOUT:
        config.set_option('daemon.timeout', DAEMON_TIMEOUT, scope=profile)
        config.store()
    load_profile(profile, allow_switch=True)
    step = bootstrap.ensure_computer(
        label=COMPUTER,
        scheduler_type='core.slurm',
        minimum_job_poll_interval=slurm.SLURM_JOB_POLL_INTERVAL,
        description='SLURM on this machine',
    )
    if step.status == 'error':
        raise SystemExit(str(step))
    if not slurm.slurmctld_up():
        raise SystemExit('slurmctld does not answer: run `aiida-mscale setup --scheduler slurm`')
    try:
        orm.load_code(f'{CODE}@{COMPUTER}')
    except NotExistent:
        orm.InstalledCode(
            label=CODE,
            computer=orm.load_computer(COMPUTER),
            filepath_executable='/bin/bash',
            default_calc_job_plugin='core.arithmetic.add',
        ).store()


def worker_pids(profile: str) -> list[int]:
    from aiida.engine.daemon.client import DaemonClient
    from aiida.manage.configuration import get_config

    client = DaemonClient(get_config().get_profile(profile))
    deadline = time.monotonic() + 120
    while True:  # the circus controller may be slow to answer on a loaded machine
        info = client.get_worker_info(timeout=30).get('info') or {}
        if info or time.monotonic() > deadline:
            return sorted(int(pid) for pid in info)
        time.sleep(2)


def wait_for_broker(timeout: float = 300) -> None:
    """Connect to the profile's broker, retrying while it starts (the ZeroMQ broker starts with the daemon)."""
    from aiida.manage import get_manager

    deadline = time.monotonic() + timeout
    while True:
        try:
            get_manager().get_communicator()
            return
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def outcome(node) -> str:
    if not node.is_terminated:
        return 'unfinished'
    if node.is_excepted:
        return 'excepted'
    if node.is_killed:
        return 'killed'
    return 'finished_ok' if node.is_finished_ok else 'failed'


def run_load(profile: str, processes: int, workers: int, faults: bool, timeout: float) -> dict:
    """Submit ``processes`` work chains to the daemon of ``profile`` (``workers`` workers); inject the faults."""
    from aiida import orm
    from aiida.engine import submit
    from aiida.manage.configuration import get_config
    from aiida.workflows.arithmetic.multiply_add import MultiplyAddWorkChain

    from aiida_mscale.setup import slurm

    prepare(profile)
    code = orm.load_code(f'{CODE}@{COMPUTER}')
    verdi(profile, 'daemon', 'stop')
    started = verdi(profile, 'daemon', 'start', str(workers))
    if started.returncode != 0:
        raise SystemExit(f'`verdi daemon start {workers}` failed: {started.stderr or started.stdout}')
    events = []
    load: list[float] = []  # 1-min load average of the machine, sampled while waiting
    try:
        wait_for_broker()
        t0 = time.monotonic()
        pks = []
        for i in range(processes):
            node = submit(MultiplyAddWorkChain, x=orm.Int(i), y=orm.Int(2), z=orm.Int(3), code=code)
            pks.append(node.pk)
        submitted = time.monotonic() - t0
        killed_worker = restarted_ctld = not faults
        done = 0
        while time.monotonic() - t0 < timeout:
            done = (
                orm.QueryBuilder()
                .append(
                    orm.WorkChainNode,
                    filters={'id': {'in': pks}, 'attributes.process_state': {'in': ['finished', 'excepted', 'killed']}},
                )
                .count()
            )
            if not killed_worker and done >= processes // 3:
                pids = worker_pids(profile)
                if not pids:
                    raise SystemExit('the daemon reports no workers: cannot inject the worker fault')
                pid = random.Random(processes).choice(pids)
                os.kill(pid, signal.SIGKILL)
                events.append({'fault': 'SIGKILL daemon worker', 'pid': pid, 'finished_before': done})
                killed_worker = True
            elif not restarted_ctld and done >= processes // 2:
                slurm.restart_slurmctld()
                events.append({'fault': 'slurmctld stopped and started', 'finished_before': done})
                restarted_ctld = True
            load.append(os.getloadavg()[0])
            if done == processes:
                break
            time.sleep(2)
        wall = time.monotonic() - t0
    finally:
        for _ in range(3):  # the controller of a loaded machine may not answer the first time
            if verdi(profile, 'daemon', 'stop').returncode == 0:
                break

    counts: dict[str, int] = {}
    wrong = []
    for pk in pks:
        node = orm.load_node(pk)
        state = outcome(node)
        counts[state] = counts.get(state, 0) + 1
        if state == 'finished_ok' and node.outputs.result.value != 2 * node.inputs.x.value + 3:
            wrong.append(pk)
    calcjobs = orm.QueryBuilder().append(orm.WorkChainNode, filters={'id': {'in': pks}}, tag='wc')
    calcjobs = calcjobs.append(orm.CalcJobNode, with_incoming='wc', project=['attributes.exit_status']).all(flat=True)
    from aiida.manage import get_manager

    config = get_manager().get_profile()
    computer = code.computer
    settings = {
        'runner.poll.interval': get_config().get_option('runner.poll.interval', scope=profile),
        'minimum_job_poll_interval': computer.get_minimum_job_poll_interval(),
        'safe_interval': computer.get_authinfo(orm.User.collection.get_default())
        .get_auth_params()
        .get('safe_interval'),
        'daemon.worker_process_slots': get_config().get_option('daemon.worker_process_slots', scope=profile),
    }
    return {
        'profile': profile,
        'storage': config.storage_backend,
        'broker': config.process_control_backend,
        'workers': workers,
        'work_chains': processes,
        'processes': processes * PROCESSES_PER_CHAIN,
        'calcjobs_run': len(calcjobs),
        'calcjobs_not_ok': sum(1 for status in calcjobs if status != 0),
        'submit_seconds': round(submitted, 1),
        'wall_seconds': round(wall, 1),
        'work_chains_per_min': round(processes / wall * 60, 1),
        'processes_per_min': round(processes * PROCESSES_PER_CHAIN / wall * 60, 1),
        'outcomes': counts,
        'wrong_results': wrong,
        'faults_requested': faults,
        'faults': events,
        'settings': settings,
        'load_average_mean': round(sum(load) / len(load), 1) if load else None,
        'cpus': os.cpu_count(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--profile', default=PG_PROFILE, help='profile to load (default mscale-pg)')
    parser.add_argument('--processes', type=int, default=500, help='number of work chains (default 500)')
    parser.add_argument('--workers', type=int, default=4, help='daemon workers (default 4)')
    parser.add_argument('--no-faults', action='store_true', help='do not kill a worker nor restart slurmctld')
    parser.add_argument('--timeout', type=float, default=3600, help='seconds to wait for all to finish')
    parser.add_argument('--compare', action='store_true', help=f'run on `{SQLITE_PROFILE}` and the profile')
    args = parser.parse_args(argv)
    # the daemon is started by `verdi` of this environment, found on PATH
    os.environ['PATH'] = f'{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get("PATH", "")}'
    if args.processes < 1 or args.workers < 1:
        parser.error('--processes and --workers must be positive')
    if args.compare:
        results = []
        for profile in (SQLITE_PROFILE, args.profile):
            command = [sys.executable, __file__, '--profile', profile, '--processes', str(args.processes)]
            command += ['--workers', str(args.workers), '--timeout', str(args.timeout)]
            command += ['--no-faults'] if args.no_faults else []
            child = subprocess.run(command, capture_output=True, text=True)
            lines = [line for line in child.stdout.splitlines() if line.startswith('RESULT ')]
            if not lines:
                print(f'{profile}: no result (exit {child.returncode}): {child.stderr[-2000:]}', file=sys.stderr)
                return 1
            results.append(json.loads(lines[-1][len('RESULT ') :]))
            print(lines[-1], flush=True)
        sqlite, pg = results
        ratio = pg['processes_per_min'] / sqlite['processes_per_min']
        print(
            f'throughput: {sqlite["storage"]}+{sqlite["broker"]} {sqlite["processes_per_min"]} processes/min, '
            f'{pg["storage"]}+{pg["broker"]} {pg["processes_per_min"]} processes/min (ratio {ratio:.2f})'
        )
        return 0 if all(ok(r) for r in results) else 1
    result = run_load(args.profile, args.processes, args.workers, not args.no_faults, args.timeout)
    print('RESULT ' + json.dumps(result), flush=True)
    return 0 if ok(result) else 1


def ok(result: dict) -> bool:
    """Nothing lost, excepted, killed or failed; every sum right; one CalcJob per work chain; every fault applied."""
    return (
        result['outcomes'] == {'finished_ok': result['work_chains']}
        and not result['wrong_results']
        and result['calcjobs_run'] == result['work_chains']
        and result['calcjobs_not_ok'] == 0
        and len(result['faults']) == (2 if result['faults_requested'] else 0)
    )


if __name__ == '__main__':
    sys.exit(main())
