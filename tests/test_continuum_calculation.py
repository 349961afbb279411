"""ContinuumCalculation: the FEniCSx solver as a CalcJob on `fenics@localhost`, checked against the analytic sphere."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

R, D, CMAX = 5e-6, 1e-14, 2.0e4


def _reference():
    """The analytic series of tests/continuum/test_continuum_particle.py (Crank eq. 6.43), reused as is."""
    path = pathlib.Path(__file__).parent / 'continuum' / 'test_continuum_particle.py'
    spec = importlib.util.spec_from_file_location('mscale_continuum_particle_reference', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.sphere_constant_flux


sphere_constant_flux = _reference()


def table(name, x, y):
    from aiida import orm

    node = orm.ArrayData()
    node.set_array('x', np.asarray(x, dtype=float))
    node.set_array('D' if name == 'diffusivity' else 'V', np.asarray(y, dtype=float))
    return node


def assert_same(a, b, where=''):
    """Equal nested JSON values; floats to 1e-12 relative."""
    if isinstance(b, dict):
        assert isinstance(a, dict) and sorted(a) == sorted(b), where
        for key in b:
            assert_same(a[key], b[key], f'{where}.{key}')
    elif isinstance(b, list):
        assert isinstance(a, list) and len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f'{where}[{k}]')
    elif isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-300), where
    else:
        assert a == b, where


def sphere_parameters(**changes):
    parameters = {
        'particle': {'radius': R, 'c_max': CMAX},
        'x_initial': 0.0,
        'x_final': 1.0,
        'c_rates': [1.0, 4.0],
        'cutoff_voltage': 0.0,
        'kinetics': {'concentration_dependent': False},
    }
    parameters.update(changes)
    return parameters


def _builder(code, model='particle_diffusion', parameters=None, diffusivity=None, ocv=None, write_xdmf=False):
    from aiida import orm

    from aiida_mscale.calculations.continuum import ContinuumCalculation

    builder = ContinuumCalculation.get_builder()
    builder.code = code
    builder.model = orm.Str(model)
    builder.parameters = orm.Dict(sphere_parameters() if parameters is None else parameters)
    if diffusivity is not None:
        builder.diffusivity = diffusivity
    if ocv is not None:
        builder.ocv = ocv
    builder.write_xdmf = orm.Bool(write_xdmf)
    builder.metadata.options.max_wallclock_seconds = 600
    return builder


def _run(*args, **kwargs):
    from aiida.engine import run_get_node

    return run_get_node(_builder(*args, **kwargs))


def test_constant_d_sphere_matches_analytic_series(fenics_code, tmp_path):
    diffusivity = table('diffusivity', [0.0, 1.0], [D, D])
    ocv = table('ocv', [0.0, 1.0], [4.0, 3.0])
    results, node = _run(fenics_code, diffusivity=diffusivity, ocv=ocv, write_xdmf=True)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)

    # the tables reached the solver unchanged, as .npy files that input.json references
    script_input = json.loads(node.base.repository.get_object_content('input.json'))
    assert script_input['diffusivity'] == {'x': 'diffusivity_x.npy', 'D': 'diffusivity_D.npy'}
    assert script_input['model'] == 'particle_diffusion' and script_input['write_xdmf'] is True
    with node.base.repository.open('diffusivity_D.npy', 'rb') as handle:
        assert np.array_equal(np.load(handle), diffusivity.get_array('D'))
    assert {'solver.py', 'common.py', 'fem_compat.py'} <= set(node.base.repository.list_object_names())

    arrays = results['arrays']
    summary = results['results'].get_dict()
    for k, rate in enumerate([1.0, 4.0]):
        t, xs, xm = (arrays.get_array(f'rate{k}_{n}') for n in ('time', 'x_surface', 'x_mean'))
        tau = t * D / R**2
        J = rate * CMAX * R / (3 * 3600.0) * R / (D * CMAX)
        m = tau >= 1e-3
        assert m.sum() > 30
        exact = sphere_constant_flux(tau[m], 1.0, J)
        error = np.max(np.abs(xs[m] - exact) / exact)
        assert error < 0.01, (rate, error)  # surface concentration within 1 % of the series
        assert np.max(np.abs(xm - 3 * J * tau)) < 1e-8  # mean: exact mass balance
        assert summary['runs'][k]['mass_balance_error'] < 1e-8
        print(f'\nContinuumCalculation<{node.pk}> {rate} C: surface vs analytic series {error:.2e} rel')

    # the parsed Dict is what the solver wrote (results.json in the retrieved folder), bookkeeping aside
    written = json.loads(node.outputs.retrieved.base.repository.get_object_content('results.json'))
    # (the database keeps floats to 14 significant digits: equal to 1e-12 relative)
    for key in ('c_rate', 'capacity', 'soc_delivered'):
        assert summary['rate_capability'][key] == pytest.approx(written['rate_capability'][key], rel=1e-12)
    assert_same(summary, {k: v for k, v in written.items() if k not in ('status', 'arrays', 'arrays_file')})
    assert sorted(arrays.get_arraynames()) == sorted(written['arrays'])
    capacity = summary['rate_capability']['capacity']
    assert summary['rate_capability']['c_rate'] == [1.0, 4.0] and capacity[1] < capacity[0]
    # the solver's own arrays were not kept twice: only results.json and the logs are retrieved
    assert 'results.npz' not in node.outputs.retrieved.base.repository.list_object_names()

    fields = results['fields'].base.repository.list_object_names()
    assert {'particle_rate0.xdmf', 'particle_rate0.h5', 'particle_rate1.xdmf'} <= set(fields)
    assert b'<Xdmf' in results['fields'].base.repository.get_object_content('particle_rate0.xdmf', mode='rb')

    # `aiida-mscale report` on the calculation: voltage curves per C-rate and the rate capability
    from click.testing import CliRunner
    from PIL import Image

    from aiida_mscale.cli import cmd_root

    report = CliRunner().invoke(cmd_root, ['report', str(node.pk), '-o', str(tmp_path)])
    assert report.exit_code == 0, report.output
    paths = report.output.split()
    assert [pathlib.Path(p).name for p in paths] == [f'{node.pk}_voltage_curves.png', f'{node.pk}_rate_capability.png']
    for path in paths:
        with Image.open(path) as image:
            assert image.format == 'PNG' and image.size[0] > 400 and pathlib.Path(path).stat().st_size > 10000


@pytest.mark.parametrize(
    'model, change, tables, message',
    [
        (
            'particle_diffusion',
            {},
            {'diffusivity': ([0.0, 0.5, 1.0], [D, 0.0, D])},
            r'the diffusivity table has non-positive values D = \[0.0\] at x = \[0.5\]',
        ),
        (
            'particle_diffusion',
            {},
            {'ocv': ([0.1, 0.8], [4.0, 3.5])},
            r'the OCV table covers x in \[0.1, 0.8\] but model `particle_diffusion` needs the concentration range '
            r'\[0.0, 1.0\]',
        ),
        ('particle_diffusion', {'c_rates': [1.0, 0.0]}, {}, r'`c_rates` must be positive .* refused \[0.0\]'),
        ('porous_electrode', {'c_rates': [], 'kinetics': {'i0': 2.0}}, {}, r'`c_rates` must be a non-empty list'),
        # a key the model does not read is refused, not ignored (particle_diffusion's kinetics option)
        ('porous_electrode', {}, {}, r"unknown parameters \['concentration_dependent'\] in `kinetics`"),
        (
            'phase_field',
            {'driving': {'type': 'galvanostatic', 'c_rate': 0}},
            {'ocv': (np.linspace(0, 1, 5), np.linspace(3.5, 3.3, 5))},
            r'`driving.c_rate` must be positive',
        ),
        ('polycrystal', {}, {'diffusivity': ([0.0, 1.0], [D, D])}, r'model `polycrystal` takes no `diffusivity`'),
        ('particle_flow', {}, {}, r'unknown model `particle_flow`'),
        (
            'phase_field',
            {'free_energy': {'type': 'ocv', 'x': [0, 1], 'V': [3.5, 3.3]}},
            {},
            r'give the OCV table of the free energy as the `ocv` ArrayData input',
        ),
    ],
)
def test_bad_input_is_refused_before_submission(fenics_code, model, change, tables, message):
    from aiida import orm

    nodes = {'diffusivity': table('diffusivity', [0.0, 1.0], [D, D]), 'ocv': table('ocv', [0.0, 1.0], [4.0, 3.0])}
    for name, (x, y) in tables.items():
        nodes[name] = table(name, x, y)
    if model == 'polycrystal':
        del nodes['ocv']
    before = orm.QueryBuilder().append(orm.CalcJobNode).count()
    with pytest.raises(ValueError, match=message):
        _run(fenics_code, model=model, parameters=sphere_parameters(**change), **nodes)
    assert orm.QueryBuilder().append(orm.CalcJobNode).count() == before  # nothing ran


UNCONVERGED = {'mesh': {'n_cells': 10}, 'time_stepping': {'dx_surface_max': 1e-9, 'dtau_min': 1e-4}}
UNPHYSICAL = {
    'x_initial': 0.05,
    'x_final': 0.0,
    'c_rates': [2000.0],
    'cutoff_voltage': 5.0,
    'mesh': {'n_cells': 10},
    'time_stepping': {'dx_surface_max': 10, 'dx_mean_max': 10, 'dtau_initial': 0.1},
}


def test_the_solvers_own_input_checks_run_before_submission(fenics_code):
    """The solver's refusal (its exit code 2) is known before anything runs: the same message, nothing stored."""
    from aiida import orm

    count = orm.QueryBuilder().append(orm.CalcJobNode).count()
    diffusivity = table('diffusivity', [0.0, 1.0], [D, D])
    ocv = table('ocv', [0.0, 1.0], [4.0, 3.0])
    with pytest.raises(ValueError, match='cutoff_voltage 4.5 V must be below the initial OCV'):
        _run(fenics_code, parameters=sphere_parameters(cutoff_voltage=4.5), diffusivity=diffusivity, ocv=ocv)
    with pytest.raises(ValueError, match=r"unknown parameters \['radius_typo'\] for model `particle_diffusion`"):
        _run(fenics_code, parameters={**sphere_parameters(), 'radius_typo': 1.0}, diffusivity=diffusivity, ocv=ocv)
    with pytest.raises(ValueError, match=r"unknown parameters \['n_cell'\] in `mesh`"):
        _run(fenics_code, parameters={**sphere_parameters(), 'mesh': {'n_cell': 5}}, diffusivity=diffusivity, ocv=ocv)
    gap = table('ocv', np.linspace(0.0, 1.0, 11), 3.4 - 0.2 * np.sin(2 * np.pi * np.linspace(0.0, 1.0, 11)))
    with pytest.raises(ValueError, match='rises and falls .* assumes a single phase'):
        _run(fenics_code, parameters=sphere_parameters(), diffusivity=diffusivity, ocv=gap)
    assert orm.QueryBuilder().append(orm.CalcJobNode).count() == count


@pytest.mark.parametrize(
    'change, status, words',
    [
        # time-step control that can never accept a step (exit code 3)
        (UNCONVERGED, 410, ['did not converge', 'time step fell below dtau_min']),
        # a 2000 C delithiation in one huge step empties the surface below zero (exit code 4)
        (UNPHYSICAL, 420, ['unphysical state', 'concentration left [0, c_max]']),
    ],
)
def test_solver_failures_get_their_exit_codes(fenics_code, change, status, words):
    """What only the run can tell gets a named exit code (what the solver would refuse is refused before)."""
    diffusivity = table('diffusivity', [0.0, 1.0], [D, D])
    ocv = table('ocv', [0.0, 1.0], [4.0, 3.0])
    results, node = _run(fenics_code, parameters=sphere_parameters(**change), diffusivity=diffusivity, ocv=ocv)
    assert node.exit_status == status, (node.exit_status, node.exit_message)
    for word in words:
        assert word in node.exit_message, node.exit_message
    assert 'results' not in results and 'arrays' not in results
