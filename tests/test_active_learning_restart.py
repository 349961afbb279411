"""Real LAMMPS runs for the pieces the active-learning loop restarts and samples with.

- a run continued from its last dumped frame (positions, cell and velocities) follows the uninterrupted run;
- fix gcmc deletes and displaces only the guest, and deletes it at a chemical potential below its insertion energy
  once the guest's constant site energy is out of the potential (gcmc_potential).
The potentials are the tame random MTPs of tests/test_lammps_mtp.py.
"""

import numpy as np

from tests.test_lammps_mtp import _cell, _potential


def _run(code, atoms, potential, parameters, velocities=None):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.calculations.lammps_mtp import LammpsMtpCalculation

    builder = LammpsMtpCalculation.get_builder()
    builder.code = code
    builder.structure = orm.StructureData(ase=atoms)
    builder.potential = potential
    builder.parameters = orm.Dict(parameters)
    if velocities is not None:
        builder.velocities = velocities
    return run_get_node(builder)


def _frames(text):
    from aiida_mscale.workflows.lammps_mtp_base import read_last_frame

    parts = text.split('ITEM: TIMESTEP')
    return {int(p.split()[0]): read_last_frame('ITEM: TIMESTEP' + p) for p in parts[1:]}


def test_md_continued_from_the_dumped_frame_follows_the_uninterrupted_run(lammps_code):
    from aiida import orm

    from aiida_mscale.workflows.lammps_mtp_base import last_dumped_frame

    potential = _potential(['Li'], with_active_set=False, seed=2)
    atoms = _cell(['Li'], 0.05, seed=3)
    parameters = {'ensemble': 'nve', 'temperature': 300.0, 'steps': 40, 'thermo_every': 20, 'dump_every': 20}
    full, full_node = _run(lammps_code, atoms, potential, parameters)
    assert full_node.is_finished_ok, full_node.exit_message
    dump = full_node.outputs.retrieved.base.repository.get_object_content('trajectory.dump')
    frames = _frames(dump)
    assert sorted(frames) == [0, 20, 40] and frames[20]['velocities'] is not None

    # as if the run had been cut after step 20: the dump ends with that frame
    cut = orm.FolderData()
    cut.base.repository.put_object_from_bytes(dump[: dump.index('ITEM: TIMESTEP\n40')].encode(), 'trajectory.dump')
    frame = last_dumped_frame(cut, full_node.inputs.structure)
    assert frame['structure'].description == 'step 20'
    continued, node = _run(
        lammps_code,
        frame['structure'].get_ase(),
        potential,
        {**parameters, 'steps': 20, 'initial_velocities': 'data'},
        velocities=frame['velocities'],
    )
    assert node.is_finished_ok, node.exit_message
    # the continuation starts where the run was (kinetic energy from the dumped velocities, 6 digits)
    temperature_full = full['thermo'].get_array('temp')
    temperature_continued = continued['thermo'].get_array('temp')
    np.testing.assert_allclose(temperature_continued[0], temperature_full[1], rtol=1e-4)
    # and ends where the uninterrupted run ended (to the dump's 6-digit precision)
    end = _frames(node.outputs.retrieved.base.repository.get_object_content('trajectory.dump'))[20]
    cell = frames[40]['atoms'].cell.array
    delta = np.linalg.solve(cell.T, (end['atoms'].positions - frames[40]['atoms'].positions).T).T
    delta = (delta - np.round(delta)) @ cell  # the same point up to a lattice vector (wrapping)
    assert np.abs(delta).max() < 2e-3
    np.testing.assert_allclose(end['velocities'], frames[40]['velocities'], rtol=1e-2, atol=1e-2)
    # fresh velocities would not: the temperature at the start of an uncontinued run differs
    assert abs(temperature_full[1] - 300.0) > 1.0


def test_gcmc_deletes_only_the_guest(lammps_code):
    from aiida import orm

    from aiida_mscale.calculations.functions.active_learning import gcmc_potential

    potential = _potential(['Li', 'Co'], with_active_set=False, seed=3)
    atoms = _cell(['Li', 'Co'], 0.02, seed=5)
    n_li = atoms.get_chemical_symbols().count('Li')
    shifted = gcmc_potential(potential, orm.Dict({'Li': 0.0, 'Co': 0.0}), orm.Str('Li'))
    assert shifted['potential'].get_potential().species_coeffs[0] == 0.0
    mu = -5.0  # far below the insertion energy: the guest leaves
    results, node = _run(
        lammps_code,
        atoms,
        shifted['potential'],
        {
            'ensemble': 'nvt',
            'temperature': 600,
            'steps': 200,
            'dump_every': 200,
            'gcmc': {'species': 'Li', 'mu': mu, 'every': 10, 'exchanges': 5, 'max_count': n_li},
        },
    )
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    counts = results['thermo'].get_array('atoms')
    assert counts[-1] < counts[0]
    last = _frames(node.outputs.retrieved.base.repository.get_object_content('trajectory.dump'))[200]['atoms']
    symbols = last.get_chemical_symbols()
    assert symbols.count('Co') == len(atoms) - n_li  # no host atom was deleted
    assert symbols.count('Li') == counts[-1] - symbols.count('Co')
