"""MultiscaleWorkChain refuses contradictions between stages and missing replacements before anything runs."""

import numpy as np
import pytest

from tests.multiscale_settings import OPTIONS, host
from tests.multiscale_settings import overrides as chain_overrides


@pytest.fixture(scope='module')
def codes(pw_code, mtp_train_code, mtp_select_code, lammps_code, fenics_code):
    return {
        'pw': pw_code,
        'mtp_train': mtp_train_code,
        'mtp_select': mtp_select_code,
        'lammps': lammps_code,
        'continuum': fenics_code,
    }


def _builder(codes, overrides=None, **results):
    from aiida_mscale.workflows.multiscale import MultiscaleWorkChain

    return MultiscaleWorkChain.get_builder_from_protocol(
        codes, host(), 'Li', protocol='fast', overrides=overrides or chain_overrides(), options=OPTIONS, **results
    )


def _refused(builder, message):
    from aiida import orm
    from aiida.engine import run

    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=message):
        run(builder)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before  # nothing ran


def _potential(species):
    from aiida_mscale.data.mtp_potential import MtpPotentialData

    return MtpPotentialData.from_template(6, species, min_dist=1.5, max_dist=4.0, radial_basis_size=6)


def _table(name):
    from aiida import orm

    table = orm.ArrayData()
    table.set_array('x', np.linspace(0, 1, 5))
    table.set_array(
        'D' if name == 'diffusivity' else 'V', np.full(5, 1e-15) if name == 'diffusivity' else 4 - np.linspace(0, 1, 5)
    )
    return table


def test_the_full_chain_builder_validates(codes):
    from aiida_mscale.workflows.multiscale import MultiscaleWorkChain, validate_inputs

    builder = _builder(codes)
    assert validate_inputs(builder._inputs(prune=True), None) is None
    assert MultiscaleWorkChain.spec().inputs.validate(builder._inputs(prune=True)) is None


def test_guest_not_in_the_potential(codes):
    builder = _builder(codes, potential=_potential(['Na', 'O']))
    _refused(builder, r"`potential` has species \['Na', 'O'\]: the structure's \['Li'\] are not among them")


def test_guest_not_in_the_structure(codes):
    builder = _builder(codes)
    from aiida import orm

    builder.guest = orm.Str('Na')
    _refused(builder, r"`guest` 'Na' is not an element of the structure")


def test_skipped_active_learning_without_a_potential(codes):
    builder = _builder(codes)
    builder.active_learning = {}
    _refused(builder, r'no `potential` and no `active_learning` inputs')


def test_skipped_md_without_a_diffusivity_table(codes):
    builder = _builder(codes)
    builder.md_production = {}
    _refused(builder, r'no `diffusivity` table and no `md_production` inputs')


def test_skipped_thermodynamics_without_an_ocv_table(codes):
    builder = _builder(codes, potential=_potential(['Li', 'O']), diffusivity=_table('diffusivity'))
    builder.thermodynamics = {}
    _refused(builder, r'no `ocv` table and no `thermodynamics` inputs')


def test_one_md_temperature_cannot_be_extrapolated(codes):
    overrides = chain_overrides()
    overrides['temperatures'] = [900.0]
    _refused(_builder(codes, overrides), r'`temperatures` must be 3 or more distinct positive temperatures')


def test_ensemble_size_below_one(codes):
    overrides = chain_overrides()
    overrides['electrode']['uncertainty']['ensemble_size'] = 0
    _refused(_builder(codes, overrides), r'uncertainty.ensemble_size')


def test_electrode_without_its_temperature(codes):
    overrides = chain_overrides()
    del overrides['electrode']['cell']['temperature']
    _refused(_builder(codes, overrides), r'temperature')


def test_bad_stage_parameters_name_the_stage(codes):
    overrides = chain_overrides()
    overrides['md_production']['parameters']['production_steps'] = '1000\nshell touch /tmp/x'
    _refused(_builder(codes, overrides), r'md_production.parameters.production_steps')


def test_wrong_code_plugin_named_before_building(codes):
    wrong = {**codes, 'continuum': codes['pw']}
    with pytest.raises(ValueError, match=r'the `continuum` code .* is for plugin `quantumespresso.pw`'):
        _builder(wrong)


def test_tables_need_their_arrays(codes):
    from aiida import orm

    bad = orm.ArrayData()
    bad.set_array('x', np.linspace(0, 1, 3))
    builder = _builder(codes, potential=_potential(['Li', 'O']), diffusivity=bad, ocv=_table('ocv'))
    _refused(builder, r'`diffusivity` needs the arrays `x` and `D`')


def _arrhenius(d_cm2_s, ln_err, temperature=300.0):
    from aiida import orm

    extrapolation = {'temperature': temperature, 'value': d_cm2_s, 'ln_err': ln_err}
    return orm.Dict({'species': {'Li': {'extrapolation': extrapolation, 'best_model': 'arrhenius'}}})


def test_diffusivity_table_spans_the_window_holding_its_end_values():
    """Fractions 0.5 and 0.75 of a hull window [0.5, 0.875] (the 0.875 fraction left out: no resolved hop): the table
    reaches the upper edge with the x = 0.75 value held, so the electrode gets D over its whole range."""
    from aiida import orm

    from aiida_mscale.calculations.functions.multiscale import diffusivity_table, multiscale_summary

    settings = {'species': 'Li', 'x_min': 0.5, 'x_max': 0.875, 'fractions': {'x_0': 0.5, 'x_1': 0.75}}
    table = diffusivity_table(
        orm.Dict({**settings, 'temperature': 300.0}), x_0=_arrhenius(2e-9, 0.5), x_1=_arrhenius(4e-10, 1.5)
    )
    assert table.get_array('x') == pytest.approx([0.0, 2 / 3, 1.0])
    assert table.get_array('x_host') == pytest.approx([0.5, 0.75, 0.875])
    assert table.get_array('D') == pytest.approx([2e-13, 4e-14, 4e-14])  # cm^2/s -> m^2/s
    assert table.get_array('D_sigma') == pytest.approx([1e-13, 6e-14, 6e-14])
    assert table.base.attributes.get('held') == [0.875]
    # the headline numbers list the computed fractions only, not the held edge
    summary = multiscale_summary(diffusivity=table)
    assert sorted(summary['diffusivity_m2_s']) == ['x=0.5000', 'x=0.7500']
    assert summary['diffusivity_m2_s']['x=0.7500']['D'] == pytest.approx(4e-14)
    # both computed fractions on the edges: nothing held
    edges = diffusivity_table(
        orm.Dict({**settings, 'x_max': 0.75, 'temperature': 300.0}),
        x_0=_arrhenius(2e-9, 0.5),
        x_1=_arrhenius(4e-10, 1.5),
    )
    assert edges.get_array('x') == pytest.approx([0.0, 1.0]) and edges.base.attributes.get('held') == []


def _transport(pk, ok):
    from types import SimpleNamespace

    from aiida.common import AttributeDict

    outputs = AttributeDict({'arrhenius': f'arrhenius<{pk}>'} if ok else {})
    message = None if ok else 'The Arrhenius analysis failed: values must be finite and positive'
    return SimpleNamespace(
        pk=pk, is_finished_ok=ok, outputs=outputs, exit_status=0 if ok else 402, exit_message=message
    )


def _inspect_analyses(transports):
    """MultiscaleWorkChain.inspect_analyses on stand-in stages (wiring only): its exit code, outputs and reports."""
    from types import SimpleNamespace

    from aiida.common import AttributeDict

    from aiida_mscale.workflows.multiscale import MultiscaleWorkChain

    ctx = AttributeDict({'diffusivity': None, 'ocv': 'given', 'fractions': {}})
    for k, (fraction, ok) in enumerate(transports):
        ctx.fractions[f'x_{k}'] = fraction
        ctx[f'transport_x_{k}'] = _transport(100 + k, ok)
    outputs, reports = {}, []
    chain = SimpleNamespace(
        ctx=ctx, exit_codes=MultiscaleWorkChain.exit_codes, out=outputs.__setitem__, report=reports.append
    )
    return MultiscaleWorkChain.inspect_analyses(chain), ctx, outputs, reports


def test_a_guest_fraction_whose_transport_fails_is_left_out_not_the_run():
    exit_code, ctx, outputs, reports = _inspect_analyses([(0.5, True), (0.75, True), (0.875, False)])
    assert exit_code is None
    assert ctx.fractions == {'x_0': 0.5, 'x_1': 0.75}  # D(x) is built on these
    assert sorted(outputs) == ['arrhenius.x_0', 'arrhenius.x_1']
    assert len(reports) == 1 and 'x = 0.875: <102> [402]' in reports[0] and 'left out of D(x)' in reports[0]


def test_the_run_fails_when_every_transport_stage_fails():
    exit_code, *_ = _inspect_analyses([(0.5, False), (0.75, False)])
    assert exit_code.status == 413
    assert 'x = 0.5: <100> [402]' in exit_code.message and 'x = 0.75: <101> [402]' in exit_code.message


def test_the_demo_potential_archive_belongs_to_this_demo_version(tmp_path, monkeypatch):
    """The chain test starts from the archived demo potential: the archive must be the one the settings name, and of
    the demo's current DEMO_VERSION; a bumped demo, or an archive exported from another node, is refused."""
    import json
    import zipfile

    from tests import multiscale_settings

    multiscale_settings.check_potential_archive()  # the committed archive and examples/multiscale_demo.py agree
    with zipfile.ZipFile(multiscale_settings.POTENTIAL_ARCHIVE) as archive:
        metadata = json.loads(archive.read('metadata.json'))
    assert metadata['creation_parameters']['entities_starting_set']['node'] == [multiscale_settings.POTENTIAL_UUID]

    archived = multiscale_settings.POTENTIAL_DEMO_VERSION
    monkeypatch.setattr(multiscale_settings.demo, 'DEMO_VERSION', archived + 1)
    with pytest.raises(ValueError, match=rf'of demo v{archived}, but .* is at DEMO_VERSION {archived + 1}: regenerate'):
        multiscale_settings.check_potential_archive()
    monkeypatch.undo()

    other = tmp_path / 'other.aiida'
    metadata['creation_parameters']['entities_starting_set']['node'] = ['00000000-0000-4000-8000-000000000000']
    with zipfile.ZipFile(other, 'w') as archive:
        archive.writestr('metadata.json', json.dumps(metadata))
    with pytest.raises(ValueError, match=r'other.aiida was exported from nodes \[.00000000-.*not from the potential'):
        multiscale_settings.check_potential_archive(archive=other)
