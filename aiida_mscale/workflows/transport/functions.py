"""Calculation functions of the transport analysis: thin wrappers of :mod:`aiida_mscale.analysis`.

Each takes the trajectory nodes (or nodes derived from them) and the settings as inputs, so every number has
provenance. Input the analysis refuses (its ``ValueError``) ends the calcfunction with exit code 310 and the
analysis' own message, so the work chain can pass it on instead of excepting.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import ExitCode, calcfunction

from aiida_mscale.analysis.pooled import jsonable

from .reader import read_trajectory
from .settings import merge_parameters, species_list

__all__ = [
    'EXIT_STATUS_REFUSED',
    'arrhenius',
    'diffusion_modes_and_importance',
    'diffusivity',
    'diffusivity_summary',
    'environment_classes',
    'jsonable',
]

#: exit status of a calcfunction whose analysis refused its input
EXIT_STATUS_REFUSED = 310


def _refused(what: str, exception: Exception) -> ExitCode:
    return ExitCode(EXIT_STATUS_REFUSED, f'{what}: {exception}')


def _timestep(timestep) -> float | None:
    return None if timestep is None else float(timestep.value)


# ---------------------------------------------------------------------------------- diffusivity
def diffusivity_summary(data, symbols: list[str], temperature: float, p: dict) -> tuple[dict, dict]:
    """Tracer and collective D, Haven ratio and Nernst-Einstein conductivity per species (plain dicts/arrays).

    :param data: :class:`~.reader.TrajectoryArrays`.
    :return: (summary dict, arrays dict for the MSD plot).
    """
    from aiida_mscale.analysis.diffusion import (
        collective_diffusivity,
        haven_ratio,
        nernst_einstein_conductivity,
        number_density,
        tracer_diffusivity,
    )

    volume = float(np.mean(np.abs(np.linalg.det(data.cells))))
    window = None if p['fit_window'] is None else tuple(float(v) for v in p['fit_window'])
    common = {
        'species': data.species,
        'cells': data.cells_for_unwrapping,
        'fit_window': window,
        'n_blocks': int(p['n_blocks']),
        'dim': int(p['dim']),
        'method': p['diffusivity_method'],
        'drift_correction': bool(p['drift_correction']),
        'framework': p['framework'],
    }
    summary = {
        'temperature': temperature,
        'n_frames': int(len(data.times)),
        'frame_interval_ps': float(data.times[1] - data.times[0]) if len(data.times) > 1 else None,
        'duration_ps': float(data.times[-1] - data.times[0]),
        'volume_A3': volume,
        'charge': float(p['charge']),
        'species': {},
    }
    arrays = {}
    for symbol in symbols:
        tracer = tracer_diffusivity(data.positions, data.times, target=symbol, **common)
        collective = collective_diffusivity(data.positions, data.times, target=symbol, **common)
        n_ions = int(np.sum(np.asarray(data.species) == symbol))
        density = number_density(n_ions, volume)
        if collective.D_A2_ps <= collective.D_A2_ps_err:  # a ratio over a D_sigma consistent with zero is noise
            h_r, h_r_err = None, None
            h_note = (
                f'collective D not significantly positive ({collective.D_A2_ps:.3g} +- {collective.D_A2_ps_err:.2g} '
                'A^2/ps): no Haven ratio (e.g. one species carrying all the momentum of a conserving system)'
            )
        else:
            try:
                h_r, h_r_err, h_note = *haven_ratio(tracer, collective), None
            except ValueError as exception:
                h_r, h_r_err, h_note = None, None, str(exception)
        sigma, sigma_err = nernst_einstein_conductivity(
            tracer.D_cm2_s, density, p['charge'], temperature, D_cm2_s_err=tracer.D_cm2_s_err
        )
        sigma_c, sigma_c_err = nernst_einstein_conductivity(
            collective.D_cm2_s, density, p['charge'], temperature, D_cm2_s_err=collective.D_cm2_s_err
        )
        entry = {'n_ions': n_ions, 'number_density_cm3': density}
        for kind, res in (('tracer', tracer), ('collective', collective)):
            entry[kind] = {
                'D_cm2_s': res.D_cm2_s,
                'D_cm2_s_err': res.D_cm2_s_err,
                'D_A2_ps': res.D_A2_ps,
                'D_A2_ps_err': res.D_A2_ps_err,
                'D_full_A2_ps': res.D_full_A2_ps,
                'D_components_A2_ps': res.D_components_A2_ps,
                'D_components_A2_ps_err': res.D_components_A2_ps_err,
                'block_D_A2_ps': res.block_D_A2_ps,
                'slope_A2_ps': res.slope,
                'intercept_A2': res.intercept,
                'fit_window_ps': list(res.fit_window),
                'n_blocks': res.n_blocks,
                'dim': res.dim,
                'method': res.method,
                'drift_correction': bool(p['drift_correction']),
            }
        entry['haven_ratio'], entry['haven_ratio_err'] = h_r, h_r_err
        if h_note:
            entry['haven_ratio_note'] = h_note
        entry['conductivity_S_cm'], entry['conductivity_S_cm_err'] = sigma, sigma_err  # tracer, H_R = 1
        entry['conductivity_collective_S_cm'], entry['conductivity_collective_S_cm_err'] = sigma_c, sigma_c_err
        summary['species'][symbol] = entry
        lag = tracer.lag_time
        arrays['lag_time'] = lag
        for kind, res in (('tracer', tracer), ('collective', collective)):
            half_width = 2 * res.dim * res.D_A2_ps_err * lag  # band from the 1-sigma of D
            line = res.slope * lag + res.intercept
            arrays[f'{kind}_{symbol}_msd'] = res.msd
            arrays[f'{kind}_{symbol}_fit'] = line
            arrays[f'{kind}_{symbol}_fit_lower'] = line - half_width
            arrays[f'{kind}_{symbol}_fit_upper'] = line + half_width
    return jsonable(summary), arrays


@calcfunction
def diffusivity(trajectory, mobile_species: orm.Str, temperature: orm.Float, parameters: orm.Dict, timestep=None):
    """Tracer and collective diffusivity (1-sigma), Haven ratio and Nernst-Einstein conductivity [S/cm] of each
    mobile species in one trajectory; ``msd``: lag time [ps], MSD [A^2], fitted line and its band per species."""
    try:
        p = merge_parameters(parameters.get_dict())
        data = read_trajectory(trajectory, _timestep(timestep))
        summary, arrays = diffusivity_summary(data, species_list(mobile_species.value), float(temperature.value), p)
    except ValueError as exception:
        return _refused(f'diffusivity of {trajectory.__class__.__name__}<{trajectory.pk}>', exception)
    msd = orm.ArrayData()
    for name, values in arrays.items():
        msd.set_array(name, np.asarray(values, dtype=float))
    msd.base.attributes.set('species', species_list(mobile_species.value))
    msd.base.attributes.set('temperature', float(temperature.value))
    msd.base.attributes.set('fit_window', {s: e['tracer']['fit_window_ps'] for s, e in summary['species'].items()})
    return {'result': orm.Dict(summary), 'msd': msd}


# ---------------------------------------------------------------------------------- Arrhenius
_FIT_KEYS = {
    'arrhenius': ('Ea', 'Ea_err', 'prefactor', 'prefactor_err', 'ln_prefactor', 'ln_prefactor_err'),
    'two_regime': ('T_break', 'T_break_err', 'Ea_low', 'Ea_low_err', 'Ea_high', 'Ea_high_err'),
    'vtf': ('A', 'A_err', 'B', 'B_err', 'T0', 'T0_err', 'T0_interval', 'Ea_vtf', 'Ea_vtf_err'),
}


@calcfunction
def arrhenius(mobile_species: orm.Str, parameters: orm.Dict, **diffusivities):
    """Arrhenius / two-regime / VTF fits of the tracer D(T) of each species (from the per-trajectory
    ``diffusivity`` results), the verdict by the information criterion, apparent Ea(T) and the extrapolation
    (with its band) to ``extrapolate_to``; ``curves``: every model's D(T) with 1-sigma band for plotting."""
    from aiida_mscale.analysis.arrhenius import compare_models, extrapolate

    try:
        p = merge_parameters(parameters.get_dict())
        rows = sorted(((d.get_dict(), label) for label, d in diffusivities.items()), key=lambda r: r[0]['temperature'])
        temperatures = np.array([r[0]['temperature'] for r in rows], dtype=float)
        summary, curves = {'labels': [r[1] for r in rows], 'temperature': temperatures, 'species': {}}, {}
        grid = np.linspace(temperatures.min() * 0.95, temperatures.max() * 1.05, 120)
        curves['temperature'] = grid
        for symbol in species_list(mobile_species.value):
            if any(symbol not in r[0]['species'] for r in rows):
                raise ValueError(f'species {symbol} is missing from some diffusivity results')
            d = np.array([r[0]['species'][symbol]['tracer']['D_cm2_s'] for r in rows])
            e = np.array([r[0]['species'][symbol]['tracer']['D_cm2_s_err'] for r in rows])
            c = compare_models(temperatures, d, e, p['criterion'], p['delta'], p['extrapolate_to'])
            fits = {name: {k: fit[k] for k in _FIT_KEYS[name] if k in fit} for name, fit in c['fits'].items()}
            for name, fit in c['fits'].items():
                fits[name].update(params=fit['params'], n=fit['n'], k=fit['k'], neg2_loglike=fit['neg2_loglike'])
                band = [extrapolate(fit, t) if name != 'vtf' or t > fit['params']['T0'] else None for t in grid]
                for key in ('value', 'lower', 'upper'):
                    curves[f'{symbol}_{name}_{key}'] = np.array([b[key] if b else np.nan for b in band])
            ar = c['fits']['arrhenius']
            summary['species'][symbol] = {
                'D_cm2_s': d,
                'D_cm2_s_err': e,
                'verdict': c['verdict'],
                'best_model': c['best_model'],
                'criterion': c['criterion'],
                'criteria': c['criteria'],
                'Ea': ar['Ea'],
                'Ea_err': ar['Ea_err'],
                'prefactor_cm2_s': ar['prefactor'],
                'prefactor_cm2_s_err': ar['prefactor_err'],
                'fits': fits,
                'skipped': c['skipped'],
                'apparent_Ea': {'temperature': c['temperature'], 'Ea': c['apparent_Ea']},
                'extrapolation': c['extrapolation'],
                'extrapolation_error': c['extrapolation_error'],
            }
    except ValueError as exception:
        return _refused('Arrhenius analysis', exception)
    out = orm.ArrayData()
    for name, values in curves.items():
        out.set_array(name, np.asarray(values, dtype=float))
    return {'result': orm.Dict(jsonable(summary)), 'curves': out}


# ---------------------------------------------------------------------------------- modes and importance
def _array_data(arrays: dict, attributes: dict) -> orm.ArrayData:
    """An ArrayData of the named ``arrays`` with ``attributes`` (what the script's parser makes of the same)."""
    node = orm.ArrayData()
    for name, values in arrays.items():
        node.set_array(name, np.asarray(values))
    for key, value in attributes.items():
        node.base.attributes.set(key, value)
    return node


def read_trajectories(trajectories: dict, timestep=None) -> dict:
    """label -> :class:`~.reader.TrajectoryArrays` of every trajectory node (``timestep``: an optional Float)."""
    return {label: read_trajectory(node, _timestep(timestep)) for label, node in trajectories.items()}


@calcfunction
def diffusion_modes_and_importance(mobile_species: orm.Str, parameters: orm.Dict, timestep=None, **trajectories):
    """Per-ion descriptors over sliding windows (pooled over the trajectories), diffusion modes (Gaussian-mixture
    components merged by Bhattacharyya distance and by the ions' switching between them; labels, centroids,
    populations) and random-forest importance of the descriptors for the mobility
    (cross-validated R^2, permutation importance with its standard error, ranking).

    In-process twin of ``TransportAnalysisCalculation`` with ``analysis = 'modes'``: both call
    :func:`aiida_mscale.analysis.pooled.modes_and_importance`."""
    from aiida_mscale.analysis.pooled import modes_and_importance

    try:
        p = merge_parameters(parameters.get_dict())
        symbol = species_list(mobile_species.value)[0]
        labels = p['descriptor_trajectories'] or sorted(trajectories)
        missing = sorted(set(labels) - set(trajectories))
        if missing:  # before reading any positions
            raise ValueError(
                f'`descriptor_trajectories` {missing} are not among the trajectories {sorted(trajectories)}'
            )
        data = read_trajectories({label: trajectories[label] for label in labels}, timestep)
        summary, arrays, attributes = modes_and_importance(data, symbol, p)
    except ValueError as exception:
        return _refused('diffusion modes and importance', exception)
    return {'result': orm.Dict(summary), 'arrays': _array_data(arrays, attributes)}


# ---------------------------------------------------------------------------------- environments
@calcfunction
def environment_classes(parameters: orm.Dict, timestep=None, **trajectories):
    """Local-environment classes (Steinhardt q4/q6, coordination, bond angles; Gaussian mixture, BIC) learned
    on one trajectory, a classifier that labels every trajectory with the same classes, and the fraction of
    each class per frame.

    In-process twin of ``TransportAnalysisCalculation`` with ``analysis = 'environments'``: both call
    :func:`aiida_mscale.analysis.pooled.environment_classes`."""
    from aiida_mscale.analysis.pooled import environment_classes as classify

    try:
        p = merge_parameters(parameters.get_dict())
        summary, arrays, attributes = classify(read_trajectories(trajectories, timestep), p)
    except ValueError as exception:
        return _refused('environment classes', exception)
    return {'result': orm.Dict(summary), 'fractions': _array_data(arrays, attributes)}
