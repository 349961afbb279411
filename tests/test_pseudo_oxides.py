"""The oxide equations of state of the pseudopotential verification: the four cubic ACWF oxides as crystals, the
``verification.oxides`` setting and its bad input, and how an oxide's result reaches the verdict and the tables.

The structures are checked against what the prototypes are (space group, composition, the X-O distance of the cubic
cell), not against the builder's own formulas; the pw.x runs of the oxides are in docs/pseudopotentials.md.
"""

import numpy as np
import pytest
from aiida.engine import run_get_node
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from aiida_mscale.pseudo import eos
from tests.test_pseudo_cutoffs import TOLERANCES, _transferability

# configuration: (international space-group number, O atoms per X, cubic lattice constant a from the cell volume V,
# shortest X-O distance in units of a); Na2O (anti-fluorite), MgO-like rocksalt, CaF2-like fluorite, ReO3
PROTOTYPES = {
    'X2O': (225, 0.5, lambda v: (4 * v) ** (1 / 3), np.sqrt(3) / 4),
    'XO': (225, 1.0, lambda v: (4 * v) ** (1 / 3), 0.5),
    'XO2': (225, 2.0, lambda v: (4 * v) ** (1 / 3), np.sqrt(3) / 4),
    'XO3': (221, 3.0, lambda v: v ** (1 / 3), 0.5),
}


@pytest.mark.parametrize('configuration', eos.OXIDES)
@pytest.mark.parametrize('element', ['N', 'P', 'Na', 'Mn'])
def test_oxide_structures_are_the_acwf_prototypes(element, configuration):
    reference = eos.reference_fit(eos.load_reference(), element, configuration)
    atoms = eos.oxide_structure(element, configuration, reference['v0'])
    number, ratio, lattice_constant, distance = PROTOTYPES[configuration]
    assert len(atoms) == reference['num_atoms']
    assert atoms.get_volume() == pytest.approx(reference['v0'], rel=1e-10)
    symbols = atoms.get_chemical_symbols()
    assert symbols.count('O') == pytest.approx(ratio * symbols.count(element))
    structure = AseAtomsAdaptor.get_structure(atoms)
    assert SpacegroupAnalyzer(structure, symprec=1e-3).get_space_group_number() == number
    a = lattice_constant(reference['v0'])
    x_index = symbols.index(element)
    shortest = min(structure.get_distance(x_index, j) for j, s in enumerate(symbols) if s == 'O')
    assert shortest == pytest.approx(distance * a, rel=1e-10)


def test_na2o_is_the_known_anti_fluorite():
    """Na2O: a = 5.55 A measured (Zintl and Baumbach, 1934); PBE's all-electron V0 is about 2 % larger in volume."""
    reference = eos.reference_fit(eos.load_reference(), 'Na', 'X2O')
    a = (4 * reference['v0']) ** (1 / 3)
    assert a == pytest.approx(5.55, rel=0.015)


def test_unknown_oxide_and_bad_volume_are_refused():
    with pytest.raises(ValueError, match="unknown oxide configuration 'X2O3'"):
        eos.oxide_structure('P', 'X2O3', 100.0)
    with pytest.raises(ValueError, match='volume must be positive'):
        eos.oxide_structure('P', 'XO', -1.0)
    # the reference has the two oxides not built here too, and the unaries as before
    assert eos.reference_fit(eos.load_reference(), 'P', 'X2O5')['num_atoms'] == 14
    assert eos.reference_fit(eos.load_reference(), 'P', 'SC')['num_atoms'] == 1


def test_precise_runs_the_oxides_only_with_oxygen_in_the_family(ld1_code):
    from aiida_mscale.workflows.pseudo_family import PseudoFamilyWorkChain

    def oxides(elements, overrides=None):
        builder = PseudoFamilyWorkChain.get_builder_from_protocol(
            ld1_code, elements, 'PBE', 'test/oxides', protocol='precise', overrides=overrides
        )
        return builder.verification['oxides']

    assert oxides(['N', 'O']) == ['X2O', 'XO', 'XO2', 'XO3']
    assert oxides(['N']) == []  # the protocol's default needs O; an explicit request is validated instead
    assert oxides(['N'], {'verification': {'oxides': ['XO']}}) == ['XO']
    assert oxides(['N', 'O'], {'verification': {'oxides': []}}) == []


@pytest.mark.parametrize(
    ('elements', 'verification', 'message'),
    [
        (['N', 'O'], {'oxides': ['XO']}, 'needs the pw.x equation of state'),
        (['N', 'O'], {'pw': True, 'eos': False, 'oxides': ['XO']}, 'needs the pw.x equation of state'),
        (['N'], {'pw': True, 'oxides': ['XO']}, 'needs O among the elements'),
        (['N', 'O'], {'pw': True, 'oxides': ['XO', 'XO']}, 'repeats a configuration'),
        (['N', 'O'], {'pw': True, 'oxides': ['X2O5']}, 'verification.oxides'),
        (['N', 'O'], {'pw': True, 'oxides': ["XO'\n"]}, 'verification.oxides'),
    ],
)
def test_bad_oxide_settings_are_refused_before_anything_runs(ld1_code, elements, verification, message):
    from aiida_mscale.workflows.pseudo_family import PseudoFamilyWorkChain

    builder = PseudoFamilyWorkChain.get_builder_from_protocol(
        ld1_code,
        elements,
        'PBE',
        'test/oxides-bad',
        protocol='coarse',
        pw_code=ld1_code,  # never run: the validator refuses first
        overrides={'verification': verification},
    )
    with pytest.raises(ValueError) as info:
        run_get_node(builder)
    assert message in str(info.value)


def _fit(prototype, nu, v0_error):
    from aiida import orm

    return orm.Dict(
        {
            'prototype': prototype,
            'fit': {'v0': 25.0, 'e0': -100.0, 'b0': 1.0, 'b1': 4.0, 'residual': 1e-6},
            'b0_gpa': 160.2,
            'v0_relative_error': v0_error,
            'b0_relative_error': 0.01,
            'b1_relative_error': 0.02,
            'nu': nu,
            'delta': 0.5,
        }
    )


def test_an_oxide_failure_is_named_in_the_verdict_and_the_table(aiida_profile):
    """N passes on its simple cubic crystal and in XO, fails in XO2: the verdict and the oxide table say which."""
    from aiida import orm

    from aiida_mscale.pseudo.report import verification_table
    from aiida_mscale.workflows.pseudo_family import summarize_verification

    settings = {
        'functional': 'PBE',
        'level': 'precise',
        'tolerances': TOLERANCES,
        'dual': 8,
        'fallback_cutoff': 60.0,
        'missing': {},
    }
    nodes = {
        'N_transferability': _transferability('N', 40.0, 320.0),
        'O_transferability': _transferability('O', 50.0, 400.0),
        'N_eos': _fit('SC', 0.20, 0.002),
        'N_eos_XO': _fit('XO', 0.10, 0.001),
        'N_eos_XO2': _fit('XO2', 1.50, 0.015),
        'O_eos': _fit('SC', 0.15, 0.0015),
    }
    summary = summarize_verification(orm.Dict(settings), **nodes).get_dict()
    n, o = summary['elements']['N'], summary['elements']['O']
    assert sorted(n['oxides']) == ['XO', 'XO2']
    assert n['eos']['prototype'] == 'SC' and n['oxides']['XO2']['nu'] == 1.5
    assert n['failures'] == ['EOS XO2 nu = 1.50 > 0.33', 'V0 XO2 error 1.50 %'] and not n['passed']
    assert o['passed'] and 'oxides' not in o
    table = verification_table(summary)
    rows = [line for line in table.splitlines() if line.startswith('| N | XO')]
    assert rows[0].startswith('| N | XO | 25.000 | 160.2 | 0.10 | 1.00 | 2.00 | 0.100 | 0.50 | pass |')
    assert rows[1].endswith('| FAIL: EOS XO2 nu = 1.50 > 0.33; V0 XO2 error 1.50 % |')
    # without oxide runs there is no oxide table
    del nodes['N_eos_XO'], nodes['N_eos_XO2']
    assert 'Oxides' not in verification_table(summarize_verification(orm.Dict(settings), **nodes).get_dict())
