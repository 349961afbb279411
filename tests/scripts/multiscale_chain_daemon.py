"""The MultiscaleWorkChain on the daemon, with the daemon killed in the middle (run by tests/test_multiscale.py).

Runs in its own AIIDA_PATH (set by the test): makes an embedded profile (SQLite + ZeroMQ) with the bootstrap code,
imports the demo's potential with its provenance (``tests/multiscale_settings.py``), starts the daemon, submits the
chain on Li_(2-x)O entered with that potential, waits until the guest reference (pw.x) has finished and MD production
runs, SIGKILLs every daemon process (circus, worker, ZeroMQ broker), starts a new daemon, waits for the end, and
prints on its last stdout line a JSON record of what the test checks: the run's state, which stages ran how often,
the pw.x calculations before the kill and at the end, and the numbers of each hand-over with the independent values
they must equal.
"""

import json
import os
import sys
import time

import numpy as np

DEADLINE_S = 1080  # the whole run; every wait below is bounded by it
STALL_S = 60  # a restarted daemon that moves nothing for this long is restarted once more


def kill_daemon(profile_name: str) -> list[int]:
    """SIGKILL every process of the profile's daemon (circus, its workers, the ZeroMQ broker service): a crash."""
    import psutil

    killed = []
    for process in psutil.process_iter(['pid', 'cmdline']):
        cmdline = process.info['cmdline'] or []
        daemon = 'verdi' in ' '.join(cmdline[:2]) and profile_name in cmdline
        # circus' statistics process names the profile only in its log file's path
        stats = 'circus' in ' '.join(cmdline) and f'circus-{profile_name}.log' in ' '.join(cmdline)
        if (daemon or stats) and process.info['pid'] != os.getpid():
            try:
                process.kill()
                killed.append(process.info['pid'])
            except psutil.NoSuchProcess:
                pass
    return killed


def refresh():
    """End this process's read transaction: SQLite shows a reader only what was committed before it began."""
    from aiida.manage import get_manager

    get_manager().get_profile_storage().get_session().rollback()


def restart_daemon(client) -> int:
    """`verdi daemon stop` (clears what a dead daemon left behind), then start; returns 1."""
    from aiida.engine.daemon.client import DaemonNotRunningException, DaemonTimeoutException

    try:
        client.stop_daemon(wait=True)
    except (DaemonNotRunningException, DaemonTimeoutException):  # a busy circus may not answer: kill what is left
        kill_daemon(client.profile.name)
    start_daemon(client)
    return 1


def latest_change(node) -> str:
    """The newest modification time among the run and every process it called: whether it is moving."""
    return max([node.mtime, *[n.mtime for n in node.called_descendants]]).isoformat()


def start_daemon(client) -> None:
    client.start_daemon(number_workers=1)
    for _ in range(240):
        if client.is_daemon_running:
            return
        time.sleep(0.5)


def descendants(node, process_type: str) -> list:
    """Processes of ``process_type`` called by ``node`` at any depth (CALL links)."""
    refresh()
    return [n for n in node.called_descendants if n.process_type == process_type]


def called(node, label: str) -> list:
    from aiida.common.links import LinkType

    return [t.node for t in node.base.links.get_outgoing(link_type=LinkType.CALL_WORK).all() if t.link_label == label]


def checks(node) -> dict:
    """The numbers the test compares, each with its independent counterpart."""

    out = node.outputs
    record = {}
    # the guest reference: E0 of the fit against its own labels
    labels = called(node, 'reference')[0].outputs.training_set.to_ase()
    record['reference'] = {
        'E0': out.guest_reference_energy['energy'],
        'residual': out.guest_reference_energy['residual'],
        'label_energies': [atoms.get_potential_energy() / len(atoms) for atoms in labels],
    }
    # D(x) against the Arrhenius extrapolations of the transport stages
    extrapolations = []
    for key in sorted(out.arrhenius):
        entry = out.arrhenius[key]['species']['Li']['extrapolation']
        extrapolations.append([entry['temperature'], entry['value'], entry['ln_err']])
    table = out.diffusivity
    record['diffusivity'] = {
        'D': table.get_array('D').tolist(),
        'D_sigma': table.get_array('D_sigma').tolist(),
        'x': table.get_array('x').tolist(),
        'x_host': table.get_array('x_host').tolist(),
        'extrapolations': extrapolations,
    }
    # OCV(x) against the thermodynamics stage's voltage steps
    thermo = called(node, 'thermodynamics')[0]
    record['ocv'] = {
        'x': out.ocv.get_array('x').tolist(),
        'V': out.ocv.get_array('V').tolist(),
        'V_sigma': out.ocv.get_array('V_sigma').tolist(),
        'steps': thermo.outputs.voltage_steps['steps'],
        'average_voltage': out.average_voltage.value,
    }
    # provenance: the pw.x calculations each table descends from (the product's own query)
    from aiida_mscale.cli.query import dft_sources

    record['pw_ancestors'] = {name: len(dft_sources(out[name])) for name in ('diffusivity', 'ocv', 'potential')}
    # the provenance summary picture and the report's files
    import tempfile

    from aiida_mscale.plotting.multiscale import plot_multiscale, provenance_summary

    record['provenance_source'] = provenance_summary(node).source
    record['pw_total'] = len(descendants(node, 'aiida.calculations:quantumespresso.pw'))
    record['reference_pk'] = called(node, 'reference')[0].pk
    with tempfile.TemporaryDirectory() as folder:
        paths = plot_multiscale(node, __import__('pathlib').Path(folder))
        record['report_files'] = sorted([str(path.relative_to(folder)), path.stat().st_size] for path in paths)
    record['summary'] = out.summary.get_dict()
    record['rate_capability'] = out.rate_capability.get_array('capacity').tolist()
    record['band_draws'] = int(out.rate_capability_band.base.attributes.get('n_draws'))
    return record


def main(profile_name: str) -> int:
    from aiida_mscale.setup import bootstrap

    for step in [
        bootstrap.ensure_profile(profile_name),
        bootstrap.ensure_computer(),
        bootstrap.ensure_mpich_computer(),
    ]:
        print(step, flush=True)
    from aiida import load_profile

    load_profile(profile_name, allow_switch=True)
    for step in [*bootstrap.ensure_codes(), bootstrap.ensure_pseudo_family()]:
        print(step, flush=True)
    from aiida import orm
    from aiida.engine import submit
    from aiida.engine.daemon.client import DaemonNotRunningException, DaemonTimeoutException, get_daemon_client
    from aiida.tools.archive import import_archive

    from aiida_mscale.workflows.multiscale import MultiscaleWorkChain
    from tests.multiscale_settings import (
        OPTIONS,
        POTENTIAL_ARCHIVE,
        POTENTIAL_UUID,
        check_potential_archive,
        host,
        overrides,
    )

    check_potential_archive()
    import_archive(POTENTIAL_ARCHIVE)
    potential = orm.load_node(POTENTIAL_UUID)
    print(f'imported the demo potential <{potential.pk}> with its provenance', flush=True)

    codes = {
        'pw': 'pw@localhost',
        'mtp_train': 'mtp-train@localhost-mpich',
        'mtp_select': 'mtp-select@localhost-mpich',
        'lammps': 'lmp@localhost-mpich',
        'continuum': 'fenics@localhost',
    }
    builder = MultiscaleWorkChain.get_builder_from_protocol(
        codes, host(), 'Li', protocol='fast', overrides=overrides(), options=OPTIONS, potential=potential
    )
    client = get_daemon_client()
    start_daemon(client)  # the ZeroMQ broker runs inside the daemon: start it before submitting
    for _attempt in range(60):  # the broker service may take a while to come up on a busy machine
        try:
            node = submit(builder)
            break
        except ConnectionError:
            time.sleep(2)
    else:
        print('the broker never became ready', flush=True)
        return 3
    start = time.time()

    def stage_finished(label):
        nodes = called(node, label)
        return bool(nodes) and nodes[0].is_terminated

    # kill once the first stages are done and MD production has started
    while time.time() - start < DEADLINE_S:
        refresh()
        if node.is_terminated:
            break
        if stage_finished('reference') and called(node, 'md_production'):
            break
        time.sleep(1)
    refresh()
    if node.is_terminated or not called(node, 'md_production'):
        print(f'no point to kill at: {node.process_state} [{node.exit_status}] {node.exit_message}', flush=True)
        return 2
    pw_before = sorted(n.pk for n in descendants(node, 'aiida.calculations:quantumespresso.pw'))
    lammps_before = len(descendants(node, 'aiida.calculations:mscale.lammps.mtp'))
    killed = kill_daemon(profile_name)
    time.sleep(2)
    refresh()
    state_when_killed = node.process_state.value if node.process_state else None
    print(f'killed the daemon ({len(killed)} processes) with {len(pw_before)} pw.x calculations done', flush=True)
    restarts = restart_daemon(client)
    last_change, last_seen = time.time(), latest_change(node)
    while time.time() - start < DEADLINE_S:
        refresh()
        if node.is_terminated:
            break
        seen = latest_change(node)
        if seen != last_seen:
            last_change, last_seen = time.time(), seen
        elif time.time() - last_change > STALL_S and restarts < 3:
            # what an operator does when a restarted daemon sits idle: restart it again (the embedded ZeroMQ
            # broker hands the recovered tasks to a worker that connected after it had loaded them)
            restarts += restart_daemon(client)
            last_change = time.time()
        time.sleep(2)
    try:
        client.stop_daemon(wait=True)
    except (DaemonNotRunningException, DaemonTimeoutException):  # a busy circus may not answer: killed at exit
        pass
    refresh()
    record = {
        'killed_pids': killed,
        'state_when_killed': state_when_killed,
        'process_state': node.process_state.value if node.process_state else None,
        'exit_status': node.exit_status,
        'exit_message': node.exit_message,
        'stages': {
            label: len(called(node, label))
            for label in ('reference', 'active_learning', 'md_production', 'thermodynamics', 'electrode')
        },
        'transport_stages': sorted(
            t for t in {t.link_label for t in node.base.links.get_outgoing().all()} if t.startswith('transport_')
        ),
        'pw_before_kill': pw_before,
        'pw_at_end': sorted(n.pk for n in descendants(node, 'aiida.calculations:quantumespresso.pw')),
        'lammps_before_kill': lammps_before,
        'daemon_restarts': restarts,
        'seconds': time.time() - start,
    }
    if node.is_finished_ok:
        record.update(checks(node))
    print(json.dumps(record, default=lambda value: np.asarray(value).tolist()), flush=True)
    return 0


if __name__ == '__main__':
    try:
        code = main(sys.argv[1])
    finally:
        kill_daemon(sys.argv[1])  # whatever happened, leave no daemon of this throw-away profile behind
    sys.exit(code)
