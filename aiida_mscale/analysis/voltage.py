"""Formation energies along a guest fraction x, the convex hull and the voltage profile of an insertion host.

Pure functions (numpy, pymatgen); no AiiDA import.

Conventions. A *configuration* is a cell of the host framework with ``n_guest`` guest atoms on the guest sites
(``n_sites`` of them in the cell); its guest fraction is ``x = n_guest / n_sites`` (0 = empty host, 1 = every
site filled) and its energy ``E`` [eV] is the total energy of the cell. The guest's elemental reference
``mu_guest`` [eV/atom] is the energy per atom of the guest's own crystal computed the same way (same code,
potential and relaxation settings).

- Formation (mixing) energy per guest site, relative to the end members of the set
  (``x_min``, ``x_max``): ``E_f(x) = [E(x) - (1 - t) E(x_min) - t E(x_max)] / n_sites`` with
  ``t = (x - x_min)/(x_max - x_min)``, all energies scaled to the same number of sites.
- Convex hull: :class:`pymatgen.analysis.phase_diagram.PhaseDiagram` of the configurations, with every element
  given an artificially high energy so that only the pseudo-binary host-guest section matters (the construction
  of :meth:`pymatgen.apps.battery.insertion_battery.InsertionElectrode.from_entries`); ``e_above_hull``
  [eV/atom] as PhaseDiagram gives it. pymatgen sees energies relative to per-element constants (the guest at
  ``mu_guest``, the framework atoms at the emptiest cell's framework energy per atom), which cancel in every
  formation energy and voltage: with absolute pseudopotential energies (hundreds of eV per atom, different per
  element) the artificial elements would otherwise undercut the guest-rich cells.
- Voltage between neighbouring hull vertices x1 < x2 (Aydinol et al., Phys. Rev. B 56, 1354 (1997)):
  ``V = -[E(x2) - E(x1) - (x2 - x1) n_sites mu_guest] / ((x2 - x1) n_sites e)`` [V], computed by
  :class:`~pymatgen.apps.battery.insertion_battery.InsertionElectrode` with the guest entry ``mu_guest``.
- Uncertainty band: the potential's validation energy RMSE ``sigma`` [eV/atom] taken as an independent error on
  every total energy (``sigma * N_atoms``) and on ``mu_guest`` (``sigma``), propagated through V of each step:
  ``dV = sqrt((N1 sigma)^2 + (N2 sigma)^2 + (dn sigma)^2) / dn`` with ``dn = (x2 - x1) n_sites`` guest atoms per
  cell. Independent errors are an upper bound: errors of an MTP on similar structures are correlated and partly
  cancel in the difference.
"""

from __future__ import annotations

import numpy as np

__all__ = ['hull_and_voltage']


def _check(configurations: list[dict], guest: str, mu_guest: float) -> None:
    if len(configurations) < 2:
        raise ValueError(f'need at least two configurations along x, got {len(configurations)}')
    if not np.isfinite(mu_guest):
        raise ValueError(f'the guest reference energy must be finite, not {mu_guest}')
    frameworks = set()
    for c in configurations:
        if not np.isfinite(c['energy']):
            raise ValueError(f'configuration {c["label"]}: energy is not finite ({c["energy"]})')
        if c['n_sites'] < 1:
            raise ValueError(f'configuration {c["label"]}: needs at least one guest site')
        host = {e: n for e, n in c['composition'].items() if e != guest and n > 0}
        total = sum(host.values())
        frameworks.add(tuple(sorted((e, round(n / total, 8)) for e, n in host.items())))
    if len(frameworks) != 1:
        raise ValueError(f'the configurations do not share one host framework (apart from {guest}): {frameworks}')
    fractions = {c['composition'].get(guest, 0) / c['n_sites'] for c in configurations}
    if len(fractions) < 2:
        raise ValueError(f'all configurations have the same guest fraction {fractions}: no profile along x')


def hull_and_voltage(configurations: list[dict], guest: str, mu_guest: float, energy_rmse: float = 0.0) -> dict:
    """Formation energies, hull and voltage profile of ``configurations`` (see the module docstring).

    :param configurations: dicts with ``label``, ``composition`` ({element: count} of the cell), ``energy`` [eV]
        (total, of the cell) and ``n_sites`` (guest sites of the cell).
    :param guest: the guest element, e.g. ``'Li'``.
    :param mu_guest: energy per atom of the guest's elemental reference [eV/atom].
    :param energy_rmse: validation energy RMSE of the potential [eV/atom] for the uncertainty band (0: none).
    :return: dict with ``configurations`` (per label: x, formation_energy [eV/site], e_above_hull [eV/atom],
        stable), ``hull`` (x and formation energy of the vertices), ``steps`` (x1, x2, voltage [V],
        voltage_error [V]), ``average_voltage`` [V], ``x`` / ``voltage`` / ``voltage_error`` step-curve arrays.
    """
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.apps.battery.insertion_battery import InsertionElectrode
    from pymatgen.core import Composition
    from pymatgen.entries.computed_entries import ComputedEntry

    _check(configurations, guest, mu_guest)
    if not np.isfinite(energy_rmse) or energy_rmse < 0:
        raise ValueError(f'energy_rmse must be finite and >= 0, not {energy_rmse}')

    def fraction(c):
        return c['composition'].get(guest, 0) / c['n_sites']

    ordered = sorted(configurations, key=fraction)
    low, high = ordered[0], ordered[-1]
    x_low, x_high = fraction(low), fraction(high)
    per_site = {c['label']: c['energy'] / c['n_sites'] for c in ordered}

    def formation(c):
        t = (fraction(c) - x_low) / (x_high - x_low)
        return per_site[c['label']] - (1 - t) * per_site[low['label']] - t * per_site[high['label']]

    # pymatgen's hull (and InsertionElectrode's) puts every element at max(E/atom) + 10 eV; with the absolute energies
    # of a pseudopotential code (Li ~ -200, O ~ -430 eV/atom) that artificial element lies below the guest-rich
    # cells per atom and hides them from the hull. Hand pymatgen energies relative to the guest's reference and the
    # emptiest cell's framework instead: a per-element constant cancels in every formation energy and voltage.
    framework_low = {e: n for e, n in low['composition'].items() if e != guest and n > 0}
    e_framework = (low['energy'] - low['composition'].get(guest, 0) * mu_guest) / sum(framework_low.values())

    def relative(c):
        n_framework = sum(n for e, n in c['composition'].items() if e != guest)
        return c['energy'] - c['composition'].get(guest, 0) * mu_guest - n_framework * e_framework

    entries = {
        c['label']: ComputedEntry(Composition(c['composition']), relative(c), entry_id=c['label']) for c in ordered
    }
    elements = {el for entry in entries.values() for el in entry.composition.elements}
    high_energy = max(entry.energy_per_atom for entry in entries.values()) + 10.0
    diagram = PhaseDiagram([*entries.values(), *(PDEntry(Composition({el: 1}), high_energy) for el in elements)])
    stable_ids = {entry.entry_id for entry in diagram.stable_entries if getattr(entry, 'entry_id', None)}

    result_configurations = {}
    for c in ordered:
        result_configurations[c['label']] = {
            'x': fraction(c),
            'formation_energy': formation(c),
            'e_above_hull': float(diagram.get_e_above_hull(entries[c['label']])),
            'stable': c['label'] in stable_ids,
            'energy': c['energy'],
            'n_sites': c['n_sites'],
        }

    guest_entry = ComputedEntry(Composition({guest: 1}), 0.0)  # mu_guest, relative to itself
    try:
        electrode = InsertionElectrode.from_entries(list(entries.values()), guest_entry)
    except (IndexError, ValueError) as exception:  # e.g. no framework entry pymatgen can use as the charged end
        raise ValueError(
            f'pymatgen InsertionElectrode cannot build a voltage profile from these entries: {exception!r}'
        ) from exception
    by_id = {c['label']: c for c in ordered}
    steps = []
    for pair in electrode.voltage_pairs:
        charged, discharged = by_id[pair.entry_charge.entry_id], by_id[pair.entry_discharge.entry_id]
        x1, x2 = fraction(charged), fraction(discharged)
        n1, n2 = sum(charged['composition'].values()), sum(discharged['composition'].values())
        scale = charged['n_sites'] / discharged['n_sites']  # both cells on the same number of sites
        dn = (x2 - x1) * charged['n_sites']
        error = energy_rmse * np.sqrt(n1**2 + (n2 * scale) ** 2 + dn**2) / dn if energy_rmse else 0.0
        steps.append(
            {
                'x1': x1,
                'x2': x2,
                'voltage': float(pair.voltage),
                'voltage_error': float(error),
                'charged': charged['label'],
                'discharged': discharged['label'],
            }
        )
    hull = sorted((v['x'], v['formation_energy'], label) for label, v in result_configurations.items() if v['stable'])
    x_curve = np.array([s[k] for s in steps for k in ('x1', 'x2')])
    v_curve = np.repeat([s['voltage'] for s in steps], 2)
    e_curve = np.repeat([s['voltage_error'] for s in steps], 2)
    return {
        'guest': guest,
        'mu_guest': mu_guest,
        'energy_rmse': energy_rmse,
        'configurations': result_configurations,
        'hull': {'x': [h[0] for h in hull], 'formation_energy': [h[1] for h in hull], 'labels': [h[2] for h in hull]},
        'steps': steps,
        'average_voltage': float(electrode.get_average_voltage()),
        'x': x_curve,
        'voltage': v_curve,
        'voltage_error': e_curve,
    }
