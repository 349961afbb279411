"""Na_xMnFe(CN)6 (sodium manganese hexacyanoferrate, MnHCF), the Prussian-blue analogue cathode, at 0 <= x <= 2.

The framework is the Prussian-blue one: Fe (C-bonded, low-spin) and Mn (N-bonded) alternate on a rock-salt
lattice, linked by linear Fe-C#N-Mn bridges; Na sits on the A sites, the centres of the eight small cubes of
the conventional cell (8c of Fm-3m, two per formula unit). Three phases are built (the three of
Yang et al., arXiv 2024, "Upscaling from ab initio atomistic simulations to electrode scale: the case of
manganese hexacyanoferrate": cubic at intermediate x, rhombohedral Na-rich, tetragonal Na-poor):

``cubic`` (Fm-3m, No. 225)
    Fe 4a (0,0,0), Mn 4b (1/2,1/2,1/2), C and N on 24e (x,0,0), Na on 8c (1/4,1/4,1/4).
    Default a = 2 (d_FeC + d_CN + d_MnN) = 10.54 A with the bond lengths below, d_MnN = 2.20 A as measured
    in the cubic Mn-N#C-M framework (Mn-N 2.20(1) A: Stucki, Guedel, Ludi, Inorg. Chim. Acta 7, 121 (1973)).
    It lies between the measured cubic Mn PBAs: 10.3859(13) A for Mn(II)[Fe(III)(CN)6]2/3.5H2O at 90 K
    (Acta Cryst. E 64, i11 (2008)) and 10.761(4) A for Mn3[Cr(CN)6]2.xH2O (Stucki et al. 1973).
``rhombohedral`` (R-3, No. 148), the dehydrated Na-rich phase
    The a-a-a- tilt of the framework (Glazer notation of the double perovskite it resembles): every
    Fe(CN)6 octahedron rotated by the same angle about the 3-fold axis, Mn and Fe on -3 sites, the
    Mn-N#C bridge bent. Default hexagonal-setting cell a = 6.5528 A, c = 18.7501 A, the one of dehydrated
    Na2-dMnFe(CN)6 (Song, Wang, Lu, ..., Goodenough, J. Am. Chem. Soc. 137, 2658 (2015)); the tilt angle is
    solved so that Mn-N = 2.20 A. The isostructural Na2Mn[Mn(CN)6] has a = 6.6166 A, c = 19.2585 A and a
    Mn-N-C angle of 142.4 deg (Kareis et al., J. Am. Chem. Soc. 134, 2246 (2012)); this model's angle is
    reported in ``atoms.info['mn_n_c_angle']`` (136.6 deg with the defaults, tilt 22.0 deg).
``tetragonal`` (I4/mmm, No. 139 for the framework), the Na-poor, Jahn-Teller distorted Mn(III) phase
    The cubic framework elongated along c (MnN6 octahedra with four short and two long Mn-N bonds).
    Default a = 7.10 A, c = 10.52 A (body-centred cell, a = a_cubic / sqrt 2), the Jahn-Teller distorted
    Mn(III)-N#C-Fe framework of the low-temperature phase of RbMn[Fe(CN)6] (Moritomo et al.,
    J. Phys. Soc. Jpn. 71, 2078 (2002); there I-4m2 because of the Rb order): Mn-N 1.95 A (x4), 2.19 A (x2).

In every phase Fe-C = 1.92 A and C-N = 1.15 A (the low-spin ferrocyanide bond lengths) and FeC6 is a regular
octahedron; Mn-N follows from the cell. Na is placed on the A-site centres; for 0 < x < 2 the occupied A sites
are drawn with ``numpy.random.default_rng(seed)`` (a seeded ordering: same seed, same structure). With
``cell='primitive'`` there is one formula unit (two A sites, x in {0, 1, 2}); ``'conventional'`` gives the
smallest conventional cell (cubic: 4 f.u., rhombohedral in the hexagonal setting: 3 f.u., tetragonal I cell:
2 f.u.); ``supercell`` repeats either. x must be a multiple of 1 / (formula units).

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

__all__ = ['DEFAULT_LATTICES', 'PHASES', 'sodium_manganese_hexacyanoferrate']

#: Bond lengths fixed in every phase [Angstrom]: low-spin ferrocyanide Fe-C and C#N.
FE_C = 1.92
C_N = 1.15
#: Mn(II)-N [Angstrom] (Stucki et al. 1973), used for the cubic default and the rhombohedral tilt.
MN_N = 2.20

#: Space group numbers of the framework (Na removed, or all A sites full) per phase.
PHASES = {'cubic': 225, 'rhombohedral': 148, 'tetragonal': 139}

#: Default lattice parameters [Angstrom] per phase (see the module docstring for the references).
DEFAULT_LATTICES = {
    'cubic': {'a': 2 * (FE_C + C_N + MN_N)},
    'rhombohedral': {'a': 6.5528, 'c': 18.7501},  # hexagonal setting
    'tetragonal': {'a': 7.10, 'c': 10.52},  # body-centred cell
}

#: Smallest conventional cell as integer combinations of the primitive vectors (rows), and its f.u. count.
_CONVENTIONAL = {
    'cubic': ([[-1, 1, 1], [1, -1, 1], [1, 1, -1]], 4),
    'rhombohedral': ([[1, -1, 0], [0, 1, -1], [1, 1, 1]], 3),
    'tetragonal': ([[-1, 1, 0], [0, 0, 1], [1, 1, -1]], 2),
}


def _rotation(axis, angle):
    """Rotation matrix (column-vector convention) by ``angle`` [rad] about the unit vector ``axis``."""
    u = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    k = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _primitive_cell(phase: str, lattice: dict) -> np.ndarray:
    """Primitive cell (rows) with the 3-fold/4-fold axes along Cartesian (1,1,1) / z, Fe at the origin."""
    if phase == 'cubic':
        a = lattice['a']
        return 0.5 * a * (np.ones((3, 3)) - np.eye(3))
    if phase == 'tetragonal':
        ap, c = np.sqrt(2.0) * lattice['a'], lattice['c']  # pseudo-cubic a, and c
        return 0.5 * np.array([[0.0, ap, c], [ap, 0.0, c], [ap, ap, 0.0]])
    # rhombohedral: a_i = q (1,1,1) + p e_i, symmetric about the 3-fold axis (1,1,1)
    ah, ch = lattice['a'], lattice['c']
    ar = np.sqrt(ah**2 / 3 + ch**2 / 9)
    alpha = 2 * np.arcsin(ah / (2 * ar))
    p = -ar * np.sqrt(1 - np.cos(alpha))
    q = (-2 * p + np.sqrt(4 * p * p + 12 * ar * ar * np.cos(alpha))) / 6
    return q * np.ones((3, 3)) + p * np.eye(3)


def _nearest_image_distance(cell, a, b) -> float:
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)]) @ cell
    return float(np.min(np.linalg.norm(b + shifts - a, axis=1)))


def _tilt_angle(cell, mn_n: float) -> float:
    """Rotation angle [rad] of the Fe(CN)6 octahedra about (1,1,1) that gives Mn-N = ``mn_n`` (a-a-a- tilt)."""
    from scipy.optimize import brentq

    mn = cell.sum(axis=0) / 2

    def mismatch(angle):
        nitrogen = _rotation((1, 1, 1), angle) @ np.array([FE_C + C_N, 0.0, 0.0])
        return _nearest_image_distance(cell, nitrogen, mn) - mn_n

    if mismatch(0.0) > 0:
        raise ValueError(f'rhombohedral cell too large for Mn-N = {mn_n} A even without tilt: use a smaller lattice')
    if mismatch(np.radians(40.0)) < 0:
        raise ValueError(f'rhombohedral cell too small for Mn-N = {mn_n} A (tilt above 40 deg): use a larger lattice')
    return float(brentq(mismatch, 0.0, np.radians(40.0), xtol=1e-12))


def _framework_primitive(phase: str, lattice: dict) -> tuple[Atoms, dict]:
    """MnFe(CN)6 in the primitive cell (one formula unit) and the two A-site positions."""
    cell = _primitive_cell(phase, lattice)
    info = {}
    rotation = np.eye(3)
    if phase == 'rhombohedral':
        angle = _tilt_angle(cell, MN_N)
        rotation = _rotation((1, 1, 1), angle)
        info['tilt_angle'] = float(np.degrees(angle))
    axes = np.vstack([np.eye(3), -np.eye(3)]) @ rotation.T
    symbols = ['Fe', 'Mn'] + ['C'] * 6 + ['N'] * 6
    positions = np.vstack([np.zeros(3), cell.sum(axis=0) / 2, FE_C * axes, (FE_C + C_N) * axes])
    framework = Atoms(symbols, positions=positions, cell=cell, pbc=True)
    framework.wrap()
    a_sites = np.array([[0.25, 0.25, 0.25], [0.75, 0.75, 0.75]]) @ cell
    return framework, {'a_sites': a_sites, **info}


def _bond_angle(atoms, i, j, k) -> float:
    return float(atoms.get_angle(i, j, k, mic=True))


def sodium_manganese_hexacyanoferrate(
    x,
    phase: str = 'cubic',
    cell: str = 'primitive',
    supercell=1,
    seed: int = 0,
    lattice: dict | None = None,
    symprec: float = SYMPREC,
) -> Atoms:
    """Na_xMnFe(CN)6 in the given phase, with Na on ``round(x * formula units)`` A sites chosen by ``seed``.

    :param x: Na per formula unit, 0 <= x <= 2; x times the number of formula units must be an integer.
    :param phase: ``cubic`` (Fm-3m), ``rhombohedral`` (R-3, Na-rich) or ``tetragonal`` (I4/mmm framework,
        Na-poor, Jahn-Teller distorted).
    :param cell: ``primitive`` (1 formula unit) or ``conventional`` (cubic 4, rhombohedral 3, tetragonal 2 f.u.).
    :param supercell: repetition of that cell (an int n or three ints, each 1..10).
    :param seed: seed of the A-site ordering (non-negative int).
    :param lattice: override of :data:`DEFAULT_LATTICES` for the phase [Angstrom]: ``{'a': ...}`` (cubic) or
        ``{'a': ..., 'c': ...}`` (rhombohedral: hexagonal setting; tetragonal: body-centred cell).
    :param symprec: tolerance of the space-group checks [Angstrom].
    :returns: ASE ``Atoms`` with ``info`` keys ``x``, ``phase``, ``formula_units``, ``space_group``
        (of the whole cell), ``framework_space_group``, ``na_sites`` (indices of the occupied A sites among
        all A sites of the cell) and, for the rhombohedral phase, ``tilt_angle`` and ``mn_n_c_angle`` [deg].
    :raises ValueError: for an unknown phase or cell, x out of [0, 2] or not representable in the cell,
        bad lattice parameters, a bad seed or supercell.
    """
    if phase not in PHASES:
        raise ValueError(f'phase = {phase!r} is not known: choose one of {sorted(PHASES)}')
    if cell not in ('primitive', 'conventional'):
        raise ValueError(f"cell = {cell!r} is not known: choose 'primitive' or 'conventional'")
    x = real_in_range(x, 'x (Na per formula unit)', 0.0, 2.0)
    repeat = as_repeat(supercell)
    seed = as_seed(seed)
    symprec = real_in_range(symprec, 'symprec', 0.0, 0.5, low_open=True)
    params = dict(DEFAULT_LATTICES[phase])
    if lattice is not None:
        if not isinstance(lattice, dict) or set(lattice) - set(params):
            raise ValueError(f'lattice for phase {phase!r} takes the keys {sorted(params)}, got {lattice!r}')
        for key, value in lattice.items():
            params[key] = real_in_range(value, f'lattice[{key!r}]', 3.0, 40.0)

    framework, extra = _framework_primitive(phase, params)
    a_sites = Atoms(['Na', 'Na'], positions=extra['a_sites'], cell=framework.cell, pbc=True)
    matrix = np.diag(repeat)
    units = 1
    if cell == 'conventional':
        rows, units = _CONVENTIONAL[phase]
        matrix = np.diag(repeat) @ np.array(rows)
    units *= int(np.prod(repeat))
    framework = make_supercell(framework, matrix)
    a_sites = make_supercell(a_sites, matrix)

    sodium = x * units
    if abs(sodium - round(sodium)) > 1e-8:
        raise ValueError(
            f'x = {x} cannot be represented in a cell of {units} formula unit(s) ({sodium:g} Na): x must be a '
            f'multiple of 1/{units}; use cell="conventional" or a larger supercell'
        )
    sodium = int(round(sodium))
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(a_sites), size=sodium, replace=False)) if sodium else np.array([], dtype=int)
    atoms = framework + a_sites[chosen.tolist()]
    order = np.argsort([('Na', 'Mn', 'Fe', 'C', 'N').index(s) for s in atoms.get_chemical_symbols()], kind='stable')
    atoms = atoms[order]

    what = f'Na{x:g}MnFe(CN)6 ({phase}, {cell})'
    expected = PHASES[phase]
    check_space_group(framework, expected, f'{what} framework', symprec)
    if sodium in (0, len(a_sites)):
        check_space_group(atoms, expected, what, symprec)
    check_composition(atoms, {'Na': sodium, 'Mn': units, 'Fe': units, 'C': 6 * units, 'N': 6 * units}, what)
    check_no_overlap(atoms, 1.05, what)  # C#N (1.15 A) is the shortest bond
    symbols = np.array(atoms.get_chemical_symbols())
    if sodium:
        from ase.neighborlist import neighbor_list

        i, _, d = neighbor_list('ijd', atoms, 2.2)
        if np.any(symbols[i] == 'Na'):
            raise RuntimeError(f'{what}: Na closer than 2.2 A to another atom ({d[symbols[i] == "Na"].min():.3f} A)')

    number, symbol = space_group(atoms, symprec)
    atoms.info.update(
        {
            'builder': 'sodium_manganese_hexacyanoferrate',
            'x': x,
            'phase': phase,
            'cell_choice': cell,
            'seed': seed,
            'formula_units': units,
            'space_group': f'{symbol} ({number})',
            'framework_space_group': expected,
            'na_sites': chosen.tolist(),
            'lattice': params,
        }
    )
    if phase == 'rhombohedral':
        mn = int(np.flatnonzero(symbols == 'Mn')[0])
        from ase.neighborlist import neighbor_list

        i, j = neighbor_list('ij', atoms, 2.5)
        nitrogen = int(j[(i == mn) & (symbols[j] == 'N')][0])
        ic, jc = neighbor_list('ij', atoms, 1.3)
        carbon = int(jc[(ic == nitrogen) & (symbols[jc] == 'C')][0])
        atoms.info['tilt_angle'] = extra['tilt_angle']
        atoms.info['mn_n_c_angle'] = _bond_angle(atoms, mn, nitrogen, carbon)
    return atoms
