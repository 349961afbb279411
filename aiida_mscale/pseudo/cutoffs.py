"""pw.x-measured cutoffs of the ld1.x datasets, kept as data for the ``coarse`` families (pure: yaml only).

``aiida-mscale setup`` cannot afford a pw.x cutoff scan per element (it must stay at about a minute per family), and
ld1.x's estimates are not energy-converged for every element (e.g. N needs 80 Ry where ld1.x suggests 44 Ry). So
the scans are measured once with :class:`~aiida_mscale.workflows.pseudo_family.PseudoFamilyWorkChain` (protocol
``moderate``; see docs/pseudopotentials.md), the result of each element written to ``measured_cutoffs.yaml`` by
:func:`measured_entry` from its ``converge_cutoff`` node, and the ``coarse`` families store the larger of ld1.x's
estimate and the measured cutoff. Units: Ry (cutoffs), eV/atom (energies), GPa (pressures).
"""

from __future__ import annotations

import pathlib

import yaml

MEASURED_FILE = pathlib.Path(__file__).with_name('measured_cutoffs.yaml')


def load_measured_cutoffs(path: pathlib.Path = MEASURED_FILE) -> dict:
    """``{'settings': {...}, 'elements': {symbol: entry}}`` of the measured scans (empty if the file is absent)."""
    if not path.exists():
        return {'settings': {}, 'elements': {}}
    data = yaml.safe_load(path.read_text()) or {}
    return {'settings': data.get('settings', {}), 'elements': data.get('elements', {}) or {}}


def dataset_key(filename: str) -> str:
    """A dataset's file name without its functional (``N.pbe-n-kjpaw_psl.1.0.0.UPF`` -> ``N.n-kjpaw_psl.1.0.0.UPF``):
    the PBE and PBEsol sets of one pslibrary entry share it (same radii and projectors), different versions do not."""
    element, _, rest = filename.partition('.')
    return f'{element}.{rest.partition("-")[2]}'


def measured_entry(scan: dict, estimate: float | None, uuid: str, dataset: str) -> dict:
    """The yaml entry of one element from its ``converge_cutoff`` result ``scan`` (a dict), ld1.x's ``estimate``
    of the wavefunction cutoff (Ry), the ``uuid`` of the ``converge_cutoff`` output it was read from and the
    ``dataset`` file name it was measured with."""
    rows = {int(row['ecutwfc']): row for row in scan['scan']}
    entry = {
        'dataset': dataset,
        'ecutwfc': float(scan['cutoff_wfc']),
        'reference_cutoff': float(scan['reference_cutoff']),
        'converged_below_reference': bool(scan['converged_below_reference']),
        'scan_mev_per_atom': {c: round(row['delta_energy_per_atom'] * 1e3, 2) for c, row in sorted(rows.items())},
        'scan_gpa': {c: round(row['delta_pressure'], 2) for c, row in sorted(rows.items())},
        'node': uuid,
    }
    if estimate is not None:
        entry['ld1_estimate'] = float(estimate)
    return entry
