"""The k-point meshes of the pw.x verification: the metallic fictitious simple cubic unaries get the dense spacing at
`moderate` (protocols/pseudo_family.yaml, `kpoints_distance_by_prototype`), the other crystals keep the protocol's.

The expected meshes are the ones pw.x ran in the verification nodes of docs/pseudopotentials.md (S 17x17x17 and
P 18x18x18 at 0.15 1/A; Li 9x9x9, Fe 11x11x11, O 11x11x11 at 0.3 1/A), not recomputed here by the same formula.
"""

import pytest

from aiida_mscale.setup.bootstrap import LD1_ELEMENTS
from aiida_mscale.workflows.pseudo_family import (
    PseudoFamilyWorkChain,
    VerificationSettings,
    kpoints_distance_of,
    prototype_of,
    verification_kpoints,
    verification_overrides,
)

SC_ELEMENTS = [element for element in LD1_ELEMENTS if prototype_of(element) == 'SC']


def _mesh(element, verification):
    return [int(k) for k in verification_kpoints(element, verification).get_kpoints_mesh()[0]]


def test_simple_cubic_unaries_are_the_molecular_and_chain_elements():
    assert SC_ELEMENTS == ['N', 'O', 'P', 'S', 'Cl', 'Se', 'Br', 'I']


def test_moderate_samples_the_simple_cubic_unaries_densely(aiida_profile):
    moderate = verification_overrides('moderate', None)
    for element in SC_ELEMENTS:
        assert kpoints_distance_of(element, moderate) == pytest.approx(0.15), element
    # the meshes of the measured runs diag/ld1/PBE-k0.15/S and /P (docs/pseudopotentials.md)
    assert _mesh('S', moderate) == [17, 17, 17]
    assert _mesh('P', moderate) == [18, 18, 18]
    # the other crystals keep the protocol's spacing
    for element in ('Li', 'Na', 'C', 'Si', 'Mn', 'Fe', 'Co', 'Ni'):
        assert kpoints_distance_of(element, moderate) == pytest.approx(0.25), element


def test_the_dense_simple_cubic_mesh_survives_a_coarser_override(aiida_profile):
    """The documented runs override `kpoints_distance` to 0.3: the SC cap still applies, the rest follow 0.3."""
    coarser = verification_overrides('moderate', {'kpoints_distance': 0.3})
    assert _mesh('S', coarser) == [17, 17, 17]
    assert _mesh('Li', coarser) == [9, 9, 9]
    assert _mesh('Fe', coarser) == [11, 11, 11]
    # dropping the cap (the settings of the earlier SC rows) gives their 0.3 1/A mesh back
    uncapped = verification_overrides(
        'moderate', {'kpoints_distance': 0.3, 'kpoints_distance_by_prototype': {'SC': 0.3}}
    )
    assert _mesh('O', uncapped) == [11, 11, 11]
    assert _mesh('S', uncapped) == [9, 9, 9]


def test_the_cap_never_coarsens():
    assert kpoints_distance_of('S', {'kpoints_distance': 0.1, 'kpoints_distance_by_prototype': {'SC': 0.15}}) == 0.1
    assert kpoints_distance_of('S', {'kpoints_distance': 0.3}) == 0.3


def test_coarse_runs_no_pw_and_precise_is_at_least_as_dense():
    coarse = PseudoFamilyWorkChain.get_protocol_inputs('coarse')['verification']
    assert coarse['pw'] is False  # setup stays ld1.x only: minutes for the whole family
    precise = verification_overrides('precise', None)
    for element in SC_ELEMENTS:
        assert kpoints_distance_of(element, precise) <= 0.15, element


def test_unknown_prototype_is_refused():
    from aiida_mscale.schema import validate_parameters

    settings = verification_overrides('moderate', {'kpoints_distance_by_prototype': {'HCP': 0.1}})
    with pytest.raises(ValueError, match='HCP'):
        validate_parameters(VerificationSettings, settings, 'verification')
    validate_parameters(VerificationSettings, verification_overrides('moderate', None), 'verification')
