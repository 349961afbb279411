"""The pure thermodynamics analysis against pymatgen used directly, analytic results and bad input."""

import numpy as np
import pytest

from aiida_mscale.analysis.adhesion import check_interface_cells, work_of_separation
from aiida_mscale.analysis.elastic import check_strains, elastic_moduli, elastic_tensor, strained_cell
from aiida_mscale.analysis.state_points import block_average, volume_trend
from aiida_mscale.analysis.voltage import hull_and_voltage

#: A toy two-phase insertion host "CoO2" with guest Li: energies [eV] per cell of one guest site (x = 0, 1) and
#: two sites (x = 1/2, 1/4 and 3/4 in a cell of four), the x = 1/4 ordering above the hull.
TOY = [
    ('x0', {'Co': 1, 'O': 2}, -20.0, 1),
    ('x25', {'Li': 1, 'Co': 4, 'O': 8}, -84.2, 4),
    ('x50', {'Li': 1, 'Co': 2, 'O': 4}, -44.4, 2),
    ('x75', {'Li': 3, 'Co': 4, 'O': 8}, -92.5, 4),
    ('x100', {'Li': 1, 'Co': 1, 'O': 2}, -24.0, 1),
]
MU_LI = -1.9


def _configurations():
    return [{'label': k, 'composition': c, 'energy': e, 'n_sites': n} for k, c, e, n in TOY]


def test_voltage_profile_equals_pymatgen_insertion_electrode():
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.apps.battery.insertion_battery import InsertionElectrode
    from pymatgen.core import Composition
    from pymatgen.entries.computed_entries import ComputedEntry

    result = hull_and_voltage(_configurations(), 'Li', MU_LI, energy_rmse=0.002)
    entries = [ComputedEntry(Composition(c), e) for _, c, e, _ in TOY]
    electrode = InsertionElectrode.from_entries(entries, ComputedEntry(Composition({'Li': 1}), MU_LI))
    assert result['average_voltage'] == pytest.approx(electrode.get_average_voltage(), abs=1e-12)
    assert [s['voltage'] for s in result['steps']] == pytest.approx([p.voltage for p in electrode.voltage_pairs])
    # analytic: V between hull vertices x1 < x2 of a one-site cell is -(E2 - E1 - (x2 - x1) mu) / (x2 - x1)
    per_site = {k: e / n for k, _, e, n in TOY}
    hull = result['hull']['labels']
    assert hull == ['x0', 'x50', 'x75', 'x100']
    xs = {'x0': 0, 'x25': 0.25, 'x50': 0.5, 'x75': 0.75, 'x100': 1.0}
    expected = [
        -(per_site[b] - per_site[a] - (xs[b] - xs[a]) * MU_LI) / (xs[b] - xs[a]) for a, b in zip(hull, hull[1:])
    ]
    assert [s['voltage'] for s in result['steps']] == pytest.approx(expected, abs=1e-12)
    # the average voltage is the total energy change over the whole range
    assert result['average_voltage'] == pytest.approx(-(per_site['x100'] - per_site['x0'] - MU_LI), abs=1e-12)
    # hull: PhaseDiagram with the same elemental placeholders gives the same e_above_hull
    high = max(entry.energy_per_atom for entry in entries) + 10
    diagram = PhaseDiagram(entries + [PDEntry(Composition({el: 1}), high) for el in ('Li', 'Co', 'O')])
    for (label, *_), entry in zip(TOY, entries):
        assert result['configurations'][label]['e_above_hull'] == pytest.approx(diagram.get_e_above_hull(entry))
    assert result['configurations']['x25']['e_above_hull'] > 0 and not result['configurations']['x25']['stable']
    # band: independent errors of both cells and of the guest reference, per guest atom moved
    first = result['steps'][0]
    dn = 1.0  # x 0 -> 1/2 in the one-site cell: normalised to the cell of x0 (1 site): dn = 0.5 * 1 site ...
    dn = (first['x2'] - first['x1']) * 1
    n1, n2 = 3, 7 * 0.5  # atoms of x0 (one site) and of x50 scaled to one site
    assert first['voltage_error'] == pytest.approx(0.002 * np.sqrt(n1**2 + n2**2 + dn**2) / dn)


#: Li_(2-x)O cells of a MultiscaleWorkChain run (MTP energies [eV] of Li4O4, Li6O4, Li7O4 on the 8 Li sites of the
#: conventional cell) and its bcc Li reference [eV/atom]: absolute pseudopotential energies, O ~ -430 eV/atom
LI2O_CELLS = [('x50', 4, -2624.9285542583), ('x75', 6, -3034.554579566), ('x875', 7, -3239.2100738365)]
MU_LI_PW = -200.43424287033


def test_voltage_from_absolute_pseudopotential_energies():
    """pymatgen's placeholder elements (max E/atom + 10 eV) must not hide guest-rich cells when E/atom differs by
    hundreds of eV between elements: the steps are the hand-worked hull voltages (this input raised IndexError)."""
    configurations = [
        {'label': k, 'composition': {'Li': n, 'O': 4}, 'energy': e, 'n_sites': 8} for k, n, e in LI2O_CELLS
    ]
    result = hull_and_voltage(configurations, 'Li', MU_LI_PW)
    (_, n1, e1), (_, n2, e2), (_, n3, e3) = LI2O_CELLS
    # x75 lies below the x50-x875 tie line: a hull vertex, two steps
    assert e2 < e1 + (n2 - n1) / (n3 - n1) * (e3 - e1)
    assert result['hull']['labels'] == ['x50', 'x75', 'x875']
    expected = [-(e2 - e1 - (n2 - n1) * MU_LI_PW) / (n2 - n1), -(e3 - e2 - (n3 - n2) * MU_LI_PW) / (n3 - n2)]
    assert [s['voltage'] for s in result['steps']] == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx([4.379, 4.221], abs=1e-3)
    assert result['average_voltage'] == pytest.approx(-(e3 - e1 - (n3 - n1) * MU_LI_PW) / (n3 - n1), abs=1e-9)
    # shifting every energy by per-element constants changes nothing
    shifted = [{**c, 'energy': c['energy'] + 150.0 * c['composition']['Li'] - 75.0 * 4} for c in configurations]
    again = hull_and_voltage(shifted, 'Li', MU_LI_PW + 150.0)
    assert [s['voltage'] for s in again['steps']] == pytest.approx(expected, abs=1e-9)


def test_formation_energies_are_relative_to_the_end_members():
    result = hull_and_voltage(_configurations(), 'Li', MU_LI)
    per_site = {k: e / n for k, _, e, n in TOY}
    expected = per_site['x50'] - 0.5 * per_site['x0'] - 0.5 * per_site['x100']
    assert result['configurations']['x50']['formation_energy'] == pytest.approx(expected)
    assert result['configurations']['x0']['formation_energy'] == 0.0


def test_voltage_bad_input():
    with pytest.raises(ValueError, match='same guest fraction'):
        hull_and_voltage(_configurations()[:1] * 2, 'Li', MU_LI)
    other = _configurations() + [
        {'label': 'odd', 'composition': {'Li': 1, 'Ni': 1, 'O': 2}, 'energy': -1, 'n_sites': 1}
    ]
    with pytest.raises(ValueError, match='one host framework'):
        hull_and_voltage(other, 'Li', MU_LI)


def test_elastic_tensor_recovers_a_linear_material_and_checks_strains():
    c_true = np.array(
        [
            [170, 120, 110, 0, 0, 5],
            [120, 180, 115, 0, 0, -3],
            [110, 115, 190, 0, 0, 2],
            [0, 0, 0, 70, 4, 0],
            [0, 0, 0, 4, 75, 0],
            [5, -3, 2, 0, 0, 80],
        ],
        dtype=float,
    )
    from ase.stress import voigt_6_to_full_3x3_stress

    residual = np.array([0.3, -0.2, 0.1, 0.05, 0.0, -0.02])
    stresses = {}
    for component in range(1, 7):
        for s in (-0.01, -0.005, 0.005, 0.01):
            strain = np.zeros(6)
            strain[component - 1] = s
            stresses[(component, s)] = voigt_6_to_full_3x3_stress(residual + c_true @ strain)
    result = elastic_tensor(stresses)
    np.testing.assert_allclose(result['C'], c_true, atol=1e-9)
    # the deformation of a shear component is symmetric with half the engineering strain off the diagonal
    cell = strained_cell(np.eye(3), 4, 0.02)
    np.testing.assert_allclose(cell, [[1, 0, 0], [0, 1, 0.01], [0, 0.01, 1]])
    with pytest.raises(ValueError, match='exceeds 0.05'):
        check_strains([-0.06, 0.06])
    with pytest.raises(ValueError, match='non-zero'):
        check_strains([0.0, 0.01])


def test_moduli_of_an_isotropic_solid_and_born_instability():
    k, g = 100.0, 40.0  # an isotropic solid: C11 = K + 4G/3, C12 = K - 2G/3, C44 = G
    c = np.zeros((6, 6))
    c[:3, :3] = k - 2 * g / 3
    np.fill_diagonal(c[:3, :3], k + 4 * g / 3)
    c[3, 3] = c[4, 4] = c[5, 5] = g
    moduli = elastic_moduli(c)
    assert moduli['bulk_modulus_vrh'] == pytest.approx(k)
    assert moduli['shear_modulus_vrh'] == pytest.approx(g)
    assert moduli['youngs_modulus'] == pytest.approx(9 * k * g / (3 * k + g))
    assert moduli['poisson_ratio'] == pytest.approx((3 * k - 2 * g) / (2 * (3 * k + g)))
    c[3, 3] = -1.0  # a negative shear stiffness
    unstable = elastic_moduli(c)
    assert not unstable['born_stable'] and unstable['shear_modulus_vrh'] is None


def test_work_of_separation_and_dupre():
    from scipy.constants import e

    cell = np.diag([3.0, 4.0, 30.0])
    energies = {'slab_1': -100.0, 'slab_2': -80.0, 'interface': -181.2}
    result = work_of_separation(
        energies, cell, atom_counts={'slab_1': 20, 'slab_2': 16}, bulk_energies={'slab_1': -5.1, 'slab_2': -5.1}
    )
    assert result['work_of_separation'] == pytest.approx(1.2 / 12.0)
    assert result['work_of_separation_si'] == pytest.approx(1.2 / 12.0 * e * 1e20)
    dupre = result['surface_energy_1'] + result['surface_energy_2'] - result['interfacial_energy']
    assert dupre == pytest.approx(result['work_of_separation'])


def test_interface_mismatch_is_refused():
    interface = np.diag([3.0, 4.0, 30.0])
    check_interface_cells({'slab_1': np.diag([3.03, 4.0, 15]), 'slab_2': interface, 'interface': interface})
    with pytest.raises(ValueError, match=r'slab_1: its in-plane cell differs .* by 5\.000%'):
        check_interface_cells({'slab_1': np.diag([3.15, 4.0, 15]), 'slab_2': interface, 'interface': interface})


def test_volume_trend_detects_a_tetragonal_distortion():
    def point(x, a, c, error=0.002):
        cell = np.diag([a, a, c])
        return {
            'x': x,
            'volume': a * a * c,
            'volume_error': 0.1,
            'cell': cell,
            'lattice': {'a': a, 'b': a, 'c': c, 'alpha': 90, 'beta': 90, 'gamma': 90},
            'lattice_error': {'a': error, 'b': error, 'c': error},
        }

    points = [point(0.0, 10.0, 10.0), point(0.25, 10.02, 10.02), point(0.5, 10.04, 10.04), point(0.75, 9.9, 10.5)]
    result = volume_trend(points)
    assert result['lattice_system'] == ['cubic', 'cubic', 'cubic', 'tetragonal']
    (found,) = result['transformations']
    assert (found['x_low'], found['x_high']) == (0.5, 0.75)
    assert result['relative_volume_change'] == pytest.approx(9.9 * 9.9 * 10.5 / 1000 - 1)
    # a smooth trend is not a transformation
    assert volume_trend(points[:3])['transformations'] == []
    # two orderings at one x are averaged, errors as the error of the mean
    twin = volume_trend(points[:2] + [point(0.25, 10.04, 10.04)])
    assert twin['orderings'] == [1, 2] and twin['lattice']['a'][1] == pytest.approx(10.03)
    assert twin['volume_error'][1] == pytest.approx(0.1 / np.sqrt(2))


def test_block_average_of_independent_samples():
    rng = np.random.default_rng(1)
    samples = rng.normal(5.0, 2.0, 100000)
    mean, error = block_average(samples, 10)
    assert mean == pytest.approx(5.0, abs=4 * 2.0 / np.sqrt(len(samples)))
    assert error == pytest.approx(2.0 / np.sqrt(len(samples)), rel=0.5)


def test_report_figures_draw_from_plain_arrays(tmp_path):
    from aiida_mscale.plotting.thermodynamics import draw_diffusivity_map, draw_elastic_table, draw_voltage_profile

    result = hull_and_voltage(_configurations(), 'Li', MU_LI, energy_rmse=0.002)
    figures = {
        'voltage': draw_voltage_profile(
            result['x'], result['voltage'], result['voltage_error'], result['configurations'], result['hull'], 2.1
        ),
        'elastic': draw_elastic_table(np.eye(6) * 100, elastic_moduli(np.eye(6) * 100)),
        'diffusivity': draw_diffusivity_map([600, 600, 900, 900], [0.5, 1.0, 0.5, 1.0], [1e-6, 2e-6, 1e-5, 3e-5]),
    }
    assert len(figures['voltage'].axes) == 2 and len(figures['diffusivity'].axes) == 2  # map + colour bar
    for name, figure in figures.items():
        figure.savefig(tmp_path / f'{name}.png')
        assert (tmp_path / f'{name}.png').stat().st_size > 5000
