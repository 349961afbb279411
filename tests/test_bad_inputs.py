"""The bad-input table: one row per bad input across the public surfaces of the suite.

Every row asserts that the input is refused before any process node is stored, with a message that names the
offending input, and without a traceback. The injection rows feed a newline + ``shell touch`` payload through
every parameter of every input writer (the LAMMPS script, the motep/selection JSON, the continuum solver's
JSON, pw.x namelists) and assert that nothing ran and no file appeared.

Rows that need the run to tell (a diverged fit, a run cut short) are tested with their exit codes next to
their CalcJobs (tests/test_restart_handlers.py, tests/test_lammps_mtp.py, tests/test_continuum_calculation.py).
"""

from __future__ import annotations

import math
import pathlib
import re

import numpy as np
import pytest

MARKER = pathlib.Path('/tmp/mscale-injection-marker')
PAYLOAD = f'1.0 1.0 1.0\nshell touch {MARKER}\n#'


@pytest.fixture(autouse=True)
def _no_marker():
    MARKER.unlink(missing_ok=True)
    yield
    assert not MARKER.exists(), 'an injected command ran'


def _set(tree: dict, path: str, value) -> dict:
    """A deep copy of ``tree`` with ``value`` at the dotted ``path`` (``steps.0.method``)."""
    import copy

    tree = copy.deepcopy(tree)
    keys = path.split('.')
    node = tree
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return tree


def _process_count() -> int:
    from aiida import orm

    return orm.QueryBuilder().append(orm.ProcessNode).count()


def _refused(run, message: str):
    """``run()`` raises ValueError matching ``message``; no process node was stored."""
    before = _process_count()
    with pytest.raises(ValueError, match=message) as info:
        run()
    assert 'Traceback' not in str(info.value)
    assert _process_count() == before, 'a process node was stored for refused input'
    return info.value


# ------------------------------------------------------------------------------------------ LAMMPS (MD)
MD_BASE = {
    'ensemble': 'npt',
    'steps': 10,
    'gcmc': {'species': 'Li', 'mu': -1.9},
    'extrapolation': {'every': 5, 'save_threshold': 2.0, 'break_threshold': 10.0},
}
MD_KEYS = [
    'ensemble',
    'temperature',
    'pressure',
    'timestep',
    'steps',
    'thermo_every',
    'dump_every',
    'seed',
    'thermostat_damping',
    'barostat_damping',
    'gcmc.species',
    'gcmc.mu',
    'gcmc.every',
    'gcmc.exchanges',
    'gcmc.moves',
    'gcmc.max_displacement',
    'extrapolation.every',
    'extrapolation.save_threshold',
    'extrapolation.break_threshold',
]
MD_BAD = [
    ({'temperature': math.nan}, r'parameters.temperature: .*finite'),
    ({'temperature': -300.0}, r'parameters.temperature: Input should be greater than 0'),
    ({'temperature': '300'}, r'parameters.temperature: Input should be a valid number'),
    ({'pressure': math.inf}, r'parameters.pressure: .*finite'),
    ({'timestep': 0.0}, r'parameters.timestep: Input should be greater than 0'),
    ({'timestep': 1.0}, r'parameters.timestep: Input should be less than or equal to 0.1'),
    ({'steps': 1.5}, r'parameters.steps: Input should be a valid integer'),
    ({'steps': True}, r'parameters.steps: Input should be a valid integer'),
    ({'steps': -1}, r'parameters.steps: Input should be greater than or equal to 0'),
    ({'thermo_every': 0}, r'parameters.thermo_every: Input should be greater than or equal to 1'),
    ({'dump_every': None}, r'parameters.dump_every: Input should be a valid integer'),
    ({'seed': 0}, r'parameters.seed: Input should be greater than or equal to 1'),
    ({'seed': 2**31}, r'parameters.seed: Input should be less than or equal to 2147483647'),
    ({'ensemble': 'nph'}, r"parameters.ensemble: Input should be 'nve', 'nvt' or 'npt'"),
    ({'thermostat_damping': -0.1}, r'parameters.thermostat_damping: Input should be greater than 0'),
    ({'plugin_path': '/tmp/evil.so'}, r'parameters.plugin_path: unknown parameter'),
    ({'velocity': 1.0}, r'parameters.velocity: unknown parameter'),
    ({'gcmc': {'species': 'Na', 'mu': -1.0}}, r"parameters.gcmc.species: 'Na' is not a species of the potential"),
    ({'gcmc': {'species': 'Xx', 'mu': -1.0}}, r"parameters.gcmc.species: 'Xx' is not a chemical element"),
    ({'gcmc': {'species': 'Li'}}, r'parameters.gcmc.mu: required parameter is missing'),
    ({'gcmc': {'species': 'Li', 'mu': -1.0, 'exchanges': 0, 'moves': 0}}, r'parameters.gcmc: .*does nothing'),
    ({'gcmc': {'species': 'Li', 'mu': -1.0, 'max_displacement': 50.0}}, r'parameters.gcmc.max_displacement'),
    ({'gcmc': {'species': 'Li', 'mu': -1.0, 'what': 1}}, r'parameters.gcmc.what: unknown parameter'),
    ({'gcmc': 'Li'}, r'parameters.gcmc: Input should be a valid dictionary'),
    ({'extrapolation': {'save_threshold': 0.5}}, r'parameters.extrapolation.save_threshold: .*greater than or equal'),
    ({'extrapolation': {'save_threshold': 12.0, 'break_threshold': 10.0}}, r'need 1 <= save_threshold <= break'),
    ({'extrapolation': {'every': 0}}, r'parameters.extrapolation.every: Input should be greater than or equal'),
]


@pytest.mark.parametrize('key', MD_KEYS)
def test_md_script_refuses_an_injection_in_every_parameter(key):
    """The writer itself re-validates: a payload in any parameter never reaches the script."""
    from aiida_mscale.lammps.inputs import md_script

    with pytest.raises(ValueError, match=rf'parameters\.{key}: '):
        md_script(_set(MD_BASE, key, PAYLOAD), ['Li', 'O'])


def test_md_script_writes_numbers_it_formatted_itself():
    """A valid script has no line a user value could have added: every line starts with a known command."""
    from aiida_mscale.lammps.inputs import md_script

    script = md_script(MD_BASE, ['Li', 'O'])
    commands = {line.split()[0] for line in script.splitlines()}
    known = set(
        'units atom_style boundary read_data pair_style pair_coeff neighbor neigh_modify timestep velocity compute '
        'compute_modify fix fix_modify thermo_style thermo dump dump_modify run group read_restart '
        'write_restart'.split()
    )
    assert commands <= known, commands - known
    assert 'plugin' not in script and not any(word.startswith('/') for word in script.split())  # no machine path
    assert re.search(r'^fix exchange \w+ gcmc 10 5 0 1 12346 300 -1.9 0.2 full_energy', script, re.M), script


@pytest.fixture(scope='module')
def lammps_inputs(lammps_code):
    from aiida import orm
    from ase.build import bulk

    from aiida_mscale.data.mtp_potential import MtpPotentialData
    from aiida_mscale.lammps.testing import tame_potential

    potential = MtpPotentialData(tame_potential(level=6, species_count=2, max_dist=4.5, seed=1).to_text(), ['Li', 'O'])
    structure = orm.StructureData(ase=bulk('Li', 'bcc', a=3.43, cubic=True))
    return lammps_code, structure, potential


def _run_lammps(lammps_inputs, parameters):
    from aiida import orm
    from aiida.engine import run

    from aiida_mscale.calculations.lammps_mtp import LammpsMtpCalculation

    code, structure, potential = lammps_inputs
    return run(
        LammpsMtpCalculation, code=code, structure=structure, potential=potential, parameters=orm.Dict(parameters)
    )


@pytest.mark.parametrize('key', MD_KEYS)
def test_lammps_calculation_refuses_an_injection_in_every_parameter(lammps_inputs, key):
    _refused(lambda: _run_lammps(lammps_inputs, _set(MD_BASE, key, PAYLOAD)), rf'parameters\.{key}: ')


@pytest.mark.parametrize('change, message', MD_BAD)
def test_lammps_calculation_refuses_bad_md_parameters(lammps_inputs, change, message):
    parameters = {key: value for key, value in MD_BASE.items() if key != 'extrapolation'}
    _refused(lambda: _run_lammps(lammps_inputs, {**parameters, **change}), message)


def test_lammps_calculation_refuses_the_raw_script_inputs(lammps_inputs):
    from aiida import orm
    from aiida.engine import run

    from aiida_mscale.calculations.lammps_mtp import LammpsMtpCalculation

    code, structure, potential = lammps_inputs
    script = orm.SinglefileData.from_string('shell touch /tmp/x\n', filename='in.lmp')
    _refused(
        lambda: run(LammpsMtpCalculation, code=code, structure=structure, potential=potential, script=script),
        r"Unexpected ports \{'script'",  # a plain CalcJob now: aiida-lammps' raw inputs do not exist
    )


# ------------------------------------------------------------------------------------------ MTP training / selection
TRAIN_KEYS = [
    'validation_fraction',
    'seed',
    'engine',
    'loss.energy_weight',
    'loss.forces_weight',
    'loss.stress_weight',
    'steps.0.method',
    'steps.0.kwargs.method',
    'steps.0.kwargs.options.maxiter',
]
TRAIN_BAD = [
    ({'loss': {'energy_weight': -1.0}}, r'parameters.loss.energy_weight: Input should be greater than or equal to 0'),
    (
        {'loss': {'energy_weight': 0.0, 'forces_weight': 0.0, 'stress_weight': 0.0}},
        r'parameters.loss: .*at least one of energy_weight, forces_weight, stress_weight must be > 0',
    ),
    ({'validation_fraction': 1.0}, r'parameters.validation_fraction: Input should be less than 1'),
    ({'steps': []}, r'parameters.steps: List should have at least 1 item'),
    ({'steps': [{'method': 'sgd'}]}, r'parameters.steps\[0\].method: Input should be'),
    ({'steps': [{'kwargs': {'options': {'maxiter': 0}}}]}, r'parameters.steps\[0\].kwargs.options.maxiter'),
    ({'steps': [{'kwargs': {'options': {'callback': 'x'}}}]}, r'parameters.steps\[0\].kwargs.options'),
    ({'engine': 'mlippy'}, r"parameters.engine: Input should be 'cext', 'numpy' or 'numba'"),
    ({'level': 8}, r'parameters.level: unknown parameter'),
    ({'seed': -1}, r'parameters.seed: Input should be greater than or equal to 1'),
]


@pytest.fixture(scope='module')
def training_inputs(mtp_train_code):
    from aiida_mscale.data.mtp_potential import MtpPotentialData
    from aiida_mscale.data.training_set import TrainingSetData

    training_set = TrainingSetData.from_arrays(
        numbers_of_atoms=[2],
        cells=[np.eye(3) * 3.43],
        pbc=[[True] * 3],
        positions=[[0, 0, 0], [1.7, 1.7, 1.7]],
        atomic_numbers=[3, 3],
        energies=[-3.8],
        forces=np.zeros((2, 3)),
    )
    return mtp_train_code, training_set, MtpPotentialData.from_template(6, ['Li'])


def _run_training(training_inputs, parameters):
    from aiida import orm
    from aiida.engine import run

    from aiida_mscale.calculations.mtp_train import MtpTrainCalculation

    code, training_set, potential = training_inputs
    return run(
        MtpTrainCalculation, code=code, training_set=training_set, potential=potential, parameters=orm.Dict(parameters)
    )


@pytest.mark.parametrize('key', TRAIN_KEYS)
def test_mtp_training_refuses_an_injection_in_every_parameter(training_inputs, key):
    from aiida_mscale.calculations.mtp_train import DEFAULT_PARAMETERS

    message = rf'parameters\.{key.replace(".0.", "[0].")}'.replace('[', r'\[').replace(']', r'\]')
    _refused(lambda: _run_training(training_inputs, _set(DEFAULT_PARAMETERS, key, PAYLOAD)), message)


@pytest.mark.parametrize('change, message', TRAIN_BAD)
def test_mtp_training_refuses_bad_parameters(training_inputs, change, message):
    _refused(lambda: _run_training(training_inputs, change), message)


SELECT_KEYS = [
    'threshold',
    'max_count',
    'layout',
    'duplicate_tolerance',
    'engine',
    'seed',
    'maxvol.algorithm',
    'maxvol.init_method',
    'maxvol.threshold',
    'maxvol.maxiter',
]
SELECT_BAD = [
    ({'threshold': 0.9}, r'parameters.threshold: Input should be greater than or equal to 1'),
    ({'threshold': math.nan}, r'parameters.threshold: .*finite'),
    ({'max_count': 0}, r'parameters.max_count: Input should be greater than or equal to 1'),
    ({'max_count': True}, r'parameters.max_count: Input should be a valid integer'),
    ({'layout': 'radial'}, r"parameters.layout: Input should be 'moment', 'moment\+species' or 'full'"),
    ({'duplicate_tolerance': -1e-6}, r'parameters.duplicate_tolerance: Input should be greater than or equal to 0'),
    ({'maxvol': {'maxiter': 0}}, r'parameters.maxvol.maxiter: Input should be greater than or equal to 1'),
]


@pytest.fixture(scope='module')
def selection_inputs(mtp_select_code, training_inputs):
    from aiida_mscale.data.mtp_potential import MtpPotentialData
    from aiida_mscale.lammps.testing import tame_potential

    potential = MtpPotentialData(tame_potential(level=6, species_count=1, max_dist=4.5, seed=1).to_text(), ['Li'])
    return mtp_select_code, training_inputs[1], potential


def _run_selection(selection_inputs, parameters):
    from aiida import orm
    from aiida.engine import run

    from aiida_mscale.calculations.mtp_select import MtpSelectCalculation

    code, training_set, potential = selection_inputs
    return run(
        MtpSelectCalculation,
        code=code,
        potential=potential,
        training_set=training_set,
        candidates=training_set,
        parameters=orm.Dict(parameters),
    )


@pytest.mark.parametrize('key', SELECT_KEYS)
def test_mtp_selection_refuses_an_injection_in_every_parameter(selection_inputs, key):
    from aiida_mscale.calculations.mtp_select import DEFAULT_PARAMETERS

    _refused(lambda: _run_selection(selection_inputs, _set(DEFAULT_PARAMETERS, key, PAYLOAD)), rf'parameters\.{key}')


@pytest.mark.parametrize('change, message', SELECT_BAD)
def test_mtp_selection_refuses_bad_parameters(selection_inputs, change, message):
    _refused(lambda: _run_selection(selection_inputs, change), message)


# ------------------------------------------------------------------------------------------ continuum
SPHERE = {
    'particle': {'radius': 1e-6, 'c_max': 2e4},
    'x_initial': 0.0,
    'x_final': 1.0,
    'c_rates': [1.0],
    'cutoff_voltage': 0.0,
}
CONTINUUM_BAD = [
    ('particle_diffusion', _set(SPHERE, 'particle.radius', PAYLOAD), r'strings that are not plain words'),
    ('particle_diffusion', _set(SPHERE, 'c_rates', [PAYLOAD]), r'parameters.c_rates\[0\]'),
    ('particle_diffusion', _set(SPHERE, 'temperature', PAYLOAD), r'parameters.temperature'),
    ('particle_diffusion', {**SPHERE, 'diffusivity': '/etc/passwd.npy'}, r'parameters.diffusivity'),
    ('particle_diffusion', {**SPHERE, 'x_final': 'x.npz:key'}, r'parameters.x_final'),
    ('particle_diffusion', _set(SPHERE, 'kinetics.i0', -1.0), r"'kinetics.i0' must be > 0"),
    ('particle_diffusion', _set(SPHERE, 'particle.radius', 0.0), r"'particle.radius' must be > 0"),
    ('particle_diffusion', {**SPHERE, 'c_rates': [0.0]}, r'`c_rates` must be positive'),
    ('particle_diffusion', {**SPHERE, 'c_rates': []}, r'`c_rates` must be a non-empty list'),
    ('particle_diffusion', {**SPHERE, 'cutoff_voltage': 4.5}, r'cutoff_voltage 4.5 V must be below'),
    ('particle_diffusion', {**SPHERE, 'x_initial': 1.5}, r'x_initial'),
    ('particle_diffusion', {**SPHERE, 'model': 'phase_field'}, r'`parameters` must not hold \[.model.\]'),
    ('particle_diffusion', {**SPHERE, 'extra': 1}, r"unknown parameters \['extra'\]"),
    ('particle_diffusion', _set(SPHERE, 'mesh.n_cell', 5), r"unknown parameters \['n_cell'\] in `mesh`"),
    (f'particle_diffusion\n{PAYLOAD}', SPHERE, r'unknown model'),
    ('finite_volume', SPHERE, r'unknown model `finite_volume`'),
]


@pytest.mark.parametrize('model, parameters, message', CONTINUUM_BAD)
def test_continuum_calculation_refuses_bad_input(fenics_code, model, parameters, message):
    from aiida import orm
    from aiida.engine import run

    from aiida_mscale.calculations.continuum import ContinuumCalculation

    diffusivity, ocv = orm.ArrayData(), orm.ArrayData()
    diffusivity.set_array('x', np.array([0.0, 1.0]))
    diffusivity.set_array('D', np.array([1e-14, 1e-14]))
    ocv.set_array('x', np.array([0.0, 1.0]))
    ocv.set_array('V', np.array([4.0, 3.0]))
    _refused(
        lambda: run(
            ContinuumCalculation,
            code=fenics_code,
            model=orm.Str(model),
            parameters=orm.Dict(parameters),
            diffusivity=diffusivity,
            ocv=ocv,
        ),
        message,
    )


# ------------------------------------------------------------------------------------------ DFT labelling
def _labelling_builder(pw_code, cheap_dft, structures, overrides=None):
    from aiida_quantumespresso.workflows.protocols.utils import recursive_merge

    from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain

    cheap, serial = cheap_dft
    return DftLabelingWorkChain.get_builder_from_protocol(
        pw_code, structures, protocol='fast', overrides=recursive_merge(cheap, overrides or {}), options=serial
    )


def _li_structure(**changes):
    from aiida import orm
    from ase.build import bulk

    atoms = bulk('Li', 'bcc', a=3.43, cubic=True)
    for key, value in changes.items():
        setattr(atoms, key, value)
    return orm.StructureData(ase=atoms)


@pytest.mark.parametrize(
    'path, value',
    [
        ('pw_base.pw.parameters.SYSTEM.occupations', f"smearing'\n/\n&SYSTEM nat=1 {PAYLOAD}"),
        ('pw_base.pw.parameters.CONTROL.calculation', 'scf\n/'),
        ('pw_base.pw.parameters.SYSTEM.smearing', 'cold"'),
    ],
)
def test_dft_labelling_refuses_strings_that_could_break_a_namelist(pw_code, cheap_dft, path, value):
    from aiida import orm
    from aiida.engine import run

    builder = _labelling_builder(pw_code, cheap_dft, [_li_structure()])
    parameters = _set(builder.pw_base.pw.parameters.get_dict(), '.'.join(path.split('.')[3:]), value)
    builder.pw_base.pw.parameters = orm.Dict(parameters)
    _refused(lambda: run(builder), r'pw.x parameters hold strings that are not plain words: pw_base.pw.parameters')


def test_dft_labelling_refuses_structural_nonsense(pw_code, cheap_dft):
    from aiida import orm
    from aiida.engine import run

    from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain

    builder = _labelling_builder(pw_code, cheap_dft, [_li_structure()])
    builder.structures = {}
    _refused(lambda: run(builder), r'no structures given')

    close = _li_structure(positions=np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0]]))
    builder = _labelling_builder(pw_code, cheap_dft, {'close': close})
    _refused(lambda: run(builder), r'structure `close` has overlapping atoms')

    molecule = _li_structure(pbc=[False, False, False])
    builder = _labelling_builder(pw_code, cheap_dft, {'molecule': molecule})
    _refused(lambda: run(builder), r'structure `molecule`')

    builder = _labelling_builder(pw_code, cheap_dft, [_li_structure()])
    builder.max_concurrent = orm.Int(0)
    _refused(lambda: run(builder), r'`max_concurrent` must be at least 1')

    with pytest.raises(ValueError, match=r"species \['Xe'\] have no pseudopotential"):
        DftLabelingWorkChain.get_builder_from_protocol(pw_code, [_li_structure(symbols=['Xe', 'Xe'])])


# ------------------------------------------------------------------------------------------ data classes
def _training_arrays(**changes):
    arrays = {
        'numbers_of_atoms': [2],
        'cells': [np.eye(3) * 3.43],
        'pbc': [[True] * 3],
        'positions': [[0, 0, 0], [1.7, 1.7, 1.7]],
        'atomic_numbers': [3, 3],
        'energies': [-3.8],
        'forces': np.zeros((2, 3)),
    }
    arrays.update(changes)
    return arrays


CFG = """BEGIN_CFG
 Size
    1
 Supercell
    3 0 0
    0 3 0
    0 0 3
 AtomData:  id type cartes_x cartes_y cartes_z
    1 {type} 0 0 0
END_CFG
"""


@pytest.mark.parametrize(
    'make, message',
    [
        (lambda T: T.from_arrays(**_training_arrays(forces=[[math.nan] * 3, [0, 0, 0]])), 'non-finite forces'),
        (lambda T: T.from_arrays(**_training_arrays(energies=[math.nan])), 'has forces but no energy'),
        (lambda T: T.from_arrays(**_training_arrays(energies=[math.inf])), '`energies` must be finite'),
        (lambda T: T.from_arrays(**_training_arrays(cells=[np.zeros((3, 3))])), 'cell has zero volume'),
        (
            lambda T: T.from_arrays(**_training_arrays(cells=[[[1, 0, 0], [2, 0, 0], [0, 0, 1]]])),
            'cell has zero volume',
        ),
        (lambda T: T.from_arrays(**_training_arrays(source_uuids=['x' * 40])), '`source_uuids` must be UUIDs'),
        (lambda T: T.from_arrays(**_training_arrays(positions=[[0, 0, math.inf], [1, 1, 1]])), '`positions`'),
        (lambda T: T.from_arrays(**_training_arrays(weights=[-1.0])), '`weights` must be finite and non-negative'),
        (lambda T: T.from_arrays(**_training_arrays(atomic_numbers=[3, 0])), '`atomic_numbers`'),
        (lambda T: T.from_arrays(**_training_arrays(numbers_of_atoms=[])), 'at least one configuration'),
        (lambda T: T.from_cfg(CFG.format(type='0.5'), ['Li']), "column 'type' must hold integers"),
        (lambda T: T.from_cfg(CFG.format(type='3'), ['Li']), 'has type 3 but only 1 species'),
        (lambda T: T.from_cfg(CFG.format(type='0'), ['Li\nshell']), 'is not a valid element'),
        (lambda T: T.from_cfg(CFG.format(type='0'), ['Xx']), 'is not a chemical element symbol'),
        (lambda T: T.from_cfg('', ['Li']), 'holds no configuration'),
    ],
)
def test_training_set_refuses_bad_arrays(aiida_profile, make, message):
    from aiida_mscale.data.training_set import TrainingSetData

    with pytest.raises(ValueError, match=message):
        make(TrainingSetData)


@pytest.mark.parametrize(
    'args, kwargs, message',
    [
        ((30, ['Li']), {}, 'level must be at most 28'),
        ((8.5, ['Li']), {}, 'level must be an integer'),
        ((1, ['Li']), {}, 'level must be an integer >= 2'),
        ((8, ['Li\nshell']), {}, 'is not a valid element'),
        ((8, ['Li', 'Li']), {}, 'distinct element symbols'),
        ((8, []), {}, 'distinct element symbols'),
        ((8, ['Li']), {'min_dist': 5.0, 'max_dist': 2.0}, 'min_dist'),
        ((8, ['Li']), {'max_dist': math.nan}, 'finite'),
        ((8, ['Li']), {'radial_basis_size': 1000}, 'radial_basis_size must be at most 64'),
    ],
)
def test_mtp_template_refuses_bad_arguments(aiida_profile, args, kwargs, message):
    from aiida_mscale.data.mtp_potential import MtpPotentialData

    with pytest.raises(ValueError, match=message):
        MtpPotentialData.from_template(*args, **kwargs)


# ------------------------------------------------------------------------------------------ the command line
@pytest.mark.parametrize(
    'arguments, message',
    [
        (['report', '999999999'], 'IDENTIFIER'),
        (['report', 'not-a-uuid'], 'IDENTIFIER'),
        (['report', '--profile', 'no-such-profile', '1'], 'cannot load the AiiDA profile'),
        (['setup', '--profile', 'no-such-profile'], 'no AiiDA profile named `no-such-profile`'),
    ],
)
def test_cli_answers_bad_input_with_a_clear_error(aiida_profile, arguments, message):
    from click.testing import CliRunner

    from aiida_mscale.cli import cmd_root

    result = CliRunner().invoke(cmd_root, arguments)
    assert result.exit_code != 0
    assert message in result.output, result.output
    assert 'Traceback' not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


def test_cli_report_refuses_an_unwritable_output_folder(aiida_profile, tmp_path):
    from aiida import orm
    from click.testing import CliRunner

    from aiida_mscale.cli import cmd_root

    node = orm.Int(1).store()
    blocked = tmp_path / 'file'
    blocked.write_text('not a folder')
    result = CliRunner().invoke(cmd_root, ['report', str(node.pk), '--output-dir', str(blocked / 'sub')])
    assert result.exit_code != 0 and 'Traceback' not in result.output
    assert 'cannot write to' in result.output and '--output-dir' in result.output, result.output


# ------------------------------------------------------------------------------------------ transport analysis
@pytest.mark.parametrize(
    'change, message',
    [
        ({'framework': PAYLOAD}, r'parameters.framework: .* is not a valid element'),
        ({'environment_species': ['Li', PAYLOAD]}, r'parameters.environment_species'),
        ({'environment_train': PAYLOAD}, r'parameters.environment_train: .* is not a valid identifier'),
        ({'descriptor_trajectories': ['a', PAYLOAD]}, r'parameters.descriptor_trajectories\[1\]'),
        ({'cluster_on': PAYLOAD}, r'parameters.cluster_on'),
        ({'descriptor_cutoffs': {PAYLOAD: 3.0}}, r'parameters.descriptor_cutoffs'),
        ({'criterion': PAYLOAD}, r"parameters.criterion: Input should be 'AICc' or 'BIC'"),
        ({'charge': 0.0}, r'`charge` must be non-zero'),
        ({'n_blocks': 1}, r'parameters.n_blocks: Input should be greater than or equal to 2'),
        ({'fit_window': [0.5, 0.1]}, r'`fit_window` must be \[t_start, t_end\] with t_start < t_end'),
        ({'fit_window': [math.nan, 1.0]}, r'parameters.fit_window\[0\]: .*finite'),
        ({'dim': 4}, r'parameters.dim: Input should be 1, 2 or 3'),
        ({'seed': -1}, r'parameters.seed: Input should be greater than or equal to 0'),
        ({'fit_windw': [0.1, 0.5]}, r"unknown analysis parameters \['fit_windw'\]"),
    ],
)
def test_transport_settings_refuse_bad_values(change, message):
    from aiida_mscale.workflows.transport.settings import merge_parameters

    with pytest.raises(ValueError, match=message):
        merge_parameters(change)
