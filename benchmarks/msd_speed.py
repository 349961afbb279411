"""MSD and diffusivity: aiida_mscale.analysis against a direct O(N^2) MSD, pymatgen-analysis-diffusion and kinisi.

The same random-walk data for every method, each in its own process so that peak memory (max RSS) is its own.
All three run on the same data at a medium size (ratios measured in the same run); the full target,
10^4 atoms x 10^4 frames, is run for aiida_mscale, and the others are scaled to it by their cost models
(stated in the output). Target (issue 4): at least as fast as the fastest, memory not growing as frames^2.

Uncertainty (issue 11): on the same anisotropic random walks, wrapped into a triclinic cell, D and its 1-sigma from
aiida_mscale's generalised least squares (the default), its block estimator (kept as a check) and kinisi (Bayesian
regression with the covariance of freely diffusing particles; McCluskey, Coles, Morgan, J. Chem. Theory Comput.,
doi:10.1021/acs.jctc.4c01249), all over the same lag window. Printed: median sigma, its ratio to kinisi's (target:
<= 1.3), the coverage of the 1-sigma interval (~68 % if calibrated) and the mean D / D_true. kinisi is optional
(the ``bench`` extra); without it the comparison says so and is skipped.

Run: ``make bench`` (or ``python benchmarks/msd_speed.py [--quick]``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

DT = 0.01  # ps between frames
D_TRUE = 0.1  # A^2/ps


def walk(n_atoms: int, n_frames: int, seed: int = 0) -> np.ndarray:
    """Unwrapped 3-D random walk (n_frames, n_atoms, 3) [Angstrom] with D = D_TRUE."""
    rng = np.random.default_rng(seed)
    positions = rng.normal(0.0, np.sqrt(2 * D_TRUE * DT), (n_frames, n_atoms, 3))
    return np.cumsum(positions, axis=0, out=positions)  # in place: the data cost one array, not two


def run_method(method: str, n_atoms: int, n_frames: int) -> dict:
    """Time one method on fresh data (called in a child process); returns seconds, D and peak RSS [MB]."""
    from pymatgen.analysis.diffusion.analyzer import DiffusionAnalyzer
    from pymatgen.core import Lattice, Structure

    from aiida_mscale.analysis.diffusion import tracer_diffusivity
    from aiida_mscale.analysis.msd import msd_direct

    positions = walk(n_atoms, n_frames)
    times = np.arange(n_frames) * DT
    start = time.perf_counter()  # imports and data generation are outside the timed region
    if method == 'aiida_mscale':
        d = tracer_diffusivity(positions, times).D_A2_ps
    elif method == 'direct':
        msd = msd_direct(positions).mean(axis=1)  # (frames, atoms) -> atom average
        lag = times[: len(msd)]
        window = slice(len(msd) // 10, len(msd) // 2)
        d = np.polyfit(lag[window], msd[window], 1)[0] / 6
    elif method == 'pymatgen':
        box = 1000.0  # large cubic box: the walk never needs wrapping; one static O atom is the framework it wants
        structure = Structure(
            Lattice.cubic(box), ['Li'] * n_atoms + ['O'], np.vstack([positions[0], [[500.0] * 3]]) / box
        )
        moving = np.transpose(positions - positions[0], (1, 0, 2))  # (atoms, frames, 3) Cartesian
        displacements = np.concatenate([moving, np.zeros((1, n_frames, 3))])
        analyzer = DiffusionAnalyzer(
            structure, displacements, 'Li', temperature=300, time_step=int(DT * 1000), step_skip=1, smoothed='max'
        )
        d = analyzer.diffusivity * 1e4  # cm^2/s -> A^2/ps
    else:
        raise ValueError(method)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {'method': method, 'atoms': n_atoms, 'frames': n_frames, 'seconds': seconds, 'D': float(d), 'peak_MB': peak}


def measure(method: str, n_atoms: int, n_frames: int) -> dict:
    code = f'import json, sys; sys.path.insert(0, {str(__file__.rsplit("/", 1)[0])!r}); import msd_speed; '
    code += f'print(json.dumps(msd_speed.run_method({method!r}, {n_atoms}, {n_frames})))'
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f'{method} failed: {result.stderr[-2000:]}')
    return json.loads(result.stdout.strip().splitlines()[-1])


ANISOTROPIC_D = (0.05, 0.1, 0.2)  # A^2/ps along the Cartesian axes
TRICLINIC = np.array([[10.0, 0.0, 0.0], [3.0, 9.0, 0.0], [2.0, 1.5, 11.0]])


def uncertainty_comparison(n_walks: int, n_frames: int = 400, n_atoms: int = 16, dt: float = 0.1) -> None:
    """D and sigma of aiida_mscale (GLS and blocks) and kinisi on the same wrapped triclinic anisotropic walks."""
    from aiida_mscale.analysis.diffusion import tracer_diffusivity

    try:
        import scipp as sc
        from ase import Atoms
        from kinisi.analyze import DiffusionAnalyzer
    except ImportError:
        print('\nkinisi is not installed (pip install kinisi, or the `bench` extra): uncertainty comparison skipped')
        return
    rng = np.random.default_rng(11)
    d_true = float(np.mean(ANISOTROPIC_D))
    t = np.arange(n_frames) * dt
    window = (0.02 * t[-1], 0.45 * t[-1])  # the same for all three (fits in each of 2 blocks)
    m0, m1 = int(np.ceil(window[0] / dt - 1e-9)), int(np.floor(window[1] / dt + 1e-9))
    rows = {'gls': [], 'block': [], 'kinisi': []}
    seconds = dict.fromkeys(rows, 0.0)
    for _ in range(n_walks):
        steps = rng.normal(size=(n_frames - 1, n_atoms, 3)) * np.sqrt(2 * np.asarray(ANISOTROPIC_D) * dt)
        x = np.concatenate([rng.uniform(size=(1, n_atoms, 3)) @ TRICLINIC, steps]).cumsum(axis=0)
        frac = x @ np.linalg.inv(TRICLINIC)
        wrapped = (frac - np.floor(frac)) @ TRICLINIC
        for method in ('gls', 'block'):
            start = time.perf_counter()
            r = tracer_diffusivity(wrapped, t, cells=TRICLINIC, fit_window=window, method=method, n_blocks=2)
            seconds[method] += time.perf_counter() - start
            rows[method].append((r.D_A2_ps, r.D_A2_ps_err))
        start = time.perf_counter()
        frames = [Atoms(f'Li{n_atoms}', positions=p, cell=TRICLINIC, pbc=True) for p in wrapped]
        analyzer = DiffusionAnalyzer.from_ase(
            frames,
            specie='Li',
            time_step=sc.scalar(dt, unit='ps'),
            step_skip=sc.scalar(1),
            dt=sc.arange('time interval', 1.0, m1 + 1.0, unit='ps') * dt,
            progress=False,
        )
        analyzer.diffusion(sc.scalar(m0 * dt, unit='ps'), progress=False, random_state=np.random.RandomState(0))
        samples = sc.to_unit(analyzer.D, 'angstrom**2/ps').values
        seconds['kinisi'] += time.perf_counter() - start
        rows['kinisi'].append((float(np.mean(samples)), float(np.std(samples))))
    print(
        f'\nuncertainty of D: {n_walks} walks, {n_atoms} atoms x {n_frames} frames, D = {ANISOTROPIC_D} A^2/ps along '
        f'x, y, z, wrapped triclinic cell, fit window {window[0]:.2f}..{window[1]:.2f} ps for all'
    )
    print(f'{"estimator":>10} {"D/D_true":>9} {"median sigma":>13} {"sigma/kinisi":>13} {"coverage":>9} {"seconds":>8}')
    kinisi_sigma = np.median([r[1] for r in rows['kinisi']])
    for name, values in rows.items():
        v = np.array(values)
        sigma = np.median(v[:, 1])
        cover = np.mean(np.abs(v[:, 0] - d_true) < v[:, 1])
        print(
            f'{name:>10} {v[:, 0].mean() / d_true:>9.3f} {sigma:>13.5f} {sigma / kinisi_sigma:>13.2f} {cover:>9.2f} '
            f'{seconds[name]:>8.1f}'
        )
    print('target: median sigma of the GLS estimator <= 1.3 x kinisi at ~68 % coverage (block: 2 blocks)')


def main(quick: bool = False) -> None:
    full = (1000, 2000) if quick else (10_000, 10_000)
    same = (200, 1000) if quick else (1000, 5000)
    print(f'{"method":>14} {"atoms":>7} {"frames":>7} {"seconds":>9} {"peak MB":>8} {"D/D_true":>9}')

    def show(row):
        print(
            f'{row["method"]:>14} {row["atoms"]:>7} {row["frames"]:>7} {row["seconds"]:>9.3f} '
            f'{row["peak_MB"]:>8.0f} {row["D"] / D_TRUE:>9.3f}'
        )

    rows = {method: measure(method, *same) for method in ('aiida_mscale', 'direct', 'pymatgen')}
    for row in rows.values():
        show(row)
    ours_full = measure('aiida_mscale', *full)
    show(ours_full)
    fastest = min(rows['direct']['seconds'], rows['pymatgen']['seconds'])
    print(
        f'\nsame data ({same[0]} atoms x {same[1]} frames): aiida_mscale '
        f'{rows["direct"]["seconds"] / rows["aiida_mscale"]["seconds"]:.1f}x the speed of the direct MSD, '
        f'{rows["pymatgen"]["seconds"] / rows["aiida_mscale"]["seconds"]:.1f}x that of pymatgen-analysis-diffusion '
        f'(target: >= 1x the fastest, {fastest / rows["aiida_mscale"]["seconds"]:.1f}x)'
    )
    # Cost models to scale the competitors to the full size: the direct MSD loops over all lags (frames^2 atoms);
    # pymatgen's smoothed='max' MSD loops over at most avg_nsteps = 1000 lags (frames min(frames, 1000) atoms).
    atoms_ratio = full[0] / same[0]
    direct_full = rows['direct']['seconds'] * atoms_ratio * (full[1] / same[1]) ** 2
    pmg_full = rows['pymatgen']['seconds'] * atoms_ratio * full[1] * min(full[1], 1000) / (same[1] * min(same[1], 1000))
    print(
        f'{full[0]} atoms x {full[1]} frames: aiida_mscale {ours_full["seconds"]:.1f} s measured, peak '
        f'{ours_full["peak_MB"]:.0f} MB for {full[0] * full[1] * 24 / 1e6:.0f} MB of positions (no frames^2 array); '
        f'direct ~{direct_full:.0f} s, pymatgen ~{pmg_full:.0f} s (scaled from the same-data run by their cost models)'
    )
    uncertainty_comparison(4 if quick else 20)


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='1000 x 2000 instead of 10^4 x 10^4')
    main(quick=parser.parse_args().quick)
