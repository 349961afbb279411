"""The verification tables of docs/pseudopotentials.md are the ones rendered from the results shipped with the
package (``aiida_mscale/pseudo/verification_results.yaml``, written from the verification nodes), the results agree
with the measured cutoffs, and the setup family's description names the pw.x EOS verdicts and what is unverified."""

import pytest

from aiida_mscale.pseudo import verification as v
from aiida_mscale.pseudo.cutoffs import load_measured_cutoffs
from tests.test_pseudo_cutoffs import TOLERANCES, _transferability


def _entry(element, eos=None, failures=()):
    entry = {
        'dataset': f'{element}.pbe-n-kjpaw_psl.1.0.0.UPF',
        'max_transferability_error': 1e-3,
        'max_eigenvalue_error': 2e-3,
        'ghosts': [],
        'cutoff_wfc': 80.0,
        'cutoff_rho': 640.0,
        'cutoff_source': 'pw.x convergence',
        'failures': list(failures),
        'passed': not failures,
    }
    if eos is not None:
        entry['eos'] = eos
    return entry


def _set(elements):
    verification = {'functional': 'PBE', 'level': 'moderate', 'tolerances': TOLERANCES, 'elements': elements}
    nodes = {e: {'family': f'f/{e}', 'verification': f'uuid-{e}', 'date': '2026-12-02'} for e in elements}
    return {'settings': 'k-point spacing 0.3 1/A', 'verification': verification, 'nodes': nodes}


FE_EOS = {
    'prototype': 'BCC',
    'v0_relative_error': 0.0011,
    'b0_relative_error': 0.0035,
    'b1_relative_error': 0.014,
    'nu': 0.115,
    'delta': 0.73,
}
N_EOS = {**FE_EOS, 'prototype': 'SC', 'nu': 0.85, 'v0_relative_error': 0.0082}
N_FAILURE = 'EOS nu = 0.85 > 0.33'


@pytest.fixture
def fe_passes_n_fails():
    """Verified elements of a pw-PBE run: Fe's EOS passes, N's fails in nu."""
    return {'Fe': _entry('Fe', FE_EOS), 'N': _entry('N', N_EOS, [N_FAILURE])}


def test_docs_are_the_rendering_of_the_shipped_results():
    """Regenerating the block from verification_results.yaml and measured_cutoffs.yaml gives the docs' text."""
    stale = 'docs/pseudopotentials.md is stale: run python -m aiida_mscale.pseudo.verification docs'
    assert v.update_docs(check=True), stale


def test_rendering_of_a_small_fixture(fe_passes_n_fails):
    results = {'pw-PBE': _set({**fe_passes_n_fails, 'Li': _entry('Li')})}
    measured = {'elements': {}}
    text = v.render_docs(results, measured)
    assert text.startswith('### pw.x: PBE datasets')
    row = '| Fe | `Fe.pbe-n-kjpaw_psl.1.0.0.UPF` | 1.00 | 2.00 | 0 | 80 / 640 | pw.x convergence | BCC | 0.11 | 0.35 |'
    assert row in text
    assert '| N | ' in text and f'FAIL: {N_FAILURE} |' in text
    assert 'Fe: `uuid-Fe` (f/Fe, 2026-12-02); Li: ' in text
    assert '**EOS not verified with pw.x** (no all-electron comparison on this machine): Li.' in text
    verdicts = v.eos_verdicts(results)
    assert verdicts['N.pbe-n-kjpaw_psl.1.0.0.UPF']['failures'] == [N_FAILURE]
    assert verdicts['Fe.pbe-n-kjpaw_psl.1.0.0.UPF']['passed'] and 'Li.pbe-n-kjpaw_psl.1.0.0.UPF' not in verdicts


def test_export_merges_element_by_element(fe_passes_n_fails):
    results = {'pw-PBE': _set({'Fe': _entry('Fe', FE_EOS), 'N': _entry('N')})}
    new = _set({'N': fe_passes_n_fails['N'], 'Co': _entry('Co')})
    exported = {k: new[k] for k in ('verification', 'nodes')}
    merged = v.merge_into(results, 'pw-PBE', exported, None)['pw-PBE']
    assert sorted(merged['verification']['elements']) == ['Co', 'Fe', 'N']
    assert merged['verification']['elements']['N']['eos']['nu'] == 0.85  # replaced by the newer run
    assert merged['nodes']['Fe']['verification'] == 'uuid-Fe'
    with pytest.raises(ValueError, match='settings'):
        v.merge_into({}, 'other', exported, None)


def test_shipped_results_agree_with_the_measured_cutoffs():
    """Every pw.x-verified element's cutoff is the one measured_cutoffs.yaml has for the same dataset, and every
    EOS compared with the all-electron reference has its numbers and a verdict consistent with the tolerances."""
    results = v.load_results()
    assert 'pw-PBE' in results
    measured = load_measured_cutoffs()['elements']
    for element, entry in results['pw-PBE']['verification']['elements'].items():
        if entry['cutoff_source'] != 'pw.x convergence':
            continue
        assert measured[element]['dataset'] == entry['dataset'], element
        assert measured[element]['ecutwfc'] == entry['cutoff_wfc'], element
        eos = entry.get('eos') or {}
        if eos.get('nu') is not None:
            assert (eos['nu'] > TOLERANCES['nu']) == any(f.startswith('EOS nu') for f in entry['failures']), element


def test_setup_family_description_names_the_eos_verdicts(aiida_profile, fe_passes_n_fails):
    from aiida import orm

    from aiida_mscale.workflows.pseudo_family import family_description, summarize_verification

    results = {'pw-PBE': _set(fe_passes_n_fails)}
    settings = {
        'functional': 'PBE',
        'level': 'coarse',
        'tolerances': TOLERANCES,
        'dual': 8,
        'fallback_cutoff': 60.0,
        'missing': {},
        'measured_cutoffs': {},
        'measured_criterion': '1 meV/atom and 0.5 GPa',
        'measured_eos': v.eos_verdicts(results),
    }
    nodes = {f'{e}_transferability': _transferability(e, 40.0, 320.0) for e in ('Fe', 'N', 'Co')}

    def summary(functional):
        return summarize_verification(orm.Dict({**settings, 'functional': functional}), **nodes).get_dict()

    pbe = summary('PBE')
    assert pbe['eos_not_verified'] == ['Co']
    text = family_description(pbe)
    assert f'pass Fe; FAIL N ({N_FAILURE}); NOT VERIFIED Co.' in text
    pbesol = summary('PBEsol')
    assert 'measured_eos' not in pbesol and 'equation of state' not in family_description(pbesol)


def test_verdicts_of_a_dataset_in_two_sets_combine(fe_passes_n_fails):
    """N's unary fails in one set, its XO2 oxide in another: the verdict has both failures; Fe passes in both."""
    oxide_failure = 'EOS XO2 nu = 0.50 > 0.33'
    oxides = _set(
        {
            'N': _entry('N', N_EOS, [N_FAILURE, oxide_failure]),
            'Fe': _entry('Fe', FE_EOS),
        }
    )
    verdicts = v.eos_verdicts({'pw-PBE': _set(fe_passes_n_fails), 'pw-PBE-oxides': oxides})
    n = verdicts['N.pbe-n-kjpaw_psl.1.0.0.UPF']
    assert n['failures'] == [N_FAILURE, oxide_failure] and not n['passed']
    assert verdicts['Fe.pbe-n-kjpaw_psl.1.0.0.UPF']['passed']
    # the order of the sets does not change the verdict
    swapped = v.eos_verdicts({'a': oxides, 'b': _set(fe_passes_n_fails)})['N.pbe-n-kjpaw_psl.1.0.0.UPF']
    assert sorted(swapped['failures']) == sorted(n['failures'])


def test_export_refuses_contradictory_options_and_unknown_profiles(capsys):
    """Bad input of the export command: an error naming it and exit status 2, no traceback, nothing written."""
    before = v.RESULTS_FILE.read_text()
    for argv, message in [
        (['export', '--profile', 'p', '--cutoffs-only', '--set', 'pw-PBE', 'f'], 'give either --set'),
        (['export', '--profile', 'p', 'f'], 'give either --set'),
        (['export', '--profile', 'no-such-profile', '--cutoffs-only', 'f'], 'no-such-profile'),
    ]:
        with pytest.raises(SystemExit) as info:
            v.main(argv)
        assert info.value.code == 2
        assert message in capsys.readouterr().err
    assert v.RESULTS_FILE.read_text() == before
