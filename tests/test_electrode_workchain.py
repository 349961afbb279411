"""ElectrodeWorkChain on user-given D(x) and OCV(x): rate capability, phase boundary, D_eff, provenance, report."""

import pathlib

import numpy as np
import pytest

KB = 8.617333262e-5  # eV/K
RT_F = 8.314462618 * 298.15 / 96485.33212
OMEGA_RT = 3.0  # a phase-separating (LFP-like) regular solution: miscibility gap 0.07 < x < 0.93
RADIUS = 1e-6
C_RATES = [0.5, 2.0, 5.0]  # the docs example's
DOCS = pathlib.Path(__file__).parent.parent / 'docs' / 'continuum.md'
CELL = {
    'particle': {'radius': RADIUS, 'c_max': 2.28e4, 'density': 3.6},
    'kinetics': {'i0': 1.0, 'alpha': 0.5},
    'temperature': 298.15,
    'x_initial': 0.02,
    'x_final': 0.98,
    'c_rates': [4.0, 0.5, 1.5],  # any order: the table is sorted
    'cutoff_voltage': 3.3,
    'electrode': {'thickness': 7e-5, 'porosity': 0.3, 'active_fraction': 0.6, 'bruggeman': 1.5, 'sigma': 10.0},
    'separator': {'thickness': 2.5e-5, 'porosity': 0.5},
    'electrolyte': {'c0': 1000.0, 'D': 3e-10, 'kappa': 1.0, 't_plus': 0.38},
}
POLYCRYSTAL = {
    # band 3 nm = 2.6 (3.8) mesh cells at 64 cells per side: resolved, no widening, so the HS bounds are exact
    'grain_sizes': [1.0e-8, 1.5e-8],
    'temperatures': [300.0, 450.0, 600.0],
    'gb_width': 3.0e-9,
    'D_bulk': {'Ea': 0.6, 'x': 0.5, 'T_ref': 298.15},
    'D_gb': {'Ea': 0.45, 'x': 0.5, 'T_ref': 298.15, 'factor': 100.0},
}
OVERRIDES = {
    'models': ['particle_diffusion', 'phase_field', 'polycrystal', 'porous_electrode'],
    'cell': CELL,
    # kappa = R T lambda^2 with an OCV free energy: this lambda gives the regular solution's interface
    'phase_field': {
        'interface_width': 2e-8 * np.sqrt(OMEGA_RT),
        'driving': {'type': 'galvanostatic', 'c_rate': 1.0, 'direction': 'lithiation'},
        'initial': {'type': 'uniform', 'x': 0.03},
        'x_end': 0.9,
    },
    'polycrystal': POLYCRYSTAL,
    # the regular solution's OCV has a miscibility gap: the single-phase models run on it only when asked to
    'allow_non_monotonic_ocv': True,
}


def user_tables():
    """OCV(x) of the regular solution (dense toward both ends for the log terms) and a D(x) rising 3x mid-range."""
    from aiida import orm

    s = np.linspace(-1, 1, 61)
    x = 0.5 + 0.4995 * np.sign(s) * np.abs(s) ** 2
    ocv = orm.ArrayData()
    ocv.set_array('x', x)
    ocv.set_array('V', 3.4 - RT_F * (np.log(x / (1 - x)) + OMEGA_RT * (1 - 2 * x)))
    diffusivity = orm.ArrayData()
    diffusivity.set_array('x', np.linspace(0.0, 1.0, 11))
    diffusivity.set_array('D', 1e-15 * (1 + 2 * np.sin(np.pi * np.linspace(0.0, 1.0, 11))))
    return diffusivity, ocv


def docs_example() -> str:
    """The ElectrodeWorkChain example of docs/continuum.md, as written."""
    text = DOCS.read_text()
    start = text.index('```python', text.index('## Through AiiDA')) + len('```python')
    return text[start : text.index('```', start)]


@pytest.fixture(scope='module')
def electrode_run(fenics_code):
    """The docs example, run as written (its `load_profile('mscale')` is the test profile here)."""
    import time

    import aiida
    from aiida import orm

    namespace = {}
    start = time.perf_counter()
    original = aiida.load_profile
    aiida.load_profile = lambda *args, **kwargs: None  # the test profile is loaded already
    try:
        exec(compile(docs_example(), str(DOCS), 'exec'), namespace)  # noqa: S102  (our own documentation)
    finally:
        aiida.load_profile = original
    results = namespace['results']
    node = results['rate_capability'].creator.caller
    print(f'\nElectrodeWorkChain<{node.pk}> (docs example, 4 models + 2 draws): {time.perf_counter() - start:.1f} s')
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    assert isinstance(node, orm.WorkChainNode)
    return namespace['diffusivity'], namespace['ocv'], results, node


def _calc(node, label):
    from aiida import orm

    return node.base.links.get_outgoing(node_class=orm.WorkChainNode, link_label_filter=label).one().node


def test_rate_capability_is_monotone_and_equals_the_solver_tables(electrode_run):
    _, _, results, node = electrode_run
    for output, model in (('rate_capability', 'particle_diffusion'), ('electrode_rate_capability', 'porous_electrode')):
        table = results[output]
        rates, capacity = table.get_array('c_rate'), table.get_array('capacity')
        assert rates.tolist() == sorted(C_RATES)
        assert np.all(np.diff(capacity) <= 0), (output, capacity)  # higher C-rate never delivers more
        assert table.base.attributes.get('capacity_unit') == 'mAh/g'
        # the same numbers the solver wrote for that model, reordered by C-rate
        written = _calc(node, model).outputs.results.get_dict()['rate_capability']
        order = np.argsort(written['c_rate'])
        assert np.array_equal(capacity, np.asarray(written['capacity'])[order])
        print(f'\n{output}: {dict(zip(rates, np.round(capacity, 1)))} mAh/g')
    particle = results['rate_capability'].get_array('capacity')
    theoretical = 96485.33212331001 * 2.28e4 * 0.96 / 3.6e6 / 3.6  # mAh/g of the window 0.02 -> 0.98, F = e N_A
    assert 0.8 * theoretical < particle[0] <= theoretical * (1 + 1e-12) and particle[-1] < particle[0]


def test_the_overshoot_at_2c_is_restarted_with_a_smaller_time_step(electrode_run):
    """The docs example's particle at 2C: the first solve overshoots c_max next to the surface (420), the
    restart with half the step delivers every C-rate."""
    from aiida import orm

    _, _, _, node = electrode_run
    base = _calc(node, 'particle_diffusion')
    assert base.process_label == 'ContinuumBaseWorkChain' and base.is_finished_ok
    calcs = sorted(base.base.links.get_outgoing(node_class=orm.CalcJobNode).all_nodes(), key=lambda n: n.ctime)
    assert [c.exit_status for c in calcs] == [420, 0]
    assert 'concentration left [0, c_max]' in calcs[0].exit_message and 'C-rate 2.0' in calcs[0].exit_message
    first, second = (c.inputs.parameters.get_dict()['time_stepping'] for c in calcs)
    assert second['dx_surface_max'] == 0.5 * first['dx_surface_max']


def test_bands_of_the_docs_example(electrode_run):
    """Two draws with sigma > 0: the band has width, holds its mean and each draw, and the draws are nodes that
    descend from the user's tables."""
    from aiida import orm

    diffusivity, ocv, results, node = electrode_run
    band = results['rate_capability_band']
    rates = band.get_array('c_rate')
    mean, lower, upper = (band.get_array(f'capacity_{k}') for k in ('mean', 'lower', 'upper'))
    draws = band.get_array('capacity_draws')
    assert rates.tolist() == C_RATES and draws.shape == (2, 3)
    assert np.all(lower <= mean) and np.all(mean <= upper)
    assert np.allclose(mean, draws.mean(axis=0), rtol=1e-12)
    # at 0.5 C both draws deliver the whole window (no spread); at 2 and 5 C transport limits them differently
    assert (upper - lower)[0] < 1e-6 * mean[0]
    assert np.all((upper - lower)[1:] > 0)
    # with two draws the 2.5/97.5 % percentiles lie 5 % of the spread inside the extremes (linear interpolation)
    spread = draws.max(axis=0) - draws.min(axis=0)
    assert np.allclose(lower, draws.min(axis=0) + 0.025 * spread, rtol=1e-12)
    voltage = results['voltage_band']
    for i in range(3):
        lo, hi = voltage.get_array(f'voltage_lower_{i}'), voltage.get_array(f'voltage_upper_{i}')
        both = voltage.get_array(f'n_draws_{i}') == 2
        assert both.sum() > 10 and np.all(hi[both] - lo[both] > 0)
    factors = node.base.links.get_outgoing(link_label_filter='ensemble_draws').one().node.outputs.factors
    expected = np.random.default_rng(7).standard_normal((2, 2))  # the documented draw model, seed 7
    assert np.array_equal(factors.get_array('z'), expected[:, 0])
    draw = _calc(node, 'particle_diffusion_draw_1').inputs.continuum
    d = diffusivity.get_array('D') * np.exp(
        expected[1, 0] * diffusivity.get_array('D_sigma') / diffusivity.get_array('D')
    )
    assert np.allclose(draw.diffusivity.get_array('D'), d, rtol=1e-14)
    assert np.allclose(draw.ocv.get_array('V'), ocv.get_array('V') + expected[1, 1] * 0.005, rtol=1e-14)
    query = orm.QueryBuilder().append(orm.ArrayData, filters={'uuid': diffusivity.uuid}, tag='d')
    query.append(orm.ArrayData, with_ancestors='d', filters={'uuid': band.uuid}, project='uuid')
    assert query.distinct().all(flat=True) == [band.uuid]


def test_phase_boundary_moves_inward(electrode_run):
    _, _, results, _ = electrode_run
    trajectory = results['phase_boundary']
    time, front = trajectory.get_array('time'), trajectory.get_array('front_position')
    relative = trajectory.get_array('front_position_relative')
    assert len(time) > 20 and np.all(np.diff(time) > 0)
    assert np.allclose(relative, front / RADIUS, rtol=1e-12)
    assert relative[0] > 0.9 and relative[-1] < 0.6, (relative[0], relative[-1])  # nucleates at the surface
    assert np.all(np.diff(relative) < 1e-3)  # shrinking core: never moves outward
    # galvanostatic 1C lithiation from x = 0.03: x_mean = 0.03 + t / 3600 s
    assert np.allclose(trajectory.get_array('x_mean'), 0.03 + time / 3600.0, atol=1e-9)


def test_effective_diffusivity_between_hashin_shtrikman_bounds(electrode_run):
    diffusivity, _, results, _ = electrode_run
    table = results['effective_diffusivity']
    d_eff, d_bulk, d_gb = (table.get_array(k) for k in ('D_eff', 'D_bulk', 'D_gb_model'))
    fraction = table.get_array('gb_fraction')
    assert not table.get_array('band_widened').any()
    # Arrhenius prefactors from D(x = 0.5) of the user table: D_bulk(T) = D(0.5) exp(-Ea/k (1/T - 1/T_ref))
    d_half = np.interp(0.5, diffusivity.get_array('x'), diffusivity.get_array('D'))
    temperatures = table.get_array('temperature')
    expected = d_half * np.exp(-0.6 / KB * (1 / temperatures - 1 / 298.15))
    assert np.allclose(d_bulk, expected[None, :], rtol=1e-10)
    # two-dimensional Hashin-Shtrikman bounds for (f, D_gb) in (1 - f, D_bulk), computed here independently
    for i, f in enumerate(fraction):
        for j in range(len(temperatures)):
            d1, d2 = d_bulk[i, j], d_gb[i, j]  # d2 > d1: fast grain boundaries
            lower = d1 + f / (1 / (d2 - d1) + (1 - f) / (2 * d1))
            upper = d2 + (1 - f) / (1 / (d1 - d2) + f / (2 * d2))
            assert lower < d_eff[i, j] < upper, (i, j, lower, d_eff[i, j], upper)
            assert lower == pytest.approx(table.get_array('hs_lower')[i, j], rel=1e-10)
            assert upper == pytest.approx(table.get_array('hs_upper')[i, j], rel=1e-10)
    assert np.all(np.diff(d_eff, axis=0) < 0)  # smaller grains, more boundary, faster
    e_app = table.get_array('E_app')
    assert np.all((e_app > 0.45) & (e_app < 0.6)), e_app
    print(f'\nD_eff/D_bulk at 300 K: {np.round(d_eff[:, 0] / d_bulk[:, 0], 2)}; E_app {np.round(e_app, 4)} eV')


def test_every_table_descends_from_the_user_tables(electrode_run):
    from aiida import orm

    diffusivity, ocv, results, _ = electrode_run
    expected = {
        'rate_capability': (diffusivity, ocv),
        'electrode_rate_capability': (diffusivity, ocv),
        'phase_boundary': (diffusivity, ocv),
        'effective_diffusivity': (diffusivity,),  # through polycrystal_diffusivities: D0 from D(x)
    }
    for output, ancestors in expected.items():
        for ancestor in ancestors:
            query = orm.QueryBuilder()
            query.append(orm.ArrayData, filters={'uuid': ancestor.uuid}, tag='table')
            query.append(orm.ArrayData, with_ancestors='table', filters={'uuid': results[output].uuid}, project='uuid')
            assert query.distinct().all(flat=True) == [results[output].uuid], (output, ancestor.pk)
        creator = results[output].creator
        assert isinstance(creator, orm.CalcFunctionNode), output
    # and the OCV does not feed the polycrystal (its D_eff does not depend on OCV)
    query = orm.QueryBuilder()
    query.append(orm.ArrayData, filters={'uuid': ocv.uuid}, tag='table')
    query.append(orm.ArrayData, with_ancestors='table', filters={'uuid': results['effective_diffusivity'].uuid})
    assert query.count() == 0


def test_report_draws_the_plots(electrode_run, tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from aiida_mscale.cli import cmd_root

    _, _, _, node = electrode_run
    result = CliRunner().invoke(cmd_root, ['report', str(node.pk), '--output-dir', str(tmp_path)])
    assert result.exit_code == 0, result.output
    paths = result.output.split()
    names = sorted(p.split('/')[-1] for p in paths)
    prefix = f'{node.pk}_'
    expected = ['d_eff', 'electrode_voltage_curves', 'front_position', 'rate_capability', 'voltage_curves']
    assert names == sorted(f'{prefix}{name}.png' for name in expected)
    for path in paths:
        with Image.open(path) as image:
            assert image.format == 'PNG' and image.size[0] > 400 and image.size[1] > 300
            pixels = np.asarray(image.convert('L'), dtype=float)
            assert pixels.std() > 5  # something was drawn, not a blank canvas
    # a node without registered plots is an error that names what can be plotted
    unknown = CliRunner().invoke(cmd_root, ['report', str(node.inputs.diffusivity.pk), '-o', str(tmp_path)])
    assert unknown.exit_code != 0 and 'no plots for ArrayData' in unknown.output


@pytest.mark.parametrize(
    'overrides, message',
    [
        ({'cell': {'c_rates': [1.0, 0.0]}}, r'particle_diffusion: `c_rates` must be positive'),
        ({'models': ['phase_field', 'particle_flow']}, r'`models` must be distinct names'),
        ({'cell': {'x_initial': 0.0001}}, r'particle_diffusion: the OCV table covers x in \[0.0005'),
        ({'cell': {'particle': {'radius': 1e-6}}}, r'particle_diffusion: .* missing cell.particle.c_max \[mol/m\^3\]'),
        ({'cell': {'kinetics': {'alpha': 0.5}}}, r'missing cell.kinetics.i0 \[A/m\^2\]'),
        ({'polycrystal': {'grain_sizes': [1e-8]}}, r'polycrystal: .* missing polycrystal.temperatures \[K\]'),
        ({'uncertainty': {'ensemble_size': 0}}, r'uncertainty.ensemble_size: Input should be greater than or equal'),
        ({'uncertainty': {'ensemble_size': 2, 'seeds': 1}}, r'uncertainty.seeds: unknown parameter'),
        ({'uncertainty': {'ensemble_size': 2}}, r'uncertainty: neither table carries a sigma'),
    ],
)
def test_bad_input_is_refused_before_anything_runs(fenics_code, overrides, message):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.electrode import ElectrodeWorkChain

    diffusivity, ocv = user_tables()
    merged = {**OVERRIDES, **overrides, 'cell': {**OVERRIDES['cell'], **overrides.get('cell', {})}}
    for key in ('polycrystal',):
        if key in overrides:  # replaced, not merged: a key left out is missing
            merged[key] = overrides[key]
    builder = ElectrodeWorkChain.get_builder_from_protocol(fenics_code, diffusivity, ocv, overrides=merged)
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=message):
        run_get_node(builder)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_incomplete_arrhenius_parameters_are_refused(fenics_code):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.electrode import ElectrodeWorkChain

    diffusivity, ocv = user_tables()
    builder = ElectrodeWorkChain.get_builder_from_protocol(fenics_code, diffusivity, ocv, overrides=OVERRIDES)
    builder.polycrystal = orm.Dict({**POLYCRYSTAL, 'D_gb': {'Ea': 0.45, 'x': 0.5}})  # no T_ref: D(x) at what T?
    with pytest.raises(ValueError, match=r'polycrystal: `D_gb` needs either D0 and Ea, or Ea, x and T_ref'):
        run_get_node(builder)


def test_non_positive_diffusivity_is_refused(fenics_code):
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.electrode import ElectrodeWorkChain

    diffusivity, ocv = user_tables()
    diffusivity.set_array('D', np.where(np.arange(11) == 4, -1e-16, diffusivity.get_array('D')))
    builder = ElectrodeWorkChain.get_builder_from_protocol(fenics_code, diffusivity, ocv, overrides=OVERRIDES)
    with pytest.raises(
        ValueError, match=r'the diffusivity table has non-positive values D = \[-1e-16\] at x = \[0.4\]'
    ):
        run_get_node(builder)


def test_failed_model_gets_401_and_a_phase_field_without_miscibility_gap_is_refused(fenics_code):
    """A model that fails at run time (its time stepping cannot converge, restarts included) fails the work chain
    with 401 (the others are still gathered); an OCV(x) with no miscibility gap can form no phase boundary: the
    phase-field run is refused before submission."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.electrode import ElectrodeWorkChain

    diffusivity, _ = user_tables()
    monotone = orm.ArrayData()  # falls with x everywhere: a solid solution, no two-phase region
    monotone.set_array('x', np.linspace(0.0, 1.0, 21))
    monotone.set_array('V', 3.6 - 0.3 * np.linspace(0.0, 1.0, 21))
    overrides = {
        **OVERRIDES,
        'models': ['particle_diffusion', 'polycrystal'],
        # a time step that can never be accepted: the solver stops with its non-convergence code; one run only
        # (the restarts are tested in test_continuum_base.py)
        'max_iterations': 1,
        'resolution': {
            'particle_diffusion': {'time_stepping': {'dx_surface_max': 1e-9, 'dtau_min': 1e-4}},
            'polycrystal': {'mesh': {'cells_per_side': 32, 'subsamples': 2}},  # cheap: only its presence is checked
        },
    }
    builder = ElectrodeWorkChain.get_builder_from_protocol(fenics_code, diffusivity, monotone, overrides=overrides)
    results, node = run_get_node(builder)
    assert node.exit_status == 401, (node.exit_status, node.exit_message)
    assert 'particle_diffusion' in node.exit_message and 'time step fell below dtau_min' in node.exit_message
    assert 'rate_capability' not in results and 'effective_diffusivity' in results  # the polycrystal still counts

    overrides['models'] = ['phase_field']
    builder = ElectrodeWorkChain.get_builder_from_protocol(fenics_code, diffusivity, monotone, overrides=overrides)
    with pytest.raises(ValueError, match=r'phase_field: the free energy has no miscibility gap .* solid solution'):
        run_get_node(builder)


def _ensemble(fenics_code, d_sigma, v_sigma):
    """A small solid-solution particle (3C, 2 draws, seed 3) with relative D sigma and V sigma [V]."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.electrode import ElectrodeWorkChain

    x = np.linspace(0.0, 1.0, 21)
    ocv = orm.ArrayData()  # a solid solution: falls with x everywhere
    ocv.set_array('x', x)
    ocv.set_array('V', 3.7 - 0.4 * x)
    ocv.set_array('V_sigma', np.full(21, v_sigma))
    diffusivity = orm.ArrayData()
    diffusivity.set_array('x', np.array([0.0, 0.5, 1.0]))
    diffusivity.set_array('D', np.array([2e-15, 1e-15, 5e-16]))
    diffusivity.set_array('D_sigma', d_sigma * diffusivity.get_array('D'))
    overrides = {
        'models': ['particle_diffusion'],
        'cell': {**CELL, 'x_initial': 0.05, 'x_final': 0.95, 'c_rates': [3.0], 'cutoff_voltage': 3.0},
        'uncertainty': {'ensemble_size': 2, 'seed': 3},
    }
    options = {'max_wallclock_seconds': 600}
    builder = ElectrodeWorkChain.get_builder_from_protocol(fenics_code, diffusivity, ocv, 'fast', overrides, options)
    results, node = run_get_node(builder)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    return results, node


def test_band_collapses_at_zero_sigma_and_widens_with_sigma(fenics_code):
    """sigma = 0: every draw is the nominal table, and the band is the single run's curve exactly. The same seed
    with sigma and 2 sigma: the same factors, so the band widens."""
    results, node = _ensemble(fenics_code, 0.0, 0.0)
    nominal = results['rate_capability'].get_array('capacity')
    band = results['rate_capability_band']
    for key in ('capacity_mean', 'capacity_lower', 'capacity_upper'):
        assert np.array_equal(band.get_array(key), nominal), key
    calc = _calc(node, 'particle_diffusion')
    curve_q = calc.outputs.arrays.get_array('rate0_capacity_curve_mAh_per_g')
    curve_v = calc.outputs.arrays.get_array('rate0_voltage')
    finite = np.isfinite(curve_v)  # the curve ends where the voltage diverges (saturated surface)
    curve_q, curve_v = curve_q[finite], curve_v[finite]
    voltage = results['voltage_band']
    grid = voltage.get_array('capacity_0')
    assert grid[-1] == curve_q[-1]  # every draw ends where the single run ends
    for key in ('voltage_mean_0', 'voltage_lower_0', 'voltage_upper_0'):
        assert np.array_equal(voltage.get_array(key), np.interp(grid, curve_q, curve_v)), key

    widths = []
    for sigma in (0.2, 0.4):
        results, _ = _ensemble(fenics_code, sigma, sigma * 0.05)
        band = results['rate_capability_band']
        voltage = results['voltage_band']
        both = voltage.get_array('n_draws_0') == 2
        widths.append(
            (
                float(band.get_array('capacity_upper')[0] - band.get_array('capacity_lower')[0]),
                float(np.mean((voltage.get_array('voltage_upper_0') - voltage.get_array('voltage_lower_0'))[both])),
            )
        )
    print(f'\nband widths (capacity mAh/g, mean voltage V) at sigma 0.2, 0.4: {widths}')
    (capacity_1, voltage_1), (capacity_2, voltage_2) = widths
    assert 0 < capacity_1 < capacity_2 and 0 < voltage_1 < voltage_2
    # V_sigma is a rigid shift of the OCV: the voltage band scales with it (to the kinetics' share, well within 2x)
    assert 1.5 < voltage_2 / voltage_1 < 2.5
