"""Builders of reduced models of the seed systems: pure functions returning ASE ``Atoms``.

=====================================  =====================================================================
builder                                model
=====================================  =====================================================================
:func:`sodium_manganese_hexacyanoferrate`  Na_xMnFe(CN)6, cubic Fm-3m / rhombohedral R-3 / tetragonal I4/mmm
:func:`lithium_argyrodite`             Li6PS5X (X = Cl, Br, I), F-43m, Li on half the 48h sites, X/S2- disorder
:func:`hard_carbon`                    disordered carbon at a density by LAMMPS melt-quench, Na at a loading
:func:`lithium_argyrodite_interface`   Li(001) / Li6PS5Cl slab pair
:func:`silicon_graphene_interface`     Si(111) sqrt3 / graphene sqrt7
:func:`selenium_graphene_interface`    trigonal Se chains / graphene 2 x 1 orthorhombic
=====================================  =====================================================================

Every builder checks its own output (space group with spglib at a stated tolerance, composition, no
overlapping atoms) and refuses bad arguments with a ``ValueError`` naming the argument. Seeded choices use
``numpy.random.default_rng(seed)``: the same arguments give the same structure. Literature parameters and
references are in each module's docstring and in docs/structures.md. No AiiDA import: wrap a result with
``orm.StructureData(ase=atoms)`` to label it (every kind name is the element symbol).
"""

from .argyrodite import lithium_argyrodite
from .hard_carbon import hard_carbon, insert_sodium
from .interfaces import lithium_argyrodite_interface, selenium_graphene_interface, silicon_graphene_interface
from .prussian_blue import sodium_manganese_hexacyanoferrate

__all__ = [
    'hard_carbon',
    'insert_sodium',
    'lithium_argyrodite',
    'lithium_argyrodite_interface',
    'selenium_graphene_interface',
    'silicon_graphene_interface',
    'sodium_manganese_hexacyanoferrate',
]
