"""Na_xMnFe(CN)6 builder: space groups, lattices and bond lengths against the literature, seeded Na order, bad input."""

import math
from collections import Counter

import numpy as np
import pytest
from ase.neighborlist import neighbor_list
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from aiida_mscale.structures import sodium_manganese_hexacyanoferrate as build


def _bonds(atoms, centre, other, cutoff):
    symbols = np.array(atoms.get_chemical_symbols())
    i, j, d = neighbor_list('ijd', atoms, cutoff)
    return d[(symbols[i] == centre) & (symbols[j] == other)]


def _conventional(atoms):
    structure = AseAtomsAdaptor.get_structure(atoms)
    return SpacegroupAnalyzer(structure, symprec=1e-3).get_conventional_standard_structure()


def test_cubic_na2_is_fm3m_with_measured_mn_n_and_a_between_measured_mn_pbas():
    atoms = build(2, 'cubic', 'conventional')
    structure = AseAtomsAdaptor.get_structure(atoms)
    assert SpacegroupAnalyzer(structure, symprec=1e-3).get_space_group_number() == 225
    assert Counter(atoms.get_chemical_symbols()) == {'Na': 8, 'Mn': 4, 'Fe': 4, 'C': 24, 'N': 24}
    a = atoms.cell.lengths()
    np.testing.assert_allclose(a, a[0])
    # measured cubic Mn-N#C-M frameworks: 10.3859 A (Mn[Fe(CN)6]2/3, Acta Cryst. E 64, i11 (2008)),
    # 10.761 A (Mn3[Cr(CN)6]2, Stucki et al. 1973); Mn-N 2.20(1) A (Stucki et al. 1973)
    assert 10.3859 < a[0] < 10.761
    np.testing.assert_allclose(_bonds(atoms, 'Mn', 'N', 2.5), 2.20, atol=1e-9)
    assert len(_bonds(atoms, 'Mn', 'N', 2.5)) == 6 * 4
    np.testing.assert_allclose(_bonds(atoms, 'Fe', 'C', 2.5), 1.92, atol=1e-9)
    assert len(_bonds(atoms, 'Fe', 'C', 2.5)) == 6 * 4
    # Na in the centre of the small cube: eight framework atoms at a*sqrt(3)/4 (Fe, Mn), 12 C and 12 N around
    np.testing.assert_allclose(_bonds(atoms, 'Na', 'Fe', 5.0), a[0] * math.sqrt(3) / 4, atol=1e-9)
    # Na2MnFe(CN)6: M = 312.87 g/mol, 4 f.u. per cell
    molar_mass = 2 * 22.98977 + 54.938044 + 55.845 + 6 * (12.011 + 14.007)
    density = 4 * molar_mass / 6.02214076e23 / (a[0] * 1e-8) ** 3
    assert density == pytest.approx(float(structure.density), rel=1e-3)


def test_one_na_per_formula_unit_gives_the_measured_rbmn_fe_cn6_space_groups():
    # RbMn[Fe(CN)6], the one-A-cation-per-f.u. analogue, is F-43m (cubic) and I-4m2 (tetragonal, Jahn-Teller)
    # (Moritomo et al., J. Phys. Soc. Jpn. 71, 2078 (2002))
    cubic = build(1, 'cubic', 'primitive')
    tetragonal = build(1, 'tetragonal', 'primitive')
    assert cubic.info['space_group'] == 'F-43m (216)'
    assert tetragonal.info['space_group'] == 'I-4m2 (119)'


def test_rhombohedral_cell_is_the_measured_one_and_the_bridge_is_bent():
    atoms = build(2, 'rhombohedral', 'primitive')
    conventional = _conventional(atoms)
    assert SpacegroupAnalyzer(conventional, symprec=1e-3).get_space_group_number() == 148
    # dehydrated Na2-dMnFe(CN)6, R-3, a = 6.5528 A, c = 18.7501 A (Song et al., JACS 137, 2658 (2015))
    assert conventional.lattice.a == pytest.approx(6.5528, abs=1e-4)
    assert conventional.lattice.c == pytest.approx(18.7501, abs=1e-4)
    assert len(conventional) == 3 * 16
    np.testing.assert_allclose(_bonds(atoms, 'Mn', 'N', 2.5), 2.20, atol=1e-8)
    np.testing.assert_allclose(_bonds(atoms, 'Fe', 'C', 2.5), 1.92, atol=1e-9)
    # Mn-N-C bent as in the isostructural Na2Mn[Mn(CN)6] (142.4 deg, Kareis et al., JACS 134, 2246 (2012))
    assert 130.0 < atoms.info['mn_n_c_angle'] < 150.0
    hexagonal = build(2, 'rhombohedral', 'conventional')
    np.testing.assert_allclose(hexagonal.cell.cellpar(), [6.5528, 6.5528, 18.7501, 90, 90, 120], atol=1e-6)


def test_tetragonal_framework_is_jahn_teller_elongated():
    atoms = build(0, 'tetragonal', 'conventional')
    assert atoms.info['space_group'] == 'I4/mmm (139)'
    np.testing.assert_allclose(atoms.cell.cellpar(), [7.10, 7.10, 10.52, 90, 90, 90], atol=1e-9)
    bonds = np.sort(_bonds(atoms, 'Mn', 'N', 2.5))
    assert len(bonds) == 12  # two Mn, six N each
    np.testing.assert_allclose(bonds[:8], 7.10 * math.sqrt(2) / 2 - 3.07, atol=1e-9)  # 4 short (equatorial)
    np.testing.assert_allclose(bonds[8:], 10.52 / 2 - 3.07, atol=1e-9)  # 2 long (axial)
    assert bonds[8] / bonds[0] > 1.1


@pytest.mark.parametrize(('phase', 'units'), [('cubic', 4), ('rhombohedral', 3), ('tetragonal', 2)])
def test_every_representable_x_has_the_right_composition(phase, units):
    for n in range(2 * units + 1):
        atoms = build(n / units, phase, 'conventional', seed=n)
        symbols = atoms.get_chemical_symbols()
        assert symbols.count('Na') == n
        assert symbols.count('Mn') == symbols.count('Fe') == units
        assert symbols.count('C') == symbols.count('N') == 6 * units
        assert min(_bonds(atoms, 'Na', 'N', 3.5), default=9.0) > 2.2


def test_na_ordering_is_seeded():
    first = build(1.0, 'cubic', 'conventional', seed=7)
    again = build(1.0, 'cubic', 'conventional', seed=7)
    np.testing.assert_array_equal(first.positions, again.positions)
    assert first.info['na_sites'] == again.info['na_sites']
    orderings = {tuple(build(1.0, 'cubic', 'conventional', seed=s).info['na_sites']) for s in range(8)}
    assert len(orderings) > 1
    supercell = build(0.25, 'cubic', 'primitive', supercell=(2, 2, 1), seed=3)
    assert supercell.get_chemical_symbols().count('Na') == 1


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'x': -0.1}, r'x \(Na per formula unit\) = -0.1 is out of range'),
        ({'x': 2.5}, 'out of range'),
        ({'x': float('nan')}, 'must be a finite number'),
        ({'x': '1'}, 'must be a finite number'),
        ({'x': True}, 'must be a finite number'),
        ({'x': 0.5}, r'x = 0.5 cannot be represented in a cell of 1 formula unit'),
        ({'x': 1, 'phase': 'monoclinic'}, "phase = 'monoclinic' is not known"),
        ({'x': 1, 'cell': 'super'}, "cell = 'super' is not known"),
        ({'x': 1, 'seed': -1}, 'seed must be a non-negative integer'),
        ({'x': 1, 'supercell': 0}, 'supercell = 0 is out of range'),
        ({'x': 1, 'lattice': {'b': 10.0}}, 'lattice for phase'),
        ({'x': 1, 'lattice': {'a': 1.0}}, r"lattice\['a'\] = 1.0 is out of range"),
        ({'x': 1, 'phase': 'rhombohedral', 'lattice': {'a': 7.5, 'c': 18.4}}, 'too large for Mn-N'),
    ],
)
def test_bad_input_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build(**kwargs)
