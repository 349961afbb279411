"""Interface builders: commensurate cells, strains from the literature lattice constants, bonds, gaps, bad input."""

import math

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from aiida_mscale.structures import (
    lithium_argyrodite_interface,
    selenium_graphene_interface,
    silicon_graphene_interface,
)

A_GRAPHENE, A_SI, A_LI, A_LPSCL = 2.46, 5.431, 3.51, 9.85
SE_A, SE_C = 4.3662, 4.9536  # Cherin and Unger, Acta Cryst. 23, 670 (1967)


def _distances(atoms, a, b, cutoff):
    symbols = np.array(atoms.get_chemical_symbols())
    i, j, d = neighbor_list('ijd', atoms, cutoff)
    mask = (symbols[i] == a) & (symbols[j] == b)
    return i[mask], d[mask]


def test_silicon_on_graphene():
    atoms = silicon_graphene_interface(bilayers=2, gap=3.3, vacuum=12.0)
    assert list(atoms.symbols).count('C') == 14 and list(atoms.symbols).count('Si') == 12
    lengths = atoms.cell.cellpar()
    assert lengths[0] == pytest.approx(math.sqrt(7) * A_GRAPHENE) and lengths[5] == pytest.approx(120.0)
    expected = math.sqrt(7) * A_GRAPHENE / (math.sqrt(3) * A_SI / math.sqrt(2)) - 1
    np.testing.assert_allclose(atoms.info['strain'], [expected, expected])
    assert expected == pytest.approx(-0.0215, abs=5e-4)
    i, d = _distances(atoms, 'C', 'C', 1.6)
    np.testing.assert_allclose(d, A_GRAPHENE / math.sqrt(3))
    assert np.all(np.bincount(i)[:14] == 3)
    _, d = _distances(atoms, 'Si', 'Si', 2.6)
    assert np.all(np.abs(d - A_SI * math.sqrt(3) / 4) < 0.06)  # 2.352 A, strained by 2 %
    z = atoms.positions[:, 2]
    assert z[atoms.symbols == 'Si'].min() - z[atoms.symbols == 'C'].max() == pytest.approx(3.3)
    assert atoms.cell[2, 2] - z.max() == pytest.approx(12.0)


def test_selenium_chains_on_graphene():
    atoms = selenium_graphene_interface(chain_layers=2, gap=3.4, vacuum=0.0)
    assert list(atoms.symbols).count('Se') == 6 and list(atoms.symbols).count('C') == 8
    np.testing.assert_allclose(atoms.cell.cellpar()[:2], [2 * A_GRAPHENE, math.sqrt(3) * A_GRAPHENE])
    np.testing.assert_allclose(atoms.info['strain'], [2 * A_GRAPHENE / SE_C - 1, math.sqrt(3) * A_GRAPHENE / SE_A - 1])
    i, d = _distances(atoms, 'Se', 'Se', 2.6)
    assert np.all(np.bincount(i, minlength=len(atoms))[atoms.symbols == 'Se'] == 2)  # helical chains
    assert np.all(np.abs(d - 2.373) < 0.04)  # Se-Se 2.373 A in trigonal Se, strained by < 2.5 %
    z = atoms.positions[:, 2]
    assert z[atoms.symbols == 'Se'].min() - z[atoms.symbols == 'C'].max() == pytest.approx(3.4)
    assert atoms.cell[2, 2] - z.max() == pytest.approx(3.4)  # vacuum=0: periodic, same gap on the other side


def test_lithium_on_argyrodite():
    atoms = lithium_argyrodite_interface(lithium_layers=4, gap=2.5, vacuum=10.0, seed=4)
    metal = atoms[: atoms.info['n_metal']]
    assert len(metal) == 32 and set(metal.symbols) == {'Li'}
    np.testing.assert_allclose(atoms.cell.cellpar()[:2], [A_LPSCL, A_LPSCL])
    assert atoms.info['strain'][0] == pytest.approx(A_LPSCL / (2 * math.sqrt(2) * A_LI) - 1)
    assert atoms.info['strain'][0] == pytest.approx(-0.0079, abs=1e-4)
    np.testing.assert_allclose(np.unique(np.round(metal.positions[:, 2], 6)), np.arange(4) * A_LI / 2, atol=1e-9)
    _, d = _distances(metal, 'Li', 'Li', 3.2)
    assert d.min() == pytest.approx(math.sqrt(3) / 2 * A_LI * math.sqrt(1 - 0.0079 * 0.66), abs=0.02)
    counts = {s: list(atoms.symbols).count(s) for s in set(atoms.symbols)}
    assert counts == {'Li': 32 + 24, 'P': 4, 'S': 20, 'Cl': 4}
    i, d = _distances(atoms, 'P', 'S', 2.3)
    np.testing.assert_allclose(d, 2.05)
    assert np.all(np.bincount(i, minlength=len(atoms))[atoms.symbols == 'P'] == 4)  # PS4 units kept whole
    z = atoms.positions[:, 2]
    assert z[32:].min() - z[:32].max() == pytest.approx(2.5)


@pytest.mark.parametrize(
    ('builder', 'kwargs', 'message'),
    [
        (silicon_graphene_interface, {'gap': 0.5}, r'gap \[Angstrom\] = 0.5 is out of range'),
        (silicon_graphene_interface, {'vacuum': 3.0}, 'vacuum = 3.0 A is too thin'),
        (silicon_graphene_interface, {'bilayers': 0}, 'bilayers = 0 is out of range'),
        (selenium_graphene_interface, {'chain_layers': 1.5}, 'chain_layers must be an integer'),
        (lithium_argyrodite_interface, {'lithium_layers': 1}, 'lithium_layers = 1 is out of range'),
        (lithium_argyrodite_interface, {'halide': 'At'}, "halide = 'At' is not known"),
        (lithium_argyrodite_interface, {'vacuum': float('nan')}, 'must be a finite number'),
    ],
)
def test_bad_input_is_refused(builder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        builder(**kwargs)
