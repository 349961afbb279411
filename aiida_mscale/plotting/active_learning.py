"""Figures of an active-learning run: learning curve, max grade per state point, guest-fraction coverage.

Pure matplotlib (object API, no pyplot) on plain arrays, as stored in the ``learning_curve`` and ``coverage``
outputs of :class:`~aiida_mscale.workflows.active_learning.ActiveLearningWorkChain`; each function returns a
``matplotlib.figure.Figure``.
"""

from __future__ import annotations

import numpy as np


def _figure(rows: int = 1, height: float = 4.2):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, height * rows), layout='constrained')
    return figure, [figure.add_subplot(rows, 1, k + 1) for k in range(rows)]


def draw_learning_curve(curve: dict):
    """Force and energy RMSE (training, validation) [meV/A, meV/atom] and the number of labels per iteration."""
    figure, (forces, energy) = _figure(2, 3.0)
    iteration = np.asarray(curve['iteration'])
    for axes, quantity, unit in ((forces, 'forces', 'meV/Å'), (energy, 'energy', 'meV/atom')):
        for part, style in (('train', 'o-'), ('validation', 's--')):
            values = np.asarray(curve.get(f'{part}_rmse_{quantity}', np.full(len(iteration), np.nan)), dtype=float)
            if np.any(np.isfinite(values)):
                axes.plot(iteration, values, style, label=f'{part} RMSE')
        axes.set_ylabel(f'{quantity} RMSE ({unit})')
        axes.grid(alpha=0.3)
        labels = axes.twinx()
        labels.plot(iteration, curve['number_of_labels'], 'k:', marker='.', label='labels')
        labels.set_ylabel('training-set size')
        handles = axes.get_legend_handles_labels()[0] + labels.get_legend_handles_labels()[0]
        axes.legend(handles=handles, fontsize='small', loc='upper right')
    energy.set_xlabel('iteration (generation)')
    forces.set_title('learning curve')
    return figure


def draw_max_grades(iteration, max_grade, state_points, select_threshold=None, break_threshold=None):
    """Max extrapolation grade of each (mu, T) state point against the iteration (log scale)."""
    figure, (axes,) = _figure()
    grades = np.asarray(max_grade, dtype=float).reshape(len(iteration), -1)
    for k, (mu, temperature) in enumerate(np.asarray(state_points).reshape(-1, 2)):
        axes.semilogy(iteration, grades[:, k], 'o-', label=f'μ={mu:.2f} eV, T={temperature:g} K')
    for value, name in ((select_threshold, 'select'), (break_threshold, 'break')):
        if value is not None:
            axes.axhline(value, color='grey', ls='--' if name == 'select' else ':', lw=1)
            axes.annotate(f'{name} {value:g}', (iteration[0], value), fontsize='small', va='bottom')
    axes.set_xlabel('iteration (generation)')
    axes.set_ylabel('max extrapolation grade γ')
    axes.set_title('extrapolation grade per state point')
    axes.legend(fontsize='x-small')
    axes.grid(alpha=0.3, which='both')
    return figure


def draw_coverage(coverage: dict, guest: str = 'guest'):
    """Guest fractions x visited by GCMC at each mu: range (bar) and mean (marker), one colour per iteration."""
    from matplotlib import colormaps

    figure, (axes,) = _figure()
    iterations = np.asarray(coverage['iteration'])
    distinct = sorted(set(iterations.tolist()))
    colours = colormaps['viridis'](np.linspace(0.0, 0.9, max(len(distinct), 1)))
    for colour, it in zip(colours, distinct):
        rows = iterations == it
        mu = np.asarray(coverage['mu'])[rows]
        mean = np.asarray(coverage['x_mean'])[rows]
        low, high = np.asarray(coverage['x_min'])[rows], np.asarray(coverage['x_max'])[rows]
        offset = 0.01 * (it - distinct[0])
        axes.errorbar(
            mu + offset, mean, yerr=[mean - low, high - mean], fmt='o', color=colour, capsize=3, label=f'iteration {it}'
        )
    axes.set_xlabel(f'{guest} chemical potential μ (eV)')
    axes.set_ylabel(f'{guest} site fraction x')
    axes.set_ylim(-0.05, 1.05)
    axes.set_title('concentrations visited by GCMC')
    axes.legend(fontsize='small')
    axes.grid(alpha=0.3)
    return figure
