"""Fixtures of the unit layer, on the model of aiida-quantumespresso's ``tests/conftest.py``.

- ``generate_calc_job``: instantiate a CalcJob (its input validator runs) and call ``prepare_for_submission`` into a
  folder: no binary, no daemon.
- ``generate_calc_job_node``: a stored ``CalcJobNode`` with its inputs and a ``retrieved`` FolderData holding the
  files of ``tests/fixtures/<parser>/<case>/`` (files named in ``temporary`` go to a retrieved temporary folder
  instead, as ``retrieve_temporary_list`` would put them).
- ``generate_parser``: the parser class of an entry point; ``parse`` runs it on a node and returns
  ``(outputs, exit_status, exit_message)``.

The stored output files were written by the real codes on inputs made by these same CalcJobs (see
``tests/fixtures/README.md``); the error cases are those files cut, emptied or edited as each case says.
"""

from __future__ import annotations

import pathlib
import shutil

import numpy as np
import pytest

FIXTURES = pathlib.Path(__file__).parent.parent / 'fixtures'


@pytest.fixture(scope='session')
def unit_computer(aiida_profile):
    """A ``core.local``/``core.direct`` computer that nothing ever runs on (the unit layer runs no binary)."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        return orm.load_computer('unit-localhost')
    except NotExistent:
        computer = orm.Computer(
            label='unit-localhost',
            hostname='localhost',
            transport_type='core.local',
            scheduler_type='core.direct',
            workdir='/tmp/aiida-unit',
        ).store()
        computer.set_minimum_job_poll_interval(0.0)
        computer.configure()
        return computer


@pytest.fixture(scope='session')
def unit_code(unit_computer):
    """A code on :func:`unit_computer` for any CalcJob of the package (its executable is never run)."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        return orm.load_code('unit-code@unit-localhost')
    except NotExistent:
        return orm.InstalledCode(label='unit-code', computer=unit_computer, filepath_executable='/bin/true').store()


@pytest.fixture
def generate_calc_job(tmp_path):
    """``(entry_point, inputs) -> (folder path, CalcInfo)``: the files ``prepare_for_submission`` writes."""

    def _generate(entry_point: str, inputs: dict):
        from aiida.common.folders import Folder
        from aiida.engine.utils import instantiate_process
        from aiida.manage import get_manager
        from aiida.plugins import CalculationFactory

        process = instantiate_process(get_manager().get_runner(), CalculationFactory(entry_point), **inputs)
        folder = tmp_path / 'sandbox'
        folder.mkdir()
        calcinfo = process.prepare_for_submission(Folder(str(folder)))
        return folder, calcinfo

    return _generate


def _flatten(inputs: dict, prefix: str = ''):
    for key, value in inputs.items():
        if isinstance(value, dict):
            yield from _flatten(value, f'{prefix}{key}__')
        else:
            yield f'{prefix}{key}', value


@pytest.fixture
def generate_calc_job_node(unit_computer, tmp_path):
    """``(entry_point, case, inputs, temporary=(), exit_status=None) -> (node, retrieved_temporary_folder)``.

    The node carries the CalcJob's default options (input/output file names, parser) and ``inputs`` linked as
    ``INPUT_CALC``; ``retrieved`` holds ``tests/fixtures/<entry_point>/<case>/`` except the ``temporary`` files,
    which are copied to the returned folder (None when ``temporary`` is empty).
    """

    def _generate(entry_point: str, case: str, inputs: dict, temporary=(), exit_status=None):
        from aiida import orm
        from aiida.common.links import LinkType
        from aiida.plugins import CalculationFactory
        from aiida.plugins.entry_point import format_entry_point_string

        source = FIXTURES / entry_point / case
        # an empty retrieved folder cannot be stored in git: a case without files has no folder
        assert source.is_dir() or case.startswith('missing_output'), f'no stored outputs {source}'
        process_class = CalculationFactory(entry_point)
        node = orm.CalcJobNode(
            computer=unit_computer, process_type=format_entry_point_string('aiida.calculations', entry_point)
        )
        options = process_class.spec().inputs['metadata']['options']
        for name in ('input_filename', 'output_filename', 'parser_name', 'withmpi'):
            if name in options and options[name].has_default():
                default = options[name].default
                node.set_option(name, default() if callable(default) else default)
        node.set_option('resources', {'num_machines': 1, 'num_mpiprocs_per_machine': 1})
        for label, value in _flatten({k: v for k, v in inputs.items() if k != 'metadata'}):
            if not value.is_stored:
                value.store()
            node.base.links.add_incoming(value, link_type=LinkType.INPUT_CALC, link_label=label)
        if exit_status is not None:
            node.set_exit_status(exit_status)
        node.store()

        retrieved = orm.FolderData()
        temporary_folder = None
        if temporary:
            temporary_folder = tmp_path / 'retrieved_temporary'
            temporary_folder.mkdir()
        for path in sorted(source.iterdir()) if source.is_dir() else []:
            if path.name in temporary:
                shutil.copy(path, temporary_folder / path.name)
            else:
                retrieved.base.repository.put_object_from_file(str(path), path.name)
        retrieved.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='retrieved')
        retrieved.store()
        return node, (str(temporary_folder) if temporary_folder else None)

    return _generate


@pytest.fixture
def generate_parser():
    """``entry_point -> parser class``."""

    def _generate(entry_point: str):
        from aiida.plugins import ParserFactory

        return ParserFactory(entry_point)

    return _generate


@pytest.fixture
def parse(generate_calc_job_node, generate_parser):
    """``(entry_point, case, inputs, **kwargs) -> (outputs, exit_status, exit_message)`` of the stored outputs.

    The parser's ``parse`` runs on the node directly (what ``parse_from_node`` does inside a calcfunction, without the
    process): a crash of the parser is an error of the test, never an exit code.
    """

    def _parse(entry_point: str, case: str, inputs: dict, **kwargs):
        node, temporary = generate_calc_job_node(entry_point, case, inputs, **kwargs)
        parser = generate_parser(entry_point)(node)
        extra = {'retrieved_temporary_folder': temporary} if temporary else {}
        exit_code = parser.parse(**extra)
        if exit_code is None:
            return dict(parser.outputs), 0, None
        return dict(parser.outputs), exit_code.status, exit_code.message

    return _parse


# ------------------------------------------------------------------------------------------------ input nodes
def trained_mtp_text(species_count: int = 1, level: int = 6, max_dist: float = 4.5, seed: int = 7) -> str:
    """A level-``level`` MTP file with small seeded coefficients (trained as far as the file format goes)."""
    from aiida_mscale.mtp.potential_file import parse_mtp
    from aiida_mscale.mtp.template import generate_untrained_mtp

    text = generate_untrained_mtp(level, species_count, radial_basis_size=8, min_dist=1.5, max_dist=max_dist).to_text()
    template = parse_mtp(text)
    rng = np.random.default_rng(seed)
    template.scaling = 1.0
    template.species_coeffs = np.round(rng.normal(-1.0, 0.1, species_count), 6)
    template.moment_coeffs = np.round(rng.normal(0.0, 0.01, template.alpha_scalar_moments), 6)
    shape = (species_count, species_count, template.radial_funcs_count, template.radial_basis_size)
    template.radial_coeffs = np.round(rng.normal(0.0, 0.01, shape), 6)
    return template.to_text()


@pytest.fixture(scope='session')
def trained_potential():
    """``species -> MtpPotentialData`` with seeded coefficients (``is_trained``), not stored."""

    def _potential(species=('Li',)):
        from aiida_mscale.data.mtp_potential import MtpPotentialData

        return MtpPotentialData(trained_mtp_text(len(species)), species=list(species))

    return _potential


@pytest.fixture(scope='session')
def li_structure():
    """Conventional bcc Li, a = 3.43 Angstrom (2 atoms)."""
    from aiida import orm
    from ase.build import bulk

    return orm.StructureData(ase=bulk('Li', 'bcc', a=3.43, cubic=True))


@pytest.fixture(scope='session')
def li_training_set():
    """Three labelled 2-atom bcc Li cells (energies [eV], forces [eV/Angstrom], stresses [GPa]), fixed values."""
    from ase.build import bulk

    from aiida_mscale.data.training_set import TrainingSetData

    cells, positions, numbers = [], [], []
    for k, a in enumerate((3.38, 3.43, 3.48)):
        atoms = bulk('Li', 'bcc', a=a, cubic=True)
        atoms.positions[1] += [0.01 * k, -0.02 * k, 0.03 * k]
        cells.append(atoms.cell.array)
        positions.append(atoms.positions)
        numbers.append(atoms.numbers)
    forces = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-0.01, 0.02, -0.03], [0.01, -0.02, 0.03]] + [[0.02] * 3] * 2)
    return TrainingSetData.from_arrays(
        numbers_of_atoms=[2, 2, 2],
        cells=cells,
        pbc=[[True] * 3] * 3,
        positions=np.concatenate(positions),
        atomic_numbers=np.concatenate(numbers),
        energies=[-3.70, -3.78, -3.75],
        forces=forces,
    )


@pytest.fixture(scope='session')
def li_candidates():
    """Two unlabelled 2-atom Li cells, one compressed by 12 % and one stretched by 12 % (outside the training set)."""
    from ase.build import bulk

    from aiida_mscale.data.training_set import TrainingSetData

    cells = [bulk('Li', 'bcc', a=a, cubic=True) for a in (3.02, 3.84)]
    return TrainingSetData.from_arrays(
        numbers_of_atoms=[2, 2],
        cells=[atoms.cell.array for atoms in cells],
        pbc=[[True] * 3] * 2,
        positions=np.concatenate([atoms.positions for atoms in cells]),
        atomic_numbers=np.concatenate([atoms.numbers for atoms in cells]),
    )


def _table(name: str, x, y):
    from aiida import orm

    node = orm.ArrayData()
    node.set_array('x', np.asarray(x, dtype=float))
    node.set_array('D' if name == 'diffusivity' else 'V', np.asarray(y, dtype=float))
    return node


#: MD parameters of the stored LAMMPS runs (metal units): 20 NVT steps of bcc Li.
MD_PARAMETERS = {'steps': 20, 'thermo_every': 5, 'dump_every': 10, 'seed': 5, 'temperature': 300.0}


@pytest.fixture(scope='session')
def calc_inputs(unit_code, trained_potential, li_structure, li_training_set, li_candidates):
    """``(entry_point, variant) -> inputs`` of the CalcJobs whose input files and stored outputs the unit tests use.

    Made once per session (the nodes are stored by the first test that links them, and reused).
    """
    cache = {}

    def _inputs(entry_point: str, variant: str = 'default') -> dict:
        if (entry_point, variant) not in cache:
            cache[entry_point, variant] = _make(entry_point, variant)
        return cache[entry_point, variant]

    def _make(entry_point: str, variant: str) -> dict:
        from aiida import orm

        options = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 600}
        base = {'code': unit_code, 'metadata': {'options': options}}
        if entry_point == 'mscale.lammps.mtp':
            potential = trained_potential(('Li',))
            parameters = dict(MD_PARAMETERS)
            if variant == 'extrapolation':
                potential.set_active_set(ACTIVE_SET_TEXT)
                parameters['extrapolation'] = {'every': 5, 'save_threshold': 1.5, 'break_threshold': 3.0}
            elif variant in ('gcmc', 'gcmc_npt'):
                potential = trained_potential(('Li', 'C'))
                parameters['gcmc'] = {'species': 'Li', 'mu': 2.0, 'every': 5, 'exchanges': 5, 'overlap_cutoff': 1.2}
                if variant == 'gcmc_npt':
                    parameters.update(ensemble='npt', pressure=1.0)
                    parameters['gcmc']['mu'] = -1.9
            elif variant != 'default':
                raise ValueError(variant)
            return {**base, 'structure': li_structure, 'potential': potential, 'parameters': orm.Dict(parameters)}
        if entry_point == 'mscale.lammps.mtp.static':
            parameters = {
                'default': {'task': 'energy'},
                'minimize': {'task': 'minimize', 'relax_box': 'tri', 'force_tolerance': 1e-5, 'max_iterations': 50},
                'minimize_converged': {'task': 'minimize', 'force_tolerance': 1e-3},
            }[variant]
            return {
                **base,
                'structure': li_structure,
                'potential': trained_potential(('Li',)),
                'parameters': orm.Dict(parameters),
            }
        if entry_point == 'mscale.mtp.train':
            parameters = {'seed': 3, 'validation_fraction': 0.34, 'steps': [{'kwargs': {'options': {'maxiter': 5}}}]}
            template = __import__('aiida_mscale.data.mtp_potential', fromlist=['x']).MtpPotentialData.from_template(
                2, ['Li'], min_dist=1.5, max_dist=4.5
            )
            return {**base, 'training_set': li_training_set, 'potential': template, 'parameters': orm.Dict(parameters)}
        if entry_point == 'mscale.mtp.select':
            parameters = {'threshold': 1.01, 'max_count': 1, 'layout': 'moment'}
            return {
                **base,
                'potential': trained_potential(('Li',)),
                'training_set': li_training_set,
                'candidates': li_candidates,
                'parameters': orm.Dict(parameters),
            }
        if entry_point == 'mscale.continuum':
            x = np.linspace(0.0, 1.0, 11)
            parameters = {
                'particle': {'radius': 5e-6, 'c_max': 2.0e4},
                'x_initial': 0.05,
                'x_final': 0.95,
                'c_rates': [1.0],
                'cutoff_voltage': 3.0,
                'mesh': {'n_cells': 12},
            }
            return {
                **base,
                'model': orm.Str('particle_diffusion'),
                'parameters': orm.Dict(parameters),
                'diffusivity': _table('diffusivity', x, 1e-14 * (1 + x)),
                'ocv': _table('ocv', x, 4.2 - 0.8 * x),
                'write_xdmf': orm.Bool(variant == 'xdmf'),
            }
        if entry_point == 'mscale.pseudo.generate':
            return {**base, 'element': orm.Str('Li'), 'functional': orm.Str('PBEsol')}
        if entry_point == 'mscale.transport.analysis':
            return {
                **base,
                'trajectories': {'hot': na_cl_trajectory(1), 'cold': na_cl_trajectory(2)},
                'analysis': orm.Str('modes'),
                'mobile_species': orm.Str('Na'),
                'parameters': orm.Dict(TRANSPORT_PARAMETERS),
            }
        raise ValueError(entry_point)

    return _inputs


#: A 1 x 1 MaxVol active set (layout ``moment``) for the extrapolation inputs: only its text is written.
ACTIVE_SET_TEXT = 'MTP_ACTIVE_SET 1\nlayout moment\nsize 1\ninverse\n1.0\n'


#: settings of the stored ``mscale.transport.analysis`` run (small: 2 x 18 Na x 2 windows of 10 frames)
TRANSPORT_PARAMETERS = {
    'descriptor_window': 10,
    'descriptor_frame_stride': 5,
    'max_modes': 2,
    'importance_splits': 2,
    'importance_estimators': 10,
    'importance_repeats': 1,
}


def na_cl_trajectory(seed: int, n_frames: int = 20):
    """A TrajectoryData of 27 Cl on a simple-cubic lattice (a = 3 A), 9 Na rattling on sites and 9 Na random-walking,
    ``n_frames`` 0.2 ps apart (seeded)."""
    from aiida import orm

    rng = np.random.default_rng(seed)
    a, n = 3.0, 3
    host = np.array([[i, j, k] for i in range(n) for j in range(n) for k in range(n)], dtype=float) * a
    trapped = host[:9] + a / 2 + rng.normal(0, 0.1, (n_frames, 9, 3))
    walkers = np.cumsum(rng.normal(0, 0.4, (n_frames, 9, 3)), axis=0) + rng.uniform(0, n * a, (1, 9, 3))
    frames = np.round(np.concatenate([np.broadcast_to(host, (n_frames, 27, 3)), trapped, walkers], axis=1), 6)
    node = orm.TrajectoryData()
    cells = np.tile(np.eye(3) * n * a, (n_frames, 1, 1))
    node.set_trajectory(['Cl'] * 27 + ['Na'] * 18, frames, cells=cells, times=np.arange(n_frames) * 0.2)
    return node
