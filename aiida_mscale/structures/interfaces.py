"""Interface models: Li(001)/Li6PS5Cl, Si(111)/graphene and Se/graphene, in the smallest commensurate cells.

Each interface is a slab of one material on a slab of the other in one periodic cell. The in-plane cell is
the one of the stiffer partner; the other is strained to it (the strain is reported in
``atoms.info['strain']``, as length ratio minus one per in-plane direction), keeping its own spacing along
the normal (no Poisson relaxation: the MLIP/DFT stages relax the cell). ``gap`` is the distance along the
normal between the outermost atomic planes of the two partners (a starting value, to be relaxed);
``vacuum`` is added on top, so the slab pair has two free surfaces; ``vacuum=0`` makes the cell periodic
along the normal with the same gap on the other side (a superlattice with two equal interfaces).

``lithium_argyrodite_interface``
    bcc Li (a = 3.51 A at room temperature) (001) in the sqrt8 x sqrt8 R45 cell (2 sqrt2 a_Li = 9.928 A)
    on the cubic cell of Li6PS5Cl (a = 9.85 A, Deiseroth et al., Angew. Chem. Int. Ed. 47, 755 (2008)):
    mismatch 0.8 %, Li strained by -0.79 % (Li is the soft partner: B = 12 GPa). Eight Li per (001) layer,
    layers a_Li / 2 = 1.755 A apart. The electrolyte slab is whole conventional cells of
    :func:`~aiida_mscale.structures.argyrodite.lithium_argyrodite` (seeded Li order) with every PS4 unit
    kept whole. The interface of Ding et al. (Li/Li6PS5Cl SEI, reactive MLIP MD) in its smallest form.
``silicon_graphene_interface``
    Si(111) (a = 5.431 A, surface cell 3.840 A) in the sqrt3 x sqrt3 R30 cell (6.652 A), ``bilayers``
    bilayers, on graphene (a = 2.46 A) in the sqrt7 x sqrt7 R19.1 cell (6.509 A): mismatch 2.2 %, Si strained
    by -2.1 % (graphene, in-plane modulus ~1 TPa, keeps its lattice). 14 C + 6 Si per bilayer.
``selenium_graphene_interface``
    trigonal Se (P3_121, a = 4.3662 A, c = 4.9536 A, Se on 3a (x, 0, 1/3) with x = 0.2254: Cherin and Unger,
    Acta Cryst. 23, 670 (1967)) with its helical chains lying on graphene: the (10-10) face, in-plane
    cell c x a = 4.954 x 4.366 A, on the 2 x 1 orthorhombic graphene cell 2 a_g x sqrt3 a_g = 4.920 x 4.261 A:
    Se strained by -0.7 % along the chains and -2.4 % across. One chain (3 Se) per ``chain_layers``;
    8 C + 3 Se per layer.

The Si/graphene and Se/graphene pairs are the electrode/carbon interfaces of the multiscale-active-materials
perspective (work of separation, interfacial mechanics).

Pure Python (numpy, ase, spglib): no AiiDA import.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import make_supercell

from ._checks import (
    SYMPREC,
    as_positive_int,
    as_seed,
    check_composition,
    check_no_overlap,
    check_space_group,
    real_in_range,
)

__all__ = [
    'GRAPHENE_A',
    'LITHIUM_A',
    'SELENIUM',
    'SILICON_A',
    'graphene_sheet',
    'lithium_argyrodite_interface',
    'selenium_graphene_interface',
    'silicon_graphene_interface',
]

#: Lattice parameters [Angstrom]: graphene/graphite in-plane, bcc Li (room temperature), diamond Si.
GRAPHENE_A = 2.46
LITHIUM_A = 3.51
SILICON_A = 5.431
#: Trigonal Se (Cherin and Unger 1967): a, c [Angstrom] and the 3a parameter x.
SELENIUM = {'a': 4.3662, 'c': 4.9536, 'x': 0.2254}


def _hexagonal(a: float, height: float) -> np.ndarray:
    """In-plane vectors at 120 degrees, and a normal of ``height``."""
    return np.array([[a, 0.0, 0.0], [-0.5 * a, 0.5 * np.sqrt(3.0) * a, 0.0], [0.0, 0.0, height]])


def graphene_sheet(matrix=((1, 0), (0, 1)), a: float = GRAPHENE_A, height: float = 20.0) -> Atoms:
    """Graphene in the supercell ``matrix`` (rows: integer combinations of the 120-degree hexagonal vectors), at z=0."""
    cell = _hexagonal(a, height)
    sheet = Atoms('C2', scaled_positions=[[1 / 3, 2 / 3, 0.0], [2 / 3, 1 / 3, 0.0]], cell=cell, pbc=True)
    m = np.array(matrix)
    return make_supercell(sheet, np.array([[m[0, 0], m[0, 1], 0], [m[1, 0], m[1, 1], 0], [0, 0, 1]]))


def _silicon_111(bilayers: int, a: float = SILICON_A) -> Atoms:
    """Si(111) slab of ``bilayers`` bilayers in the 1 x 1 hexagonal cell (120 degrees), lowest atom at z=0."""
    a_s = a / np.sqrt(2.0)
    c = a * np.sqrt(3.0)  # three bilayers
    lower = [(0.0, 0.0), (2 / 3, 1 / 3), (1 / 3, 2 / 3)]
    upper = [(2 / 3, 1 / 3), (1 / 3, 2 / 3), (0.0, 0.0)]
    scaled, heights = [], []
    for k in range(bilayers):
        z = k * c / 3
        scaled += [(*lower[k % 3], 0.0), (*upper[k % 3], 0.0)]
        heights += [z, z + c / 12]
    cell = _hexagonal(a_s, 1.0)
    positions = np.array(scaled) @ cell
    positions[:, 2] = heights
    return Atoms(['Si'] * len(heights), positions=positions, cell=_hexagonal(a_s, max(heights) + 10.0), pbc=True)


def _stack(lower: Atoms, upper: Atoms, gap: float, vacuum: float) -> Atoms:
    """``upper`` on ``lower`` (same in-plane cell, both with z from their own lowest atom), gap and vacuum along z."""
    lower = lower.copy()
    upper = upper.copy()
    lower.positions[:, 2] -= lower.positions[:, 2].min()
    upper.positions[:, 2] += lower.positions[:, 2].max() + gap - upper.positions[:, 2].min()
    top = upper.positions[:, 2].max()
    height = top + (vacuum if vacuum > 0 else gap)
    cell = lower.cell.array.copy()
    cell[2] = [0.0, 0.0, height]
    lower.set_cell(cell, scale_atoms=False)
    upper.set_cell(cell, scale_atoms=False)
    atoms = lower + upper
    atoms.pbc = True
    return atoms


def _onto(slab: Atoms, in_plane: np.ndarray) -> Atoms:
    """``slab`` (z along the normal) strained onto the in-plane vectors ``in_plane`` (2 x 3, z = 0)."""
    cell = slab.cell.array
    frac = np.linalg.solve(cell[:2, :2].T, slab.positions[:, :2].T).T
    positions = np.column_stack([frac @ in_plane[:, :2], slab.positions[:, 2]])
    new_cell = np.vstack([in_plane, [0.0, 0.0, cell[2, 2]]])
    return Atoms(slab.get_chemical_symbols(), positions=positions, cell=new_cell, pbc=True)


def _check_common(atoms, expected: dict, what: str, min_distance: float) -> None:
    check_composition(atoms, expected, what)
    check_no_overlap(atoms, min_distance, what)


def silicon_graphene_interface(bilayers: int = 2, gap=3.3, vacuum=12.0, symprec: float = SYMPREC) -> Atoms:
    """Si(111) sqrt3 x sqrt3 R30 (``bilayers`` bilayers) on graphene sqrt7 x sqrt7 R19.1; Si strained -2.1 %.

    :param bilayers: Si(111) bilayers (1-6), 6 Si each.
    :param gap: graphene plane to lowest Si plane [Angstrom], 1.5-6.
    :param vacuum: vacuum above the Si [Angstrom], 0 (periodic superlattice) or 5-40.
    :returns: ASE ``Atoms`` (C first) with ``info['strain']`` (of Si, per in-plane direction) and ``info['gap']``.
    """
    bilayers = as_positive_int(bilayers, 'bilayers', 1, 6)
    gap, vacuum = _gap_vacuum(gap, vacuum)
    silicon = make_supercell(_silicon_111(bilayers), np.array([[2, 1, 0], [-1, 1, 0], [0, 0, 1]]))
    carbon = graphene_sheet(((3, 1), (-1, 2)))
    check_space_group(carbon, 191, 'graphene sqrt7 x sqrt7 sheet', symprec)
    strain = _strain(silicon.cell.array[:2], carbon.cell.array[:2])
    atoms = _stack(carbon, _onto(silicon, carbon.cell.array[:2]), gap, vacuum)
    _check_common(atoms, {'C': 14, 'Si': 6 * bilayers}, 'Si/graphene', 1.3)
    atoms.info.update({'builder': 'silicon_graphene_interface', 'strain': strain, 'gap': gap, 'vacuum': vacuum})
    return atoms


def _selenium_chains(layers: int) -> Atoms:
    """Trigonal Se (10-10) slab: in-plane (c, a2), ``layers`` chains stacked along a1, z along the normal."""
    a, c, x = SELENIUM['a'], SELENIUM['c'], SELENIUM['x']
    hexagonal = _hexagonal(a, c)
    bulk = Atoms('Se3', scaled_positions=[[x, 0.0, 1 / 3], [0.0, x, 2 / 3], [-x, -x, 0.0]], cell=hexagonal, pbc=True)
    v1, v2, v3 = hexagonal[2], hexagonal[1], hexagonal[0]  # c, a2 in plane; a1 stacks the chains
    normal = np.cross(v1, v2)
    normal /= np.linalg.norm(normal)
    positions = np.vstack([bulk.positions + k * v3 for k in range(layers)])
    heights = positions @ normal
    in_plane = positions - np.outer(heights, normal)
    frac = np.linalg.lstsq(np.vstack([v1, v2]).T, in_plane.T, rcond=None)[0].T
    frac = np.mod(frac, 1.0)
    e1 = v1 / np.linalg.norm(v1)
    e2 = np.cross(normal, e1)
    rotated_cell = np.array([[v1 @ e1, v1 @ e2, 0.0], [v2 @ e1, v2 @ e2, 0.0]])
    new_positions = np.column_stack([frac @ rotated_cell[:, :2], heights - heights.min()])
    cell = np.vstack([rotated_cell, [0.0, 0.0, heights.max() - heights.min() + 10.0]])
    return Atoms(['Se'] * len(positions), positions=new_positions, cell=cell, pbc=True)


def selenium_graphene_interface(chain_layers: int = 1, gap=3.3, vacuum=12.0, symprec: float = SYMPREC) -> Atoms:
    """Trigonal Se chains ((10-10) face) on 2 x 1 orthorhombic graphene; Se strained -0.7 % / -2.4 %.

    :param chain_layers: layers of Se chains (1-6), one chain (3 Se) per layer.
    :param gap: graphene plane to lowest Se [Angstrom], 1.5-6.
    :param vacuum: vacuum above the Se [Angstrom], 0 (periodic superlattice) or 5-40.
    :returns: ASE ``Atoms`` (C first) with ``info['strain']`` (of Se: along the chains, across) and ``info['gap']``.
    """
    layers = as_positive_int(chain_layers, 'chain_layers', 1, 6)
    gap, vacuum = _gap_vacuum(gap, vacuum)
    selenium = _selenium_chains(layers)
    # the Se chain crystal itself: P3_121 (152) or its enantiomorph P3_221 (154)
    a, c, x = SELENIUM['a'], SELENIUM['c'], SELENIUM['x']
    bulk = Atoms('Se3', scaled_positions=[[x, 0, 1 / 3], [0, x, 2 / 3], [-x, -x, 0]], cell=_hexagonal(a, c), pbc=True)
    check_space_group(bulk, 152, 'trigonal Se', symprec)
    orthorhombic = graphene_sheet(((1, 0), (1, 2)))  # a_g x sqrt3 a_g, 4 C
    carbon = make_supercell(orthorhombic, np.diag([2, 1, 1]))
    carbon.positions[:, :] = carbon.positions @ _rotation_z_to_x(carbon.cell.array[0]).T
    carbon.set_cell(carbon.cell.array @ _rotation_z_to_x(carbon.cell.array[0]).T, scale_atoms=False)
    strain = _strain(selenium.cell.array[:2], carbon.cell.array[:2])
    atoms = _stack(carbon, _onto(selenium, carbon.cell.array[:2]), gap, vacuum)
    _check_common(atoms, {'C': 8, 'Se': 3 * layers}, 'Se/graphene', 1.3)
    atoms.info.update({'builder': 'selenium_graphene_interface', 'strain': strain, 'gap': gap, 'vacuum': vacuum})
    return atoms


def _rotation_z_to_x(vector) -> np.ndarray:
    """Rotation about z taking the in-plane ``vector`` onto +x."""
    angle = np.arctan2(vector[1], vector[0])
    c, s = np.cos(-angle), np.sin(-angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _strain(own: np.ndarray, target: np.ndarray) -> list[float]:
    """Length ratio minus one of the two in-plane vectors (target / own - 1)."""
    return [float(np.linalg.norm(t) / np.linalg.norm(o) - 1.0) for o, t in zip(own, target)]


def _gap_vacuum(gap, vacuum) -> tuple[float, float]:
    gap = real_in_range(gap, 'gap [Angstrom]', 1.5, 6.0)
    vacuum = real_in_range(vacuum, 'vacuum [Angstrom]', 0.0, 40.0)
    if 0.0 < vacuum < 5.0:
        raise ValueError(f'vacuum = {vacuum} A is too thin to separate the slab from its image: use 0 or >= 5')
    return gap, vacuum


def _whole_units(atoms: Atoms) -> Atoms:
    """Conventional argyrodite cell with every PS4 unit made whole along z (S moved to its P's image)."""
    from ase.neighborlist import neighbor_list

    atoms = atoms.copy()
    symbols = np.array(atoms.get_chemical_symbols())
    i, j, offsets = neighbor_list('ijS', atoms, 2.3)
    for p, s, shift in zip(i, j, offsets):
        if symbols[p] == 'P' and symbols[s] == 'S':
            # bring S next to its P: undo the wrap along z only (x, y stay periodic)
            atoms.positions[s, 2] += shift[2] * atoms.cell.array[2, 2]
    return atoms


def _lithium_001(layers: int, side: float, a: float = LITHIUM_A) -> Atoms:
    """bcc Li (001) slab in the sqrt8 x sqrt8 R45 cell (edge 2 sqrt2 a along x and y), strained to ``side``.

    Layer k is at height k a / 2; its atoms form the square lattice of spacing a rotated by 45 degrees,
    shifted by half a diagonal on odd layers (the bcc body centres).
    """
    edge = 2.0 * np.sqrt(2.0) * a
    step = a / np.sqrt(2.0)
    positions = []
    for k in range(layers):
        shift = 0.5 * (k % 2)
        layer = {
            (round(((i + j + 2 * shift) * step) % edge, 6), round(((j - i) * step) % edge, 6))
            for i in range(-4, 5)
            for j in range(-4, 5)
        }
        positions += [(x * side / edge, y * side / edge, 0.5 * k * a) for x, y in sorted(layer)]
    cell = np.diag([side, side, 0.5 * (layers - 1) * a + 10.0])
    return Atoms(['Li'] * len(positions), positions=positions, cell=cell, pbc=True)


def lithium_argyrodite_interface(
    lithium_layers: int = 4,
    electrolyte_cells: int = 1,
    gap=2.5,
    vacuum=10.0,
    seed: int = 0,
    halide: str = 'Cl',
) -> Atoms:
    """Li(001) slab (sqrt8 x sqrt8 R45, strained -0.79 %) under a Li6PS5X slab of whole conventional cells.

    :param lithium_layers: (001) layers of Li (2-12), 8 Li each.
    :param electrolyte_cells: conventional Li6PS5X cells stacked along the normal (1-3), 52 atoms each.
    :param gap: top Li plane to the lowest electrolyte atom [Angstrom], 1.5-6.
    :param vacuum: vacuum above the electrolyte [Angstrom], 0 (periodic superlattice) or 5-40.
    :param seed: seed of the argyrodite's Li order.
    :param halide: ``'Cl'`` (the SEI study's electrolyte), ``'Br'`` or ``'I'`` (larger mismatch).
    :returns: ASE ``Atoms`` (metal Li first, then the electrolyte) with ``info`` keys ``strain`` (of the Li
        metal), ``gap``, ``vacuum``, ``n_metal`` (number of metal Li atoms).
    """
    from .argyrodite import lithium_argyrodite

    layers = as_positive_int(lithium_layers, 'lithium_layers', 2, 12)
    cells = as_positive_int(electrolyte_cells, 'electrolyte_cells', 1, 3)
    gap, vacuum = _gap_vacuum(gap, vacuum)
    seed = as_seed(seed)
    electrolyte = lithium_argyrodite(halide, 'conventional', supercell=(1, 1, cells), seed=seed)
    a_e = electrolyte.info['lattice_parameter']
    electrolyte = _whole_units(electrolyte)

    bulk_check = _lithium_001(2, 2.0 * np.sqrt(2.0) * LITHIUM_A)
    bulk_check.set_cell(np.diag([*bulk_check.cell.lengths()[:2], LITHIUM_A]), scale_atoms=False)
    check_space_group(bulk_check, 229, 'unstrained Li (001) layers as bulk bcc')
    metal = _lithium_001(layers, a_e)
    strain = float(a_e / (2 * np.sqrt(2.0) * LITHIUM_A) - 1.0)
    what = f'Li/Li6PS5{halide}'
    check_no_overlap(metal, 2.9, f'{what} metal slab')  # bcc nearest neighbour 3.04 A
    atoms = _stack(metal, electrolyte, gap, vacuum)
    n = electrolyte.info['formula_units']
    _check_common(atoms, {'Li': 8 * layers + 6 * n, 'P': n, 'S': 5 * n, halide: n}, what, 1.8)
    atoms.info.update(
        {
            'builder': 'lithium_argyrodite_interface',
            'strain': [strain, strain],
            'gap': gap,
            'vacuum': vacuum,
            'n_metal': 8 * layers,
            'halide': halide,
            'seed': seed,
        }
    )
    return atoms
