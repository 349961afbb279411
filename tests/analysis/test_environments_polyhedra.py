"""Steinhardt environments (fcc / bcc phases) and polyhedral distortion against hand values."""

import numpy as np
import pytest

from aiida_mscale.analysis.environments import (
    DESCRIPTOR_NAMES,
    class_fractions,
    fit_environment_classes,
    local_environment_descriptors,
    steinhardt,
)
from aiida_mscale.analysis.modes import mode_agreement
from aiida_mscale.analysis.polyhedra import polyhedral_distortion, polyhedron_distortion

FCC = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
BCC = np.array([[0, 0, 0], [0.5, 0.5, 0.5]])


def grid(nx, ny, nz):
    return np.array(np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing='ij')).reshape(3, -1).T


def lattice(basis, a, n):
    return ((grid(*n)[:, None, :] + basis[None]).reshape(-1, 3)) * a


def two_phase(rng, nfx=24, nbx=30, noise=0.1):
    """fcc (a=3.6) slab and bcc (a=2.88) slab side by side along x; y, z = 14.4 A for both."""
    af, ab, gap = 3.6, 2.88, 1.62
    fcc = lattice(FCC, af, (nfx, 4, 4))
    bcc = lattice(BCC, ab, (nbx, 5, 5))
    x0 = (2 * nfx - 1) * af / 2 + gap
    bcc[:, 0] += x0
    cell = np.diag([x0 + (2 * nbx - 1) * ab / 2 + gap, 14.4, 14.4])
    pos = np.concatenate([fcc, bcc]) + rng.normal(scale=noise, size=(len(fcc) + len(bcc), 3))
    return pos, cell, np.r_[np.zeros(len(fcc), int), np.ones(len(bcc), int)]


def test_steinhardt_ideal_lattices():
    # reference values for perfect lattices (Steinhardt et al. 1983; e.g. Mickel et al. JCP 138,
    # 044501 (2013)): fcc (12 nn) q4 = 0.19094, q6 = 0.57452; bcc (8 nn) q4 = 0.50918, q6 = 0.62854;
    # sc (6 nn) q4 = 0.76376, q6 = 0.35355
    f = steinhardt(lattice(FCC, 3.6, (3, 3, 3)), np.eye(3) * 10.8, 3.0)
    b = steinhardt(lattice(BCC, 2.88, (4, 4, 4)), np.eye(3) * 11.52, 2.6)
    s = steinhardt(lattice(np.zeros((1, 3)), 2.5, (4, 4, 4)), np.eye(3) * 10.0, 2.6)
    for res, q4, q6, cn in ((f, 0.19094, 0.57452, 12), (b, 0.50918, 0.62854, 8), (s, 0.76376, 0.35355, 6)):
        np.testing.assert_allclose(res['q4'], q4, atol=1e-4)
        np.testing.assert_allclose(res['q6'], q6, atol=1e-4)
        np.testing.assert_allclose(res['q4_avg'], q4, atol=1e-4)  # all atoms equivalent
        np.testing.assert_array_equal(res['coordination'], cn)
    # rotation invariance: rotate the fcc crystal (and its cell) by an arbitrary rotation
    th = 0.7
    R = np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1]]) @ np.array(
        [[1, 0, 0], [0, np.cos(0.3), -np.sin(0.3)], [0, np.sin(0.3), np.cos(0.3)]]
    )
    fr = steinhardt(lattice(FCC, 3.6, (3, 3, 3)) @ R.T, (np.eye(3) * 10.8) @ R.T, 3.0)
    np.testing.assert_allclose(fr['q6'], 0.57452, atol=1e-4)


def test_bond_angle_statistics_fcc():
    X = local_environment_descriptors(lattice(FCC, 3.6, (3, 3, 3)), np.eye(3) * 10.8, 3.0)
    k = {n: i for i, n in enumerate(DESCRIPTOR_NAMES)}
    # fcc: 66 neighbour pairs, cosines: 24 x 0.5, 12 x 0, 24 x -0.5, 6 x -1 -> mean -1/11
    np.testing.assert_allclose(X[:, k['cos_mean']], -1 / 11, atol=1e-12)
    np.testing.assert_allclose(X[:, k['frac_linear']], 6 / 66, atol=1e-12)
    c = np.r_[[0.5] * 24, [0.0] * 12, [-0.5] * 24, [-1.0] * 6]
    np.testing.assert_allclose(X[:, k['cos_std']], c.std(), atol=1e-12)


def test_two_phase_per_atom_classification(rng):
    pos, cell, truth = two_phase(rng)
    X = local_environment_descriptors(pos, cell, 3.2)
    model = fit_environment_classes(X, 3.2, n_classes=2)
    assert mode_agreement(model.predict(X), truth) > 0.95
    # a new, independently perturbed configuration labelled with the trained classifier
    pos2, _, _ = two_phase(rng)
    lab = model.predict_frame(pos2, cell)
    acc = np.mean(lab == truth)  # classes are ordered by q6_avg: bcc (lower) = 0 would flip this
    acc = max(acc, 1 - acc)
    assert acc > 0.95
    # the fcc class (higher q6_avg) gets index 1, and class fractions follow the phase fractions
    assert np.mean(lab[truth == 0] == 1) > 0.9
    fr = class_fractions(np.stack([pos, pos2]), cell, model)
    np.testing.assert_allclose(fr.sum(axis=1), 1.0)
    assert abs(fr[1, 1] - np.mean(truth == 0)) < 0.05


def test_trained_classifier_on_a_pure_phase(rng):
    # the classifier trained on the two-phase box labels a separate pure-fcc crystal as fcc
    pos, cell, truth = two_phase(rng, nfx=12, nbx=15)
    model = fit_environment_classes(local_environment_descriptors(pos, cell, 3.2), 3.2, n_classes=2)
    pure_fcc = lattice(FCC, 3.6, (8, 4, 4)) + rng.normal(scale=0.1, size=(512, 3))
    fr = class_fractions(pure_fcc[None], np.diag([28.8, 14.4, 14.4]), model)
    assert fr[0, 1] > 0.95  # pure fcc: (almost) all atoms in the fcc class


def test_ideal_octahedron_has_zero_distortion():
    L = 2.0 * np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
    r = polyhedron_distortion([0, 0, 0], L)
    assert r['bond_angle_variance'] == pytest.approx(0.0, abs=1e-10)
    assert r['quadratic_elongation'] == pytest.approx(1.0, abs=1e-12)
    assert r['off_centring'] == pytest.approx(0.0, abs=1e-12)
    assert r['volume'] == pytest.approx(4 / 3 * 8.0)


def test_off_centred_octahedron_hand_values():
    # centre displaced by d along z inside an ideal octahedron of radius a:
    # 4 angles 90 + atan(d/a), 4 angles 90 - atan(d/a), 4 equatorial acos(d^2/(a^2+d^2));
    # sigma^2 = [8 atan(d/a)^2 + 4 (acos(d^2/(a^2+d^2)) - 90)^2] / 11 (degrees);
    # bond lengths 4 x sqrt(a^2+d^2), a-d, a+d; same volume => l0 = a, <lambda> = 1 + d^2/a^2
    a, d = 2.0, 0.3
    L = a * np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
    r = polyhedron_distortion([0, 0, d], L)
    dl = np.degrees(np.arctan(d / a))
    eq = np.degrees(np.arccos(d * d / (a * a + d * d)))
    assert r['bond_angle_variance'] == pytest.approx((8 * dl**2 + 4 * (eq - 90) ** 2) / 11, rel=1e-10)
    assert r['bond_angle_variance'] == pytest.approx(53.5046, abs=1e-3)
    assert r['quadratic_elongation'] == pytest.approx(1 + d * d / (a * a), rel=1e-10)
    assert r['off_centring'] == pytest.approx(d)


def test_elongated_octahedron_and_tetrahedron():
    # tetragonal elongation (axial c, equatorial a): angles stay 90 deg -> sigma^2 = 0;
    # V = 4 a^2 c / 3 = (4/3) l0^3 -> <lambda> = (4 a^2 + 2 c^2) / (6 (a^2 c)^(2/3))
    a, c = 2.0, 2.3
    L = np.array([[a, 0, 0], [-a, 0, 0], [0, a, 0], [0, -a, 0], [0, 0, c], [0, 0, -c]])
    r = polyhedron_distortion(np.zeros(3), L)
    assert r['bond_angle_variance'] == pytest.approx(0.0, abs=1e-10)
    assert r['quadratic_elongation'] == pytest.approx((4 * a * a + 2 * c * c) / (6 * (a * a * c) ** (2 / 3)))
    # regular tetrahedron: zero distortion, theta_0 = 109.47 deg
    T = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) * 1.2
    t = polyhedron_distortion(np.zeros(3), T)
    assert t['polyhedron'] == 'tetrahedron'
    assert t['bond_angle_variance'] == pytest.approx(0.0, abs=1e-9)
    assert t['quadratic_elongation'] == pytest.approx(1.0, abs=1e-12)


def test_polyhedra_in_periodic_frame(rng):
    # rock-salt MO: every M is octahedrally coordinated by O, incl. across the periodic boundary
    a = 4.2
    m = lattice(FCC, a, (2, 2, 2))
    o = m + [a / 2, 0, 0]
    frame = np.concatenate([m, o])
    species = ['Mn'] * len(m) + ['O'] * len(o)
    cell = np.eye(3) * 2 * a
    res = polyhedral_distortion(frame, cell, species, 'Mn', 'O', n_ligands=6)
    np.testing.assert_allclose(res['bond_angle_variance'], 0.0, atol=1e-9)
    np.testing.assert_allclose(res['quadratic_elongation'], 1.0, atol=1e-12)
    np.testing.assert_allclose(res['mean_bond_length'], a / 2)
    with pytest.raises(ValueError, match='absent'):
        polyhedral_distortion(frame, cell, species, 'Fe', 'O')
    with pytest.raises(ValueError, match='only tetrahedra'):
        polyhedron_distortion(np.zeros(3), np.eye(3)[:3] * 2 + 0.1 * rng.normal(size=(3, 3)))
    with pytest.raises(ValueError, match='fewer than 6'):
        polyhedral_distortion(frame, cell, species, 'Mn', 'O', cutoff=1.5)


def test_bad_inputs():
    with pytest.raises(ValueError, match='cutoff'):
        local_environment_descriptors(np.zeros((4, 3)), np.eye(3) * 5, -1.0)
    with pytest.raises(ValueError, match='columns'):
        fit_environment_classes(np.zeros((100, 3)), 3.0)
    with pytest.raises(ValueError, match='too few atoms'):
        fit_environment_classes(np.random.default_rng(0).normal(size=(10, 8)), 3.0)
