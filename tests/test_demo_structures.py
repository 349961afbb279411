"""The demo's Li_xCoO2 cells have LiCoO2's bond lengths (Akimoto et al., J. Solid State Chem. 141, 298 (1998))."""

import importlib.util
import pathlib

import numpy as np
from ase.neighborlist import neighbor_list

DEMO = pathlib.Path(__file__).resolve().parents[1] / 'examples' / 'demo.py'


def _demo():
    spec = importlib.util.spec_from_file_location('demo', DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_licoo2_octahedra():
    atoms = _demo().lithium_cobalt_oxide(1.0, rattle=0.0)
    i, j, d = neighbor_list('ijd', atoms, 2.5)
    symbols = np.array(atoms.get_chemical_symbols())
    for centre, expected in (('Co', 1.92), ('Li', 2.09)):
        bonds = d[(symbols[i] == centre) & (symbols[j] == 'O')]
        assert len(bonds) == 6 * (symbols == centre).sum()  # octahedral
        np.testing.assert_allclose(bonds, expected, atol=0.01)


def test_lithium_content():
    demo = _demo()
    for fraction, lithium, cobalt in ((1.0, 1, 1), (0.5, 1, 2), (0.0, 0, 1)):
        atoms = demo.lithium_cobalt_oxide(fraction)
        assert atoms.get_chemical_symbols().count('Li') == lithium
        assert atoms.get_chemical_symbols().count('Co') == cobalt
