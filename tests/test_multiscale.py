"""MultiscaleWorkChain on Li_(2-x)O with real pw.x, LAMMPS and dolfinx, on the daemon of a profile of its own, with the
daemon killed in the middle: entered with the demo's potential (imported with its provenance, see
tests/multiscale_settings.py) -> the guest's EOS (pw.x) -> [daemon killed during MD production, restarted] -> MD at
3 T x 2 x -> D(x) -> hull, OCV(x) -> electrode with an uncertainty ensemble. tests/scripts/multiscale_chain_daemon.py
runs it (SQLite + ZeroMQ under a temporary AIIDA_PATH) and records what the tests below check. The full chain from
DFT labels is what `make demo` runs (examples/multiscale_demo.py).

Independent checks: the D(x) table against the transport stage's Arrhenius extrapolations, the OCV table against the
lattice-gas formula worked here on the thermodynamics stage's voltage steps, the guest's E0 against its own labels,
the provenance (every table descends from pw.x calculations, the potential's labels included), and the restart: no
stage and no pw.x calculation that had finished before the kill ran again.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import uuid

import numpy as np
import pytest

SCRIPT = pathlib.Path(__file__).parent / 'scripts' / 'multiscale_chain_daemon.py'
KB_EV = 8.617333262e-5  # eV/K (CODATA 2018), written out: the code under test takes it from scipy.constants
#: pw.x labels behind the demo's potential (12 initial, 4 + 3 selected; the third iteration labelled none)
POTENTIAL_LABELS = 19


@pytest.fixture(scope='module')
def record():
    """Run the chain on a daemon of its own (killed and restarted mid-run); the script's JSON record."""
    profile = f'mscale-chain-{uuid.uuid4().hex[:8]}'
    folder = tempfile.mkdtemp(prefix='mscale-chain-')  # not pytest's tmp_path: the daemon outlives its view of it
    env = {**os.environ, 'AIIDA_PATH': folder}
    # the daemon is started through `verdi` of this environment, whether or not the caller put it on PATH
    env['PATH'] = os.pathsep.join([str(pathlib.Path(sys.executable).parent), env.get('PATH', '')])
    root = str(pathlib.Path(__file__).parent.parent)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [root, env.get('PYTHONPATH')]))
    try:
        result = subprocess.run(
            [sys.executable, str(SCRIPT), profile], env=env, capture_output=True, text=True, timeout=1200, check=False
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.integration
def test_chain_survives_the_killed_daemon_and_finishes(record):
    assert record['killed_pids'], 'no daemon process was killed'
    assert record['state_when_killed'] in ('waiting', 'running')
    assert record['exit_status'] == 0, record['exit_message']
    # every stage ran once: the restart did not launch the finished ones (or any) again
    # entered with a potential: no active learning; every other stage ran once, the restart launched none again
    assert record['stages'] == {
        'reference': 1,
        'active_learning': 0,
        'md_production': 1,
        'thermodynamics': 1,
        'electrode': 1,
    }
    assert record['transport_stages'] == ['transport_x_0', 'transport_x_1']
    # no pw.x calculation after the kill: the guest's 5 strains had finished before it, and nothing was recomputed
    assert record['pw_at_end'] == record['pw_before_kill']
    assert len(record['pw_before_kill']) == 5


@pytest.mark.integration
def test_guest_reference_is_the_minimum_of_its_labels(record):
    """E0 from the Birch-Murnaghan fit lies at or below every labelled energy, within the fit's residual."""
    reference = record['reference']
    energies = reference['label_energies']
    assert len(energies) == 5
    assert reference['E0'] <= min(energies) + 3 * reference['residual'] + 1e-6
    assert reference['E0'] > min(energies) - 0.05  # the strains bracket V0: a shallow minimum


@pytest.mark.integration
def test_diffusivity_table_is_the_arrhenius_extrapolation(record):
    table = record['diffusivity']
    extrapolations = np.array(table['extrapolations'])  # T [K], D [cm^2/s], ln_err, per guest fraction
    assert len(extrapolations) == len(record['transport_stages'])
    assert np.all(extrapolations[:, 0] == 300.0)
    d, sigma = extrapolations[:, 1] * 1e-4, extrapolations[:, 1] * 1e-4 * extrapolations[:, 2]
    if len(d) == 1:  # one guest fraction: D(x) constant over the window
        d, sigma = np.repeat(d, 2), np.repeat(sigma, 2)
    assert np.allclose(table['D'], d, rtol=1e-12)
    assert np.allclose(table['D_sigma'], sigma, rtol=1e-12)
    assert np.all(np.array(table['D']) > 0)
    # the hull spans the computed fractions x = 0.5..0.75 (no end members): state of charge y = (x - 0.5) / 0.25
    x_host = np.array(table['x_host'])
    assert np.allclose(x_host, [0.5, 0.75])
    assert np.allclose(table['x'], [0.0, 1.0])


@pytest.mark.integration
def test_ocv_table_is_the_lattice_gas_on_the_hull_steps(record):
    ocv = record['ocv']
    steps = sorted(ocv['steps'], key=lambda step: step['x1'])
    assert steps[0]['x1'] == 0.5 and steps[-1]['x2'] == 0.75  # the computed fractions, no end members
    y = np.array(ocv['x'])
    x = 0.5 + 0.25 * y
    step_voltage = np.empty_like(y)
    step_error = np.empty_like(y)
    for k, value in enumerate(x):  # the step that holds x (a vertex belongs to the richer step)
        step = next(s for s in steps if value < s['x2']) if value < steps[-1]['x2'] else steps[-1]
        step_voltage[k], step_error[k] = step['voltage'], step['voltage_error']
    assert np.allclose(ocv['V'], step_voltage - KB_EV * 300.0 * np.log(y / (1 - y)), atol=1e-9)
    assert np.allclose(ocv['V_sigma'], step_error)
    assert np.all(np.diff(ocv['V']) < 0)
    # pymatgen's average voltage: energy over capacity, i.e. the steps' voltages weighted by their x ranges
    widths = np.array([s['x2'] - s['x1'] for s in steps])
    voltages = np.array([s['voltage'] for s in steps])
    assert ocv['average_voltage'] == pytest.approx(float(widths @ voltages / widths.sum()), rel=1e-6)


@pytest.mark.integration
def test_every_table_descends_from_pw_calculations(record):
    # D(x): the labels of the imported potential; OCV(x): those and the guest's 5 EOS labels
    assert record['pw_ancestors']['potential'] == POTENTIAL_LABELS
    assert record['pw_ancestors']['diffusivity'] == POTENTIAL_LABELS
    assert record['pw_ancestors']['ocv'] == POTENTIAL_LABELS + 5


@pytest.mark.integration
def test_summary_carries_the_band(record):
    summary = record['summary']
    assert summary['ensemble_size'] == record['band_draws'] == 3
    assert summary['average_voltage_V'] == pytest.approx(record['ocv']['average_voltage'])
    for rate, capacity in zip(('1C', '10C'), record['rate_capability']):
        assert summary['rate_capability'][rate]['capacity'] == pytest.approx(capacity)
        lower, upper = summary['rate_capability'][rate]['band_95']
        assert lower <= upper
    # the faster rate delivers no more (a diffusion-limited particle)
    assert record['rate_capability'][1] <= record['rate_capability'][0] + 1e-9


@pytest.mark.integration
def test_report_draws_the_provenance_summary_with_dft_counts(record):
    """The summary picture names every stage with its own pw.x count; the counts add up to the run's total."""
    source = record['provenance_source']
    assert f'{record["pw_total"]} pw.x calculations in all' in source
    assert f'DftLabelingWorkChain<{record["reference_pk"]}>\\nok; 5 pw.x' in source  # the guest's five strains
    for stage in ('MdProductionWorkChain', 'ThermodynamicsWorkChain', 'ElectrodeWorkChain'):
        assert stage in source
    # entered with the potential: no learning stage, the potential drawn as given
    assert 'ActiveLearningWorkChain' not in source
    assert 'root -> data_potential [label=given' in source
    assert 'data_diffusivity -> stage_electrode' in source and 'data_ocv -> stage_electrode' in source
    files = dict(record['report_files'])
    assert any(name.startswith('provenance_summary_') for name in files)
    assert any(name.startswith('handover_tables_') for name in files)
    assert any(name.startswith('electrode/') for name in files)  # the stages' own plots, in their folders
    assert all(size > 1000 for size in files.values())
