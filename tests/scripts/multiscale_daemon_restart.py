"""Kill the daemon in the middle of a MultiscaleWorkChain and restart it (run by tests/test_multiscale_daemon.py).

Runs in its own AIIDA_PATH (set by the test): makes an embedded profile (SQLite + ZeroMQ) with the bootstrap code,
submits a chain entered at the electrode stage (potential, D(x), OCV(x) given; an ensemble of continuum runs), starts
the daemon, waits until at least one ContinuumCalculation has finished and others have not, SIGKILLs the daemon's
processes, starts a new daemon, waits for the end and prints a JSON summary on the last line of stdout.
"""

import json
import pathlib
import sys
import time

import numpy as np


def kill_daemon(profile_name: str) -> list[int]:
    """SIGKILL every process of the profile's daemon (circus, its workers, the ZeroMQ broker service): a crash."""
    import psutil

    killed = []
    for process in psutil.process_iter(['pid', 'cmdline']):
        cmdline = process.info['cmdline'] or []
        if 'verdi' in ' '.join(cmdline[:2]) and profile_name in cmdline:
            try:
                process.kill()
                killed.append(process.info['pid'])
            except psutil.NoSuchProcess:
                pass
    return killed


def main(profile_name: str) -> int:
    from aiida_mscale.setup import bootstrap

    for step in [
        bootstrap.ensure_profile(profile_name),
        bootstrap.ensure_computer(),
        bootstrap.ensure_mpich_computer(),
    ]:
        print(step, flush=True)
    from aiida import load_profile, orm

    load_profile(profile_name, allow_switch=True)
    for step in bootstrap.ensure_codes():
        print(step, flush=True)
    from aiida.engine import submit
    from aiida.engine.daemon.client import get_daemon_client
    from ase.build import bulk

    from aiida_mscale.data.mtp_potential import MtpPotentialData
    from aiida_mscale.workflows.multiscale import MultiscaleWorkChain

    x = np.linspace(0.0, 1.0, 41)
    diffusivity = orm.ArrayData()
    diffusivity.set_array('x', x)
    diffusivity.set_array('D', 1e-15 * (1 + x))
    diffusivity.set_array('D_sigma', 3e-16 * (1 + x))
    y = np.linspace(0.005, 0.995, 81)
    ocv = orm.ArrayData()
    ocv.set_array('x', y)
    ocv.set_array('V', 3.5 - 0.025852 * np.log(y / (1 - y)))
    ocv.set_array('V_sigma', np.full_like(y, 0.02))
    cell = {
        'particle': {'radius': 1.0e-6, 'c_max': 2.0e4, 'density': 3.0},
        'kinetics': {'i0': 1.0, 'alpha': 0.5},
        'temperature': 300.0,
        'x_initial': 0.05,
        'x_final': 0.95,
        'c_rates': [1.0, 5.0],
        'cutoff_voltage': 3.0,
    }
    builder = MultiscaleWorkChain.get_builder_from_protocol(
        {'lammps': 'lmp@localhost-mpich', 'continuum': 'fenics@localhost'},
        orm.StructureData(ase=bulk('OLi2', 'fluorite', a=4.61, cubic=True)),
        'Li',
        protocol='fast',
        overrides={
            'electrode': {
                'models': ['particle_diffusion'],
                'cell': cell,
                'uncertainty': {'ensemble_size': 4, 'seed': 3},
            }
        },
        options={'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 600},
        potential=MtpPotentialData.from_template(6, ['Li', 'O'], min_dist=1.5, max_dist=4.0, radial_basis_size=6),
        diffusivity=diffusivity,
        ocv=ocv,
    )
    client = get_daemon_client()
    client.start_daemon(number_workers=1)  # the ZeroMQ broker runs inside the daemon: start it before submitting
    for _ in range(120):
        if client.is_daemon_running:
            break
        time.sleep(0.5)
    for _attempt in range(60):  # the ZeroMQ broker service may take a while to come up on a busy machine
        try:
            node = submit(builder)
            break
        except ConnectionError:
            time.sleep(2)
    else:
        print('the broker never became ready', flush=True)
        return 3

    def continuum_calculations():
        query = orm.QueryBuilder().append(orm.WorkflowNode, filters={'id': node.pk}, tag='chain')
        query.append(
            orm.CalcJobNode,
            with_ancestors='chain',
            filters={'process_type': 'aiida.calculations:mscale.continuum'},
            project='*',
        )
        return query.all(flat=True)

    deadline = time.time() + 600
    while time.time() < deadline:
        if any(c.is_terminated for c in continuum_calculations()):  # kill at the first finished one
            break
        time.sleep(0.2)
    else:
        print(f'timeout before the kill: {node.process_label}<{node.pk}> {node.process_state}', flush=True)
        log = pathlib.Path(client.daemon_log_file)
        print(log.read_text()[-3000:] if log.exists() else '')
        return 2
    finished_before = sorted(c.pk for c in continuum_calculations() if c.is_terminated)
    print(f'killing the daemon with {len(finished_before)} continuum runs finished', flush=True)
    pids = kill_daemon(profile_name)
    time.sleep(2)
    killed_state = node.process_state.value if node.process_state else None
    client.start_daemon(number_workers=1)
    deadline = time.time() + 900
    while not node.is_terminated and time.time() < deadline:
        time.sleep(1)
    client.stop_daemon(wait=True)
    calculations = continuum_calculations()
    electrode = [n for n in node.called if n.process_label == 'ElectrodeWorkChain']
    summary = {
        'killed_pids': pids,
        'state_when_killed': killed_state,
        'finished_before_kill': finished_before,
        'exit_status': node.exit_status,
        'exit_message': node.exit_message,
        'electrode_workchains': len(electrode),
        'continuum_calculations': sorted(c.pk for c in calculations),
        'continuum_ok': all(c.is_finished_ok for c in calculations),
        'band_draws': int(node.outputs.rate_capability_band.base.attributes.get('n_draws'))
        if 'rate_capability_band' in node.outputs
        else None,
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == '__main__':
    try:
        code = main(sys.argv[1])
    finally:
        kill_daemon(sys.argv[1])  # whatever happened, leave no daemon of this throw-away profile behind
    sys.exit(code)
