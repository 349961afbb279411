"""Reader/writer of MLIP .mtp files: round trips, both dialects, clear errors."""

import numpy as np
import pytest

from aiida_mscale.mtp import MtpFileError, MtpPotential, generate_untrained_mtp, parse_mtp, read_mtp

TRAINED_MLIP = """MTP
version = 1.1.0
potential_name = MTP1m
scaling = 1.0
species_count = 2
potential_tag =
radial_basis_type = RBChebyshev
\tmin_dist = 1.9
\tmax_dist = 5
\tradial_basis_size = 3
\tradial_funcs_count = 1
\tradial_coeffs
\t\t0-0
\t\t\t{0.1, -0.2, 0.3}
\t\t0-1
\t\t\t{1e-3, 2.5e-1, -7}
\t\t1-0
\t\t\t{0, 0, 0}
\t\t1-1
\t\t\t{0.5, 0.25, 0.125}
alpha_moments_count = 3
alpha_index_basic_count = 2
alpha_index_basic = {{0, 0, 0, 0}, {0, 0, 0, 0}}
alpha_index_times_count = 1
alpha_index_times = {{0, 1, 1, 2}}
alpha_scalar_moments = 2
alpha_moment_mapping = {0, 2}
species_coeffs = {-3.5, -1.25}
moment_coeffs = {0.75, -0.0625}
"""

# the same potential as motep 0.2.0's default writer lays it out: grouped min/max/size
# and radial_funcs_count after the radial_coeffs block
TRAINED_MOTEP = """MTP
version = 1.1.0
potential_name = MTP1m
scaling = 1.000000000000000e+00
species_count = 2
potential_tag =
radial_basis_type = RBChebyshev
\tmin = 1.900000000000000e+00
\tmax = 5.000000000000000e+00
\tsize = 3
\tradial_coeffs
\t\t0-0
\t\t\t{1.000000000000000e-01, -2.000000000000000e-01, 3.000000000000000e-01}
\t\t0-1
\t\t\t{1.000000000000000e-03, 2.500000000000000e-01, -7.000000000000000e+00}
\t\t1-0
\t\t\t{0.000000000000000e+00, 0.000000000000000e+00, 0.000000000000000e+00}
\t\t1-1
\t\t\t{5.000000000000000e-01, 2.500000000000000e-01, 1.250000000000000e-01}
radial_funcs_count = 1
alpha_moments_count = 3
alpha_index_basic_count = 2
alpha_index_basic = {{0, 0, 0, 0}, {0, 0, 0, 0}}
alpha_index_times_count = 1
alpha_index_times = {{0, 1, 1, 2}}
alpha_scalar_moments = 2
alpha_moment_mapping = {0, 2}
species_coeffs = {-3.500000000000000e+00, -1.250000000000000e+00}
moment_coeffs = {7.500000000000000e-01, -6.250000000000000e-02}
"""


def _same(a: MtpPotential, b: MtpPotential):
    for name in ("species_count", "min_dist", "max_dist", "radial_basis_size", "radial_funcs_count",
                 "alpha_moments_count", "radial_basis_type", "version", "potential_name",
                 "potential_tag", "scaling"):  # fmt: skip
        assert getattr(a, name) == getattr(b, name), name
    for name in ('alpha_index_basic', 'alpha_index_times', 'alpha_moment_mapping'):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for name in ('radial_coeffs', 'species_coeffs', 'moment_coeffs'):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_array_equal(x, y)  # bit-exact


def test_trained_mlip_file():
    pot = parse_mtp(TRAINED_MLIP)
    assert pot.is_trained
    assert pot.radial_coeffs.shape == (2, 2, 1, 3)
    np.testing.assert_array_equal(pot.radial_coeffs[0, 1, 0], [1e-3, 0.25, -7.0])
    np.testing.assert_array_equal(pot.species_coeffs, [-3.5, -1.25])
    np.testing.assert_array_equal(pot.moment_coeffs, [0.75, -0.0625])
    assert pot.scaling == 1.0
    assert pot.number_of_parameters == 2 + 2 + 4 * 1 * 3


def test_motep_dialect_reads_the_same():
    _same(parse_mtp(TRAINED_MOTEP), parse_mtp(TRAINED_MLIP))


def test_round_trip_is_exact(tmp_path):
    pot = parse_mtp(TRAINED_MLIP)
    rng = np.random.default_rng(1)
    pot.radial_coeffs = rng.normal(size=pot.radial_coeffs.shape) * 1e-3
    pot.moment_coeffs = rng.normal(size=2) * 1e5
    path = pot.write(tmp_path / 'p.mtp')
    again = read_mtp(path)
    _same(pot, again)
    assert again.to_text() == pot.to_text()
    assert parse_mtp(TRAINED_MOTEP).to_text() == parse_mtp(TRAINED_MLIP).to_text()


@pytest.mark.parametrize('level', [2, 8, 16])
def test_template_round_trip(level):
    text = generate_untrained_mtp(level, species_count=2).to_text()
    pot = parse_mtp(text)
    assert not pot.is_trained
    assert pot.to_text() == text
    untrained = parse_mtp(TRAINED_MLIP).untrained()
    assert not untrained.is_trained
    parse_mtp(untrained.to_text())


def test_unknown_keys_are_kept():
    text = TRAINED_MLIP.replace('potential_tag =\n', 'potential_tag =\nfuture_key = {1, 2}\n')
    pot = parse_mtp(text)
    assert pot.extra == {'future_key': '{1, 2}'}
    assert 'future_key = {1, 2}' in pot.to_text()


def _broken(old, new):
    assert old in TRAINED_MLIP
    return TRAINED_MLIP.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty file"),
        ("MLP\n", "line 1: expected 'MTP' header"),
        (_broken("species_count = 2", "species_count = two"), r"line 5: species_count: expected an integer"),
        (_broken("alpha_index_basic_count = 2", "alpha_index_basic_count = 3"),
         r"line \d+: alpha_index_basic_count: says 3 but alpha_index_basic has 2"),
        (_broken("alpha_index_times = {{0, 1, 1, 2}}", "alpha_index_times = {{0, 1, 1}}"),
         r"alpha_index_times: row 0 \{0, 1, 1\} has 3 entries, expected 4"),
        (_broken("alpha_index_times = {{0, 1, 1, 2}}", "alpha_index_times = {{0, 1, 1, 5}}"),
         r"alpha_index_times: row 0 .* target 5 is not a derived moment"),
        (_broken("alpha_index_times = {{0, 1, 1, 2}}", "alpha_index_times = {{0, 2, 1, 2}}"),
         r"operands must be moments computed before the target"),
        (_broken("alpha_moment_mapping = {0, 2}", "alpha_moment_mapping = {0, 9}"),
         r"alpha_moment_mapping: entry 1 = 9 is not a moment index"),
        (_broken("alpha_moment_mapping = {0, 2}", "alpha_moment_mapping = {0, x}"),
         r"line \d+: alpha_moment_mapping: non-numeric entry"),
        (_broken("moment_coeffs = {0.75, -0.0625}", "moment_coeffs = {0.75}"),
         r"line \d+: moment_coeffs: 1 values, expected alpha_scalar_moments = 2"),
        (_broken("species_coeffs = {-3.5, -1.25}", "species_coeffs = -3.5, -1.25"),
         r"line \d+: species_coeffs: expected '\{...\}'"),
        (_broken("\t\t\t{1e-3, 2.5e-1, -7}", "\t\t\t{1e-3, 2.5e-1}"),
         r"line 16: radial_coeffs 0-1 row 0: 2 values, expected radial_basis_size = 3"),
        (_broken("\t\t1-0", "\t\t1-7"), r"line 17: radial_coeffs: expected species pair '1-0'"),
        (_broken("\tmax_dist = 5", "\tmax_dist = 1"), r"line 9: max_dist: need 0 <= min_dist < max_dist"),
        (_broken("{{0, 0, 0, 0}, {0, 0, 0, 0}}", "{{0, 0, 0, 0}, {1, 0, 0, 0}}"),
         r"alpha_index_basic: row 1 uses radial function 1 but radial_funcs_count = 1"),
        (TRAINED_MLIP.replace("moment_coeffs = {0.75, -0.0625}\n", ""), r"moment_coeffs: missing in a trained"),
        (TRAINED_MLIP.replace("alpha_moments_count = 3\n", ""), r"missing field alpha_moments_count"),
        (_broken("species_coeffs", "species_count = 2\nspecies_coeffs"), r"species_count given twice"),
        (_broken("potential_tag =", "magnetic_basis_type = BChebyshev\npotential_tag ="),
         r"magnetic MTPs are not supported"),
        (_broken("version = 1.1.0", "version 1.1.0"), r"line 2: expected 'key = value'"),
    ],
)  # fmt: skip
def test_malformed_files_raise_clear_errors(text, match):
    with pytest.raises(ValueError, match=match):
        parse_mtp(text)


def test_error_names_the_file(tmp_path):
    path = tmp_path / 'bad.mtp'
    path.write_text(_broken('species_count = 2', 'species_count = two'))
    with pytest.raises(MtpFileError, match=r'bad\.mtp: line 5: species_count'):
        read_mtp(path)


def test_times_used_before_complete_is_rejected():
    text = (
        'MTP\nspecies_count = 1\nradial_basis_type = RBChebyshev\nmin_dist = 2\nmax_dist = 5\n'
        'radial_basis_size = 8\nradial_funcs_count = 1\nalpha_moments_count = 6\n'
        'alpha_index_basic_count = 3\nalpha_index_basic = {{0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}\n'
        'alpha_index_times_count = 4\n'
        'alpha_index_times = {{0, 0, 1, 3}, {3, 3, 1, 4}, {1, 1, 1, 3}, {4, 4, 1, 5}}\n'
        'alpha_scalar_moments = 1\nalpha_moment_mapping = {5}\n'
    )
    with pytest.raises(ValueError, match=r'moment 3 is used \(row 1\) before its last row \(2\)'):
        parse_mtp(text)


def test_level_is_computed_from_the_tables():
    assert parse_mtp(TRAINED_MLIP).level == 4  # M00 (2) and M00*M00 (4)
    assert parse_mtp(generate_untrained_mtp(14).to_text()).level == 14
