"""Equations of state for verifying pseudopotentials against all-electron references. Pure (numpy, ase).

- :func:`birch_murnaghan_fit`: V0, E0, B0, B1 from E(V) points, by the cubic fit of E against V^(-2/3) that
  the third-order Birch-Murnaghan equation is (F. Birch, Phys. Rev. 71, 809 (1947)); the same fit as the ACWF
  verification study (E. Bosoni et al., Nat. Rev. Phys. 6, 45 (2024)).
- :func:`nu_metric` and :func:`delta_metric`: the study's comparison metrics. nu = 100 sqrt(sum_i w_i^2
  ((Y_i^a - Y_i^b) / ((Y_i^a + Y_i^b)/2))^2) with Y = (V0, B0, B1) and w = (1, 1/20, 1/400); Delta (meV/atom)
  = sqrt of the mean square difference of the two E(V) curves, aligned at their minima, over V0 +- 6 %
  (K. Lejaeghere et al., Science 351, aad3000 (2016)).
- :func:`unary_structure`: the ACWF unary crystals (FCC, BCC, SC one atom; Diamond two atoms, primitive
  cells) at a given volume per cell; :func:`oxide_structure`: the four cubic ACWF oxides with a known prototype
  (X2O anti-fluorite, XO rocksalt, XO2 fluorite, XO3 ReO3-type); :func:`crystal_structure` either;
  :func:`load_reference` reads ``acwf_ae_pbe.json``.

Units: Angstrom^3 per cell, eV per cell, eV/Angstrom^3 for B0 (x ``EV_PER_ANGSTROM3_IN_GPA`` = GPa).
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from aiida_mscale.constants import EV_PER_ANG3_IN_GPA as EV_PER_ANGSTROM3_IN_GPA  # noqa: F401 (used as eos.*)

NU_WEIGHTS = (1.0, 1.0 / 20.0, 1.0 / 400.0)
#: The ACWF all-electron reference data, shipped with the package (public data of the study, MIT licence).
REFERENCE_FILE = pathlib.Path(__file__).with_name('acwf_ae_pbe.json')


def birch_murnaghan_energy(volume, v0: float, e0: float, b0: float, b1: float):
    """Third-order Birch-Murnaghan energy at ``volume`` (same units as the parameters)."""
    eta = (v0 / np.asarray(volume, dtype=float)) ** (2.0 / 3.0)
    return e0 + 9.0 * v0 * b0 / 16.0 * ((eta - 1.0) ** 3 * b1 + (eta - 1.0) ** 2 * (6.0 - 4.0 * eta))


def birch_murnaghan_fit(volumes, energies) -> dict:
    """Fit E(V) with the third-order Birch-Murnaghan form.

    :returns: ``{'v0', 'e0', 'b0', 'b1', 'residual'}`` (volume and energy units of the input; b0 in
        energy/volume; residual = rms misfit of the points).
    :raises ValueError: with fewer than 5 points, non-finite values, or no minimum inside the fitted range.
    """
    volumes = np.asarray(volumes, dtype=float)
    energies = np.asarray(energies, dtype=float)
    if volumes.size < 5 or volumes.shape != energies.shape:
        raise ValueError(f'a Birch-Murnaghan fit needs at least 5 (volume, energy) points, got {volumes.size}')
    if not (np.all(np.isfinite(volumes)) and np.all(np.isfinite(energies))):
        raise ValueError('non-finite volume or energy')
    x = volumes ** (-2.0 / 3.0)
    d, c, b, a = np.polyfit(x, energies, 3)  # E = a + b x + c x^2 + d x^3
    roots = np.roots([3 * d, 2 * c, b])
    roots = [r.real for r in roots if abs(r.imag) < 1e-12 and r.real > 0 and (6 * d * r.real + 2 * c) > 0]
    if not roots:
        raise ValueError('the energies have no minimum (the E(V) points do not bracket V0)')
    x0 = min(roots, key=lambda r: abs(r - x.mean()))
    v0 = x0 ** (-1.5)
    if not (volumes.min() * 0.9 <= v0 <= volumes.max() * 1.1):
        raise ValueError(
            f'the fitted V0 = {v0:.4g} is outside the sampled volumes [{volumes.min():.4g}, {volumes.max():.4g}]'
        )
    e0 = a + b * x0 + c * x0**2 + d * x0**3
    # B = V d2E/dV2 and B' = dB/dP at V0, with x = V^(-2/3): dx/dV = -2/3 x/V
    d2e_dx2 = 2 * c + 6 * d * x0
    b0 = 4.0 / 9.0 * x0**2 / v0 * d2e_dx2  # dE/dx = 0 at x0
    b1 = _numerical_b1(lambda v: np.polyval([d, c, b, a], v ** (-2.0 / 3.0)), v0)
    fitted = np.polyval([d, c, b, a], x)
    residual = float(np.sqrt(np.mean((fitted - energies) ** 2)))
    return {'v0': float(v0), 'e0': float(e0), 'b0': float(b0), 'b1': float(b1), 'residual': residual}


def _numerical_b1(energy, v0: float) -> float:
    """B1 = dB/dP at V0 from B(V) = V E''(V) by central differences (the fit is a smooth polynomial)."""
    h = 1e-3 * v0

    def bulk(v):
        step = 1e-4 * v
        return v * (energy(v + step) - 2 * energy(v) + energy(v - step)) / step**2

    def pressure(v):
        step = 1e-4 * v
        return -(energy(v + step) - energy(v - step)) / (2 * step)

    return float((bulk(v0 + h) - bulk(v0 - h)) / (pressure(v0 + h) - pressure(v0 - h)))


def nu_metric(a: dict, b: dict) -> float:
    """ACWF nu between two fits ``{'v0', 'b0', 'b1'}`` (volumes per atom or per cell, as long as both agree)."""
    total = 0.0
    for weight, key in zip(NU_WEIGHTS, ('v0', 'b0', 'b1')):
        total += (weight * (a[key] - b[key]) / ((a[key] + b[key]) / 2.0)) ** 2
    return 100.0 * float(np.sqrt(total))


def delta_metric(a: dict, b: dict, num_atoms: int) -> float:
    """Delta (meV/atom) between two fits (``v0`` per cell, ``b0`` in eV/Angstrom^3) over +-6 % around their mean V0."""
    v_mid = (a['v0'] + b['v0']) / 2.0
    volumes = np.linspace(0.94 * v_mid, 1.06 * v_mid, 2001)
    ea = birch_murnaghan_energy(volumes, a['v0'], 0.0, a['b0'], a['b1'])
    eb = birch_murnaghan_energy(volumes, b['v0'], 0.0, b['b0'], b['b1'])
    difference = (ea - eb) / num_atoms
    mean_square = np.trapezoid(difference**2, volumes) / (volumes[-1] - volumes[0])
    return 1000.0 * float(np.sqrt(mean_square))


def relative_errors(fit: dict, reference: dict) -> dict:
    """(fit - reference) / reference of V0, B0 and B1 (reference in the ACWF file's keys or the fit's)."""
    ref = {
        'v0': reference.get('v0', reference.get('min_volume')),
        'b0': reference.get('b0', reference.get('bulk_modulus_ev_ang3')),
        'b1': reference.get('b1', reference.get('bulk_deriv')),
    }
    return {f'{key}_relative_error': (fit[key] - ref[key]) / ref[key] for key in ('v0', 'b0', 'b1')}


def load_reference(path: pathlib.Path | str = REFERENCE_FILE) -> dict:
    """The ACWF all-electron reference (``{'unaries': {'Li-X/BCC': {...}}, 'oxides': {...}}``)."""
    return json.loads(pathlib.Path(path).read_text())


def reference_fit(reference: dict, element: str, crystal: str) -> dict:
    """``{'v0', 'b0', 'b1', 'num_atoms'}`` of ``element`` in ``crystal``: a unary prototype (BCC, FCC, SC, Diamond)
    or an oxide configuration (X2O, XO, XO2, XO3; X2O3 and X2O5 are in the file too)."""
    if crystal.startswith('X'):  # the oxide configurations X2O, XO, ...; the unary prototypes never start with X
        entry = reference['oxides'][f'{element}-{crystal}']
    else:
        entry = reference['unaries'][f'{element}-X/{crystal}']
    return {
        'v0': entry['min_volume'],
        'b0': entry['bulk_modulus_ev_ang3'],
        'b1': entry['bulk_deriv'],
        'num_atoms': entry['num_atoms'],
    }


PROTOTYPES = ('BCC', 'FCC', 'SC', 'Diamond')
#: The ACWF oxides built here: the cubic ones whose prototype is a textbook structure. The study's X2O3 and X2O5
#: cells (10 and 14 atoms) are its own constructions, not rebuilt here.
OXIDES = ('X2O', 'XO', 'XO2', 'XO3')


def unary_structure(element: str, prototype: str, volume: float):
    """ASE Atoms of the ACWF unary ``prototype`` of ``element`` with cell volume ``volume`` (Angstrom^3).

    Primitive cells: FCC, BCC and SC hold one atom, Diamond two (conventional cube a^3 = 4 V).
    """
    from ase.build import bulk

    if prototype not in PROTOTYPES:
        raise ValueError(f'unknown prototype {prototype!r}; known: {PROTOTYPES}')
    if not volume > 0:
        raise ValueError(f'volume must be positive, not {volume!r}')
    if prototype == 'FCC':
        return bulk(element, 'fcc', a=(4.0 * volume) ** (1 / 3))
    if prototype == 'BCC':
        return bulk(element, 'bcc', a=(2.0 * volume) ** (1 / 3))
    if prototype == 'SC':
        return bulk(element, 'sc', a=volume ** (1 / 3))
    return bulk(element, 'diamond', a=(4.0 * volume) ** (1 / 3))


def oxide_structure(element: str, configuration: str, volume: float):
    """ASE Atoms of the ACWF oxide ``configuration`` of ``element`` with cell volume ``volume`` (Angstrom^3).

    The cubic prototypes of the ACWF oxide set (E. Bosoni et al., Nat. Rev. Phys. 6, 45 (2024), Fig. 1), in the
    cells of the study's ``num_atoms``: XO rocksalt (Fm-3m, 2 atoms), XO2 fluorite and X2O anti-fluorite (Fm-3m,
    3 atoms), all three in the primitive FCC cell, a^3 = 4 V; XO3 the ReO3 type (Pm-3m, 4 atoms), a^3 = V.
    """
    import numpy as np
    from ase import Atoms

    if configuration not in OXIDES:
        raise ValueError(f'unknown oxide configuration {configuration!r}; known: {OXIDES}')
    if not volume > 0:
        raise ValueError(f'volume must be positive, not {volume!r}')
    if configuration == 'XO3':
        a = volume ** (1 / 3)
        positions = [(0, 0, 0), (a / 2, 0, 0), (0, a / 2, 0), (0, 0, a / 2)]
        return Atoms([element, 'O', 'O', 'O'], positions=positions, cell=np.eye(3) * a, pbc=True)
    a = (4.0 * volume) ** (1 / 3)
    cell = a / 2 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=float)
    quarter, three_quarters = np.full(3, a / 4), np.full(3, 3 * a / 4)
    if configuration == 'XO':
        return Atoms([element, 'O'], positions=[(0, 0, 0), (a / 2, 0, 0)], cell=cell, pbc=True)
    if configuration == 'XO2':
        return Atoms([element, 'O', 'O'], positions=[(0, 0, 0), quarter, three_quarters], cell=cell, pbc=True)
    return Atoms(['O', element, element], positions=[(0, 0, 0), quarter, three_quarters], cell=cell, pbc=True)


def crystal_structure(element: str, crystal: str, volume: float):
    """:func:`unary_structure` for a prototype (BCC, FCC, SC, Diamond), :func:`oxide_structure` for an oxide."""
    if crystal in OXIDES:
        return oxide_structure(element, crystal, volume)
    return unary_structure(element, crystal, volume)
