"""Diffusion modes on mixtures of known populations; label rule; random-forest importance vs analytic values."""

import functools

import numpy as np
import pytest
from conftest import POPULATIONS, mixture_trajectory

from aiida_mscale.analysis.descriptors import ion_descriptors
from aiida_mscale.analysis.importance import mobility_importance
from aiida_mscale.analysis.modes import bhattacharyya_distance, diffusion_modes, ion_modes, label_mode, mode_agreement

#: the label the rule must give each synthetic population
EXPECTED_LABEL = {'free': 'free', 'hopping': 'hopping', 'trapped': 'vibrating', 'clustered': 'clustered'}


@functools.cache
def _mixture(populations, seed):
    return mixture_trajectory(np.random.default_rng(seed), populations)


@pytest.mark.parametrize(
    'populations, window, stride',
    [
        (('free', 'trapped'), 20, 20),
        (('free', 'trapped'), 10, 5),
        (('free', 'hopping', 'trapped'), 20, 20),
        (('free', 'hopping', 'trapped'), 40, 10),
        (('free', 'hopping', 'trapped', 'clustered'), 10, 5),
        (('free', 'hopping', 'trapped', 'clustered'), 40, 10),
    ],
)
def test_known_populations_give_their_number_of_modes(rng, populations, window, stride):
    """2, 3 and 4 populations (free walkers in a liquid-like channel, site hoppers, isolated trapped ions, clusters
    of four), sampled with short overlapping and long windows: exactly one mode per population, >= 90 % of the
    ions in the mode of their population, and every mode labelled as its population."""
    pos, cell, t, species, truth = _mixture(populations, int(rng.integers(1 << 30)))
    d = ion_descriptors(pos, cell, t, species, 'Na', window=window, stride=stride, frame_stride=2, cutoffs={'Na': 3.3})
    m = diffusion_modes(d['X'], d['names'], d['mobility'], ion=d['ion'], window_start=d['window_start'], window=window)
    first = len(species) - len(truth)
    ions, mode_of_ion = ion_modes(m['labels'], d['ion'])
    true_of_ion = truth[ions - first]
    print(
        f'\n{populations} window {window} stride {stride}: {m["n_components"]} components -> {m["n_modes"]} modes '
        f'{[mm["label"] for mm in m["modes"]]}, per-ion agreement {mode_agreement(mode_of_ion, true_of_ion):.3f}, '
        f'per-sample {mode_agreement(m["labels"], truth[d["ion"] - first]):.3f}'
    )
    assert m['n_modes'] == len(populations)
    assert mode_agreement(mode_of_ion, true_of_ion) >= 0.9
    for k, name in enumerate(POPULATIONS):
        if name in populations:  # the mode most of this population's ions are in carries its label
            mode = np.bincount(mode_of_ion[true_of_ion == k]).argmax()
            assert m['modes'][mode]['label'] == EXPECTED_LABEL[name], (name, m['modes'][mode])


def test_hoppers_and_trapped_ions_split_into_two_modes(rng, hopper_trap_trajectory):
    pos, cell, t, species, truth = hopper_trap_trajectory(rng)
    # Na-Na link = nearest sites only (3 A apart); C cutoff from the RDF minimum
    d = ion_descriptors(pos, cell, t, species, 'Na', window=40, stride=20, frame_stride=4, cutoffs={'Na': 3.3})
    first_na = len(species) - len(truth)
    sample_truth = truth[d['ion'] - first_na]
    motion = ['displacement', 'path_length', 'tortuosity', 'jump_count']
    windows = {'ion': d['ion'], 'window_start': d['window_start'], 'window': 40}
    m = diffusion_modes(d['X'], d['names'], d['mobility'], cluster_on=motion, **windows)
    assert m['n_modes'] == 2
    assert mode_agreement(m['labels'], sample_truth) > 0.9
    # mode 0 is the most mobile; it holds the hoppers and is labelled so; the trapped ions sit in
    # equivalent cages (no open voids): 'vibrating', or 'clustered' when the random placement
    # happened to put them in clusters of >= 3 on average (the rule's threshold)
    assert m['modes'][0]['label'] == 'hopping'
    trapped_cluster = m['modes'][1]['centroid']['cluster_size']
    assert m['modes'][1]['label'] == ('clustered' if trapped_cluster >= 3 else 'vibrating')
    assert np.mean(sample_truth[m['labels'] == 0]) > 0.9
    assert m['modes'][0]['mean_mobility'] > m['modes'][1]['mean_mobility'] + 1.0
    assert sum(mm['population'] for mm in m['modes']) == pytest.approx(1.0)
    assert abs(m['modes'][0]['population'] - 0.5) < 0.1
    assert m['embedding'].shape == (len(sample_truth), 2)
    assert m['used_descriptors'] == motion
    # with every descriptor the mixture may resolve sub-modes (e.g. hoppers slowed down in
    # crowded regions), but the modes labelled 'hopping' still hold the hoppers
    m_all = diffusion_modes(d['X'], d['names'], d['mobility'], cluster_on='all', **windows)
    hopping = np.isin(m_all['labels'], [mm['index'] for mm in m_all['modes'] if mm['label'] == 'hopping'])
    assert np.mean(hopping == (sample_truth == 1)) > 0.9


def test_single_population_gives_one_mode(rng):
    X = rng.normal(size=(300, 4)) * [1.0, 2.0, 0.5, 3.0] + [1, 2, 3, 4]
    m = diffusion_modes(X, ['a', 'b', 'c', 'd'])
    assert m['n_modes'] == 1


def test_label_rule():
    mean = {'free_volume': 0.3}
    std = {'free_volume': 0.1}
    base = {'jump_count': 0.0, 'displacement': 0.3, 'cluster_size': 1.2, 'free_volume': 0.3}
    assert label_mode(base, mean, std) == 'vibrating'
    assert label_mode({**base, 'jump_count': 2.0}, mean, std) == 'hopping'
    assert label_mode({**base, 'jump_count': 0.4}, mean, std) == 'vibrating'  # below min_jumps=0.5
    assert label_mode({**base, 'cluster_size': 4.0}, mean, std) == 'clustered'
    assert label_mode({**base, 'free_volume': 0.45}, mean, std) == 'void-trapped'  # z = 1.5
    assert label_mode({**base, 'free_volume': 0.38}, mean, std) == 'vibrating'  # z = 0.8
    # displacement and hops are used together: a mode that moves far without site hops is 'free', whether or not
    # a jump count exists (fast walkers moving ~15 A per window are not 'vibrating'); hops off sites are 'free'
    assert label_mode({**base, 'displacement': 15.0}, mean, std) == 'free'
    nojump = {k: v for k, v in base.items() if k != 'jump_count'}
    assert label_mode({**nojump, 'displacement': 2.0}, mean, std) == 'free'
    assert label_mode({**nojump, 'displacement': 2.0}, mean, std, hop_distance=3.0) == 'vibrating'
    assert label_mode({**base, 'jump_count': 2.0, 'displacement': 4.0, 'site_occupancy': 0.95}, mean, std) == 'hopping'
    assert label_mode({**base, 'jump_count': 2.0, 'displacement': 4.0, 'site_occupancy': 0.2}, mean, std) == 'free'
    # a moving cluster is labelled by its motion, a localized one by its aggregation
    assert label_mode({**base, 'displacement': 5.0, 'cluster_size': 4.0}, mean, std) == 'free'
    with pytest.raises(ValueError, match='unknown label-rule'):
        label_mode(base, mean, std, min_jump=1)


def test_mode_agreement_is_permutation_invariant():
    assert mode_agreement([0, 0, 1, 1], [1, 1, 0, 0]) == 1.0
    assert mode_agreement([0, 0, 1, 1], [0, 1, 0, 1]) == 0.5
    ions, modes = ion_modes([0, 1, 1, 2, 0], [7, 7, 7, 9, 9])
    np.testing.assert_array_equal(ions, [7, 9])
    np.testing.assert_array_equal(modes, [1, 0])  # ion 9: a tie between modes 0 and 2 goes to the more mobile 0


def test_bhattacharyya_distance_hand_values():
    # equal covariances: D_B = Mahalanobis^2 / 8; equal means: D_B = ln((s1^2 + s2^2) / (2 s1 s2)) / 2 (1-D)
    assert bhattacharyya_distance([0, 0], np.eye(2), [4, 0], np.eye(2)) == pytest.approx(2.0)
    assert bhattacharyya_distance([1.0], [[1.0]], [1.0], [[4.0]]) == pytest.approx(0.5 * np.log(5 / 4))


def test_importance_matches_analytic_permutation_drop(rng):
    # y = 2 x0 + 0.7 tanh(x1) + noise: for an additive model, permuting x_j drops R^2 by
    # 2 Var(f_j) / Var(y); Var(2 x0) = 4, Var(0.7 tanh x1) = 0.49 E[tanh^2] = 0.1927 (x ~ N(0,1))
    n = 400
    X = rng.normal(size=(n, 4))
    y = 2 * X[:, 0] + 0.7 * np.tanh(X[:, 1]) + 0.1 * rng.normal(size=n)
    r = mobility_importance(X, y, ['a', 'b', 'c', 'd'], groups=np.arange(n) % 40, n_estimators=100)
    var_y = 4 + 0.1927 + 0.01
    assert r['ranking'][:2] == ['a', 'b']
    assert r['r2_cv'] > 0.9
    assert r['importance']['a'] == pytest.approx(2 * 4 / var_y, rel=0.1)
    assert 0.3 * (2 * 0.1927 / var_y) < r['importance']['b'] < 1.5 * (2 * 0.1927 / var_y)
    for k in ('c', 'd'):  # pure noise: importance compatible with zero
        assert abs(r['importance'][k]) < max(3 * r['importance_err'][k], 0.01)
    assert r['importance_err']['a'] > 0


def test_bad_inputs(rng):
    X = rng.normal(size=(50, 3))
    with pytest.raises(ValueError, match='match names'):
        diffusion_modes(X, ['a', 'b'])
    with pytest.raises(ValueError, match='NaN'):
        diffusion_modes(np.full((50, 2), np.nan), ['a', 'b'])
    with pytest.raises(ValueError, match='not descriptors'):
        diffusion_modes(X, ['a', 'b', 'c'], cluster_on=['a', 'z'])
    with pytest.raises(ValueError, match='needed together'):
        diffusion_modes(X, ['a', 'b', 'c'], ion=np.arange(50))
    with pytest.raises(ValueError, match='one entry per sample'):
        diffusion_modes(X, ['a', 'b', 'c'], ion=np.arange(5), window_start=np.arange(5), window=3)
    with pytest.raises(ValueError, match='constant'):
        mobility_importance(X, np.ones(50), ['a', 'b', 'c'])
    with pytest.raises(ValueError, match='groups'):
        mobility_importance(X, X[:, 0], ['a', 'b', 'c'], groups=np.arange(50) % 3)
    with pytest.raises(ValueError, match='too few samples'):
        mobility_importance(X[:6], X[:6, 0], ['a', 'b', 'c'])
