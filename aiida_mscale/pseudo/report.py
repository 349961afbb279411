"""Markdown tables of a pseudopotential family's verification (pure: takes the ``verification`` node's dict).

:func:`verification_table` formats what :func:`aiida_mscale.workflows.pseudo_family.summarize_verification`
stored; :func:`aiida_mscale.workflows.pseudo_family.verification_markdown` loads it from a family's nodes.
"""

from __future__ import annotations

MRY = 1.0e3  # Ry -> mRy


def _number(value, scale: float = 1.0, digits: int = 2) -> str:
    if value is None:
        return '-'
    return f'{value * scale:.{digits}f}'


def verification_table(verification: dict) -> str:
    """One row per element: transferability, cutoffs, EOS errors vs the all-electron reference, verdict."""
    tolerances = verification['tolerances']
    lines = [
        f'Functional {verification["functional"]}, verification level `{verification["level"]}`. '
        f'Tolerances: transferability {tolerances["transferability"] * MRY:g} mRy, AE-PS eigenvalues '
        f'{tolerances["eigenvalue"] * MRY:g} mRy; EOS (when run) nu {tolerances["nu"]:g}, '
        f'V0 {tolerances["v0_relative_error"] * 100:g} %, B0 {tolerances["b0_relative_error"] * 100:g} %.',
        '',
        '| element | dataset | transf. error (mRy) | eigenvalue error (mRy) | ghosts | ecutwfc / ecutrho (Ry) '
        '| cutoff from | EOS crystal | V0 error (%) | B0 error (%) | B1 error (%) | nu | Delta (meV/atom) | verdict |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for element, entry in sorted(verification['elements'].items()):
        eos = entry.get('eos') or {}
        verdict = 'pass' if entry['passed'] else 'FAIL: ' + '; '.join(entry['failures'])
        lines.append(
            '| '
            + ' | '.join(
                [
                    element,
                    f'`{entry["dataset"]}`',
                    _number(entry['max_transferability_error'], MRY),
                    _number(entry['max_eigenvalue_error'], MRY),
                    str(len(entry['ghosts'])),
                    f'{entry["cutoff_wfc"]:g} / {entry["cutoff_rho"]:g}',
                    entry['cutoff_source'],
                    eos.get('prototype') or '-',
                    _number(eos.get('v0_relative_error'), 100),
                    _number(eos.get('b0_relative_error'), 100),
                    _number(eos.get('b1_relative_error'), 100),
                    _number(eos.get('nu'), 1, 3),
                    _number(eos.get('delta'), 1, 2),
                    verdict,
                ]
            )
            + ' |'
        )
    for element, message in sorted(verification.get('missing', {}).items()):
        lines.append(f'| {element} | not generated | | | | | | | | | | | | {message} |')
    oxides = oxide_table(verification)
    return '\n'.join(lines) + '\n' + (f'\n{oxides}' if oxides else '')


def oxide_table(verification: dict) -> str:
    """One row per element and ACWF oxide whose EOS ran (the element's dataset with the family's O dataset):
    V0 (Angstrom^3 per cell) and B0 (GPa) and their errors against the all-electron reference, nu, Delta; '' if
    none ran."""
    rows = []
    for element, entry in sorted(verification['elements'].items()):
        for configuration, eos in sorted((entry.get('oxides') or {}).items()):
            failures = [f for f in entry['failures'] if f.split(' ', 2)[1:2] == [configuration]]
            rows.append(
                '| '
                + ' | '.join(
                    [
                        element,
                        configuration,
                        _number(eos.get('v0'), 1, 3),
                        _number(eos.get('b0_gpa'), 1, 1),
                        _number(eos.get('v0_relative_error'), 100),
                        _number(eos.get('b0_relative_error'), 100),
                        _number(eos.get('b1_relative_error'), 100),
                        _number(eos.get('nu'), 1, 3),
                        _number(eos.get('delta'), 1, 2),
                        'pass' if not failures else 'FAIL: ' + '; '.join(failures),
                    ]
                )
                + ' |'
            )
    if not rows:
        return ''
    header = [
        'Oxides (the element with the O dataset of the same family; V0 per cell of the ACWF structure):',
        '',
        '| element | oxide | V0 (A^3/cell) | B0 (GPa) | V0 error (%) | B0 error (%) | B1 error (%) | nu '
        '| Delta (meV/atom) | verdict |',
        '|---|---|---|---|---|---|---|---|---|---|',
    ]
    return '\n'.join(header + rows) + '\n'


def merge_verifications(verifications: list[dict]) -> dict:
    """One ``verification`` dict from several of the same functional, level and tolerances (e.g. one per element,
    run one at a time); an element in more than one is an error."""
    if not verifications:
        raise ValueError('no verification to merge')
    merged = {key: value for key, value in verifications[0].items() if key not in ('elements', 'missing')}
    merged['elements'], merged['missing'] = {}, {}
    for verification in verifications:
        for key in ('functional', 'level', 'tolerances'):
            if verification[key] != merged[key]:
                raise ValueError(
                    f'cannot merge verifications of different {key}: {verification[key]!r}, {merged[key]!r}'
                )
        for name in ('elements', 'missing'):
            for element, entry in verification.get(name, {}).items():
                if element in merged['elements'] or element in merged['missing']:
                    raise ValueError(f'{element} is in more than one verification')
                merged[name][element] = entry
    return merged


def measured_cutoffs_table(measured: dict) -> str:
    """The pw.x cutoff scans of ``measured_cutoffs.yaml`` (:func:`aiida_mscale.pseudo.cutoffs.load_measured_cutoffs`):
    per element ld1.x's estimate, the scan (energy per atom in meV and pressure in GPa relative to the reference
    cutoff), the converged cutoff and what the ``coarse`` families store (the larger, rounded up)."""
    import math

    lines = [
        '| element | dataset | ld1.x estimate (Ry) | scan: ecutwfc (Ry): dE (meV/atom), dP (GPa) vs reference '
        '| converged from (Ry) | stored by setup (Ry) |',
        '|---|---|---|---|---|---|',
    ]
    for element, entry in sorted(measured['elements'].items()):
        scan = '; '.join(
            f'{cutoff}: {entry["scan_mev_per_atom"][cutoff]:.1f}, {entry["scan_gpa"][cutoff]:.2f}'
            for cutoff in sorted(entry['scan_mev_per_atom'])
        )
        estimate = entry.get('ld1_estimate')
        converged = (
            f'{entry["ecutwfc"]:g}'
            if entry['converged_below_reference']
            else (f'not below {entry["reference_cutoff"]:g}')
        )
        stored = max(math.ceil(estimate or 0), math.ceil(entry['ecutwfc']))
        lines.append(
            f'| {element} | `{entry["dataset"]}` | {estimate:.1f} | {scan} | {converged} | {stored} |'
            if estimate is not None
            else f'| {element} | `{entry["dataset"]}` | - | {scan} | {converged} | {stored} |'
        )
    return '\n'.join(lines) + '\n'
