"""Untrained MTP templates: counts of MLIP's published templates, validity, invariance.

Pure numpy; the evaluator below is independent of the generator and of motep.
"""

import itertools
import string

import numpy as np
import pytest

from aiida_mscale.mtp import generate_untrained_mtp, parse_mtp
from aiida_mscale.mtp.template import basis_graphs, moment_level

# MLIP's published untrained templates (untrained_mtps/NN.mtp, RBChebyshev, size 8), from
# /work/shared/reference/mtp_template_counts.md:
# level: (radial_funcs_count, alpha_moments_count, alpha_index_basic_count,
#         alpha_index_times_count, alpha_scalar_moments or None if not recorded)
MLIP_COUNTS = {
    8: (2, 18, 11, 14, 9),
    12: (3, 84, 46, 117, 29),
    18: (5, 718, 201, 2634, 163),
    24: (6, 4991, 581, 36170, None),
}


@pytest.fixture(scope='module')
def templates():
    cache = {}

    def get(level):
        if level not in cache:
            cache[level] = generate_untrained_mtp(level)
        return cache[level]

    return get


# ----------------------------------------------------------------------------- counts
@pytest.mark.parametrize('level', sorted(MLIP_COUNTS))
def test_basis_counts_equal_mlip(templates, level):
    """radial_funcs_count, alpha_index_basic_count, alpha_scalar_moments as published."""
    rfc, _, n_basic, _, n_scalar = MLIP_COUNTS[level]
    t = templates(level)
    assert t.radial_funcs_count == rfc
    assert t.alpha_index_basic_count == n_basic
    if n_scalar is not None:
        assert t.alpha_scalar_moments == n_scalar


_TABLES_DIFFER = pytest.mark.xfail(
    strict=True,
    reason="same basis, but MLIP's choice of intermediate contractions for 3- and "
    '4-tensor basis functions is not reproduced at levels 18 and 24: here 713/2637 '
    '(level 18) and 5720/39510 (level 24) moments/times rows',
)


@pytest.mark.parametrize(
    'level', [8, 12, pytest.param(18, marks=_TABLES_DIFFER), pytest.param(24, marks=_TABLES_DIFFER)]
)
def test_table_counts_equal_mlip(templates, level):
    """alpha_moments_count and alpha_index_times_count as published."""
    _, n_moments, _, n_times, _ = MLIP_COUNTS[level]
    t = templates(level)
    assert (t.alpha_moments_count, t.alpha_index_times_count) == (n_moments, n_times)


def test_level8_layout(templates):
    """The level-8 file as described: mu 0 up to nu 2 (10 rows) plus {1,0,0,0}."""
    t = templates(8)
    assert [tuple(r) for r in t.alpha_index_basic] == [
        (0, 0, 0, 0),
        (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1),
        (0, 2, 0, 0), (0, 1, 1, 0), (0, 1, 0, 1), (0, 0, 2, 0), (0, 0, 1, 1), (0, 0, 0, 2),
        (1, 0, 0, 0),
    ]  # fmt: skip
    assert t.alpha_moment_mapping[0] == 0  # the constant-like M_00 first


def test_radial_funcs_count_rule(templates):
    """radial functions mu = 0 .. (L-2)//4 (the single moments M_mu,0 are basis functions)."""
    for level in range(2, 29):
        assert templates(level).radial_funcs_count == (level - 2) // 4 + 1


def test_basis_graphs_level12_by_hand():
    """The 12 connected contractions up to level 12, enumerated by hand."""
    got = {(g.vertices, g.edges) for g in basis_graphs(12)}
    want = {
        (((0, 0),), ()), (((1, 0),), ()), (((2, 0),), ()),
        (((0, 1), (0, 1)), (((0, 1), 1),)), (((0, 1), (1, 1)), (((0, 1), 1),)),
        (((0, 2), (0, 2)), (((0, 1), 2),)), (((0, 2), (1, 2)), (((0, 1), 2),)),
        (((0, 3), (0, 3)), (((0, 1), 3),)), (((0, 4), (0, 4)), (((0, 1), 4),)),
        (((0, 1), (0, 1), (0, 2)), (((0, 2), 1), ((1, 2), 1))),          # v.A.v
        (((0, 1), (0, 2), (0, 3)), (((0, 2), 1), ((1, 2), 2))),          # B:A.v
        (((0, 2), (0, 2), (0, 2)), (((0, 1), 1), ((0, 2), 1), ((1, 2), 1))),  # tr A^3
    }  # fmt: skip
    assert got == want


# ----------------------------------------------------------------------------- validity
@pytest.mark.parametrize('level', [2, 3, 4, 5, 6, 7, 9, 10, 14, 16, 20, 22, 26, 28])
def test_levels_are_valid_files(templates, level):
    """Every level 2..28 (odd too) gives a consistent file that parses back identically."""
    t = templates(level)
    pot = parse_mtp(t.to_text())  # validates: counts, index ranges, topological order
    assert pot.alpha_moments_count == t.alpha_moments_count
    # the highest basis-function level is the level (odd levels: at most the level;
    # level 3 has nothing of level 3: M_00 is 2, M_00^2 is 4)
    assert pot.level == max(t.basis_levels)
    assert pot.level == level if level % 2 == 0 else level - 1 <= pot.level <= level
    assert len(set(t.alpha_moment_mapping)) == t.alpha_scalar_moments
    assert all(len(b) >= 1 for b in t.basis_functions)
    assert all(sum(len(g.vertices) for g in b) <= 4 for b in t.basis_functions)


def test_odd_levels_equal_the_even_level_below(templates):
    """Every basis function has an even level (the ranks nu of a contraction add up to an
    even number), so an odd level L gives exactly the template of level L - 1."""
    for odd in (3, 9, 13):
        assert templates(odd).to_text() == templates(odd - 1).to_text()


def test_generation_is_fast():
    import time

    t0 = time.perf_counter()
    t = generate_untrained_mtp(24)
    assert t.alpha_scalar_moments > 800
    assert time.perf_counter() - t0 < 10.0


def test_bad_arguments():
    for kwargs in ({"level": 1}, {"level": 8.5}, {"level": 8, "species_count": 0},
                   {"level": 8, "min_dist": 5.0, "max_dist": 2.0},
                   {"level": 8, "radial_basis_size": 1}):  # fmt: skip
        with pytest.raises(ValueError):
            generate_untrained_mtp(**kwargs)


def test_write_and_header(tmp_path):
    t = generate_untrained_mtp(10, species_count=3, radial_basis_size=6, min_dist=1.5, max_dist=6.0)
    path = t.write(tmp_path / '10.mtp')
    text = path.read_text()
    assert text.startswith('MTP\nversion = 1.1.0\n')
    assert 'species_count = 3\n' in text
    assert '\tmin_dist = 1.5\n\tmax_dist = 6\n\tradial_basis_size = 6\n' in text
    assert t.number_of_parameters == t.alpha_scalar_moments + 3 + 9 * t.radial_funcs_count * 6


# ----------------------------------------------------------------------------- numerics
def _neighbourhood(rng, n=14):
    directions = rng.normal(size=(n, 3))
    directions /= np.linalg.norm(directions, axis=1)[:, None]
    return directions * rng.uniform(2.0, 5.0, size=n)[:, None]


def _radial(r, mu):
    """Arbitrary smooth radial functions f_mu(r) (invariance holds for any)."""
    return np.exp(-0.3 * (mu + 1) * r) * np.cos(0.7 * mu * r + 0.3) + 0.1 * mu


def _random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def evaluate_tables(pot, vectors):
    """All alpha moments of one neighbourhood from the file's tables (MLIP semantics)."""
    dist = np.linalg.norm(vectors, axis=1)
    unit = vectors / dist[:, None]
    moments = np.zeros(pot.alpha_moments_count)
    for b, (mu, a1, a2, a3) in enumerate(pot.alpha_index_basic):
        moments[b] = np.sum(_radial(dist, mu) * unit[:, 0] ** a1 * unit[:, 1] ** a2 * unit[:, 2] ** a3)
    for i, j, mult, k in pot.alpha_index_times:
        moments[k] += mult * moments[i] * moments[j]
    return moments


@pytest.mark.parametrize('level', [8, 12, 16, 20, 24, 28])
def test_basis_is_rotation_invariant(templates, level):
    """Every basis function takes the same value on a neighbourhood and its rotation."""
    pot = parse_mtp(templates(level).to_text())
    rng = np.random.default_rng(level)
    vectors = _neighbourhood(rng)
    rotated = vectors @ _random_rotation(rng).T
    b0 = evaluate_tables(pot, vectors)[pot.alpha_moment_mapping]
    b1 = evaluate_tables(pot, rotated)[pot.alpha_moment_mapping]
    scale = np.maximum(1.0, np.abs(b0))
    np.testing.assert_array_less(np.abs(b1 - b0) / scale, 1e-10)
    # and not trivially: the non-scalar moments do change under rotation
    basic = slice(0, pot.alpha_index_basic_count)
    m0, m1 = evaluate_tables(pot, vectors)[basic], evaluate_tables(pot, rotated)[basic]
    assert np.max(np.abs(m0 - m1)) > 1e-3


def _full_moment(vectors, mu, nu):
    dist = np.linalg.norm(vectors, axis=1)
    unit = vectors / dist[:, None]
    t = _radial(dist, mu)
    out = t
    for _ in range(nu):
        out = out[..., None] * unit.reshape((len(unit),) + (1,) * (out.ndim - 1) + (3,))
    return out.sum(axis=0)


def _einsum_graph(graph, vectors):
    """The contraction a graph stands for, with full tensors and np.einsum."""
    letters = iter(string.ascii_letters)
    subscripts = [[] for _ in graph.vertices]
    for (a, b), m in graph.edges:
        for _ in range(m):
            c = next(letters)
            subscripts[a].append(c)
            subscripts[b].append(c)
    operands = [_full_moment(vectors, mu, nu) for mu, nu in graph.vertices]
    spec = ','.join(''.join(s) for s in subscripts) + '->'
    return float(np.einsum(spec, *operands))


@pytest.mark.parametrize('level', [12, 16])
def test_basis_functions_are_the_enumerated_contractions(templates, level):
    """Each basis function from the tables equals its contraction computed by einsum."""
    t = templates(level)
    pot = parse_mtp(t.to_text())
    vectors = _neighbourhood(np.random.default_rng(7))
    values = evaluate_tables(pot, vectors)[pot.alpha_moment_mapping]
    for value, factors in zip(values, t.basis_functions):
        want = np.prod([_einsum_graph(g, vectors) for g in factors])
        assert value == pytest.approx(want, rel=1e-10, abs=1e-12)


def test_level12_basis_is_linearly_independent(templates):
    """29 functions of the neighbourhood, linearly independent (sampled)."""
    pot = parse_mtp(templates(12).to_text())
    rng = np.random.default_rng(3)
    rows = [
        evaluate_tables(pot, _neighbourhood(rng, n=rng.integers(3, 12)))[pot.alpha_moment_mapping] for _ in range(80)
    ]
    assert np.linalg.matrix_rank(np.array(rows), tol=1e-8) == pot.alpha_scalar_moments


def test_moment_level_definition():
    assert moment_level(0, 0) == 2
    assert moment_level(1, 2) == 8
    assert [len(list(itertools.islice(basis_graphs(L), 10**6))) for L in (2, 4, 6)] == [1, 1, 3]
