"""Shared, dolfinx-free helpers of the continuum solvers: constants, input checks, tables, output.

Nothing here imports dolfinx or aiida, so the input validation runs (and refuses bad input) before
any finite-element module is loaded.
"""

import json
import os

import numpy as np
from scipy import constants as _c

# the values of aiida_mscale/constants.py (this folder runs under its own Python, without the package)
FARADAY = _c.N_A * _c.e  # C/mol
GAS_CONSTANT = _c.R  # J/(mol K)
BOLTZMANN_EV = _c.k / _c.e  # eV/K

# exit codes of solver.py (the CalcJob parser maps them; see solver.py)
EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_NOT_CONVERGED = 3
EXIT_UNPHYSICAL = 4
EXIT_INTERNAL = 5


class InputError(ValueError):
    """Input refused before any solve (exit code 2)."""


class ConvergenceError(RuntimeError):
    """The nonlinear solve failed even at the smallest allowed time step (exit code 3)."""


class UnphysicalStateError(RuntimeError):
    """A negative concentration, or one above the maximum, or a non-finite field (exit code 4)."""


def require(cond, msg):
    if not cond:
        raise InputError(msg)


def get_number(d, key, default=None, positive=False, nonneg=False, where=''):
    """Float input ``d[key]`` (or ``default``), checked to be finite (and > 0 / >= 0 if asked)."""
    if key not in d or d[key] is None:
        if default is None:
            raise InputError(f"missing required input '{where}{key}'")
        return float(default)
    try:
        v = float(d[key])
    except (TypeError, ValueError):
        raise InputError(f"input '{where}{key}' must be a number, got {d[key]!r}") from None
    require(np.isfinite(v), f"input '{where}{key}' must be finite, got {v}")
    if positive:
        require(v > 0, f"input '{where}{key}' must be > 0, got {v}")
    if nonneg:
        require(v >= 0, f"input '{where}{key}' must be >= 0, got {v}")
    return v


def load_array(spec, base_dir, what):
    """An array given inline (list), or as ``"file.npy"``, or as ``"file.npz:key"`` relative to base_dir."""
    if isinstance(spec, (list, tuple)):
        arr = np.asarray(spec, dtype=float)
    elif isinstance(spec, (int, float)):
        arr = np.asarray([spec], dtype=float)
    elif isinstance(spec, str):
        name, _, key = spec.partition(':')
        path = name if os.path.isabs(name) else os.path.join(base_dir, name)
        require(os.path.exists(path), f"{what}: array file '{path}' not found")
        if path.endswith('.npz'):
            with np.load(path) as z:
                require(key in z.files, f"{what}: key '{key}' not in {path} (has {z.files})")
                arr = np.asarray(z[key], dtype=float)
        else:
            arr = np.asarray(np.load(path), dtype=float)
    else:
        raise InputError(f'{what}: expected a list of numbers or an array file name, got {type(spec).__name__}')
    require(arr.ndim == 1, f'{what}: expected a 1-D array, got shape {arr.shape}')
    require(np.all(np.isfinite(arr)), f'{what}: contains non-finite values')
    return arr


class Table:
    """Piecewise-linear table y(x) on strictly increasing x (values clamped outside)."""

    def __init__(self, x, y, name):
        x = np.asarray(x, float)
        y = np.asarray(y, float)
        require(len(x) == len(y), f'{name}: x and values have different lengths ({len(x)} vs {len(y)})')
        require(len(x) >= 2, f'{name}: needs at least 2 points')
        require(np.all(np.diff(x) > 0), f'{name}: x must be strictly increasing')
        self.x, self.y, self.name = x, y, name

    def __call__(self, x):
        return np.interp(x, self.x, self.y)

    def derivative(self, x):
        s = np.diff(self.y) / np.diff(self.x)
        i = np.clip(np.searchsorted(self.x, x, side='right') - 1, 0, len(s) - 1)
        return s[i]

    def covers(self, lo, hi, tol=1e-12):
        return self.x[0] <= lo + tol and self.x[-1] >= hi - tol


def read_table(spec, base_dir, name, value_key):
    """A table from ``{"x": [...], value_key: [...]}`` (lists or array files)."""
    require(isinstance(spec, dict), f"{name}: expected an object with keys 'x' and '{value_key}'")
    require('x' in spec and value_key in spec, f"{name}: needs keys 'x' and '{value_key}'")
    x = load_array(spec['x'], base_dir, f'{name}.x')
    y = load_array(spec[value_key], base_dir, f'{name}.{value_key}')
    return Table(x, y, name)


def ufl_table(table, u, const_x, const_y, smooth=0.0):
    """UFL expression of the piecewise-linear interpolant of ``table`` at ``u``.

    y(u) = y0 + sum_i s_i (min(max(u, x_i), x_{i+1}) - x_i): exact interpolant, constant outside.
    ``const_x``/``const_y`` are dolfinx Constants holding the table so the generated code depends
    only on the table length (one JIT compilation per length, not per table).

    With ``smooth`` = delta > 0 the kinks are rounded over a width ~delta (max(a, b) replaced by
    (a + b + sqrt((a - b)^2 + delta^2)) / 2), so Newton does not cycle across table nodes when the
    table enters a strongly nonlinear term (e.g. the OCV inside Butler-Volmer).
    """
    import ufl

    if smooth > 0:
        d2 = smooth * smooth

        def vmax(a, b):
            return 0.5 * (a + b + ufl.sqrt((a - b) ** 2 + d2))

        def vmin(a, b):
            return 0.5 * (a + b - ufl.sqrt((a - b) ** 2 + d2))
    else:
        vmax, vmin = ufl.max_value, ufl.min_value
    expr = const_y[0]
    for i in range(len(table.x) - 1):
        s = (const_y[i + 1] - const_y[i]) / (const_x[i + 1] - const_x[i])
        expr = expr + s * (vmin(vmax(u, const_x[i]), const_x[i + 1]) - const_x[i])
    return expr


def to_jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.floating,)):
        obj = float(obj)
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    return obj


def write_results(out_dir, summary, arrays, prefix='results'):
    """Write ``<prefix>.json`` (summary, lists) and ``<prefix>.npz`` (named arrays)."""
    os.makedirs(out_dir, exist_ok=True)
    if arrays:
        np.savez_compressed(os.path.join(out_dir, prefix + '.npz'), **{k: np.asarray(v) for k, v in arrays.items()})
        summary = dict(summary, arrays_file=prefix + '.npz', arrays=sorted(arrays))
    with open(os.path.join(out_dir, prefix + '.json'), 'w') as f:
        json.dump(to_jsonable(summary), f, indent=1)
