"""RDF against analytic references; per-ion descriptors on trajectories with known motion."""

import numpy as np
import pytest

from aiida_mscale.analysis.descriptors import (
    assign_sites,
    cluster_sizes,
    coordination_numbers,
    find_sites,
    free_volume_fraction,
    ion_descriptors,
    motion_descriptors,
    nearest_distance,
    residence_times,
    site_hops,
)
from aiida_mscale.analysis.rdf import first_minimum, radial_distribution, running_coordination

FCC_BASIS = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def fcc(a, n):
    g = np.array(np.meshgrid(*[np.arange(n)] * 3, indexing='ij')).reshape(3, -1).T
    return ((g[:, None, :] + FCC_BASIS[None]).reshape(-1, 3)) * a, np.eye(3) * a * n


def test_rdf_ideal_gas_is_one(rng, triclinic_cell):
    # uniform random points in a triclinic cell: g(r) = 1 (Poisson), checked beyond the cell half-width
    pos = rng.uniform(size=(20, 300, 3)) @ triclinic_cell
    r, g = radial_distribution(pos, triclinic_cell, r_max=6.0, n_bins=12)
    assert np.all(np.abs(g[2:] - 1.0) < 0.06), g


def test_rdf_fcc_shells_and_first_minimum(rng):
    a = 3.6
    pos, cell = fcc(a, 4)
    pos = pos + rng.normal(scale=0.06, size=pos.shape)  # shells stay > 5 sigma from the gap centre
    species = ['Cu'] * len(pos)
    r, g = radial_distribution(pos, cell, species, ('Cu', 'Cu'), r_max=5.0, n_bins=250)
    # first minimum between the 1st (a/sqrt(2) = 2.546 A) and 2nd (3.6 A) shell; mean distance in
    # the first shell = a/sqrt(2) + O(noise^2/r)
    rc = first_minimum(r, g)
    assert 2.8 < rc < 3.45
    sh = r < rc
    w = g[sh] * r[sh] ** 2
    assert np.sum(w * r[sh]) / np.sum(w) == pytest.approx(a / np.sqrt(2), abs=0.02)
    # integral up to the minimum counts the 12 nearest neighbours
    n = running_coordination(r, g, len(pos) / np.linalg.det(cell))
    assert n[np.searchsorted(r, rc)] == pytest.approx(12.0, abs=0.1)
    # and the coordination number from the neighbour count agrees
    assert np.all(coordination_numbers(pos, cell, species, 'Cu', 'Cu', rc) == 12)


def test_motion_descriptors_hand_values():
    # ion 0 moves 1 A along x per frame (straight line), ion 1 oscillates +-0.5 A in x
    n = 11
    x = np.zeros((n, 2, 3))
    x[:, 0, 0] = np.arange(n)
    x[:, 1, 0] = 0.5 * (-1) ** np.arange(n)
    d = motion_descriptors(x, window=5, stride=5)
    np.testing.assert_allclose(d['displacement'][:, 0], 4.0)
    np.testing.assert_allclose(d['path_length'][:, 0], 4.0)
    np.testing.assert_allclose(d['tortuosity'][:, 0], 1.0)
    np.testing.assert_allclose(d['displacement'][:, 1], 0.0, atol=1e-12)
    np.testing.assert_allclose(d['path_length'][:, 1], 4.0)
    # in-window MSD at lag 2: ion 0 -> 4 A^2, ion 1 -> 0 (period 2)
    np.testing.assert_allclose(d['mobility'][:, 0], np.log10(4.0 + 1e-6))
    assert np.all(d['mobility'][:, 1] < -5)


def test_sites_hops_and_residence_times(rng):
    cell = np.eye(3) * 6.0
    sites = np.array([[1.0, 1.0, 1.0], [4.0, 1.0, 1.0]])
    # one ion: 10 frames on site 0, 3 transit frames, 7 on site 1, 5 on site 0 (wrapping x)
    path = [sites[0]] * 10 + [np.array([2.5, 1.0, 1.0])] * 3 + [sites[1]] * 7 + [sites[0] + [6.0, 0, 0]] * 5
    pos = np.array(path)[:, None, :] + rng.normal(scale=0.05, size=(25, 1, 3))
    lab = assign_sites(np.mod(pos, 6.0), cell, sites, 0.6)
    assert np.sum(lab == -1) == 3
    filled, hop = site_hops(lab)
    assert hop.sum() == 2
    res = residence_times(lab, dt=0.5)
    # transit frames count for the last occupied site: runs of 13, 7 and 5 frames
    np.testing.assert_allclose(res[0], [7 * 0.5])  # only the middle run is complete
    res_all = residence_times(lab, dt=0.5, include_truncated=True)
    np.testing.assert_allclose(res_all[0], [6.5, 3.5, 2.5])
    # sites found back from the pooled positions of a vibrating population
    pts = np.concatenate([s + rng.normal(scale=0.15, size=(200, 3)) for s in sites])
    found = find_sites(np.mod(pts, 6.0), cell, radius=0.6)
    assert len(found) == 2
    dmin = [np.min(np.linalg.norm(np.mod(found - s + 3, 6) - 3, axis=1)) for s in sites]
    assert max(dmin) < 0.05


def test_structure_descriptor_functions():
    cell = np.eye(3) * 20.0
    # a chain of 3 Li 2 A apart, one isolated Li, one host atom
    frame = np.array([[1, 1, 1], [3, 1, 1], [5, 1, 1], [15, 15, 15], [1, 4, 1.0]], float)
    np.testing.assert_array_equal(cluster_sizes(frame, cell, [0, 1, 2, 3], 2.5), [3, 3, 3, 1])
    np.testing.assert_allclose(nearest_distance(frame, cell, [0, 3], [4], 6.0), [3.0, 6.0])
    # an isolated atom has all free volume; an atom with a neighbour 1.0 A away loses a known cap:
    f = free_volume_fraction(frame, cell, [3], probe_radius=2.0, exclusion_radius=1.0)
    assert f[0] == 1.0
    two = np.array([[5, 5, 5], [6.0, 5, 5]])
    f2 = free_volume_fraction(two, cell, [0], probe_radius=2.0, exclusion_radius=1.0, n_probe=20000)
    # excluded: ball(r=1) centred 1 A away, entirely inside the probe ball: (1/2)^3 of its volume
    assert f2[0] == pytest.approx(1 - 0.125, abs=0.01)


def test_ion_descriptors_on_hopper_trap_trajectory(rng, hopper_trap_trajectory):
    pos, cell, t, species, truth = hopper_trap_trajectory(rng, n_frames=200)
    d = ion_descriptors(pos, cell, t, species, 'Na', window=40, stride=40, frame_stride=5)
    assert d['X'].shape == (5 * len(truth), len(d['names']))
    pw = d['per_window']
    hop, trap = truth == 1, truth == 0
    assert pw['jump_count'][:, trap].sum() == 0  # trapped ions never change site
    assert pw['jump_count'][:, hop].mean() > 1.5  # ~0.1/frame x 39 frames, minus blocked hops
    assert pw['displacement'][:, hop].mean() > 5 * pw['displacement'][:, trap].mean()
    # every Na sits in a cube of 8 C at sqrt(3)*1.5 = 2.6 A: CN 8 with the RDF-minimum cutoff
    assert abs(pw['cn_Na-C'].mean() - 8.0) < 0.05
    # nearest C distance: independent brute-force minimum image over all frames of the first window
    L = cell[0, 0]
    na, c = pos[:40, len(species) - len(truth) :], pos[:40, : len(species) - len(truth)]
    diff = na[:, :, None, :] - c[:, None, :, :]
    diff -= L * np.rint(diff / L)
    ref = np.linalg.norm(diff, axis=-1).min(axis=2)[::5].mean(axis=0)
    np.testing.assert_allclose(pw['nearest_host'][0], ref, atol=1e-9)
    assert 2.0 < ref.mean() < np.sqrt(3) * 1.5  # minimum of 8 noisy distances of 2.6 A
    assert 2.6 < d['cutoffs']['C'] < 3.9
    assert d['cutoff_source'] == {'C': 'rdf_first_minimum', 'Na': 'rdf_first_minimum'}
    # sites found from the Na positions: distinct cube centres (3 A apart), none duplicated
    from aiida_mscale.analysis._geometry import minimum_image_vectors

    sd = np.linalg.norm(minimum_image_vectors(d['sites'], d['sites'], cell), axis=-1)
    sd[np.diag_indices_from(sd)] = np.inf
    assert sd.min() > 2.5
    frac = np.mod(d['sites'] / 3.0 - 0.5, 1.0)  # sites sit at (i + 1/2) a
    assert np.all(np.minimum(frac, 1 - frac) < 0.1)


def test_bad_inputs(rng):
    with pytest.raises(ValueError, match='too few frames'):
        motion_descriptors(rng.normal(size=(5, 2, 3)), window=10, stride=1)
    with pytest.raises(ValueError, match='absent'):
        radial_distribution(rng.normal(size=(4, 3)), np.eye(3) * 5, ['A'] * 4, ('A', 'B'))
    with pytest.raises(ValueError, match='absent'):
        ion_descriptors(
            rng.uniform(size=(30, 4, 3)) * 10, np.eye(3) * 10, np.arange(30) * 0.1, ['C'] * 4, 'Na', window=10
        )
    with pytest.raises(ValueError, match='frame_stride'):
        ion_descriptors(
            rng.uniform(size=(30, 4, 3)) * 10,
            np.eye(3) * 10,
            np.arange(30) * 0.1,
            ['Na'] * 4,
            'Na',
            window=10,
            frame_stride=11,
        )
    with pytest.raises(ValueError, match='cell too small'):
        ion_descriptors(
            rng.uniform(size=(30, 4, 3)) * 4,
            np.eye(3) * 4,
            np.arange(30) * 0.1,
            ['Na', 'C', 'C', 'C'],
            'Na',
            window=10,
            sites=[[1.0, 1.0, 1.0]],
            cutoffs={'Na': 1.0, 'C': 1.0},
        )
    with pytest.raises(ValueError, match='no peak'):
        first_minimum(np.linspace(0, 5, 50), np.full(50, 0.9))


@pytest.mark.parametrize('cutoff', [2.0, 4.5, 7.9])  # 8.0 = |2 a1| would be a tie
def test_neighbor_pairs_brute_force(rng, cutoff):
    # independent reference: explicit sum over 13^3 lattice translations, skewed cell, cutoffs
    # up to twice the cell width, positions partly outside the cell
    from aiida_mscale.analysis._geometry import neighbor_pairs

    cell = np.array([[4.0, 0, 0], [1.8, 3.9, 0], [0.7, 0.9, 4.2]])
    pos = rng.uniform(-0.2, 1.2, size=(25, 3)) @ cell
    i, j, d = neighbor_pairs(pos, cell, cutoff, 'ijd')
    shifts = np.array(np.meshgrid(*[np.arange(-6, 7)] * 3, indexing='ij')).reshape(3, -1).T @ cell
    for a in range(len(pos)):
        dd = np.linalg.norm(pos[None, :, :] + shifts[:, None, :] - pos[a], axis=-1)
        ref = dd[(dd < cutoff) & (dd > 1e-10)]
        np.testing.assert_allclose(np.sort(d[i == a]), np.sort(ref), atol=1e-9)
        s, k = np.nonzero((dd < cutoff) & (dd > 1e-10))
        np.testing.assert_array_equal(np.bincount(j[i == a], minlength=len(pos)), np.bincount(k, minlength=len(pos)))


def test_neighbor_pairs_match_ase(rng):
    import ase.neighborlist as nl

    from aiida_mscale.analysis._geometry import neighbor_pairs

    cell = np.array([[9.0, 0, 0], [1.0, 8.5, 0], [0.5, 0.8, 9.5]])
    pos = rng.uniform(size=(120, 3)) @ cell
    a = nl.primitive_neighbor_list('ijd', (True, True, True), cell, pos, 3.5)
    b = neighbor_pairs(pos, cell, 3.5, 'ijd')
    oa, ob = np.lexsort(a[::-1]), np.lexsort(b[::-1])
    np.testing.assert_array_equal(a[0][oa], b[0][ob])
    np.testing.assert_array_equal(a[1][oa], b[1][ob])
    np.testing.assert_allclose(a[2][oa], b[2][ob], atol=1e-10)


def test_tree_based_descriptors_equal_the_pair_functions(rng):
    """The per-frame k-d tree path of ion_descriptors (coordination, nearest host, free volume, clusters, site
    labels) equals the single-frame pair functions and a brute-force minimum image, in a skewed cell."""
    from aiida_mscale.analysis._geometry import minimum_image_vectors

    cell = np.array([[11.0, 0, 0], [2.5, 10.5, 0], [1.5, 2.0, 12.0]])
    n_frames, n_host, n_na = 3, 60, 25
    frac = rng.uniform(size=(1, n_host + n_na, 3)) + rng.normal(scale=0.01, size=(n_frames, n_host + n_na, 3))
    pos = np.einsum('fai,ij->faj', np.mod(frac, 1.0), cell)
    species = ['O'] * n_host + ['Na'] * n_na
    im = np.arange(n_host, n_host + n_na)
    cut = {'O': 2.6, 'Na': 3.1}
    sites = rng.uniform(size=(30, 3)) @ cell
    d = ion_descriptors(pos, cell, np.arange(n_frames) * 0.1, species, 'Na', window=3, cutoffs=cut, sites=sites)
    pw = {k: v[0] for k, v in d['per_window'].items()}  # one window = the mean over the 3 frames
    for x in ('O', 'Na'):
        ref = np.mean([coordination_numbers(p, cell, species, 'Na', x, cut[x]) for p in pos], axis=0)
        np.testing.assert_allclose(pw[f'cn_Na-{x}'], ref)
    ref = np.mean([nearest_distance(p, cell, im, np.arange(n_host), 6.0) for p in pos], axis=0)
    np.testing.assert_allclose(pw['nearest_host'], ref, atol=1e-12)
    ref = np.mean([free_volume_fraction(p, cell, im) for p in pos], axis=0)
    np.testing.assert_allclose(pw['free_volume'], ref, atol=1e-12)
    ref = np.mean([cluster_sizes(p, cell, im, cut['Na']) for p in pos], axis=0)
    np.testing.assert_allclose(pw['cluster_size'], ref)
    # site labels: brute-force nearest site over the 27 neighbouring images
    lab = assign_sites(pos[:, im], cell, sites, 1.2)
    for f in range(n_frames):
        dist = np.linalg.norm(minimum_image_vectors(pos[f, im], sites, cell), axis=-1)
        ref = np.where(dist.min(axis=1) <= 1.2, dist.argmin(axis=1), -1)
        np.testing.assert_array_equal(lab[f], ref)
    assert np.any(lab >= 0) and np.any(lab < 0)
