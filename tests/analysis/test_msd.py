"""MSD by FFT against the direct estimator; unwrapping in triclinic / fluctuating cells."""

import numpy as np
import pytest

from aiida_mscale.analysis.msd import collective_msd, msd_by_species, msd_direct, msd_fft, tracer_msd, unwrap_positions


def test_fft_msd_equals_direct(rng):
    x = rng.normal(size=(257, 5, 3)).cumsum(axis=0) + 100.0  # odd length, offset origin
    np.testing.assert_allclose(msd_fft(x), msd_direct(x), rtol=0, atol=1e-10)
    np.testing.assert_allclose(msd_fft(x, per_dimension=True), msd_direct(x, per_dimension=True), atol=1e-10)


def test_fft_msd_uncorrelated_noise_plateau(rng):
    # white noise of variance s^2 per axis: MSD(m>0) = 2*3*s^2 exactly in expectation
    x = rng.normal(scale=0.5, size=(4000, 50, 3))
    m = msd_fft(x).mean(axis=1)
    assert abs(m[1:100].mean() - 6 * 0.25) < 0.01


def test_fft_msd_ballistic_exact():
    # x = v t exactly: MSD(m) = |v|^2 (m dt)^2 at every lag
    t = np.arange(64) * 0.5
    v = np.array([1.0, -2.0, 0.5])
    x = t[:, None, None] * v[None, None, :]
    np.testing.assert_allclose(msd_fft(x)[:, 0], (v @ v) * t**2, atol=1e-9)


def test_unwrap_triclinic_recovers_trajectory(rng, random_walk, triclinic_cell, wrap):
    x, w, _ = random_walk(rng, 400, 20, 0.1, (0.5, 1.0, 2.0))
    u = unwrap_positions(w, triclinic_cell)
    np.testing.assert_allclose(u - u[0], x - x[0], atol=1e-9)
    # wrapped coordinates really did cross boundaries
    assert np.abs(np.diff(w, axis=0)).max() > 5.0


def test_unwrap_fluctuating_cell(rng, triclinic_cell):
    # NPT-like: the cell breathes per frame; atoms diffuse in fractional space and are wrapped
    n = 300
    scale = 1.0 + 0.02 * np.sin(np.linspace(0, 6, n))
    cells = scale[:, None, None] * triclinic_cell
    frac = rng.uniform(size=(1, 10, 3)) + np.cumsum(rng.normal(scale=0.02, size=(n, 10, 3)), axis=0)
    w = np.einsum('fai,fij->faj', frac - np.floor(frac), cells)
    u = unwrap_positions(w, cells)
    # independent reference: brute-force search over the 27 translations of the new cell for the
    # shortest step w(t+1) + n h(t+1) - w(t) (toroidal unwrapping, von Buelow et al. 2020)
    shifts = np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1])).reshape(3, -1).T
    ref = np.zeros_like(w)
    ref[0] = w[0]
    for f in range(1, n):
        cand = w[f][:, None, :] + (shifts @ cells[f])[None] - w[f - 1][:, None, :]
        best = np.argmin(np.linalg.norm(cand, axis=-1), axis=1)
        ref[f] = ref[f - 1] + cand[np.arange(10), best]
    np.testing.assert_allclose(u, ref, atol=1e-9)
    assert np.abs(u - w).max() > 5.0  # boundaries were crossed


def test_tracer_and_collective_for_independent_walkers(rng, random_walk):
    # independent walkers: collective per-ion MSD equals tracer MSD in expectation
    x, _, _ = random_walk(rng, 2000, 200, 0.1, (1.0, 1.0, 1.0))
    tr = tracer_msd(x)
    co = collective_msd(x)
    lag = 50
    assert abs(tr[lag] - 6 * 1.0 * lag * 0.1) / (6 * lag * 0.1) < 0.05
    assert abs(co[lag] / tr[lag] - 1.0) < 0.35  # one collective series: larger scatter
    # perfectly correlated ions: collective = N * tracer; centre of mass = tracer
    y = np.repeat(x[:, :1], 8, axis=1)
    np.testing.assert_allclose(collective_msd(y), 8 * tracer_msd(y), rtol=1e-10)
    np.testing.assert_allclose(collective_msd(y, normalization='centre_of_mass'), tracer_msd(y), rtol=1e-10)
    # charge weighting: weights q scale the collective MSD by (sum q)^2/N for correlated ions
    q = np.full(8, 2.0)
    np.testing.assert_allclose(collective_msd(y, charges=q), 4 * 8 * tracer_msd(y), rtol=1e-10)


def test_species_selection_and_wrapped_input(rng, random_walk, triclinic_cell):
    x, w, t = random_walk(rng, 200, 6, 0.1, (0.3, 0.3, 0.3))
    species = ['Na', 'Na', 'C', 'C', 'Na', 'N']
    m = tracer_msd(w, species, 'Na', cells=triclinic_cell)
    np.testing.assert_allclose(m, msd_direct(x[:, [0, 1, 4]]).mean(axis=1), atol=1e-9)
    res = msd_by_species(w, t, species, cells=triclinic_cell)
    assert set(res) == {'lag_time', 'Na', 'C', 'N'}
    np.testing.assert_allclose(res['Na']['tracer'], m, atol=1e-12)


def test_bad_inputs(rng, wrap):
    x = rng.normal(size=(10, 3, 3))
    with pytest.raises(ValueError, match='absent'):
        tracer_msd(x, ['Na', 'Na', 'C'], 'Li')
    with pytest.raises(ValueError, match='species has 2 entries'):
        tracer_msd(x, ['Na', 'C'], 'Na')
    with pytest.raises(ValueError, match=r'shape \(n_frames, n_atoms, 3\)'):
        tracer_msd(x[..., :2])
    with pytest.raises(ValueError, match='singular'):
        unwrap_positions(x, np.zeros((3, 3)))
    with pytest.raises(ValueError, match='cells has 4 frames'):
        unwrap_positions(x, np.stack([np.eye(3)] * 4))
    with pytest.raises(ValueError, match='non-monotonic'):
        msd_by_species(x, [0, 1, 2, 3, 5, 4, 6, 7, 8, 9], ['Na'] * 3)
    with pytest.raises(ValueError, match='NaN'):
        tracer_msd(np.full((4, 2, 3), np.nan))


def test_fft_msd_memory_is_linear_in_frames(rng):
    # 2^15 frames x 4 atoms: an O(N^2) lag x origin array would need ~8.6 GB; the FFT route needs
    # a few copies of the padded input. numpy reports its buffers to tracemalloc.
    import tracemalloc

    x = rng.normal(size=(1 << 15, 4, 3)).cumsum(axis=0)
    tracemalloc.start()
    m = msd_fft(x)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20 * x.nbytes
    np.testing.assert_allclose(m[[1, 10, 100]].mean(axis=1), 3.0 * np.array([1, 10, 100]), rtol=0.15)
