"""The aiida-mscale demo: label Li_xCoO2 configurations with real pw.x and show the provenance.

Run it through ``make demo`` (which installs everything and runs ``aiida-mscale setup`` first), or directly
with ``python examples/demo.py`` on a profile made by ``aiida-mscale setup``.

It builds LiCoO2 (R-3m) at lithium contents x = 1, 0.5 and 0, rattles the atoms and strains one cell, labels
them with :class:`DftLabelingWorkChain` on the daemon, and prints the training set and the commands that show
its provenance. The DFT settings are chosen so that the demo finishes in minutes on a
laptop: 60 Ry (the pslibrary Li file asks for 78 Ry: pressures carry a Pulay stress of about -6 GPa, measured
for LiCoO2) and a k-point spacing of 0.8 1/Angstrom; use the ``moderate`` protocol without overrides for labels
you would fit a potential to.
"""

import pathlib
import subprocess
import sys
import time

import numpy as np
from aiida import load_profile, orm
from aiida.engine import submit
from ase.spacegroup import crystal

#: LiCoO2, R-3m (No. 166), hexagonal setting: Li 3a (0,0,0), Co 3b (0,0,1/2), O 6c (0,0,z): Co-O 1.92 A, Li-O 2.09 A.
#: a = 2.816 Angstrom, c = 14.05 Angstrom, z(O) = 0.2396 (Akimoto, Gotoh, Oosawa, J. Solid State Chem. 141, 298 (1998)).
LATTICE = dict(a=2.816, c=14.05, z_oxygen=0.2396)


def lithium_cobalt_oxide(lithium_fraction: float, strain=(0.0, 0.0, 0.0), rattle=0.03, seed=0):
    """Li_xCoO2 in the rhombohedral cell (two formula units for x = 0.5), Li removed for x < 1, strained, rattled.

    :param lithium_fraction: x in {0, 0.5, 1}.
    :param strain: engineering strain along the three lattice vectors.
    :param rattle: standard deviation of random displacements [Angstrom].
    """
    a, c, z = LATTICE['a'], LATTICE['c'], LATTICE['z_oxygen']
    primitive = crystal(
        ['Li', 'Co', 'O'],
        basis=[(0, 0, 0), (0, 0, 0.5), (0, 0, z)],
        spacegroup=166,
        cellpar=[a, a, c, 90, 90, 120],
        primitive_cell=True,
    )
    atoms = primitive * (2, 1, 1) if 0 < lithium_fraction < 1 else primitive
    lithium = [atom.index for atom in atoms if atom.symbol == 'Li']
    remove = lithium[: int(round((1 - lithium_fraction) * len(lithium)))]
    del atoms[remove]
    atoms.set_cell(atoms.cell.array * (1 + np.asarray(strain))[:, None], scale_atoms=True)
    atoms.rattle(rattle, seed=seed)
    return atoms


def main(profile=None):
    load_profile(profile)
    from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain

    configurations = {
        'x1_rattled': lithium_cobalt_oxide(1.0, seed=1),
        'x0p5_rattled': lithium_cobalt_oxide(0.5, seed=2),
        'x0_rattled': lithium_cobalt_oxide(0.0, seed=3),
        'x1_strained': lithium_cobalt_oxide(1.0, strain=(0.02, 0.02, -0.01), seed=4),
    }
    structures = {label: orm.StructureData(ase=atoms) for label, atoms in configurations.items()}
    builder = DftLabelingWorkChain.get_builder_from_protocol(
        orm.load_code('pw@localhost'),
        structures,
        protocol='fast',
        overrides={
            'max_concurrent': 2,
            'pw_base': {
                'kpoints_distance': 0.8,
                'pw': {'parameters': {'SYSTEM': {'ecutwfc': 60.0, 'ecutrho': 480.0}}},
            },
        },
        options={'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 3600},
    )
    builder.metadata.label = 'mscale demo: Li_xCoO2 DFT labels'

    started_daemon = _ensure_daemon()
    try:
        node = submit(builder)
        print(f'Submitted DftLabelingWorkChain<{node.pk}> to the daemon; progress:')
        seen = set()
        while not node.is_terminated:
            time.sleep(2)
            for log in orm.Log.collection.get_logs_for(node):
                if log.pk not in seen:
                    seen.add(log.pk)
                    print(f'  {log.message}')
        for log in orm.Log.collection.get_logs_for(node):
            if log.pk not in seen:
                print(f'  {log.message}')
    finally:
        if started_daemon:
            subprocess.run(['verdi', 'daemon', 'stop'], check=False, capture_output=True)

    print()
    if not node.is_finished_ok:
        print(f'DftLabelingWorkChain<{node.pk}> did not finish: exit status {node.exit_status}: {node.exit_message}')
        print(f'  verdi process report {node.pk}')
        return 1
    training_set = node.outputs.training_set
    print(f'Training set: {training_set}')
    print(f'{"configuration":>14} {"atoms":>5} {"energy/eV":>14} {"max|F|/(eV/A)":>14} {"P/GPa":>8}  source')
    for atoms in training_set.to_ase():
        pressure = -np.trace(atoms.get_stress(voigt=False)) / 3 * 160.21766208
        calculation = orm.load_node(atoms.info['source_uuid'])
        print(
            f'{atoms.get_chemical_formula():>14} {len(atoms):>5} {atoms.get_potential_energy():>14.5f} '
            f'{np.abs(atoms.get_forces()).max():>14.4f} {pressure:>8.2f}  PwCalculation<{calculation.pk}>'
        )
    if 'failures' in node.outputs:
        print(f'Failures: {node.outputs.failures.get_dict()}')
    output = pathlib.Path('demo-output')
    output.mkdir(exist_ok=True)
    graph = (output / f'dft_labeling_{node.pk}.png').resolve()
    drawn = subprocess.run(
        [
            'verdi',
            'node',
            'graph',
            'generate',
            '-a',
            '4',
            '-d',
            '0',
            '-f',
            'png',
            '-O',
            str(graph),
            str(training_set.pk),
        ],
        check=False,
        capture_output=True,
    )
    print()
    print('Inspect it with:')
    print(f'  verdi process show {node.pk}        # inputs, outputs, called PwBaseWorkChains')
    print(f'  verdi process report {node.pk}      # the progress reports above')
    print(
        f'  verdi node graph generate -a 4 -d 0 {training_set.pk}   # provenance: every PwCalculation feeding the set'
    )
    print(
        f'  python -c "from aiida import load_profile, orm; load_profile(); '
        f'print(orm.load_node({training_set.pk}).to_cfg())"   # the set in MLIP .cfg format'
    )
    if drawn.returncode == 0:
        print(f'Provenance graph of the training set: {graph}')
    return 0


def _ensure_daemon() -> bool:
    """Start the profile's daemon (ZeroMQ broker included) unless it runs; return whether we started it."""
    from aiida.engine.daemon.client import get_daemon_client

    client = get_daemon_client()
    if client.is_daemon_running:
        return False
    client.start_daemon(number_workers=1)
    for _ in range(60):
        if client.is_daemon_running:
            break
        time.sleep(0.5)
    return True


if __name__ == '__main__':
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
