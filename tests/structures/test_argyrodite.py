"""Li6PS5X builder: F-43m framework, Deiseroth lattice parameters, one Li per 48h doublet, X/S2- exchange, bad input."""

from collections import Counter

import numpy as np
import pytest
from ase.neighborlist import neighbor_list
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from aiida_mscale.structures import lithium_argyrodite

#: Deiseroth et al., Angew. Chem. Int. Ed. 47, 755 (2008)
MEASURED_A = {'Cl': 9.85, 'Br': 9.98, 'I': 10.14}


def _pairs(atoms, centre, other, cutoff):
    symbols = np.array(atoms.get_chemical_symbols())
    i, j, d = neighbor_list('ijd', atoms, cutoff)
    mask = (symbols[i] == centre) & (symbols[j] == other)
    return i[mask], j[mask], d[mask]


@pytest.mark.parametrize('halide', ['Cl', 'Br', 'I'])
def test_conventional_cell(halide):
    atoms = lithium_argyrodite(halide, 'conventional', seed=1)
    np.testing.assert_allclose(atoms.cell.cellpar(), [MEASURED_A[halide]] * 3 + [90] * 3)
    assert Counter(atoms.get_chemical_symbols()) == {'Li': 24, 'P': 4, 'S': 20, halide: 4}
    framework = AseAtomsAdaptor.get_structure(atoms[[s != 'Li' for s in atoms.get_chemical_symbols()]])
    analyzer = SpacegroupAnalyzer(framework, symprec=1e-3)
    assert analyzer.get_space_group_symbol() == 'F-43m'
    wyckoffs = analyzer.get_symmetrized_structure().wyckoff_symbols
    assert sorted(wyckoffs) == ['16e', '4a', '4b', '4d']
    # PS4 tetrahedra: four S at 2.05 A around every P
    i, _, d = _pairs(atoms, 'P', 'S', 2.5)
    np.testing.assert_allclose(d, 2.05, atol=1e-9)
    assert np.all(np.bincount(i, minlength=len(atoms))[atoms.symbols == 'P'] == 4)
    # every Li in a tetrahedron of anions (Li-S/X 2.4-2.7 A)
    symbols = np.array(atoms.get_chemical_symbols())
    i, j, d = neighbor_list('ijd', atoms, 2.75)
    for li in np.flatnonzero(symbols == 'Li'):
        anions = (i == li) & np.isin(symbols[j], ['S', halide])
        assert anions.sum() == 4
        assert 2.3 < d[anions].min() and d[anions].max() < 2.75


def test_one_li_per_doublet_and_six_per_cage():
    atoms = lithium_argyrodite('Cl', 'conventional', seed=5)
    # the partner site of every occupied 48h site (2.0 A away) is empty: no two Li closer than 2.1 A
    _, _, d = _pairs(atoms, 'Li', 'Li', 2.1)
    assert len(d) == 0
    # the 4d S2- (not bonded to P) each have their cage of six Li (Li-S 2.48 A)
    symbols = np.array(atoms.get_chemical_symbols())
    i, j, _ = neighbor_list('ijd', atoms, 2.6)
    bonded = {int(b) for a, b in zip(i, j) if symbols[a] == 'P'}
    free = [k for k in np.flatnonzero(symbols == 'S') if k not in bonded]
    assert len(free) == 4
    for s in free:
        assert np.sum((i == s) & (symbols[j] == 'Li')) == 6


def test_primitive_cell_and_seeded_order():
    atoms = lithium_argyrodite('Br', seed=2)
    assert len(atoms) == 13 and Counter(atoms.get_chemical_symbols()) == {'Li': 6, 'P': 1, 'S': 5, 'Br': 1}
    assert atoms.get_volume() == pytest.approx(MEASURED_A['Br'] ** 3 / 4)
    again = lithium_argyrodite('Br', seed=2)
    np.testing.assert_array_equal(atoms.positions, again.positions)
    orders = {
        tuple(np.round(lithium_argyrodite('Cl', 'conventional', seed=s).positions[:24].ravel(), 6)) for s in range(4)
    }
    assert len(orders) == 4


def _on_4a(atoms):
    """Atoms on 4a of the conventional cell: (0,0,0) + fcc translations, i.e. 2*frac integers with an even sum."""
    doubled = 2 * atoms.get_scaled_positions()
    integral = np.all(np.isclose(doubled, np.round(doubled), atol=1e-6), axis=1)
    return integral & (np.round(doubled).sum(axis=1) % 2 == 0)


def test_site_disorder_moves_halides_to_4d():
    ordered = lithium_argyrodite('Cl', 'conventional', seed=3)
    disordered = lithium_argyrodite('Cl', 'conventional', seed=3, site_disorder=0.5)
    assert disordered.get_chemical_formula() == ordered.get_chemical_formula()
    on_4a = _on_4a(disordered)
    halides = disordered.symbols == 'Cl'
    assert np.sum(halides & on_4a) == 2 and np.sum(halides & ~on_4a) == 2
    assert np.sum((disordered.symbols == 'S') & on_4a) == 2
    full = lithium_argyrodite('Cl', 'conventional', seed=3, site_disorder=1.0)
    assert np.sum((full.symbols == 'Cl') & _on_4a(full)) == 0
    assert np.sum((full.symbols == 'S') & _on_4a(full)) == 4


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'halide': 'F'}, "halide = 'F' is not known"),
        ({'halide': 'cl'}, "halide = 'cl' is not known"),
        ({'cell': 'supercell'}, "cell = 'supercell' is not known"),
        ({'site_disorder': 1.5}, 'site_disorder = 1.5 is out of range'),
        ({'site_disorder': 0.5}, 'site_disorder = 0.5 cannot be represented'),
        ({'lattice_parameter': 20.0}, 'lattice_parameter = 20.0 is out of range'),
        ({'seed': 1.5}, 'seed must be a non-negative integer'),
        ({'supercell': (1, 2)}, 'supercell must be an integer or three integers'),
    ],
)
def test_bad_input_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lithium_argyrodite(**kwargs)
