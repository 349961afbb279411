"""Reader and writer of MLIP's ``.mtp`` potential files (untrained and trained).

Pure Python (numpy only), no AiiDA import.

Two dialects are read:

* MLIP's own (``mlp`` 2.x/3.x, LAMMPS ``pair_style mlip``)::

      radial_basis_type = RBChebyshev
          min_dist = 2
          max_dist = 5
          radial_basis_size = 8
          radial_funcs_count = 2
          radial_coeffs
              0-0
                  {c_0, ..., c_7}
      alpha_moments_count = ...

* motep 0.2.0's default writer (``motep.io.mlip.mtp.write_mtp`` without
  ``legacy=True``), which writes ``min`` / ``max`` / ``size`` under
  ``radial_basis_type`` and ``radial_funcs_count`` *after* the ``radial_coeffs``
  block.  motep 0.2.0's own reader needs ``radial_funcs_count`` before the block, so
  it cannot read back what it wrote for a trained potential; this reader can.

:meth:`MtpPotential.to_text` always writes MLIP's dialect (readable by MLIP, by
motep and by this module).  Malformed input raises :class:`MtpFileError` (a
``ValueError``) naming the line and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ['MtpFileError', 'MtpPotential', 'read_mtp', 'parse_mtp', 'write_mtp']


class MtpFileError(ValueError):
    """A malformed ``.mtp`` file."""


_KEY_ALIASES = {  # motep's grouped radial-basis keys -> MLIP's
    'min': 'min_dist',
    'max': 'max_dist',
    'size': 'radial_basis_size',
    'min_val': 'min_dist',
    'max_val': 'max_dist',
    'basis_size': 'radial_basis_size',
}
_INT_KEYS = {
    'species_count',
    'radial_basis_size',
    'radial_funcs_count',
    'alpha_moments_count',
    'alpha_index_basic_count',
    'alpha_index_times_count',
    'alpha_scalar_moments',
}
_FLOAT_KEYS = {'min_dist', 'max_dist', 'scaling'}
_STR_KEYS = {'version', 'potential_name', 'potential_tag', 'radial_basis_type'}
_INDEX_LIST_KEYS = {'alpha_index_basic', 'alpha_index_times'}
_VECTOR_KEYS = {'alpha_moment_mapping': int, 'species_coeffs': float, 'moment_coeffs': float}
_REQUIRED = [
    'species_count',
    'radial_basis_type',
    'min_dist',
    'max_dist',
    'radial_basis_size',
    'radial_funcs_count',
    'alpha_moments_count',
    'alpha_index_basic_count',
    'alpha_index_basic',
    'alpha_index_times_count',
    'alpha_index_times',
    'alpha_scalar_moments',
    'alpha_moment_mapping',
]
_UNSUPPORTED = {'magnetic_basis_type', 'min_mag', 'max_mag', 'mag_basis_size'}


class MtpTableCounts:
    """The counts MLIP's ``.mtp`` header states, derived from the index tables (shared by template and file)."""

    @property
    def alpha_index_basic_count(self) -> int:
        return len(self.alpha_index_basic)

    @property
    def alpha_index_times_count(self) -> int:
        return len(self.alpha_index_times)

    @property
    def alpha_scalar_moments(self) -> int:
        return len(self.alpha_moment_mapping)

    @property
    def number_of_parameters(self) -> int:
        """Parameters fitted by training: moment, species and radial coefficients."""
        return (
            self.alpha_scalar_moments
            + self.species_count
            + self.species_count**2 * self.radial_funcs_count * self.radial_basis_size
        )


@dataclass
class MtpPotential(MtpTableCounts):
    """Contents of an MLIP ``.mtp`` file.

    ``radial_coeffs`` has shape (species_count, species_count, radial_funcs_count,
    radial_basis_size); it, ``species_coeffs`` and ``moment_coeffs`` are None in an
    untrained template.
    """

    species_count: int
    min_dist: float
    max_dist: float
    radial_basis_size: int
    radial_funcs_count: int
    alpha_moments_count: int
    alpha_index_basic: np.ndarray
    alpha_index_times: np.ndarray
    alpha_moment_mapping: np.ndarray
    radial_basis_type: str = 'RBChebyshev'
    version: str = '1.1.0'
    potential_name: str = 'MTP1m'
    potential_tag: str = ''
    scaling: float | None = None
    radial_coeffs: np.ndarray | None = None
    species_coeffs: np.ndarray | None = None
    moment_coeffs: np.ndarray | None = None
    #: unknown ``key = value`` lines, kept and written back verbatim
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.alpha_index_basic = np.asarray(self.alpha_index_basic, dtype=np.int64).reshape(-1, 4)
        self.alpha_index_times = np.asarray(self.alpha_index_times, dtype=np.int64).reshape(-1, 4)
        self.alpha_moment_mapping = np.asarray(self.alpha_moment_mapping, dtype=np.int64).ravel()
        for name in ('radial_coeffs', 'species_coeffs', 'moment_coeffs'):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, np.asarray(value, dtype=float))
        if self.radial_coeffs is not None:
            self.radial_coeffs = self.radial_coeffs.reshape(
                self.species_count,
                self.species_count,
                self.radial_funcs_count,
                self.radial_basis_size,
            )

    # ---------------------------------------------------------------- properties
    @property
    def is_trained(self) -> bool:
        return self.moment_coeffs is not None

    @property
    def level(self) -> int:
        """MTP level of the basis: max over basis functions of the sum of the levels.

        Worked out from the tables (``lev(M_mu,nu) = 2 + 4 mu + nu``), so it does not
        depend on the potential's name.
        """
        return int(max(self.basis_function_levels(), default=0))

    def basis_function_levels(self) -> np.ndarray:
        """Level of every basis function, in the order of ``alpha_moment_mapping``."""
        n_basic = self.alpha_index_basic_count
        levels = np.zeros(self.alpha_moments_count, dtype=np.int64)
        mu, a1, a2, a3 = self.alpha_index_basic.T
        levels[:n_basic] = 2 + 4 * mu + a1 + a2 + a3
        # a component of a contraction of tensors whose components have levels l_i, l_j
        # has level l_i + l_j (both factors are counted once per product)
        for i, j, _, k in self.alpha_index_times:
            levels[k] = levels[i] + levels[j]
        return levels[self.alpha_moment_mapping]

    # ---------------------------------------------------------------- validation
    def validate(self) -> None:
        """Check internal consistency; raise :class:`MtpFileError` naming the field."""
        _validate(self, lines={})

    # ---------------------------------------------------------------- writing
    def to_text(self) -> str:
        """The file text in MLIP's dialect."""
        out = ['MTP']
        out.append(f'version = {self.version}')
        out.append(f'potential_name = {self.potential_name}')
        if self.scaling is not None:
            out.append(f'scaling = {_fmt_float(self.scaling)}')
        out.append(f'species_count = {int(self.species_count)}')
        out.append(f'potential_tag = {self.potential_tag}'.rstrip() + ' ')
        for key, value in self.extra.items():
            out.append(f'{key} = {value}')
        out.append(f'radial_basis_type = {self.radial_basis_type}')
        out.append(f'\tmin_dist = {_fmt_float(self.min_dist)}')
        out.append(f'\tmax_dist = {_fmt_float(self.max_dist)}')
        out.append(f'\tradial_basis_size = {int(self.radial_basis_size)}')
        out.append(f'\tradial_funcs_count = {int(self.radial_funcs_count)}')
        if self.radial_coeffs is not None:
            out.append('\tradial_coeffs')
            for a in range(self.species_count):
                for b in range(self.species_count):
                    out.append(f'\t\t{a}-{b}')
                    for row in self.radial_coeffs[a, b]:
                        out.append('\t\t\t{' + ', '.join(_fmt_float(x) for x in row) + '}')
        out.append(f'alpha_moments_count = {int(self.alpha_moments_count)}')
        out.append(f'alpha_index_basic_count = {self.alpha_index_basic_count}')
        out.append(f'alpha_index_basic = {_fmt_rows(self.alpha_index_basic)}')
        out.append(f'alpha_index_times_count = {self.alpha_index_times_count}')
        out.append(f'alpha_index_times = {_fmt_rows(self.alpha_index_times)}')
        out.append(f'alpha_scalar_moments = {self.alpha_scalar_moments}')
        out.append('alpha_moment_mapping = {' + ', '.join(str(int(x)) for x in self.alpha_moment_mapping) + '}')
        if self.species_coeffs is not None:
            out.append('species_coeffs = {' + ', '.join(_fmt_float(x) for x in self.species_coeffs) + '}')
        if self.moment_coeffs is not None:
            out.append('moment_coeffs = {' + ', '.join(_fmt_float(x) for x in self.moment_coeffs) + '}')
        return '\n'.join(out) + '\n'

    def write(self, path) -> Path:
        path = Path(path)
        path.write_text(self.to_text(), encoding='utf-8')
        return path

    @classmethod
    def from_motep(cls, data) -> 'MtpPotential':
        """From a motep ``MTPData`` (duck-typed: motep is not imported).

        Writing this (MLIP's dialect, shortest round-trip float repr) keeps the
        coefficients bit-exact, unlike motep 0.2.0's writer (``%21.15e``: 16
        significant digits, off by up to an ulp).
        """
        basis = data.radial_basis
        return cls(
            species_count=int(data.species_count),
            min_dist=float(basis.min),
            max_dist=float(basis.max),
            radial_basis_size=int(basis.size),
            radial_funcs_count=int(data.radial_funcs_count),
            alpha_moments_count=int(data.alpha_moments_count),
            alpha_index_basic=data.alpha_index_basic,
            alpha_index_times=data.alpha_index_times,
            alpha_moment_mapping=data.alpha_moment_mapping,
            radial_basis_type=str(basis.type) or 'RBChebyshev',
            version=str(data.version or '1.1.0'),
            potential_name=str(data.potential_name or 'MTP1m'),
            potential_tag=str(data.potential_tag or ''),
            scaling=None if data.scaling is None else float(data.scaling),
            radial_coeffs=data.radial_coeffs,
            species_coeffs=data.species_coeffs,
            moment_coeffs=data.moment_coeffs,
        )

    def untrained(self) -> 'MtpPotential':
        """A copy without the fitted coefficients (the template)."""
        return MtpPotential(
            species_count=self.species_count,
            min_dist=self.min_dist,
            max_dist=self.max_dist,
            radial_basis_size=self.radial_basis_size,
            radial_funcs_count=self.radial_funcs_count,
            alpha_moments_count=self.alpha_moments_count,
            alpha_index_basic=self.alpha_index_basic.copy(),
            alpha_index_times=self.alpha_index_times.copy(),
            alpha_moment_mapping=self.alpha_moment_mapping.copy(),
            radial_basis_type=self.radial_basis_type,
            version=self.version,
            potential_name=self.potential_name,
            potential_tag=self.potential_tag,
            extra=dict(self.extra),
        )


# ==================================================================== formatting
def _fmt_float(x: float) -> str:
    x = float(x)
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(x)  # shortest round-tripping representation


def _fmt_rows(rows: np.ndarray) -> str:
    return '{' + ', '.join('{' + ', '.join(str(int(v)) for v in row) + '}' for row in rows) + '}'


# ==================================================================== parsing
_BRACES_RE = re.compile(r'^\{(.*)\}$', re.S)


def _parse_vector(text: str, kind, key: str, lineno: int) -> np.ndarray:
    text = text.strip()
    m = _BRACES_RE.match(text)
    if not m:
        raise MtpFileError(f"line {lineno}: {key}: expected '{{...}}', got {text[:60]!r}")
    body = m.group(1).strip()
    if not body:
        return np.zeros(0, dtype=int if kind is int else float)
    try:
        if kind is int:
            return np.array([int(v) for v in body.split(',')], dtype=np.int64)
        return np.array([float(v) for v in body.split(',')], dtype=float)
    except ValueError:
        raise MtpFileError(f'line {lineno}: {key}: non-numeric entry in {text[:60]!r}') from None


def _parse_index_rows(text: str, key: str, lineno: int) -> np.ndarray:
    text = text.strip()
    m = _BRACES_RE.match(text)
    if not m:
        raise MtpFileError(f"line {lineno}: {key}: expected '{{{{...}}, ...}}', got {text[:60]!r}")
    body = m.group(1).strip()
    if not body:
        return np.zeros((0, 4), dtype=np.int64)
    rows = re.findall(r'\{([^{}]*)\}', body)
    rest = re.sub(r'\{[^{}]*\}', '', body).replace(',', '').strip()
    if rest:
        raise MtpFileError(f'line {lineno}: {key}: unexpected text {rest[:40]!r} between rows')
    out = []
    for r, row in enumerate(rows):
        try:
            values = [int(v) for v in row.split(',')]
        except ValueError:
            raise MtpFileError(f'line {lineno}: {key}: row {r} {{{row}}} is not a list of integers') from None
        if len(values) != 4:
            raise MtpFileError(f'line {lineno}: {key}: row {r} {{{row}}} has {len(values)} entries, expected 4')
        out.append(values)
    return np.array(out, dtype=np.int64)


def parse_mtp(text: str, source: str = '<string>') -> MtpPotential:
    """Parse the text of an ``.mtp`` file (see module docstring for the dialects)."""
    lines = text.splitlines()
    values: dict = {}
    where: dict[str, int] = {}
    extra: dict[str, str] = {}
    radial_block: list[tuple[int, str]] = []
    radial_line = 0
    in_radial = False
    saw_header = False

    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        if not saw_header:
            if line != 'MTP':
                raise MtpFileError(f"{source}: line {lineno}: expected 'MTP' header, got {line[:40]!r}")
            saw_header = True
            continue
        if line == 'radial_coeffs':
            in_radial = True
            radial_line = lineno
            continue
        if '=' not in line:
            if in_radial:
                radial_block.append((lineno, line))
                continue
            raise MtpFileError(f"{source}: line {lineno}: expected 'key = value', got {line[:60]!r}")
        in_radial = False
        key, value = (s.strip() for s in line.split('=', 1))
        key = _KEY_ALIASES.get(key, key)
        if key in where:
            raise MtpFileError(f'{source}: line {lineno}: {key} given twice (first on line {where[key]})')
        where[key] = lineno
        if key in _UNSUPPORTED:
            raise MtpFileError(f'{source}: line {lineno}: {key}: magnetic MTPs are not supported')
        try:
            if key in _INT_KEYS:
                values[key] = int(value)
            elif key in _FLOAT_KEYS:
                values[key] = float(value)
            elif key in _STR_KEYS:
                values[key] = value
            elif key in _INDEX_LIST_KEYS:
                values[key] = _parse_index_rows(value, key, lineno)
            elif key in _VECTOR_KEYS:
                values[key] = _parse_vector(value, _VECTOR_KEYS[key], key, lineno)
            else:
                extra[key] = value
        except MtpFileError as exc:
            raise MtpFileError(f'{source}: {exc}') from None
        except ValueError:
            kind = 'an integer' if key in _INT_KEYS else 'a number'
            raise MtpFileError(f'{source}: line {lineno}: {key}: expected {kind}, got {value!r}') from None

    if not saw_header:
        raise MtpFileError(f"{source}: empty file (no 'MTP' header)")
    for key in _REQUIRED:
        if key not in values:
            raise MtpFileError(f'{source}: missing field {key}')

    if radial_line:
        values['radial_coeffs'] = _parse_radial_block(radial_block, values, radial_line, source)

    counts = {
        'alpha_index_basic_count': values.pop('alpha_index_basic_count'),
        'alpha_index_times_count': values.pop('alpha_index_times_count'),
        'alpha_scalar_moments': values.pop('alpha_scalar_moments'),
    }
    try:
        pot = MtpPotential(extra=extra, **values)
    except (TypeError, ValueError) as exc:  # pragma: no cover - shapes checked before
        raise MtpFileError(f'{source}: {exc}') from None
    _validate(pot, where, counts, source)
    return pot


def _parse_radial_block(block, values, start, source) -> np.ndarray:
    s = values['species_count']
    nf = values['radial_funcs_count']
    nb = values['radial_basis_size']
    coeffs = np.full((s, s, nf, nb), np.nan)
    expected = [(a, b) for a in range(s) for b in range(s)]
    pos = 0
    for a, b in expected:
        if pos >= len(block):
            raise MtpFileError(
                f'{source}: line {start}: radial_coeffs: block for species pair {a}-{b} missing (species_count = {s})'
            )
        lineno, head = block[pos]
        if head != f'{a}-{b}':
            raise MtpFileError(
                f"{source}: line {lineno}: radial_coeffs: expected species pair '{a}-{b}', got {head[:40]!r}"
            )
        pos += 1
        for f in range(nf):
            if pos >= len(block) or not block[pos][1].startswith('{'):
                ln = block[pos][0] if pos < len(block) else lineno
                raise MtpFileError(
                    f'{source}: line {ln}: radial_coeffs {a}-{b}: expected {nf} rows (radial_funcs_count), found {f}'
                )
            lineno, row = block[pos]
            vec = _parse_vector(row, float, f'radial_coeffs {a}-{b} row {f}', lineno)
            if len(vec) != nb:
                raise MtpFileError(
                    f'{source}: line {lineno}: radial_coeffs {a}-{b} row {f}: {len(vec)} values, '
                    f'expected radial_basis_size = {nb}'
                )
            coeffs[a, b, f] = vec
            pos += 1
    if pos != len(block):
        lineno, extra = block[pos]
        raise MtpFileError(
            f'{source}: line {lineno}: radial_coeffs: unexpected line {extra[:40]!r} '
            f'(more rows than species_count**2 * radial_funcs_count)'
        )
    return coeffs


def _validate(pot: MtpPotential, lines: dict, counts: dict | None = None, source: str = '<MtpPotential>'):
    def fail(key, msg):
        loc = f'line {lines[key]}: ' if key in lines else ''
        raise MtpFileError(f'{source}: {loc}{key}: {msg}')

    counts = counts or {}
    for key, actual in (
        ('alpha_index_basic_count', pot.alpha_index_basic_count),
        ('alpha_index_times_count', pot.alpha_index_times_count),
        ('alpha_scalar_moments', pot.alpha_scalar_moments),
    ):
        if key in counts and counts[key] != actual:
            listed = {
                'alpha_index_basic_count': 'alpha_index_basic',
                'alpha_index_times_count': 'alpha_index_times',
                'alpha_scalar_moments': 'alpha_moment_mapping',
            }[key]
            fail(key, f'says {counts[key]} but {listed} has {actual} entries')
    if pot.species_count < 1:
        fail('species_count', f'must be >= 1, got {pot.species_count}')
    if pot.radial_basis_size < 1:
        fail('radial_basis_size', f'must be >= 1, got {pot.radial_basis_size}')
    if pot.radial_funcs_count < 1:
        fail('radial_funcs_count', f'must be >= 1, got {pot.radial_funcs_count}')
    if not (0 <= pot.min_dist < pot.max_dist):
        fail('max_dist', f'need 0 <= min_dist < max_dist, got {pot.min_dist}, {pot.max_dist}')
    n_basic = pot.alpha_index_basic_count
    n_mom = pot.alpha_moments_count
    if n_basic < 1:
        fail('alpha_index_basic', 'is empty')
    if n_mom < n_basic:
        fail('alpha_moments_count', f'{n_mom} is less than alpha_index_basic_count {n_basic}')
    basic = pot.alpha_index_basic
    if basic.min(initial=0) < 0:
        fail('alpha_index_basic', 'negative entry')
    bad = np.nonzero(basic[:, 0] >= pot.radial_funcs_count)[0]
    if bad.size:
        fail(
            'alpha_index_basic',
            f'row {bad[0]} uses radial function {basic[bad[0], 0]} but radial_funcs_count = {pot.radial_funcs_count}',
        )
    times = pot.alpha_index_times
    if len(times):
        i, j, mult, k = times.T
        bad = np.nonzero((k < n_basic) | (k >= n_mom))[0]
        if bad.size:
            fail(
                'alpha_index_times',
                f'row {bad[0]} {{{", ".join(map(str, times[bad[0]]))}}}: target {k[bad[0]]} is not a '
                f'derived moment (must be in [{n_basic}, {n_mom}))',
            )
        bad = np.nonzero((i < 0) | (j < 0) | (i >= k) | (j >= k))[0]
        if bad.size:
            fail(
                'alpha_index_times',
                f'row {bad[0]} {{{", ".join(map(str, times[bad[0]]))}}}: operands must be moments '
                f'computed before the target',
            )
        # every operand must be complete before it is used: its last row comes earlier
        last_row = np.full(n_mom, -1)
        last_row[k] = np.arange(len(k))
        first_use = np.full(n_mom, len(k))
        np.minimum.at(first_use, i, np.arange(len(k)))
        np.minimum.at(first_use, j, np.arange(len(k)))
        bad = np.nonzero(last_row >= first_use)[0]
        if bad.size:
            fail(
                'alpha_index_times',
                f'moment {bad[0]} is used (row {first_use[bad[0]]}) before its last row '
                f'({last_row[bad[0]]}) is accumulated',
            )
        produced = np.zeros(n_mom, dtype=bool)
        produced[:n_basic] = True
        produced[k] = True
        missing = np.nonzero(~produced)[0]
        if missing.size:
            fail('alpha_moments_count', f'moment {missing[0]} is neither basic nor computed')
    elif n_mom != n_basic:
        fail('alpha_moments_count', f'{n_mom} moments but only {n_basic} basic ones and no alpha_index_times')
    amm = pot.alpha_moment_mapping
    if len(amm) == 0:
        fail('alpha_moment_mapping', 'is empty')
    bad = np.nonzero((amm < 0) | (amm >= n_mom))[0]
    if bad.size:
        fail('alpha_moment_mapping', f'entry {bad[0]} = {amm[bad[0]]} is not a moment index (< {n_mom})')
    if pot.species_coeffs is not None and len(pot.species_coeffs) != pot.species_count:
        fail('species_coeffs', f'{len(pot.species_coeffs)} values, expected species_count = {pot.species_count}')
    if pot.moment_coeffs is not None and len(pot.moment_coeffs) != pot.alpha_scalar_moments:
        fail(
            'moment_coeffs',
            f'{len(pot.moment_coeffs)} values, expected alpha_scalar_moments = {pot.alpha_scalar_moments}',
        )
    trained = [pot.radial_coeffs is not None, pot.species_coeffs is not None, pot.moment_coeffs is not None]
    if any(trained) and not all(trained):
        names = ['radial_coeffs', 'species_coeffs', 'moment_coeffs']
        missing = [n for n, t in zip(names, trained) if not t]
        fail(missing[0], 'missing in a trained potential (the other coefficients are present)')


def read_mtp(path) -> MtpPotential:
    """Read an ``.mtp`` file (MLIP's or motep 0.2.0's dialect)."""
    path = Path(path)
    return parse_mtp(path.read_text(encoding='utf-8'), source=str(path))


def write_mtp(path, potential: MtpPotential) -> Path:
    """Write ``potential`` in MLIP's dialect."""
    return potential.write(path)
