"""Calculation functions of :class:`~aiida_mscale.workflows.electrode.ElectrodeWorkChain`: the tables it gathers
from the continuum runs, and the uncertainty ensemble (seeded draws of D(x) and OCV(x), bands of the curves).

Uncertainty model (``ElectrodeWorkChain`` input ``uncertainty``)
-----------------------------------------------------------------
The tables carry their standard deviations as arrays of the same ``ArrayData``, on the same ``x``:
``D_sigma`` [m^2/s] next to ``D`` in ``diffusivity`` and ``V_sigma`` [V] next to ``V`` in ``ocv`` (an absent array
means no uncertainty on that table). Draw ``k`` of an ensemble of ``N`` (``ensemble_size``) is::

    D_k(x) = D(x) * exp(z_k * D_sigma(x) / D(x))        z_k ~ N(0, 1)
    V_k(x) = V(x) + u_k * V_sigma(x)                      u_k ~ N(0, 1)

with ``(z_k, u_k)`` the k-th row of ``numpy.random.default_rng(seed).standard_normal((N, 2))``. So:

- log D is normal with standard deviation ``D_sigma / D`` (the relative error, first order in sigma/D), so every
  draw stays positive and its median is the given D(x);
- one factor per draw and table: the draws are fully correlated along x (the whole curve moves together). The sigmas
  of an MD diffusivity or a DFT voltage profile are dominated by errors that shift the whole curve (the potential's
  error, the finite cell, the functional), not by independent noise per x; correlated draws are also the
  conservative choice, the widest band for a given pointwise sigma;
- z and u are independent: D(x) and OCV(x) come from different calculations (MD transport, DFT thermodynamics).

At sigma = 0 every draw is the given table itself (``exp(0) = 1``, ``V + 0 = V`` exactly), so the band collapses to
the deterministic curve, equal to the single (nominal) run.

Bands: per C-rate, the delivered capacity of the draws gives ``capacity_mean`` and the 2.5 / 97.5 % percentiles
(``numpy.percentile``, linear interpolation); voltage curves are interpolated (``numpy.interp``) onto a common
capacity grid from 0 to the largest capacity any draw delivered, NaN beyond a draw's end; the band at each grid point
is over the draws still running there (``n_draws`` counts them).
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
from aiida import orm
from aiida.engine import calcfunction
from pydantic import Field

from aiida_mscale.calculations.continuum import read_table
from aiida_mscale.constants import BOLTZMANN_EV
from aiida_mscale.schema import ParameterModel, PositiveInt, Seed

#: Arrhenius parameters whose prefactor is taken from the D(x) table: D(T_ref) = factor * D(x)
TABLE_ARRHENIUS_KEYS = ('Ea', 'x', 'T_ref')
#: the names of the sigma arrays next to the values of each table
SIGMA_ARRAYS = {'diffusivity': 'D_sigma', 'ocv': 'V_sigma'}
#: percentiles of the bands [%]
PERCENTILES = (2.5, 97.5)
#: points of the common capacity grid of the voltage bands
VOLTAGE_GRID_POINTS = 101
#: models whose curves an ensemble can carry (capacity against C-rate, voltage against capacity)
ENSEMBLE_MODELS = ('particle_diffusion', 'porous_electrode')


class UncertaintySettings(ParameterModel):
    """The ``uncertainty`` input of ElectrodeWorkChain (see the module docstring for the draw model)."""

    ensemble_size: PositiveInt = Field(description='number of seeded draws of (D(x), OCV(x)), >= 1')
    seed: Seed = Field(default=1, description='seed of numpy.random.default_rng for the draws')
    models: list[Literal['particle_diffusion', 'porous_electrode']] = Field(
        default=['particle_diffusion'], min_length=1, description='the models run on every draw'
    )


def uses_table(spec) -> bool:
    """Whether an Arrhenius specification (D_bulk or D_gb) takes its prefactor from the D(x) table."""
    return isinstance(spec, dict) and 'D0' not in spec and all(key in spec for key in TABLE_ARRHENIUS_KEYS)


# ---------------------------------------------------------------------------------- pure helpers
def read_sigma(node: orm.ArrayData, name: str) -> np.ndarray | None:
    """The sigma array of table ``name`` (``D_sigma`` / ``V_sigma``) if present, or :class:`ValueError`."""
    sigma_name = SIGMA_ARRAYS[name]
    if sigma_name not in node.get_arraynames():
        return None
    x, _ = read_table(node, name)
    sigma = np.asarray(node.get_array(sigma_name), dtype=float)
    if sigma.shape != x.shape:
        raise ValueError(f'`{name}`: `{sigma_name}` must have the shape of `x` {x.shape}, got {sigma.shape}')
    if not np.all(np.isfinite(sigma)) or np.any(sigma < 0):
        raise ValueError(f'`{name}`: `{sigma_name}` must be finite and >= 0')
    return sigma


def ensemble_factors(size: int, seed: int) -> np.ndarray:
    """(size, 2) standard-normal factors: column 0 scales log D by D_sigma/D, column 1 scales V_sigma."""
    return np.random.default_rng(int(seed)).standard_normal((int(size), 2))


def draw_tables(diffusivity: orm.ArrayData, ocv: orm.ArrayData, size: int, seed: int) -> list[dict]:
    """The ensemble's tables as plain arrays: per draw ``{'x_D', 'D', 'x_V', 'V', 'z', 'u'}``."""
    x_d, d = read_table(diffusivity, 'diffusivity')
    x_v, v = read_table(ocv, 'ocv')
    d_sigma = read_sigma(diffusivity, 'diffusivity')
    v_sigma = read_sigma(ocv, 'ocv')
    draws = []
    for z, u in ensemble_factors(size, seed):
        d_k = d if d_sigma is None else d * np.exp(z * (d_sigma / d))
        v_k = v if v_sigma is None else v + u * v_sigma
        draws.append({'x_D': x_d, 'D': d_k, 'x_V': x_v, 'V': v_k, 'z': float(z), 'u': float(u)})
    return draws


def _stable_mean(values: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN, as ``reference + mean(values - reference)`` with the first finite value per
    column as the reference: identical draws give exactly their common value (no rounding of sum / n)."""
    finite = np.isfinite(values)
    first = np.argmax(finite, axis=0)
    reference = values[first, np.arange(values.shape[1])]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', category=RuntimeWarning)  # all-NaN columns stay NaN
        return reference + np.nanmean(values - reference, axis=0)


def band(values: np.ndarray) -> dict[str, np.ndarray]:
    """``mean``, ``lower`` (2.5 %), ``upper`` (97.5 %) and ``n_draws`` over axis 0 of (n_draws, n_points), NaN-aware."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', category=RuntimeWarning)
        lower, upper = np.nanpercentile(values, PERCENTILES, axis=0)
    return {
        'mean': _stable_mean(values),
        'lower': lower,
        'upper': upper,
        'n_draws': np.isfinite(values).sum(axis=0),
    }


def capacity_curves(arrays: orm.ArrayData, results: dict) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """(C-rate, capacity, voltage) per run of a particle_diffusion or porous_electrode result, in the order run;
    the capacity in the unit of the rate-capability table (porous electrode: fraction of the window times the
    capacity of the full window). Points with a non-finite voltage (-inf once the exchange current vanishes at a
    saturated surface) end the curve."""
    table = results['rate_capability']
    names = arrays.get_arraynames()
    curves = []
    for k, rate in enumerate(table['c_rate']):
        voltage = np.asarray(arrays.get_array(f'rate{k}_voltage'), dtype=float)
        for suffix in ('capacity_curve_mAh_per_g', 'capacity_curve_mAh_per_cm3'):
            if f'rate{k}_{suffix}' in names:
                capacity = np.asarray(arrays.get_array(f'rate{k}_{suffix}'), dtype=float)
                break
        else:
            full = table['capacity'][k] / max(table['soc_delivered'][k], 1e-30)
            capacity = np.asarray(arrays.get_array(f'rate{k}_soc'), dtype=float) * full
        finite = np.isfinite(capacity) & np.isfinite(voltage)  # the voltage diverges once the surface saturates
        curves.append((float(rate), capacity[finite], voltage[finite]))
    return curves


def on_grid(grid: np.ndarray, capacity: np.ndarray, voltage: np.ndarray) -> np.ndarray:
    """``voltage`` interpolated onto ``grid`` (``numpy.interp``), NaN beyond the last capacity delivered."""
    values = np.interp(grid, capacity, voltage)
    values[grid > capacity[-1]] = np.nan
    return values


def _draws_in_order(nodes: dict) -> list[str]:
    """Keys ``draw_0``, ``draw_1``, ... in draw order."""
    return sorted(nodes, key=lambda key: int(key.rsplit('_', 1)[1]))


# ---------------------------------------------------------------------------------- calcfunctions
@calcfunction
def polycrystal_diffusivities(diffusivity: orm.ArrayData, parameters: orm.Dict) -> orm.Dict:
    """Polycrystal parameters with D0 of D_bulk / D_gb from the D(x) table: D(T_ref) = factor * D(x).

    D0 = factor * D(x) * exp(Ea / (k_B T_ref)), so D(T) = D0 exp(-Ea / (k_B T)) passes through the
    tabulated value at T_ref; specifications that already give D0 are passed on unchanged.
    """
    x, d = read_table(diffusivity, 'diffusivity')
    result = parameters.get_dict()
    for key in ('D_bulk', 'D_gb'):
        spec = result.get(key)
        if uses_table(spec):
            value = float(spec.get('factor', 1.0)) * float(np.interp(float(spec['x']), x, d))
            d0 = value * float(np.exp(float(spec['Ea']) / (BOLTZMANN_EV * float(spec['T_ref']))))
            result[key] = {'D0': d0, 'Ea': float(spec['Ea'])}
    return orm.Dict(result)


@calcfunction
def rate_capability_table(results: orm.Dict) -> orm.ArrayData:
    """Rate-capability table of a particle or electrode run: ``c_rate`` [1/h] ascending, ``capacity``,
    ``soc_delivered`` (fraction of the window) and ``termination`` codes; the capacity unit is an attribute."""
    summary = results.get_dict()
    table = summary['rate_capability']
    rates = np.asarray(table['c_rate'], dtype=float)
    order = np.argsort(rates, kind='stable')
    out = orm.ArrayData()
    out.set_array('c_rate', rates[order])
    out.set_array('capacity', np.asarray(table['capacity'], dtype=float)[order])
    out.set_array('soc_delivered', np.asarray(table['soc_delivered'], dtype=float)[order])
    unit = summary.get('units', {}).get('capacity', '')
    out.base.attributes.set('capacity_unit', unit.replace('_per_', '/'))  # porous_electrode writes mAh_per_g
    out.base.attributes.set('model', summary.get('model', ''))
    out.base.attributes.set('termination', [summary['runs'][k].get('termination') for k in order.tolist()])
    return out


@calcfunction
def phase_boundary_trajectory(arrays: orm.ArrayData, results: orm.Dict) -> orm.ArrayData:
    """Phase-boundary trajectory: ``time`` [s] against ``front_position`` [m] (and r/R), while a front exists;
    ``x_mean`` and ``voltage`` [V] at the same times."""
    time = arrays.get_array('time')
    front = arrays.get_array('front_position')
    keep = np.isfinite(front)
    out = orm.ArrayData()
    out.set_array('time', time[keep])
    out.set_array('front_position', front[keep])
    radius = results.get_dict().get('radius') or float(np.max(arrays.get_array('r')))
    out.set_array('front_position_relative', front[keep] / radius)
    for name in ('x_mean', 'voltage'):
        if name in arrays.get_arraynames():
            out.set_array(name, arrays.get_array(name)[keep])
    out.base.attributes.set('radius', radius)
    out.base.attributes.set('plateau_voltage', results.get_dict().get('plateau_voltage'))
    return out


@calcfunction
def effective_diffusivity_table(arrays: orm.ArrayData, results: orm.Dict) -> orm.ArrayData:
    """D_eff(grain size, T) [m^2/s] of the polycrystal with its Hashin-Shtrikman bounds, the GB fraction, the
    bulk and (model) GB diffusivities per row, and the apparent activation energy [eV] per grain size."""
    summary = results.get_dict()
    sizes = arrays.get_array('grain_size')
    temperatures = arrays.get_array('temperature')
    shape = (len(sizes), len(temperatures))
    rows = summary['table']
    out = orm.ArrayData()
    out.set_array('grain_size', sizes)
    out.set_array('temperature', temperatures)
    out.set_array('D_eff', arrays.get_array('D_eff'))
    bounds = arrays.get_array('hs_bounds')
    out.set_array('hs_lower', bounds[..., 0])
    out.set_array('hs_upper', bounds[..., 1])
    out.set_array('gb_fraction', arrays.get_array('gb_fraction'))
    for key in ('D_bulk', 'D_gb', 'D_gb_model'):
        out.set_array(key, np.asarray([row[key] for row in rows], dtype=float).reshape(shape))
    out.set_array('band_widened', np.asarray([row['band_widened'] for row in rows], dtype=bool).reshape(shape))
    out.set_array('E_app', np.asarray(summary['apparent_activation_energy']['E_app'], dtype=float))
    return out


@calcfunction
def ensemble_draws(diffusivity: orm.ArrayData, ocv: orm.ArrayData, settings: orm.Dict) -> dict:
    """The draws of (D(x), OCV(x)) (module docstring): ``diffusivity_<k>`` and ``ocv_<k>`` (arrays ``x``, ``D`` /
    ``x``, ``V``; the factor as attribute ``z`` / ``u``), and ``factors`` (arrays ``z``, ``u``)."""
    options = settings.get_dict()
    draws = draw_tables(diffusivity, ocv, options['ensemble_size'], options['seed'])
    outputs = {}
    for k, draw in enumerate(draws):
        d_node = orm.ArrayData()
        d_node.set_array('x', draw['x_D'])
        d_node.set_array('D', draw['D'])
        d_node.base.attributes.set('z', draw['z'])
        v_node = orm.ArrayData()
        v_node.set_array('x', draw['x_V'])
        v_node.set_array('V', draw['V'])
        v_node.base.attributes.set('u', draw['u'])
        outputs[f'diffusivity_{k}'] = d_node
        outputs[f'ocv_{k}'] = v_node
    factors = orm.ArrayData()
    factors.set_array('z', np.array([d['z'] for d in draws]))
    factors.set_array('u', np.array([d['u'] for d in draws]))
    factors.base.attributes.set('seed', int(options['seed']))
    outputs['factors'] = factors
    return outputs


@calcfunction
def rate_capability_band(**results: orm.Dict) -> orm.ArrayData:
    """Capacity against C-rate over the draws (inputs ``draw_<k>``: each draw's solver results): ``c_rate``
    ascending [1/h], ``capacity_mean``, ``capacity_lower`` (2.5 %), ``capacity_upper`` (97.5 %), and
    ``capacity_draws`` (n_draws, n_rates); the capacity unit is an attribute."""
    keys = _draws_in_order(results)
    summaries = [results[key].get_dict() for key in keys]
    rates = np.asarray(summaries[0]['rate_capability']['c_rate'], dtype=float)
    order = np.argsort(rates, kind='stable')
    capacity = np.array([np.asarray(s['rate_capability']['capacity'], dtype=float)[order] for s in summaries])
    stats = band(capacity)
    out = orm.ArrayData()
    out.set_array('c_rate', rates[order])
    out.set_array('capacity_mean', stats['mean'])
    out.set_array('capacity_lower', stats['lower'])
    out.set_array('capacity_upper', stats['upper'])
    out.set_array('capacity_draws', capacity)
    out.base.attributes.set('capacity_unit', summaries[0].get('units', {}).get('capacity', '').replace('_per_', '/'))
    out.base.attributes.set('percentiles', list(PERCENTILES))
    out.base.attributes.set('n_draws', len(keys))
    return out


@calcfunction
def voltage_band(**nodes) -> orm.ArrayData:
    """Voltage against capacity over the draws (inputs ``arrays_<k>`` and ``results_<k>`` of each draw). Per C-rate
    ``i`` in ascending order: ``capacity_<i>`` (common grid, the rate table's unit), ``voltage_mean_<i>``,
    ``voltage_lower_<i>`` (2.5 %), ``voltage_upper_<i>`` (97.5 %) [V] and ``n_draws_<i>`` (draws still running
    at each grid point); ``c_rate`` lists the rates."""
    keys = _draws_in_order({key: None for key in nodes if key.startswith('results_')})
    curves = [capacity_curves(nodes[key.replace('results_', 'arrays_')], nodes[key].get_dict()) for key in keys]
    rates = np.array([rate for rate, _, _ in curves[0]])
    order = np.argsort(rates, kind='stable')
    out = orm.ArrayData()
    out.set_array('c_rate', rates[order])
    for i, k in enumerate(order.tolist()):
        end = max(float(draw[k][1][-1]) for draw in curves)
        grid = np.linspace(0.0, end, VOLTAGE_GRID_POINTS)
        stats = band(np.array([on_grid(grid, draw[k][1], draw[k][2]) for draw in curves]))
        out.set_array(f'capacity_{i}', grid)
        out.set_array(f'voltage_mean_{i}', stats['mean'])
        out.set_array(f'voltage_lower_{i}', stats['lower'])
        out.set_array(f'voltage_upper_{i}', stats['upper'])
        out.set_array(f'n_draws_{i}', stats['n_draws'])
    out.base.attributes.set('percentiles', list(PERCENTILES))
    out.base.attributes.set('n_draws', len(keys))
    return out


__all__ = [
    'UncertaintySettings',
    'draw_tables',
    'effective_diffusivity_table',
    'ensemble_draws',
    'phase_boundary_trajectory',
    'polycrystal_diffusivities',
    'rate_capability_band',
    'rate_capability_table',
    'voltage_band',
]
