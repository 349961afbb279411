"""The `aiida-mscale` commands (launch, status, query, export) and the `verdi data mscale.*` plugins, through their
click objects. Provenance queries and exports run on a small hand-built graph with the links the work chains make;
`launch electrode` runs the real continuum code once. Every bad input is a clean click error: no traceback."""

import io
import pathlib

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

PW = 'aiida.calculations:quantumespresso.pw'
N_FRAMES = 10


def invoke(command, args):
    result = CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=True)
    return result


def assert_clean_error(result, *fragments):
    """A non-zero exit with a message, raised as a click error (SystemExit), not an exception with a traceback."""
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert 'Traceback' not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


# ------------------------------------------------------------------------------------------------ a small graph
def _calc(process_type, inputs, outputs, computer, label='PwCalculation'):
    from aiida import orm
    from aiida.common.links import LinkType
    from plumpy.process_states import ProcessState

    node = orm.CalcJobNode(computer=computer, process_type=process_type)
    for name, data in inputs.items():
        node.base.links.add_incoming(data, link_type=LinkType.INPUT_CALC, link_label=name)
    node.set_process_state(ProcessState.FINISHED)
    node.set_exit_status(0)
    node.set_process_label(label)
    node.store()
    for name, data in outputs.items():
        data.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label=name)
        data.store()
    node.seal()
    return node


@pytest.fixture(scope='module')
def graph(aiida_profile):
    """host -> 2 pw.x calcs -> training set -> MTP fit -> potential -> MD at (600 K, x = 0.5) -> trajectory ->
    transport work chain -> D; plus an unrelated pw.x calculation."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent
    from aiida.common.links import LinkType
    from ase.build import bulk
    from plumpy.process_states import ProcessState

    from aiida_mscale.data.mtp_potential import MtpPotentialData
    from aiida_mscale.data.training_set import TrainingSetData

    try:
        computer = orm.load_computer('mscale-cli-test')
    except NotExistent:
        computer = orm.Computer(
            label='mscale-cli-test',
            hostname='localhost',
            transport_type='core.local',
            scheduler_type='core.direct',
            workdir='/tmp/mscale-cli-test',
        ).store()
    host = orm.StructureData(ase=bulk('Li', 'bcc', a=3.43, cubic=True)).store()
    pws = [
        _calc(PW, {'structure': host}, {'output_parameters': orm.Dict({'energy': -1.0})}, computer) for _ in range(2)
    ]
    unrelated = _calc(PW, {'structure': host}, {'output_parameters': orm.Dict({'energy': -2.0})}, computer)
    atoms = bulk('Li', 'bcc', a=3.43, cubic=True)
    training_set = TrainingSetData.from_arrays(
        numbers_of_atoms=[2, 2],
        cells=[atoms.cell.array] * 2,
        pbc=[[True] * 3] * 2,
        positions=np.concatenate([atoms.positions, atoms.positions + 0.05]),
        atomic_numbers=[3, 3, 3, 3],
        energies=[-3.0, -2.9],
        forces=np.arange(12, dtype=float).reshape(4, 3) * 0.01,
        stresses=np.zeros((2, 3, 3)),
        source_uuids=[pws[0].uuid, pws[1].uuid],
    )
    build = orm.CalcFunctionNode()
    for k, pw in enumerate(pws):
        build.base.links.add_incoming(pw.outputs.output_parameters, link_type=LinkType.INPUT_CALC, link_label=f'p{k}')
    build.set_process_state(ProcessState.FINISHED)
    build.set_exit_status(0)
    build.set_process_label('build_training_set_from_pw')
    build.store()
    training_set.base.links.add_incoming(build, link_type=LinkType.CREATE, link_label='result')
    training_set.store()
    build.seal()
    potential = MtpPotentialData.from_template(6, ['Li'], min_dist=1.5, max_dist=4.5)
    _calc(
        'aiida.calculations:mscale.mtp.train',
        {'training_set': training_set},
        {'potential': potential},
        computer,
        'MtpTrainCalculation',
    )
    positions = np.array([atoms.positions + 0.01 * k for k in range(N_FRAMES)])
    trajectory = orm.TrajectoryData()
    trajectory.set_trajectory(
        ['Li', 'Li'], positions, cells=np.array([atoms.cell.array] * N_FRAMES), pbc=[True, True, True]
    )
    settings = orm.Dict({'temperature': 600.0, 'x': 0.5}).store()
    md = _calc(
        'aiida.calculations:mscale.lammps.mtp',
        {'potential': potential, 'structure': host, 'settings': settings},
        {'trajectory': trajectory},
        computer,
        'LammpsMtpCalculation',
    )
    transport = orm.WorkflowNode(process_type='aiida.workflows:mscale.transport')
    transport.base.links.add_incoming(trajectory, link_type=LinkType.INPUT_WORK, link_label='trajectories__t0')
    transport.set_process_state(ProcessState.FINISHED)
    transport.set_exit_status(0)
    transport.set_process_label('TransportAnalysisWorkChain')
    transport.store()
    diffusivity = orm.CalcFunctionNode()
    diffusivity.base.links.add_incoming(trajectory, link_type=LinkType.INPUT_CALC, link_label='trajectory')
    diffusivity.base.links.add_incoming(transport, link_type=LinkType.CALL_CALC, link_label='diffusivity_t0')
    diffusivity.set_process_state(ProcessState.FINISHED)
    diffusivity.set_exit_status(0)
    diffusivity.set_process_label('diffusivity')
    diffusivity.store()
    result = orm.Dict(
        {'temperature': 600.0, 'species': {'Li': {'n_ions': 2, 'tracer': {'D_cm2_s': 1.5e-6, 'D_cm2_s_err': 2e-7}}}}
    )
    result.base.links.add_incoming(diffusivity, link_type=LinkType.CREATE, link_label='result')
    result.store()
    result.base.links.add_incoming(transport, link_type=LinkType.RETURN, link_label='diffusivity__t0')
    diffusivity.seal()
    transport.seal()
    return {
        'host': host,
        'pws': pws,
        'unrelated': unrelated,
        'training_set': training_set,
        'potential': potential,
        'md': md,
        'trajectory': trajectory,
        'transport': transport,
        'result': result,
    }


# ------------------------------------------------------------------------------------------------ query
def test_query_dft_sources_finds_exactly_the_feeding_calculations(graph):
    from aiida_mscale.cli.query import cmd_query, dft_sources

    sources = dft_sources(graph['result'])
    assert sorted(n.pk for n in sources) == sorted(n.pk for n in graph['pws'])  # not the unrelated one
    result = invoke(cmd_query, ['dft-sources', graph['result'].pk])
    assert result.exit_code == 0, result.output
    assert f'2 pw.x calculation(s) fed Dict<{graph["result"].pk}>' in result.output
    for pw in graph['pws']:
        assert f'PwCalculation<{pw.pk}> [0] Li2' in result.output
    assert f'<{graph["unrelated"].pk}>' not in result.output


def test_query_computed_with_lists_the_descendants_of_the_potential(graph):
    from aiida_mscale.cli.query import cmd_query

    result = invoke(cmd_query, ['computed-with', graph['potential'].pk])
    assert result.exit_code == 0, result.output
    assert f'2 data node(s) computed with MtpPotentialData<{graph["potential"].pk}>' in result.output
    assert f'TrajectoryData<{graph["trajectory"].pk}> by LammpsMtpCalculation<{graph["md"].pk}>' in result.output
    assert f'Dict<{graph["result"].pk}> by diffusivity' in result.output
    assert f'<{graph["training_set"].pk}>' not in result.output  # an ancestor, not computed with it


def test_query_diffusivities_of_a_host(graph):
    from aiida_mscale.cli.query import cmd_query, diffusivities

    rows = diffusivities(graph['host'])
    assert [(r['temperature'], r['x'], r['species'], r['D'], r['D_sigma']) for r in rows] == [
        (600.0, 0.5, 'Li', 1.5e-6, 2e-7)
    ]
    result = invoke(cmd_query, ['diffusivities', '--host', graph['host'].pk])
    assert result.exit_code == 0, result.output
    assert '1 D(T, x) value(s) for host Li2' in result.output
    assert '0.500    600.0      Li    1.500e-06   2.00e-07' in result.output


# ------------------------------------------------------------------------------------------------ status
def test_status_shows_each_stage_with_state_and_exit_code(graph):
    from aiida_mscale.cli.status import cmd_status

    result = invoke(cmd_status, [graph['transport'].pk])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f'TransportAnalysisWorkChain<{graph["transport"].pk}> finished [0]'
    assert lines[1].startswith('└─ diffusivity_t0: diffusivity<') and lines[1].endswith('> finished [0]')
    assert 'processes: 1 finished' in result.output and 'outputs: diffusivity__t0' in result.output


# ------------------------------------------------------------------------------------------------ export
def _archived(path, uuid):
    """(attributes, extras, arrays) of node ``uuid`` read back from the archive at ``path``."""
    from aiida import orm
    from aiida.tools.archive.abstract import get_format

    with get_format().open(path, 'r') as reader:
        node = reader.querybuilder().append(orm.Node, filters={'uuid': uuid}).one()[0]
        arrays = {}
        for name in node.base.repository.list_object_names():
            with node.base.repository.open(name, 'rb') as handle:
                arrays[name] = np.load(io.BytesIO(handle.read()))
        count = reader.querybuilder().append(orm.Node).count()
        return dict(node.base.attributes.all), dict(node.base.extras.all), arrays, count


@pytest.mark.parametrize(
    'policy, frames', [('full', list(range(N_FRAMES))), ('subsampled', [0, 3, 6, 9]), ('omitted', None)]
)
def test_export_with_trajectory_policy(graph, tmp_path, policy, frames):
    from aiida_mscale.cli.export import cmd_export

    path = tmp_path / f'{policy}.aiida'
    result = invoke(cmd_export, [graph['transport'].pk, '-o', path, '--trajectories', policy, '--stride', 3])
    assert result.exit_code == 0, result.output
    estimate, written = result.output.index('estimated size:'), result.output.index('wrote ')
    assert estimate < written  # the size is printed before writing
    assert '1 trajectories' in result.output
    attributes, extras, arrays, count = _archived(path, graph['trajectory'].uuid)
    full = graph['trajectory'].get_array('positions')
    assert count >= 8  # the whole run: workflow, calcfunction, MD, potential, fit, training set, pw.x, structure
    if policy == 'full':
        assert np.array_equal(arrays['positions.npy'], full)
        assert 'mscale_export' not in extras
    elif policy == 'subsampled':
        assert np.array_equal(arrays['positions.npy'], full[frames])
        assert attributes['array|positions'] == [4, 2, 3]
        assert extras['mscale_export'] == {
            'trajectory_policy': 'subsampled',
            'stride': 3,
            'original_number_of_frames': 10,
        }
        assert '_aiida_hash' not in extras
    else:
        assert arrays == {} and not any(k.startswith('array|') for k in attributes)
        assert extras['mscale_export']['trajectory_policy'] == 'omitted'
    # the other nodes are untouched
    _, _, pw_arrays, _ = _archived(path, graph['training_set'].uuid)
    assert np.array_equal(pw_arrays['energies.npy'], [-3.0, -2.9])


def test_export_dry_run_writes_nothing(graph, tmp_path):
    from aiida_mscale.cli.export import cmd_export

    path = tmp_path / 'dry.aiida'
    result = invoke(cmd_export, [graph['transport'].pk, '-o', path, '--dry-run'])
    assert result.exit_code == 0 and 'estimated size' in result.output and not path.exists()


# ------------------------------------------------------------------------------------------------ verdi data
def test_verdi_data_training_set_show_and_export(graph, tmp_path):
    from ase.io import read

    from aiida_mscale.cli.data import training_set

    node = graph['training_set']
    shown = invoke(training_set, ['show', node.pk])
    assert shown.exit_code == 0, shown.output
    assert 'configurations: 2 (2 labelled)' in shown.output and 'sources:        2 calculation(s)' in shown.output
    assert 'energy/atom:    -1.5000 .. -1.4500 eV' in shown.output
    cfg = invoke(training_set, ['export', node.pk, '--format', 'cfg'])
    assert cfg.exit_code == 0 and cfg.output.strip() == node.to_cfg().strip()
    path = tmp_path / 'set.extxyz'
    xyz = invoke(training_set, ['export', node.pk, '-F', 'extxyz', '-o', path])
    assert xyz.exit_code == 0, xyz.output
    images = read(path, index=':')
    assert [a.get_potential_energy() for a in images] == [-3.0, -2.9]
    assert np.allclose(np.concatenate([a.get_forces() for a in images]), node.get_array('forces'))
    again = invoke(training_set, ['export', node.pk, '-F', 'extxyz', '-o', path])
    assert_clean_error(again, 'exists: use --force')
    assert_clean_error(invoke(training_set, ['export', node.pk, '-F', 'xyz']), "'xyz' is not one of")
    assert_clean_error(invoke(training_set, ['show', graph['host'].pk]))  # not a training set


def test_verdi_data_mtp_show_and_export(graph, tmp_path):
    from aiida_mscale.cli.data import mtp

    node = graph['potential']
    shown = invoke(mtp, ['show', node.pk])
    assert shown.exit_code == 0, shown.output
    assert 'species:          Li (type order)' in shown.output and 'trained:          no (template)' in shown.output
    assert 'cutoff 4.5 A' in shown.output
    path = tmp_path / 'pot.mtp'
    exported = invoke(mtp, ['export', node.pk, '-o', path])
    assert exported.exit_code == 0 and path.read_text() == node.get_text()
    assert_clean_error(invoke(mtp, ['export', node.pk, '--active-set', tmp_path / 'a.als']), 'has no active set')
    assert_clean_error(invoke(mtp, ['show', graph['training_set'].pk]))


# ------------------------------------------------------------------------------------------------ launch
ELECTRODE = {
    'models': ['particle_diffusion'],
    'cell': {
        'particle': {'radius': 1e-6, 'c_max': 2.28e4, 'density': 3.6},
        'kinetics': {'i0': 1.0, 'alpha': 0.5},
        'temperature': 298.15,
        'x_initial': 0.05,
        'x_final': 0.95,
        'c_rates': [1.0],
        'cutoff_voltage': 3.0,
    },
}


@pytest.fixture(scope='module')
def tables(aiida_profile):
    from aiida import orm

    x = np.linspace(0.0, 1.0, 21)
    ocv = orm.ArrayData()
    ocv.set_array('x', x)
    ocv.set_array('V', 3.7 - 0.4 * x)
    diffusivity = orm.ArrayData()
    diffusivity.set_array('x', np.array([0.0, 1.0]))
    diffusivity.set_array('D', np.array([1e-15, 1e-15]))
    return diffusivity.store(), ocv.store()


def test_launch_electrode_runs_the_work_chain(fenics_code, tables, tmp_path):
    from aiida import orm

    from aiida_mscale.cli.launch import cmd_launch
    from aiida_mscale.cli.status import cmd_status

    overrides = tmp_path / 'electrode.yaml'
    overrides.write_text(yaml.safe_dump(ELECTRODE))
    diffusivity, ocv = tables
    args = ['electrode', '-X', fenics_code.full_label, '-D', diffusivity.pk, '-V', ocv.pk, '--overrides', overrides]
    result = invoke(cmd_launch, args)
    assert result.exit_code == 0, result.output
    assert 'Running a ElectrodeWorkChain...' in result.output and 'rate_capability' in result.output
    pk = int(result.output.strip().splitlines()[-1].split('<')[1].split('>')[0])
    node = orm.load_node(pk)
    assert node.is_finished_ok
    capacity = node.outputs.rate_capability.get_array('capacity')[0]
    faraday = 96485.33212331001  # C/mol: e N_A of the SI 2019 exact constants, the solver's value
    assert 0 < capacity <= faraday * 2.28e4 * 0.9 / 3.6e6 / 3.6 * (1 + 1e-12)  # mAh/g of the window
    status = invoke(cmd_status, [pk, '--depth', 2])
    assert status.exit_code == 0, status.output
    assert 'particle_diffusion: ContinuumBaseWorkChain<' in status.output
    assert 'iteration_01: ContinuumCalculation<' in status.output and 'finished [0]' in status.output


def test_launch_bad_inputs_are_click_errors(fenics_code, pw_code, tables, tmp_path):
    from aiida_mscale.cli.launch import cmd_launch, load_workflow

    diffusivity, ocv = tables
    base = ['electrode', '-X', fenics_code.full_label, '-D', diffusivity.pk, '-V', ocv.pk]
    not_a_mapping = tmp_path / 'list.yaml'
    not_a_mapping.write_text('- 1\n- 2\n')
    broken = tmp_path / 'broken.yaml'
    broken.write_text('models: [particle_diffusion\n')
    no_material = tmp_path / 'no_material.yaml'
    no_material.write_text(yaml.safe_dump({'models': ['particle_diffusion'], 'cell': {'c_rates': [1.0]}}))
    assert_clean_error(invoke(cmd_launch, [*base, '--overrides', not_a_mapping]), 'must hold a mapping of inputs')
    assert_clean_error(invoke(cmd_launch, [*base, '--overrides', broken]), 'cannot read')
    assert_clean_error(
        invoke(cmd_launch, [*base, '--overrides', no_material]),
        'refused the inputs',
        'missing cell.particle.radius [m]',
    )
    assert_clean_error(invoke(cmd_launch, [*base, '--overrides', tmp_path / 'absent.yaml']), 'does not exist')
    assert_clean_error(invoke(cmd_launch, [*base, '--protocol', 'sloppy']), "'sloppy' is not one of")
    wrong_code = ['electrode', '-X', pw_code.full_label, '-D', diffusivity.pk, '-V', ocv.pk]
    assert_clean_error(invoke(cmd_launch, wrong_code))
    assert_clean_error(invoke(cmd_launch, [*base[:5], 999999, '-V', ocv.pk]))  # no such node
    md = ['md-production', '-X', 'x', '-P', 1, '-S', 1, '-g', 'Li', '-T', '300,abc', '-x', '0.5']
    assert_clean_error(invoke(cmd_launch, md))
    with pytest.raises(Exception) as missing:
        load_workflow('mscale.no_such_stage')
    assert 'is not available in this installation' in str(missing.value)


def test_other_bad_inputs_are_click_errors(graph, tmp_path):
    from aiida_mscale.cli.export import cmd_export
    from aiida_mscale.cli.query import cmd_query
    from aiida_mscale.cli.status import cmd_status

    assert_clean_error(invoke(cmd_status, [999999]), 'no Node found with ID<999999>')
    assert_clean_error(invoke(cmd_status, [graph['host'].pk]), 'not a work chain')
    assert_clean_error(invoke(cmd_status, [graph['transport'].pk, '--depth', 0]))
    assert_clean_error(invoke(cmd_query, ['dft-sources', 'no-such-label-x']))
    assert_clean_error(invoke(cmd_query, ['computed-with', graph['host'].pk]), 'not an MtpPotentialData')
    assert_clean_error(invoke(cmd_query, ['diffusivities', '--host', graph['potential'].pk]), 'not a StructureData')
    existing = tmp_path / 'exists.aiida'
    existing.write_text('x')
    assert_clean_error(invoke(cmd_export, [graph['transport'].pk, '-o', existing]), 'use --force')
    assert_clean_error(invoke(cmd_export, [graph['transport'].pk, '--trajectories', 'some']))
    assert_clean_error(invoke(cmd_export, [graph['transport'].pk, '--stride', 0]))
    assert pathlib.Path(existing).read_text() == 'x'


def test_each_launcher_builds_its_work_chain(monkeypatch, graph, pw_code, lammps_code, fenics_code, tables):
    """Every stage's command hands the work chain's own builder to the launcher (no run here: the stages run in
    their own tests), with the nodes and settings given on the command line."""
    from aiida_mscale.cli import launch as module

    built = []
    monkeypatch.setattr(module, 'launch', lambda builder, daemon: built.append((builder, daemon)))
    host, trajectory, potential = graph['host'], graph['trajectory'], graph['potential']
    diffusivity, ocv = tables
    commands = {
        'DftLabelingWorkChain': ['dft-labeling', '-X', pw_code.full_label, '-S', host.pk, '--protocol', 'fast'],
        'TransportAnalysisWorkChain': ['transport', '-t', trajectory.pk, '-m', 'Li', '--timestep', 0.001, '-d'],
        'MdProductionWorkChain': [
            'md-production',
            '-X',
            lammps_code.full_label,
            '-P',
            potential.pk,
            '-S',
            host.pk,
            '-g',
            'Li',
            '-T',
            '600,800',
            '-x',
            '0.5',
        ],
        'ElectrodeWorkChain': ['electrode', '-X', fenics_code.full_label, '-D', diffusivity.pk, '-V', ocv.pk],
    }
    for name, args in commands.items():
        result = invoke(module.cmd_launch, args)
        assert result.exit_code == 0, (name, result.output)
        builder, daemon = built[-1]
        assert builder.process_class.__name__ == name
        assert daemon == ('-d' in args)
    labeling, transport, md, electrode = (b for b, _ in built)
    assert [s.uuid for s in labeling.structures.values()] == [host.uuid]
    assert list(transport.trajectories.values())[0].uuid == trajectory.uuid
    assert md.temperatures.get_list() == [600.0, 800.0] and md.guest_fractions.get_list() == [0.5]
    assert electrode.diffusivity.uuid == diffusivity.uuid and electrode.code.uuid == fenics_code.uuid


def test_launch_multiscale_entered_at_the_electrode(fenics_code, lammps_code, tables, tmp_path):
    """`aiida-mscale launch multiscale` with a potential and both tables: only the electrode stage runs."""
    from aiida import orm
    from ase.build import bulk

    from aiida_mscale.cli.launch import cmd_launch
    from aiida_mscale.data.mtp_potential import MtpPotentialData

    host = orm.StructureData(ase=bulk('OLi2', 'fluorite', a=4.61, cubic=True)).store()
    potential = MtpPotentialData.from_template(6, ['Li', 'O'], min_dist=1.5, max_dist=4.0, radial_basis_size=6).store()
    overrides = tmp_path / 'multiscale.yaml'
    overrides.write_text(yaml.safe_dump({'electrode': ELECTRODE}))
    diffusivity, ocv = tables
    codes = ['-c', f'lammps={lammps_code.full_label}', '-c', f'continuum={fenics_code.full_label}']
    args = ['multiscale', *codes, '-S', host.pk, '-g', 'Li', '--potential', potential.pk]
    args += ['--diffusivity', diffusivity.pk, '--ocv', ocv.pk, '--protocol', 'fast', '--overrides', overrides]
    result = invoke(cmd_launch, args)
    assert result.exit_code == 0, result.output
    pk = int(result.output.strip().splitlines()[-1].split('<')[1].split('>')[0])
    node = orm.load_node(pk)
    assert node.is_finished_ok, node.exit_message
    assert [n.process_label for n in node.called if n.process_label.endswith('WorkChain')] == ['ElectrodeWorkChain']
    assert node.outputs.diffusivity.uuid == diffusivity.uuid and node.outputs.potential.uuid == potential.uuid
    summary = node.outputs.summary.get_dict()
    assert summary['rate_capability']['1C']['capacity'] == pytest.approx(
        float(node.outputs.rate_capability.get_array('capacity')[0])
    )
    # a guest the potential does not know: a click error naming it, nothing run
    bad = invoke(cmd_launch, [*args[: args.index('-g')], '-g', 'Na', *args[args.index('-g') + 2 :]])
    assert_clean_error(bad, "'Na' is not an element of the structure")
