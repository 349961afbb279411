"""Elastic constants by stress-strain, Voigt-Reuss-Hill moduli and Born stability.

Pure functions (numpy, ase, pymatgen); no AiiDA import.

Conventions. Voigt order 1..6 = xx, yy, zz, yz, xz, xy (ASE's :mod:`ase.stress`). A strain state of component
``j`` and magnitude ``s`` is the symmetric strain tensor with Voigt (engineering) component ``e_j = s`` and the
others zero (from ``ase.stress.voigt_6_to_full_3x3_strain``, which returns ``1 + eps``: shear components enter
the tensor as ``s/2``); the
deformed cell is ``cell (I + eps)`` (rows are lattice vectors). Stresses are Cauchy stresses, tensile positive
[GPa]. ``C_ij = d sigma_i / d e_j`` is the slope of a least-squares line through the stresses of the strains
(e.g. -1, -0.5, +0.5, +1 %), which removes the residual stress of the reference cell and, for symmetric
strains, the second-order term; the tensor is then symmetrised and the asymmetry reported.

Moduli: Voigt, Reuss and Hill averages of the bulk and shear moduli (pymatgen's
:class:`~pymatgen.analysis.elasticity.elastic.ElasticTensor`), Young's modulus ``E = 9 K G / (3 K + G)`` and
Poisson's ratio ``nu = (3 K - 2 G) / (2 (3 K + G))`` from the Hill averages (Hill, Proc. Phys. Soc. A 65, 349
(1952)). Born stability: the 6x6 stiffness matrix is positive definite (all eigenvalues > 0), the necessary and
sufficient condition for any crystal system (Mouhat and Coudert, Phys. Rev. B 90, 224104 (2014)).
"""

from __future__ import annotations

import numpy as np

__all__ = ['MAX_STRAIN', 'check_strains', 'elastic_moduli', 'elastic_tensor', 'strained_cell']

#: Largest strain magnitude accepted: beyond it the response is no longer linear.
MAX_STRAIN = 0.05
VOIGT_LABELS = ('xx', 'yy', 'zz', 'yz', 'xz', 'xy')


def check_strains(strains, components=(1, 2, 3, 4, 5, 6)) -> tuple[list[float], list[int]]:
    """The strain magnitudes and Voigt components (1..6), checked.

    :raises ValueError: for an empty list, a zero, a non-finite value, a magnitude above :data:`MAX_STRAIN`,
        fewer than two distinct strains, or a component outside 1..6.
    """
    strains = [float(s) for s in strains]
    if len(set(strains)) < 2:
        raise ValueError(f'need at least two distinct strains for a slope, got {strains}')
    for s in strains:
        if not np.isfinite(s) or s == 0:
            raise ValueError(f'strains must be finite and non-zero, got {s}')
        if abs(s) > MAX_STRAIN:
            raise ValueError(
                f'strain {s} exceeds {MAX_STRAIN} in magnitude: elastic constants need small (linear) strains'
            )
    components = [int(c) for c in components]
    if not components or any(c not in range(1, 7) for c in components) or len(set(components)) != len(components):
        raise ValueError(f'Voigt components must be distinct integers in 1..6, got {components}')
    return strains, sorted(components)


def strain_tensor(component: int, magnitude: float) -> np.ndarray:
    """The 3x3 strain tensor of Voigt ``component`` (1..6) at engineering strain ``magnitude``."""
    from ase.stress import voigt_6_to_full_3x3_strain

    voigt = np.zeros(6)
    voigt[component - 1] = magnitude
    return voigt_6_to_full_3x3_strain(voigt) - np.eye(3)  # ASE returns the deformation 1 + eps


def strained_cell(cell, component: int, magnitude: float) -> np.ndarray:
    """``cell`` (rows are lattice vectors) deformed by the strain of Voigt ``component`` and ``magnitude``."""
    return np.asarray(cell, dtype=float) @ (np.eye(3) + strain_tensor(component, magnitude))


def elastic_tensor(stresses: dict) -> dict:
    """C_ij [GPa] from the stresses of strained cells.

    :param stresses: ``{(component, strain): 3x3 Cauchy stress [GPa]}`` for each Voigt component measured; a
        cubic crystal may give only components 1 and 4 (``fill_cubic`` is then applied).
    :return: ``{'C': 6x6 list (symmetrised), 'C_raw': 6x6 (unsymmetrised; rows of unmeasured columns are NaN),
        'asymmetry': max |C_ij - C_ji| [GPa], 'fit_residual': largest rms residual of a line [GPa]}``.
    """
    from ase.stress import full_3x3_to_voigt_6_stress

    components = sorted({c for c, _ in stresses})
    raw = np.full((6, 6), np.nan)
    residual = 0.0
    for j in components:
        points = sorted(
            (s, full_3x3_to_voigt_6_stress(np.asarray(stress, dtype=float)))
            for (c, s), stress in stresses.items()
            if c == j
        )
        if len({s for s, _ in points}) < 2:
            raise ValueError(f'component {j} has fewer than two distinct strains')
        x = np.array([s for s, _ in points])
        y = np.array([v for _, v in points])
        design = np.column_stack([x, np.ones_like(x)])
        coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
        raw[:, j - 1] = coefficients[0]
        fitted = design @ coefficients
        residual = max(residual, float(np.sqrt(np.mean((y - fitted) ** 2))))
    if set(components) == {1, 4}:
        raw = fill_cubic(raw)
    elif set(components) != set(range(1, 7)):
        raise ValueError(f'need all six Voigt components (or 1 and 4 for a cubic crystal), got {components}')
    symmetric = 0.5 * (raw + raw.T)
    return {
        'C': symmetric.tolist(),
        'C_raw': raw.tolist(),
        'asymmetry': float(np.max(np.abs(raw - raw.T))),
        'fit_residual': residual,
    }


def fill_cubic(raw: np.ndarray) -> np.ndarray:
    """The full 6x6 of a cubic crystal from columns 1 (C11, C21 = C12) and 4 (C44) of ``raw``."""
    c11, c12, c44 = raw[0, 0], 0.5 * (raw[1, 0] + raw[2, 0]), raw[3, 3]
    full = np.zeros((6, 6))
    full[:3, :3] = c12
    np.fill_diagonal(full[:3, :3], c11)
    full[3, 3] = full[4, 4] = full[5, 5] = c44
    return full


def elastic_moduli(c_voigt) -> dict:
    """Voigt/Reuss/Hill bulk and shear moduli, Young's modulus, Poisson's ratio [GPa] and Born stability.

    :param c_voigt: 6x6 stiffness [GPa] (Voigt notation).
    """
    from pymatgen.analysis.elasticity.elastic import ElasticTensor

    c = np.asarray(c_voigt, dtype=float)
    if c.shape != (6, 6) or not np.all(np.isfinite(c)):
        raise ValueError(f'C must be a finite 6x6 matrix, got shape {c.shape}')
    eigenvalues = np.linalg.eigvalsh(0.5 * (c + c.T))
    stable = bool(np.all(eigenvalues > 0))
    result = {'born_stable': stable, 'eigenvalues': eigenvalues.tolist()}
    tensor = ElasticTensor.from_voigt(c)
    k_v, g_v = float(tensor.k_voigt), float(tensor.g_voigt)
    if stable:
        k_r, g_r = float(tensor.k_reuss), float(tensor.g_reuss)
        k_h, g_h = 0.5 * (k_v + k_r), 0.5 * (g_v + g_r)
        youngs, poisson = 9 * k_h * g_h / (3 * k_h + g_h), (3 * k_h - 2 * g_h) / (2 * (3 * k_h + g_h))
    else:  # the compliance of an unstable C is not physical: Reuss, Hill, E and nu undefined (None)
        k_r = g_r = k_h = g_h = youngs = poisson = None
    result.update(
        {
            'bulk_modulus_voigt': k_v,
            'bulk_modulus_reuss': k_r,
            'bulk_modulus_vrh': k_h,
            'shear_modulus_voigt': g_v,
            'shear_modulus_reuss': g_r,
            'shear_modulus_vrh': g_h,
            'youngs_modulus': youngs,
            'poisson_ratio': poisson,
            'units': 'GPa',
        }
    )
    return result
