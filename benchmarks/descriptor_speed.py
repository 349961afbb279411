"""Per-ion descriptors: wall time of site finding and of the full descriptor matrix at 10^3 ions x 10^3 frames.

Two synthetic trajectories, made with numpy (no MD), each with 1000 mobile Na ions:
- ``lattice``: a simple-cubic host (13^3 = 2197 C atoms, 3 A spacing, vibrating) whose cube centres are the
  sites; every Na vibrates about its site and hops to a neighbouring site with probability 0.02 per frame.
- ``liquid``: the same cell, Na and C both random walkers (no sites): the worst case for the site finder
  (many shallow density peaks).
Timed: ``find_sites`` on the 10^6 pooled Na positions and ``ion_descriptors`` (window 20 frames, structure
descriptors every 5th frame, the workflow defaults). Target (issue 11): 10^3 ions x 10^3 frames in under a
minute on this machine. Before the k-d tree rewrite ``find_sites`` alone took 16-25 s for 200 ions x 200 frames.

Run: ``make bench`` (or ``python benchmarks/descriptor_speed.py [--quick]``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

SPACING = 3.0  # A
REPS = 13


def lattice_trajectory(n_ions: int, n_frames: int, seed: int = 0, liquid: bool = False):
    """(wrapped positions, cell, times [ps], species) of the benchmark system."""
    rng = np.random.default_rng(seed)
    length = SPACING * REPS
    cell = np.eye(3) * length
    grid = np.array(np.meshgrid(*[np.arange(REPS)] * 3, indexing='ij')).reshape(3, -1).T
    host = grid * SPACING
    if liquid:
        start = rng.uniform(0, length, (1, len(host) + n_ions, 3))
        steps = rng.normal(0, 0.3, (n_frames - 1, len(host) + n_ions, 3))
        positions = np.concatenate([start, steps]).cumsum(axis=0)
    else:
        occupied = rng.choice(len(grid), n_ions, replace=False)
        moves = np.concatenate([np.eye(3, dtype=int), -np.eye(3, dtype=int)])
        hop = rng.uniform(size=(n_frames, n_ions)) < 0.02
        step = moves[rng.integers(0, 6, (n_frames, n_ions))] * hop[..., None]
        step[0] = 0
        sites = grid[occupied][None] + np.cumsum(step, axis=0)  # lattice units, unwrapped
        na = sites * SPACING + SPACING / 2 + rng.normal(0, 0.15, (n_frames, n_ions, 3))
        c = host[None] + rng.normal(0, 0.1, (n_frames, len(host), 3))
        positions = np.concatenate([c, na], axis=1)
    species = ['C'] * len(host) + ['Na'] * n_ions
    return np.mod(positions, length), cell, np.arange(n_frames) * 0.1, species


def run(kind: str, n_ions: int, n_frames: int) -> dict:
    from aiida_mscale.analysis.descriptors import find_sites, ion_descriptors

    positions, cell, times, species = lattice_trajectory(n_ions, n_frames, liquid=kind == 'liquid')
    mobile = positions[:, len(species) - n_ions :]
    start = time.perf_counter()
    sites = find_sites(mobile, cell, radius=0.6)
    t_sites = time.perf_counter() - start
    start = time.perf_counter()
    result = ion_descriptors(positions, cell, times, species, 'Na', window=20, frame_stride=5)
    t_all = time.perf_counter() - start
    return {
        'kind': kind,
        'ions': n_ions,
        'frames': n_frames,
        'sites': len(sites),
        'find_sites_s': t_sites,
        'ion_descriptors_s': t_all,
        'samples': result['X'].shape[0],
        'mean_jumps': float(result['per_window']['jump_count'].mean()),
    }


def main(quick: bool = False) -> None:
    size = (300, 300) if quick else (1000, 1000)
    header = ('system', 'ions', 'frames', 'sites', 'find_sites s', 'descriptors s', 'samples')
    print(' '.join(f'{h:>{w}}' for h, w in zip(header, (8, 6, 7, 6, 13, 14, 8))))
    for kind in ('lattice', 'liquid'):
        row = run(kind, *size)
        print(
            f'{row["kind"]:>8} {row["ions"]:>6} {row["frames"]:>7} {row["sites"]:>6} {row["find_sites_s"]:>13.2f} '
            f'{row["ion_descriptors_s"]:>14.2f} {row["samples"]:>8}'
        )
        if kind == 'lattice':
            # hops per 20-frame window: 0.02 x 19 steps, minus the few blocked by the site radius
            print(f'{"":>8} mean hops per window {row["mean_jumps"]:.3f} (0.02 per frame x 19 steps = 0.38 expected)')
    print(f'target: 10^3 ions x 10^3 frames (descriptors, site finding included) under 60 s; size run {size}')


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='300 ions x 300 frames instead of 10^3 x 10^3')
    main(quick=parser.parse_args().quick)
