"""ActiveLearningWorkChain refuses bad input before anything runs, with a message naming the problem."""

import pytest
from ase.build import bulk

from tests.test_active_learning import OPTIONS, OVERRIDES, _codes, _host


@pytest.fixture(scope='module')
def codes(pw_code, mtp_train_code, mtp_select_code, lammps_code):
    return _codes(pw_code, mtp_train_code, mtp_select_code, lammps_code)


def _builder(codes, structure=None, guest='Li', **overrides):
    from aiida_mscale.workflows.active_learning import ActiveLearningWorkChain

    return ActiveLearningWorkChain.get_builder_from_protocol(
        codes, structure or _host(), guest, protocol='fast', overrides={**OVERRIDES, **overrides}, options=OPTIONS
    )


def _refused(builder, message):
    from aiida import orm
    from aiida.engine import run

    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=message):
        run(builder)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before  # nothing ran


def test_guest_not_in_the_structure(codes):
    with pytest.raises(ValueError, match=r"`guest` 'Na' is not an element of the structure \(it has \['Li', 'O'\]\)"):
        _builder(codes, guest='Na')
    builder = _builder(codes)
    from aiida import orm

    builder.guest = orm.Str('Na')
    _refused(builder, r"`guest` 'Na' is not an element of the structure")


def test_guest_not_in_the_pseudo_family(codes):
    from aiida import orm

    magnesia = orm.StructureData(ase=bulk('MgO', 'rocksalt', a=4.21, cubic=True))
    with pytest.raises(ValueError, match=r"species \['Mg'\] have no pseudopotential in family"):
        _builder(codes, structure=magnesia, guest='Mg')
    builder = _builder(codes)
    builder.dft.pw_base.pw.pseudos = {'O': builder.dft.pw_base.pw.pseudos['O']}
    _refused(builder, r"`guest` 'Li' has no pseudopotential \(pseudos given for \['O'\]\)")


def test_empty_mu_grid(codes):
    from aiida import orm

    builder = _builder(codes)
    builder.mu = orm.List([])
    _refused(builder, '`mu`: the grid of guest chemical potentials is empty')
    builder = _builder(codes, mu_offsets=[])
    _refused(builder, '`mu_offsets`: the grid of guest chemical potentials is empty')


def test_select_threshold_above_break_threshold(codes):
    builder = _builder(codes, select_threshold=12.0, break_threshold=10.0)
    _refused(builder, 'need 1 <= select_threshold <= break_threshold, got select_threshold=12.0, break_threshold=10.0')
    builder = _builder(codes, select_threshold=0.5)
    _refused(builder, 'need 1 <= select_threshold')


def test_swap_threshold_outside_one_and_select_threshold(codes):
    builder = _builder(codes, select_threshold=2.0, swap_threshold=2.5)
    _refused(builder, 'need 1 < swap_threshold <= select_threshold, got swap_threshold=2.5, select_threshold=2.0')
    builder = _builder(codes, swap_threshold=1.0)
    _refused(builder, 'need 1 < swap_threshold <= select_threshold, got swap_threshold=1.0')


def test_previous_that_is_not_an_active_learning_run(codes, pw_code):
    from aiida import orm

    from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain

    other = orm.WorkChainNode(process_type=DftLabelingWorkChain.build_process_type()).store()
    builder = _builder(codes)
    builder.previous = other
    _refused(builder, r'`previous` <\d+> is a aiida.workflows:mscale.dft_labeling, not an ActiveLearningWorkChain')
    with pytest.raises(ValueError, match="'previous' is not of the right type"):  # a data node is not a run
        builder.previous = orm.Int(5)
    builder.previous = orm.Str('00000000-0000-4000-8000-000000000000')
    _refused(builder, '`previous`: no node with UUID')


def test_codes_of_the_wrong_plugin(codes):
    with pytest.raises(ValueError, match=r'the `lammps` code `pw@localhost` is for plugin `quantumespresso.pw`'):
        _builder({**codes, 'lammps': codes['pw']})
    with pytest.raises(ValueError, match='`codes` has no `mtp_select` code'):
        _builder({key: code for key, code in codes.items() if key != 'mtp_select'})
    builder = _builder(codes)
    builder.train.mtp.code = codes['mtp_select']
    _refused(builder, r'code `mtp-select@localhost-mpich` is for plugin `mscale.mtp.select`')


def test_validation_set_and_targets(codes):
    from aiida import orm

    from aiida_mscale.data.training_set import TrainingSetData

    copper = bulk('Cu', 'fcc', a=3.6)
    builder = _builder(codes)
    builder.validation_set = TrainingSetData.from_arrays(
        numbers_of_atoms=[1],
        cells=[copper.cell.array],
        pbc=[[True] * 3],
        positions=copper.positions,
        atomic_numbers=copper.numbers,
        energies=[-3.0],
        forces=[[0.0, 0.0, 0.0]],
    )
    _refused(builder, r"`validation_set` has species \['Cu'\] that the potential lacks")
    builder = _builder(codes)
    builder.target_rmse = orm.Dict({'force': 50.0})
    _refused(builder, r"`target_rmse`: unknown keys \['force'\]")
    builder.target_rmse = orm.Dict({'forces': -1.0})
    _refused(builder, r'`target_rmse.forces` must be a positive number, not -1.0')


def test_protocols_default_to_whole_configurations_and_the_work_chains_own_thresholds(aiida_profile):
    """Every protocol labels whole configurations and leaves swap_threshold (null) and the neighbourhood settings
    ({}) to the work chain, which then uses select_threshold and NEIGHBOURHOOD_DEFAULTS."""
    from aiida_mscale.workflows.active_learning import ActiveLearningWorkChain

    for protocol in ActiveLearningWorkChain.get_available_protocols():
        inputs = ActiveLearningWorkChain.get_protocol_inputs(protocol)
        assert inputs['selection'] == 'configuration', protocol
        assert inputs['swap_threshold'] is None, protocol
        assert inputs['neighbourhood'] == {}, protocol


def test_the_protocol_file_states_the_neighbourhood_defaults_of_the_code():
    """The comment of active_learning.yaml gives NEIGHBOURHOOD_DEFAULTS with units; this fails when they drift."""
    import re

    from aiida_mscale.calculations.functions.neighbourhood import NEIGHBOURHOOD_DEFAULTS
    from aiida_mscale.workflows.active_learning import ActiveLearningWorkChain

    text = ' '.join(ActiveLearningWorkChain.get_protocol_filepath().read_text().split())  # comment lines joined
    stated = {
        'r_core': float(re.search(r'r_core (\S+) Angstrom', text).group(1)),
        'max_centres': int(re.search(r'max_centres (\d+) \(', text).group(1)),
        'padding': float(re.search(r'padding (\S+) Angstrom', text).group(1)),
    }
    assert stated == NEIGHBOURHOOD_DEFAULTS


def test_protocol_builder_carries_selection_swap_threshold_and_neighbourhood(codes):
    from aiida_mscale.workflows.active_learning import ActiveLearningWorkChain

    def problem(builder):
        return ActiveLearningWorkChain.spec().inputs.validate(builder._inputs(prune=True))

    builder = _builder(codes)
    assert builder.selection.value == 'configuration'
    assert 'swap_threshold' not in builder and 'neighbourhood' not in builder
    assert problem(builder) is None

    neighbourhood = {'r_core': 2.0, 'max_centres': 2, 'padding': 1.5}
    builder = _builder(codes, selection='neighbourhood', neighbourhood=neighbourhood, swap_threshold=1.2)
    assert builder.selection.value == 'neighbourhood'
    assert builder.neighbourhood.get_dict() == neighbourhood
    assert builder.swap_threshold.value == 1.2
    assert problem(builder) is None

    builder = _builder(codes, neighbourhood={'r_core': 2.0})  # settings without the neighbourhood mode: refused
    assert "`neighbourhood` settings are given but `selection` is 'configuration'" in str(problem(builder))
