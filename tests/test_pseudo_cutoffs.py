"""The cutoffs the ``coarse`` families store: ld1.x's estimates raised to the pw.x-measured ones
(``aiida_mscale/pseudo/measured_cutoffs.yaml``), and the family description naming what is not converged."""

import pytest

from aiida_mscale.pseudo.cutoffs import load_measured_cutoffs, measured_entry

TOLERANCES = {
    'transferability': 5e-3,
    'eigenvalue': 5e-3,
    'nu': 0.33,
    'v0_relative_error': 0.01,
    'b0_relative_error': 0.05,
}


def _transferability(element, wfc, rho):
    from aiida import orm

    return orm.Dict(
        {
            'dataset': f'{element}.pbe-n-kjpaw_psl.1.0.0.UPF',
            'max_transferability_error': 1e-3,
            'max_eigenvalue_error': 1e-3,
            'ghosts': [],
            'failures': [],
            'wfc_cutoff_estimate': wfc,
            'rho_cutoff_estimate': rho,
        }
    )


def _summary(measured):
    from aiida import orm

    from aiida_mscale.workflows.pseudo_family import summarize_verification

    settings = {
        'functional': 'PBE',
        'level': 'coarse',
        'tolerances': TOLERANCES,
        'dual': 8,
        'fallback_cutoff': 60.0,
        'missing': {},
        'measured_cutoffs': measured,
        'measured_criterion': '1 meV/atom and 0.5 GPa',
    }
    nodes = {
        'Li_transferability': _transferability('Li', 49.3, 397.0),  # measured higher: raised
        'Se_transferability': _transferability('Se', 22.1, 177.0),  # measured lower: ld1.x's estimate stays
        'Br_transferability': _transferability('Br', 48.2, 392.0),  # not converged below the reference: the reference
        'I_transferability': _transferability('I', 36.4, 290.0),  # not measured: ld1.x's estimate, marked
    }
    return summarize_verification(orm.Dict(settings), **nodes).get_dict()


def test_measured_cutoffs_raise_the_estimates(aiida_profile):
    from aiida_mscale.workflows.pseudo_family import family_description

    measured = {
        'Li': {'ecutwfc': 70.0, 'reference_cutoff': 100.0, 'converged_below_reference': True},
        'Se': {'ecutwfc': 20.0, 'reference_cutoff': 100.0, 'converged_below_reference': True},
        'Br': {'ecutwfc': 100.0, 'reference_cutoff': 100.0, 'converged_below_reference': False},
        'I': {'ecutwfc': 90.0, 'reference_cutoff': 100.0, 'converged_below_reference': True},
    }
    for element, entry in measured.items():  # the PBEsol file of the same pslibrary entry counts as the same dataset
        entry['dataset'] = f'{element}.pbesol-n-kjpaw_psl.1.0.0.UPF'
    measured['I']['dataset'] = 'I.pbe-n-kjpaw_psl.0.1.UPF'  # another version: not applied
    summary = _summary(measured)
    cutoffs = summary['cutoffs']
    assert cutoffs['Li'] == {'cutoff_wfc': 70.0, 'cutoff_rho': 560.0}
    assert summary['elements']['Li']['cutoff_source'] == 'pw.x scan (measured)'
    assert cutoffs['Se'] == {'cutoff_wfc': 23.0, 'cutoff_rho': 177.0}  # ceil(22.1); max(177, 8 x 22.1) rounded up
    assert summary['elements']['Se']['cutoff_source'] == 'ld1.x estimate (pw.x-checked)'
    assert cutoffs['Br'] == {'cutoff_wfc': 100.0, 'cutoff_rho': 800.0}
    assert cutoffs['I'] == {'cutoff_wfc': 37.0, 'cutoff_rho': 292.0}
    assert set(summary['cutoff_notes']) == {'Br', 'I'}
    text = family_description(summary)
    assert "Cutoffs of I are ld1.x's estimates, not checked with pw.x" in text
    assert 'Cutoffs of Br are the highest measured and NOT converged' in text
    assert 'Li (' not in text and 'Se (' not in text and 'of Li' not in text and 'of Se' not in text


def test_measured_entry_from_a_scan():
    scan = {
        'scan': [
            {'ecutwfc': 60, 'delta_energy_per_atom': 6.72e-3, 'delta_pressure': -0.39, 'within_tolerance': False},
            {'ecutwfc': 80, 'delta_energy_per_atom': 0.31e-3, 'delta_pressure': -0.07, 'within_tolerance': True},
        ],
        'reference_cutoff': 100,
        'cutoff_wfc': 80.0,
        'converged_below_reference': True,
    }
    entry = measured_entry(scan, 43.7, 'abc', 'N.pbe-n-kjpaw_psl.1.0.0.UPF')
    assert entry['dataset'] == 'N.pbe-n-kjpaw_psl.1.0.0.UPF'
    assert entry['ecutwfc'] == 80.0 and entry['converged_below_reference'] is True
    assert entry['scan_mev_per_atom'] == {60: 6.72, 80: 0.31}
    assert entry['ld1_estimate'] == 43.7 and entry['node'] == 'abc'


def test_measured_file_is_complete_and_consistent():
    """Every entry of the shipped file is a scan whose chosen cutoff satisfies the criterion it states."""
    measured = load_measured_cutoffs()
    assert measured['elements'], 'measured_cutoffs.yaml is missing or empty'
    for element, entry in measured['elements'].items():
        rows = entry['scan_mev_per_atom']
        for cutoff, delta in rows.items():
            within = abs(delta) < 1.0 and abs(entry['scan_gpa'][cutoff]) < 0.5
            if entry['converged_below_reference'] and cutoff >= entry['ecutwfc']:
                assert within, (element, cutoff)
        if entry['converged_below_reference']:
            below = [c for c in rows if c < entry['ecutwfc']]
            if below:  # the next lower scanned cutoff is outside the criterion, else it would have been chosen
                c = max(below)
                assert not (abs(rows[c]) < 1.0 and abs(entry['scan_gpa'][c]) < 0.5), (element, c)
        else:
            assert entry['ecutwfc'] == entry['reference_cutoff']


@pytest.mark.parametrize('functional', ['PBE'])
def test_setup_family_stores_the_measured_cutoffs(ld1_pseudo_family_pbe, functional):
    """The family setup installs (coarse, no pw.x) holds max(ld1.x estimate, measured) for every measured element."""
    import math

    measured = load_measured_cutoffs()['elements']
    for element, entry in measured.items():
        pseudo = ld1_pseudo_family_pbe.get_pseudo(element)
        assert pseudo.filename == entry['dataset']
        estimate = pseudo.creator.outputs.transferability['wfc_cutoff_estimate']
        wfc, rho = ld1_pseudo_family_pbe.get_recommended_cutoffs(elements=(element,), unit='Ry')
        assert wfc == max(math.ceil(estimate), math.ceil(entry['ecutwfc'])), element
        assert rho >= 8 * wfc, element


def test_verifications_of_single_elements_merge_into_one_table():
    """Elements verified one at a time (one family each) give one table; a clash of settings or elements is refused."""
    from aiida_mscale.pseudo.report import merge_verifications, verification_table

    def verification(element, level='moderate'):
        entry = {
            'dataset': f'{element}.UPF',
            'max_transferability_error': 1e-3,
            'max_eigenvalue_error': 2e-3,
            'ghosts': [],
            'cutoff_wfc': 80.0,
            'cutoff_rho': 640.0,
            'cutoff_source': 'pw.x convergence',
            'failures': [],
            'passed': True,
        }
        return {'functional': 'PBE', 'level': level, 'tolerances': TOLERANCES, 'elements': {element: entry}}

    merged = merge_verifications([verification('Fe'), verification('N')])
    assert sorted(merged['elements']) == ['Fe', 'N']
    table = verification_table(merged)
    assert '| Fe | `Fe.UPF` | 1.00 | 2.00 | 0 | 80 / 640 |' in table and '| N |' in table
    with pytest.raises(ValueError, match='level'):
        merge_verifications([verification('Fe'), verification('N', 'coarse')])
    with pytest.raises(ValueError, match='Fe'):
        merge_verifications([verification('Fe'), verification('Fe')])
