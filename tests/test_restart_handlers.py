"""Process handlers of MtpTrainBaseWorkChain, MtpSelectBaseWorkChain and LammpsMtpBaseWorkChain, on fake child nodes
(no binary runs).

Each test instantiates the work chain, gives it a child ``CalcJobNode`` that finished with a chosen exit code (and
outputs where the handler needs them), calls ``inspect_process`` and asserts on the returned exit code and on
``ctx.inputs`` (the inputs of the next calculation).
"""

import numpy as np
import pytest
from ase.build import bulk

from tests.fit_inputs import bfgs, train_script_inputs, training_set


@pytest.fixture
def small_training_set():
    return training_set([bulk('Li', 'bcc', a=3.43, cubic=True)], energies=[-3.0]).store()


@pytest.fixture
def template():
    from aiida_mscale.data.mtp_potential import MtpPotentialData

    return MtpPotentialData.from_template(6, ['Li'], min_dist=1.5, max_dist=4.5).store()


def _fake_child(process_type, exit_status, outputs=None, attributes=None):
    """A finished ``CalcJobNode`` of ``process_type`` with ``exit_status`` and the given ``outputs``."""
    from aiida import orm
    from aiida.common.links import LinkType
    from plumpy.process_states import ProcessState

    node = orm.CalcJobNode(computer=orm.load_computer('localhost'), process_type=process_type)
    node.set_process_state(ProcessState.FINISHED)
    node.set_exit_status(exit_status)
    node.set_process_label(process_type.rsplit(':', 1)[-1])
    for key, value in (attributes or {}).items():
        node.base.attributes.set(key, value)
    node.store()
    for label, output in (outputs or {}).items():
        output.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label=label)
        output.store()
    return node


def _workchain(process_class, inputs):
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager

    process = instantiate_process(get_manager().get_runner(), process_class, **inputs)
    process.setup()
    return process


def _inspect(process, child):
    process.ctx.children = [child]
    process.ctx.iteration = 1
    return process.inspect_process()


# --------------------------------------------------------------------------------------- MtpTrainBaseWorkChain
TRAIN = 'aiida.calculations:mscale.mtp.train'


@pytest.fixture
def train_workchain(mtp_train_code, small_training_set, template):
    from aiida import orm

    from aiida_mscale.workflows.mtp_train_base import MtpTrainBaseWorkChain

    inputs = {
        'mtp': {
            'code': mtp_train_code,
            'training_set': small_training_set,
            'potential': template,
            'parameters': orm.Dict({'seed': 7, 'loss': {'energy_weight': 1.0, 'stress_weight': 0.01}}),
            'metadata': {'options': {'max_wallclock_seconds': 100}},
        }
    }
    return _workchain(MtpTrainBaseWorkChain, inputs)


def test_diverged_fit_is_reseeded_with_a_lower_stress_weight(train_workchain, template):
    from aiida_mscale.data.mtp_potential import MtpPotentialData

    diverged = MtpPotentialData(template.get_text(), species=['Li'])
    result = _inspect(train_workchain, _fake_child(TRAIN, 410, {'potential': diverged}))
    assert result is None or result.status == 0
    parameters = train_workchain.ctx.inputs.parameters
    assert parameters['seed'] == 8
    assert parameters['loss']['stress_weight'] == pytest.approx(0.001)
    assert parameters['loss']['energy_weight'] == 1.0
    assert train_workchain.ctx.inputs.potential.uuid == template.uuid  # not the diverged fit


def test_training_out_of_walltime_warm_starts_from_the_last_potential(train_workchain, template):
    from aiida_mscale.data.mtp_potential import MtpPotentialData

    last = MtpPotentialData(template.get_text(), species=['Li'])
    result = _inspect(train_workchain, _fake_child(TRAIN, 120, {'potential': last}))
    assert result is None or result.status == 0
    assert train_workchain.ctx.inputs.potential.uuid == last.uuid
    assert train_workchain.ctx.inputs.parameters['seed'] == 7


def test_training_out_of_walltime_without_potential_gets_more_walltime(train_workchain, template):
    result = _inspect(train_workchain, _fake_child(TRAIN, 120))
    assert result is None or result.status == 0
    assert train_workchain.ctx.inputs.metadata.options.max_wallclock_seconds == 200
    assert train_workchain.ctx.inputs.potential.uuid == template.uuid


@pytest.mark.parametrize('exit_status', [300, 301, 302])
def test_training_bad_input_aborts(train_workchain, exit_status):
    result = _inspect(train_workchain, _fake_child(TRAIN, exit_status))
    assert result.status == train_workchain.exit_codes.ERROR_UNRECOVERABLE_FAILURE.status == 300


def _train_builder(process_class, code, training_set, potential):
    """A builder of ``process_class`` (a training restart chain) with ``code`` and nothing but the required inputs."""
    builder = process_class.get_builder()
    builder.mtp.code = code
    builder.mtp.training_set = training_set
    builder.mtp.potential = potential
    return builder


def test_train_base_refuses_a_code_of_another_plugin(lammps_code, small_training_set, template):
    from aiida.engine import run

    from aiida_mscale.workflows.mtp_train_base import MtpTrainBaseWorkChain

    builder = _train_builder(MtpTrainBaseWorkChain, lammps_code, small_training_set, template)
    with pytest.raises(ValueError, match='but MTP training needs a `mscale.mtp.train` code'):
        run(builder)


def test_a_subclass_with_its_own_validation_keeps_the_plugin_check(lammps_code, small_training_set, template):
    """A restart chain that adds a check by extending ``validate_inputs`` still refuses a code of another plugin
    (assigning ``spec.inputs.validator`` in a subclass used to drop it), and its own check still runs."""
    from aiida.engine import run

    from aiida_mscale.workflows.mtp_train_base import MtpTrainBaseWorkChain

    class TrainWithACheck(MtpTrainBaseWorkChain):
        @classmethod
        def validate_inputs(cls, inputs, ctx):
            if inputs['mtp']['potential'].label == 'refuse me':
                return 'the potential is labelled `refuse me`'
            return super().validate_inputs(inputs, ctx)

    builder = _train_builder(TrainWithACheck, lammps_code, small_training_set, template)
    with pytest.raises(ValueError, match='but MTP training needs a `mscale.mtp.train` code'):
        run(builder)
    template.label = 'refuse me'
    with pytest.raises(ValueError, match='labelled `refuse me`'):
        run(builder)


# -------------------------------------------------------------------------------------- MtpSelectBaseWorkChain
SELECT = 'aiida.calculations:mscale.mtp.select'


@pytest.fixture
def select_workchain(mtp_select_code):
    """The work chain around a selection with a level-6 Li potential (seeded coefficients) and 16 Li atoms."""
    from aiida import orm

    from aiida_mscale.data.mtp_potential import MtpPotentialData
    from aiida_mscale.mtp.potential_file import parse_mtp
    from aiida_mscale.workflows.mtp_select_base import MtpSelectBaseWorkChain

    mtp = parse_mtp(MtpPotentialData.from_template(6, ['Li'], min_dist=1.5, max_dist=4.5).get_text())
    rng = np.random.default_rng(3)
    mtp.scaling = 1.0
    mtp.species_coeffs = np.array([-1.9])
    mtp.moment_coeffs = rng.normal(0.0, 0.01, mtp.alpha_scalar_moments)
    mtp.radial_coeffs = rng.normal(0.0, 0.01, (1, 1, mtp.radial_funcs_count, mtp.radial_basis_size))
    potential = MtpPotentialData(mtp.to_text(), species=['Li']).store()
    atoms = bulk('Li', 'bcc', a=3.43, cubic=True).repeat(2)  # 16 neighbourhoods: the active set needs 6
    configurations = training_set([atoms]).store()
    inputs = {
        'mtp': {
            'code': mtp_select_code,
            'potential': potential,
            'training_set': configurations,
            'candidates': configurations,
            'parameters': orm.Dict({'threshold': 1.5, 'max_count': 3}),
            'metadata': {'options': {'max_wallclock_seconds': 150}},
        }
    }
    return _workchain(MtpSelectBaseWorkChain, inputs)


@pytest.mark.parametrize('exit_status', [300, 301, 302, 310])
def test_selection_failures_abort(select_workchain, exit_status):
    """Missing output, a script error, an unusable active set, non-finite grades: a rerun repeats them."""
    result = _inspect(select_workchain, _fake_child(SELECT, exit_status))
    assert result.status == select_workchain.exit_codes.ERROR_UNRECOVERABLE_FAILURE.status == 300


def test_selection_out_of_walltime_reruns_with_more_walltime(select_workchain):
    inputs_before = dict(select_workchain.ctx.inputs)
    result = _inspect(select_workchain, _fake_child(SELECT, 120))
    assert result is None or result.status == 0
    assert select_workchain.ctx.inputs.metadata['options']['max_wallclock_seconds'] == 300
    for name in ('potential', 'training_set', 'candidates', 'parameters'):  # the same selection again
        assert select_workchain.ctx.inputs[name].uuid == inputs_before[name].uuid


def test_selection_out_of_walltime_without_a_walltime_reruns(select_workchain):
    select_workchain.ctx.inputs.metadata['options'].pop('max_wallclock_seconds')
    result = _inspect(select_workchain, _fake_child(SELECT, 120))
    assert result is None or result.status == 0
    assert 'max_wallclock_seconds' not in select_workchain.ctx.inputs.metadata['options']


def test_select_base_refuses_a_code_of_another_plugin(mtp_train_code, select_workchain):
    from aiida.engine import run

    from aiida_mscale.workflows.mtp_select_base import MtpSelectBaseWorkChain

    builder = MtpSelectBaseWorkChain.get_builder()
    inputs = select_workchain.ctx.inputs
    builder.mtp.code = mtp_train_code
    builder.mtp.potential = inputs.potential
    builder.mtp.training_set = inputs.training_set
    builder.mtp.candidates = inputs.candidates
    with pytest.raises(ValueError, match='but MaxVol selection needs a `mscale.mtp.select` code'):
        run(builder)


# --------------------------------------------------------------------------------------- LammpsMtpBaseWorkChain
LAMMPS = 'aiida.calculations:mscale.lammps.mtp'
DUMP = """ITEM: TIMESTEP
0
ITEM: NUMBER OF ATOMS
2
ITEM: BOX BOUNDS pp pp pp
0 3.43
0 3.43
0 3.43
ITEM: ATOMS id type element x y z ix iy iz
1 1 Li 0 0 0 0 0 0
2 1 Li 1.715 1.715 1.715 0 0 0
ITEM: TIMESTEP
300
ITEM: NUMBER OF ATOMS
1
ITEM: BOX BOUNDS pp pp pp
0 3.5
0 3.5
0 3.5
ITEM: ATOMS id type element x y z ix iy iz
1 1 Li 0.1 0.2 0.3 0 0 0
"""


@pytest.fixture
def md_workchain(lammps_code, template):
    from aiida import orm

    from aiida_mscale.workflows.lammps_mtp_base import LammpsMtpBaseWorkChain

    trained = template.clone()
    trained.base.attributes.set('is_trained', True)
    trained.store()
    inputs = {
        'lammps': {
            'code': lammps_code,
            'structure': orm.StructureData(ase=bulk('Li', 'bcc', a=3.43, cubic=True)),
            'potential': trained,
            'parameters': orm.Dict({'steps': 1000, 'seed': 5, 'ensemble': 'nvt'}),
        }
    }
    return _workchain(LammpsMtpBaseWorkChain, inputs)


def test_extrapolation_break_is_an_expected_outcome(md_workchain):
    from aiida import orm

    child = _fake_child(LAMMPS, 250, {'max_grade': orm.Float(12.0)})
    result = _inspect(md_workchain, child)
    assert result is None or result.status == 0
    assert md_workchain.ctx.is_finished and md_workchain.ctx.stopped_by_break
    assert not md_workchain.should_run_process()
    assert md_workchain.ctx.inputs.parameters['steps'] == 1000  # nothing changed, nothing rerun


DUMP_WITH_VELOCITIES = """ITEM: TIMESTEP
250
ITEM: NUMBER OF ATOMS
2
ITEM: BOX BOUNDS xy xz yz pp pp pp
0 3.6 0.1
0 3.5 0
0 3.4 0
ITEM: ATOMS id type element x y z ix iy iz vx vy vz
2 1 Li 1.7 1.7 1.7 0 0 0 -1.5 2.5 0.5
1 1 Li 0.2 0.1 0.0 0 0 1 3.0 -2.0 1.0
ITEM: TIMESTEP
300
ITEM: NUMBER OF ATOMS
2
ITEM: BOX BOUNDS
"""  # the frame of step 300 was cut off mid-write: the last complete frame (step 250) is used


@pytest.mark.parametrize('exit_status', [120, 400])
def test_md_out_of_walltime_restarts_from_the_last_dumped_frame(md_workchain, exit_status):
    from aiida import orm

    retrieved = orm.FolderData()
    retrieved.base.repository.put_object_from_bytes(DUMP.encode(), 'trajectory.dump')
    result = _inspect(md_workchain, _fake_child(LAMMPS, exit_status, {'retrieved': retrieved}))
    assert result is None or result.status == 0
    parameters = md_workchain.ctx.inputs.parameters
    # no velocities in this dump: fresh ones with a new seed
    assert parameters['steps'] == 700 and parameters['seed'] == 6 and parameters['initial_velocities'] == 'create'
    assert 'velocities' not in md_workchain.ctx.inputs
    frame = md_workchain.ctx.inputs.structure
    assert len(frame.sites) == 1  # the number of atoms GCMC left, from the last frame
    np.testing.assert_allclose(frame.sites[0].position, [0.1, 0.2, 0.3])
    np.testing.assert_allclose(np.diag(frame.cell), [3.5, 3.5, 3.5])
    assert frame.creator.process_label == 'last_dumped_frame'


def test_md_restart_keeps_the_dumped_velocities(md_workchain):
    from aiida import orm

    retrieved = orm.FolderData()
    retrieved.base.repository.put_object_from_bytes(DUMP_WITH_VELOCITIES.encode(), 'trajectory.dump')
    result = _inspect(md_workchain, _fake_child(LAMMPS, 400, {'retrieved': retrieved}))
    assert result is None or result.status == 0
    parameters = md_workchain.ctx.inputs.parameters
    assert parameters['steps'] == 750 and parameters['seed'] == 5 and parameters['initial_velocities'] == 'data'
    frame = md_workchain.ctx.inputs.structure
    # atoms sorted by id; triclinic box: xlo_bound 0 - min(0, xy=0.1, 0, 0.1) = 0, xhi = 3.6 - 0.1 = 3.5
    np.testing.assert_allclose(frame.cell, [[3.5, 0, 0], [0.1, 3.5, 0], [0, 0, 3.4]])
    np.testing.assert_allclose([s.position for s in frame.sites], [[0.2, 0.1, 0.0], [1.7, 1.7, 1.7]])
    velocities = md_workchain.ctx.inputs.velocities.get_array('velocities')
    np.testing.assert_allclose(velocities, [[3.0, -2.0, 1.0], [-1.5, 2.5, 0.5]])


@pytest.mark.parametrize('exit_status', [303, 304])
def test_md_without_thermo_or_plugin_aborts(md_workchain, exit_status):
    result = _inspect(md_workchain, _fake_child(LAMMPS, exit_status))
    assert result.status == 300


def test_md_base_refuses_a_code_of_another_plugin(pw_code, template):
    from aiida import orm
    from aiida.engine import run

    from aiida_mscale.workflows.lammps_mtp_base import LammpsMtpBaseWorkChain

    builder = LammpsMtpBaseWorkChain.get_builder()
    trained = template.clone()
    trained.base.attributes.set('is_trained', True)
    builder.lammps.code = pw_code
    builder.lammps.structure = orm.StructureData(ase=bulk('Li', 'bcc', a=3.43, cubic=True))
    builder.lammps.potential = trained
    with pytest.raises(ValueError, match='but MD with an MTP needs a `mscale.lammps.mtp`'):
        run(builder)


# ------------------------------------------------------------------------------- training checkpoints (motep)
def _emt_copper_set():
    """Four rattled fcc Cu cells labelled with ASE's EMT (a cheap, independent reference)."""
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    from aiida_mscale.data.training_set import TrainingSetData

    images = []
    for k in range(4):
        atoms = bulk('Cu', 'fcc', a=3.61, cubic=True)
        atoms.rattle(0.05, seed=k)
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        images.append(atoms)
    return TrainingSetData.from_ase(images)


def test_training_script_writes_checkpoints(tmp_path, aiida_profile, monkeypatch):
    """The script (motep in-process) writes checkpoint.mtp every `checkpoint_every` iterations, readable."""
    import json

    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the process's directory is not the fit's

    from aiida_mscale.data.mtp_potential import MtpPotentialData
    from aiida_mscale.mtp.potential_file import read_mtp
    from aiida_mscale.mtp.train import train

    (tmp_path / 'train.cfg').write_text(_emt_copper_set().to_cfg(['Cu']))
    template = MtpPotentialData.from_template(4, ['Cu'], min_dist=2.0, max_dist=4.5)
    (tmp_path / 'initial.mtp').write_text(template.get_text())
    loss = {'energy_weight': 1.0, 'forces_weight': 0.01, 'stress_weight': 0.0}
    inputs = train_script_inputs(['Cu'], loss, bfgs(6), checkpoint_every=2)
    train(inputs, workdir=tmp_path)
    curve = json.loads((tmp_path / 'learning_curve.json').read_text())
    assert len(curve[0]['loss']) >= 2
    checkpoint = read_mtp(tmp_path / 'checkpoint.mtp')
    assert checkpoint.is_trained
    assert not (tmp_path / 'checkpoint.mtp.partial').exists()
    # motep's own intermediate_<step>.mtp lands in the fit's directory, not in the caller's
    assert (tmp_path / 'intermediate_0.mtp').exists()
    assert not list(elsewhere.iterdir())


def test_parser_returns_the_checkpoint_of_a_run_cut_by_the_walltime(mtp_train_code, small_training_set, template):
    """No final.mtp, a checkpoint.mtp, and the scheduler's 120: the potential output is the checkpoint."""
    from aiida import orm
    from aiida.common.links import LinkType
    from plumpy.process_states import ProcessState

    from aiida_mscale.parsers.mtp_train import MtpTrainParser

    node = orm.CalcJobNode(computer=orm.load_computer('localhost'), process_type=TRAIN)
    node.base.links.add_incoming(template, link_type=LinkType.INPUT_CALC, link_label='potential')
    node.base.links.add_incoming(small_training_set, link_type=LinkType.INPUT_CALC, link_label='training_set')
    node.set_process_state(ProcessState.FINISHED)
    node.set_exit_status(120)
    node.store()
    retrieved = orm.FolderData()
    retrieved.base.repository.put_object_from_bytes(template.get_text().encode(), 'checkpoint.mtp')
    retrieved.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='retrieved')
    retrieved.store()
    results, calcfunction = MtpTrainParser.parse_from_node(node, store_provenance=False)
    assert calcfunction.exit_status == 120
    assert results['potential'].get_text() == template.get_text()
    assert results['potential'].base.attributes.get('checkpoint') is True
