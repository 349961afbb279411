"""MSD and diffusivity: aiida_mscale.analysis against a direct O(N^2) MSD and pymatgen-analysis-diffusion.

The same random-walk data for every method, each in its own process so that peak memory (max RSS) is its own.
All three run on the same data at a medium size (ratios measured in the same run); the full target,
10^4 atoms x 10^4 frames, is run for aiida_mscale, and the others are scaled to it by their cost models
(stated in the output). Target (issue 4): at least as fast as the fastest, memory not growing as frames^2.

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


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='1000 x 2000 instead of 10^4 x 10^4')
    main(quick=parser.parse_args().quick)
