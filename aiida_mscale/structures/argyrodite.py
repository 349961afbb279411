"""Li6PS5X argyrodites (X = Cl, Br, I), cubic F-43m (No. 216), with an ordered Li sublattice.

Structure (Deiseroth et al., Angew. Chem. Int. Ed. 47, 755 (2008); Kraft et al., J. Am. Chem. Soc. 139, 10909
(2017)), in the setting used here (4 formula units per conventional cell):

=========  =========  =====================================================================
site       Wyckoff    occupant
=========  =========  =====================================================================
X          4a         halide at (0, 0, 0)  (X/S2- exchange with 4d: ``site_disorder``)
P          4b         (1/2, 1/2, 1/2), centre of the PS4 tetrahedron
S (free)   4d         S2- at (3/4, 3/4, 3/4), the centre of a Li cage
S (PS4)    16e        (x, x, x), x = 1/2 - d_PS / (sqrt 3 a), P-S = 2.05 A
Li         48h        (x, x, z) half occupied: 24 Li on 48 sites per conventional cell
=========  =========  =====================================================================

Lattice parameters (Deiseroth et al. 2008): a = 9.85 A (Cl), 9.98 A (Br), 10.14 A (I).

The 48 Li sites form 24 "doublets" (pairs of face-sharing tetrahedra, 2.0 A apart), six around each 4d
anion (a cage of 12 sites). The real structure has one Li per doublet on average (occupancy 1/2); this
builder puts exactly one Li on each doublet, the member drawn with ``numpy.random.default_rng(seed)``: six Li
per cage, 6 Li per formula unit, the same structure for the same seed. The 48h site is placed at the centre
of its tetrahedron of anions (the 4d S, the 4a X and two PS4 S at equal distance, 2.48 A for X = Cl), found
numerically for the given lattice; the refined 48h position is close to it (x ~ 0.18, z ~ -0.02 in this
setting). ``site_disorder`` is the fraction of X on 4d (and as many S2- on 4a), from 0 (ordered, as in
Li6PS5I) to 1; Li6PS5Cl and Li6PS5Br are measured partly disordered.

With ``cell='primitive'`` the cell is the fcc primitive one (1 formula unit, 13 atoms); ``'conventional'``
the cubic cell (4 f.u., 52 atoms); ``supercell`` repeats either.

Pure Python (numpy, scipy, ase, spglib): no AiiDA import.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import make_supercell

from ._checks import (
    SYMPREC,
    as_repeat,
    as_seed,
    check_composition,
    check_no_overlap,
    check_space_group,
    real_in_range,
    space_group,
)

__all__ = ['LATTICE_PARAMETERS', 'P_S_BOND', 'lithium_argyrodite']

#: Cubic lattice parameters [Angstrom] of Li6PS5X (Deiseroth et al. 2008).
LATTICE_PARAMETERS = {'Cl': 9.85, 'Br': 9.98, 'I': 10.14}
#: P-S bond length of the PS4 tetrahedron [Angstrom].
P_S_BOND = 2.05

# The F-43m orbits in fractional coordinates: fcc translations x (x, y, z) orbit representatives.
_FCC = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])


def _orbit_16e(x):
    return np.array([[x, x, x], [-x, -x, x], [-x, x, -x], [x, -x, -x]])


def _orbit_48h(x, z):
    return np.array(
        [
            [x, x, z], [-x, -x, z], [-x, x, -z], [x, -x, -z],
            [z, x, x], [z, -x, -x], [-z, -x, x], [-z, x, -x],
            [x, z, x], [-x, z, -x], [x, -z, -x], [-x, -z, x],
        ]
    )  # fmt: skip


def _with_translations(points):
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    return np.mod((points[None, :, :] + _FCC[:, None, :]).reshape(-1, 3), 1.0)


def _framework(a: float, halide: str):
    """Conventional-cell (symbols, fractional positions) of the anion/P framework, and the 16e parameter."""
    x_s = 0.5 - P_S_BOND / (np.sqrt(3.0) * a)
    groups = [
        (halide, _with_translations([0, 0, 0])),
        ('P', _with_translations([0.5, 0.5, 0.5])),
        ('S', _with_translations([0.75, 0.75, 0.75])),
        ('S', _with_translations(_orbit_16e(x_s))),
    ]
    symbols = [s for s, pts in groups for _ in pts]
    return symbols, np.vstack([pts for _, pts in groups]), x_s


def _tetrahedron_centre(a: float, frac_anions) -> tuple[float, float]:
    """(x, z) of the 48h site that maximises its shortest distance to the anions (the tetrahedron centre)."""
    from scipy.optimize import minimize

    def negative_min_distance(v):
        delta = np.array([v[0], v[0], v[1]]) - frac_anions
        delta -= np.round(delta)
        return -np.min(np.linalg.norm(delta * a, axis=1))

    result = minimize(
        negative_min_distance, [0.18, 0.98], method='Nelder-Mead', options={'xatol': 1e-8, 'fatol': 1e-10}
    )
    return float(result.x[0]), float(result.x[1])


def lithium_argyrodite(
    halide: str = 'Cl',
    cell: str = 'primitive',
    supercell=1,
    seed: int = 0,
    site_disorder=0.0,
    lattice_parameter=None,
    symprec: float = SYMPREC,
) -> Atoms:
    """Li6PS5X with one Li per 48h doublet (chosen by ``seed``) and optional X/S2- exchange between 4a and 4d.

    :param halide: ``'Cl'``, ``'Br'`` or ``'I'``.
    :param cell: ``'primitive'`` (1 formula unit) or ``'conventional'`` (4 formula units).
    :param supercell: repetition of that cell (an int n or three ints, each 1..10).
    :param seed: seed of the Li ordering and of the choice of exchanged anions (non-negative int).
    :param site_disorder: fraction of the halides on 4d (0..1); times the number of formula units it must be
        an integer (e.g. 0.25 steps in the conventional cell).
    :param lattice_parameter: cubic a [Angstrom], default :data:`LATTICE_PARAMETERS` of the halide.
    :param symprec: tolerance of the space-group checks [Angstrom].
    :returns: ASE ``Atoms`` (Li first, then P, S, X) with ``info`` keys ``halide``, ``formula_units``,
        ``lattice_parameter``, ``li_48h`` (x, z), ``site_disorder``, ``space_group`` and
        ``framework_space_group``.
    :raises ValueError: for an unknown halide or cell, a site disorder outside [0, 1] or not representable,
        a lattice parameter outside 8-13 A, a bad seed or supercell.
    """
    if halide not in LATTICE_PARAMETERS:
        raise ValueError(f'halide = {halide!r} is not known: choose one of {sorted(LATTICE_PARAMETERS)}')
    if cell not in ('primitive', 'conventional'):
        raise ValueError(f"cell = {cell!r} is not known: choose 'primitive' or 'conventional'")
    repeat = as_repeat(supercell)
    seed = as_seed(seed)
    disorder = real_in_range(site_disorder, 'site_disorder', 0.0, 1.0)
    if lattice_parameter is None:
        a = LATTICE_PARAMETERS[halide]
    else:
        a = real_in_range(lattice_parameter, 'lattice_parameter', 8.0, 13.0)
    symprec = real_in_range(symprec, 'symprec', 0.0, 0.5, low_open=True)

    symbols, frac, x_s = _framework(a, halide)
    anions = frac[np.array(symbols) != 'P']
    x_li, z_li = _tetrahedron_centre(a, anions)
    li_frac = _with_translations(_orbit_48h(x_li, z_li))
    conventional = np.eye(3) * a
    everything = Atoms(
        symbols + ['Li'] * len(li_frac), scaled_positions=np.vstack([frac, li_frac]), cell=conventional, pbc=True
    )
    if cell == 'primitive':
        primitive = 0.5 * a * (np.ones((3, 3)) - np.eye(3))
        scaled = np.linalg.solve(primitive.T, everything.positions.T).T
        scaled = np.mod(np.round(scaled, 10), 1.0)
        _, unique = np.unique(np.round(scaled, 6) % 1.0, axis=0, return_index=True)
        unique = np.sort(unique)
        everything = Atoms(
            [everything.get_chemical_symbols()[i] for i in unique],
            scaled_positions=scaled[unique],
            cell=primitive,
            pbc=True,
        )
        units = 1
    else:
        units = 4
    everything = make_supercell(everything, np.diag(repeat))
    units *= int(np.prod(repeat))

    what = f'Li6PS5{halide} ({cell})'
    check_space_group(everything, 216, f'{what} with every 48h site filled', symprec)
    is_li = np.array(everything.get_chemical_symbols()) == 'Li'
    framework = everything[~is_li]
    check_space_group(framework, 216, f'{what} framework', symprec)

    # one Li per doublet: pair each 48h site with its mutual nearest 48h neighbour
    sites = everything[is_li]
    distances = sites.get_all_distances(mic=True)
    np.fill_diagonal(distances, np.inf)
    partner = distances.argmin(axis=1)
    if not np.all(partner[partner] == np.arange(len(sites))):
        raise RuntimeError(f'{what}: the 48h sites do not form doublets')
    doublets = [(i, int(partner[i])) for i in range(len(sites)) if i < partner[i]]
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, 2, size=len(doublets))
    chosen = sorted(pair[k] for pair, k in zip(doublets, pick))
    lithium = sites[chosen]

    # X/S2- exchange between 4a and 4d
    fw_symbols = np.array(framework.get_chemical_symbols())
    swaps = disorder * units
    if abs(swaps - round(swaps)) > 1e-8:
        raise ValueError(
            f'site_disorder = {disorder} cannot be represented in a cell of {units} formula unit(s): it must be a '
            f'multiple of 1/{units}; use cell="conventional" or a larger supercell'
        )
    swaps = int(round(swaps))
    if swaps:
        from ase.neighborlist import neighbor_list

        i, j = neighbor_list('ij', framework, 2.5)
        bonded_to_p = np.zeros(len(framework), dtype=bool)
        bonded_to_p[i[fw_symbols[j] == 'P']] = True
        free_sulfur = np.flatnonzero((fw_symbols == 'S') & ~bonded_to_p)  # S2- on 4d
        halides = np.flatnonzero(fw_symbols == halide)
        if len(free_sulfur) != units or len(halides) != units:
            raise RuntimeError(f'{what}: found {len(free_sulfur)} 4d S and {len(halides)} 4a {halide} for {units} f.u.')
        to_4d = rng.choice(halides, size=swaps, replace=False)
        to_4a = rng.choice(free_sulfur, size=swaps, replace=False)
        fw_symbols[to_4d] = 'S'
        fw_symbols[to_4a] = halide
        framework.set_chemical_symbols(fw_symbols.tolist())

    atoms = lithium + framework
    order = np.argsort([('Li', 'P', 'S', halide).index(s) for s in atoms.get_chemical_symbols()], kind='stable')
    atoms = atoms[order]
    check_composition(atoms, {'Li': 6 * units, 'P': units, 'S': 5 * units, halide: units}, what)
    check_no_overlap(atoms, 1.8, what)  # P-S 2.05 A; Li-Li across doublets 2.2 A
    number, symbol = space_group(atoms, symprec)
    atoms.info.update(
        {
            'builder': 'lithium_argyrodite',
            'halide': halide,
            'cell_choice': cell,
            'seed': seed,
            'formula_units': units,
            'lattice_parameter': a,
            'li_48h': (x_li, z_li),
            's_16e': x_s,
            'site_disorder': disorder,
            'space_group': f'{symbol} ({number})',
            'framework_space_group': 216,
        }
    )
    return atoms
