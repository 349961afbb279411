"""PseudoGenerationCalculation: real ld1.x generates and tests PAW datasets; pw.x reads the rewrapped files."""

from aiida import orm
from aiida.engine import run_get_node

from aiida_mscale.calculations.pseudo_generation import PseudoGenerationCalculation


def _builder(code, element, functional, parameters=None):
    builder = PseudoGenerationCalculation.get_builder()
    builder.code = code
    builder.element = orm.Str(element)
    builder.functional = orm.Str(functional)
    if parameters is not None:
        builder.parameters = orm.Dict(parameters)
    return builder


def test_generate_lithium(ld1_code):
    results, node = run_get_node(_builder(ld1_code, 'Li', 'PBEsol'))
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    pseudo = results['pseudo']
    assert pseudo.element == 'Li' and pseudo.z_valence == 3
    report = results['transferability'].get_dict()
    assert report['passed'], report['failures']


def test_family_pbesol(ld1_pseudo_family_pbesol):
    family = ld1_pseudo_family_pbesol
    assert set(family.elements) >= {
        'Li',
        'C',
        'N',
        'O',
        'Na',
        'Si',
        'P',
        'S',
        'Cl',
        'Mn',
        'Fe',
        'Co',
        'Ni',
        'Se',
        'Br',
        'I',
    }
    wfc, rho = family.get_recommended_cutoffs(elements=('Na', 'Cl'), unit='Ry')
    assert 40 <= wfc <= 100 and rho >= 4 * wfc
