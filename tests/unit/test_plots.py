"""The report figures draw the data they are given (matplotlib artists and rendered pixels), on known arrays.

These replace the checks of the axes count that the plotting code wrote into each PNG about itself: here each line,
bar and threshold is compared with the numbers that went in, and the rendered image is compared with an empty one.
"""

import numpy as np
import pytest


def _pixels(figure):
    """The figure rendered to greyscale pixels (0-255)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba(), dtype=float)[..., :3].mean(axis=2)


def _data_pixels(figure, axes):
    """How many pixels change when the data of ``axes`` (its lines and collections) are hidden."""
    drawn = _pixels(figure)
    for artist in list(axes.lines) + list(axes.collections):
        artist.set_visible(False)
    empty = _pixels(figure)
    return int(np.count_nonzero(np.abs(drawn - empty) > 30))


LEARNING_CURVE = {
    'iteration': np.array([1, 2, 3]),
    'train_rmse_forces': np.array([120.0, 60.0, 30.0]),
    'validation_rmse_forces': np.array([150.0, 80.0, 35.0]),
    'train_rmse_energy': np.array([12.0, 6.0, 3.0]),
    'validation_rmse_energy': np.array([np.nan, np.nan, np.nan]),  # no validation set: not drawn
    'number_of_labels': np.array([4, 7, 9]),
}


def test_learning_curve_draws_the_rmse_and_the_labels():
    from aiida_mscale.plotting.active_learning import draw_learning_curve

    figure = draw_learning_curve(LEARNING_CURVE)
    forces, energy, forces_labels, energy_labels = figure.axes[0], figure.axes[1], figure.axes[2], figure.axes[3]
    assert [line.get_label() for line in forces.lines] == ['train RMSE', 'validation RMSE']
    np.testing.assert_array_equal(forces.lines[0].get_ydata(), [120.0, 60.0, 30.0])
    np.testing.assert_array_equal(forces.lines[1].get_ydata(), [150.0, 80.0, 35.0])
    assert [line.get_label() for line in energy.lines] == ['train RMSE']  # the all-NaN validation series is left out
    np.testing.assert_array_equal(energy.lines[0].get_ydata(), [12.0, 6.0, 3.0])
    for twin in (forces_labels, energy_labels):
        np.testing.assert_array_equal(twin.lines[0].get_xdata(), [1, 2, 3])
        np.testing.assert_array_equal(twin.lines[0].get_ydata(), [4, 7, 9])
    assert _data_pixels(figure, forces) > 100


def test_max_grades_one_line_per_state_point_and_the_thresholds():
    from aiida_mscale.plotting.active_learning import draw_max_grades

    grades = np.array([[30.0, 4.0], [3.0, 1.5]])  # (iteration, state point)
    figure = draw_max_grades([1, 2], grades.ravel(), [[-1.5, 300.0], [-1.0, 600.0]], 2.0, 10.0)
    axes = figure.axes[0]
    curves = [line for line in axes.lines if len(line.get_xdata()) == 2 and line.get_linestyle() == '-']
    np.testing.assert_array_equal(curves[0].get_ydata(), [30.0, 3.0])
    np.testing.assert_array_equal(curves[1].get_ydata(), [4.0, 1.5])
    assert curves[0].get_label() == 'μ=-1.50 eV, T=300 K'
    thresholds = sorted(line.get_ydata()[0] for line in axes.lines if line.get_linestyle() in ('--', ':'))
    assert thresholds == [2.0, 10.0]
    assert axes.get_yscale() == 'log'
    assert _data_pixels(figure, axes) > 100


def test_coverage_bars_span_the_visited_fractions():
    from aiida_mscale.plotting.active_learning import draw_coverage

    coverage = {
        'iteration': np.array([1, 1, 2]),
        'mu': np.array([-2.0, -1.0, -1.0]),
        'x_mean': np.array([0.2, 0.6, 0.7]),
        'x_min': np.array([0.1, 0.5, 0.55]),
        'x_max': np.array([0.3, 0.8, 0.9]),
    }
    figure = draw_coverage(coverage, 'Na')
    axes = figure.axes[0]
    markers = [container.lines[0] for container in axes.containers]
    np.testing.assert_allclose(markers[0].get_ydata(), [0.2, 0.6])
    np.testing.assert_allclose(markers[1].get_ydata(), [0.7])
    np.testing.assert_allclose(markers[1].get_xdata(), [-1.0 + 0.01])  # iteration 2 offset by 0.01 eV
    bars = axes.containers[0].lines[2][0].get_segments()
    np.testing.assert_allclose([segment[:, 1] for segment in bars], [[0.1, 0.3], [0.5, 0.8]])
    assert axes.get_xlabel() == 'Na chemical potential μ (eV)'
    assert _data_pixels(figure, axes) > 50


@pytest.mark.parametrize('name', ['voltage_curves', 'front'])
def test_report_drawings_draw_their_data(tmp_path, name):
    """The electrode report's drawings: the PNG differs from an empty canvas exactly where the data are."""
    from PIL import Image

    from aiida_mscale.cli import report

    path = tmp_path / f'{name}.png'
    capacity = np.linspace(0.0, 150.0, 20)
    if name == 'voltage_curves':
        report.draw_voltage_curves([('1C', capacity, 4.2 - capacity / 150)], 'capacity', 'title', path)
    else:
        report.draw_front(np.linspace(0.0, 600.0, 20), np.linspace(1.0, 0.2, 20), path)
    with Image.open(path) as image:
        pixels = np.asarray(image.convert('L'), dtype=float)
    # the first curve of matplotlib's default cycle is blue (C0 = #1f77b4): its pixels are where the data are
    with Image.open(path) as image:
        rgb = np.asarray(image.convert('RGB'), dtype=int)
    blue = (np.abs(rgb - [0x1F, 0x77, 0xB4]).sum(axis=2) < 60).nonzero()
    assert len(blue[0]) > 100
    rows, columns = blue
    # a falling curve: the blue pixels on the right of the plot lie lower (larger row index) than those on the left
    left, right = columns < np.percentile(columns, 20), columns > np.percentile(columns, 80)
    assert rows[right].mean() > rows[left].mean() + 50
    assert pixels.std() > 5


def test_continuum_voltage_curve_is_the_solver_output(parse, calc_inputs, tmp_path, monkeypatch):
    """The report's voltage curve of the stored particle_diffusion run: the line drawn is the solver's array."""
    from matplotlib.figure import Figure

    from aiida_mscale.cli import report

    outputs, status, _ = parse('mscale.continuum', 'ok', calc_inputs('mscale.continuum'), temporary=('results.npz',))
    assert status == 0
    curves, xlabel = report._capacity_curves(outputs['arrays'], outputs['results'].get_dict())
    figures = []
    monkeypatch.setattr(report, '_save', lambda figure, path: figures.append(figure) or path)
    report.draw_voltage_curves(curves, xlabel, 'single particle', tmp_path / 'v.png')
    (line,) = figures[0].axes[0].lines
    assert isinstance(figures[0], Figure) and line.get_label() == '1 C'
    np.testing.assert_array_equal(line.get_ydata(), outputs['arrays'].get_array('rate0_voltage'))
