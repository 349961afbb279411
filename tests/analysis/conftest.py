"""Shared synthetic-data builders for the analysis tests (plain numpy, fixed seeds)."""

import os

import numpy as np
import pytest

TRICLINIC_CELL = np.array([[10.0, 0.0, 0.0], [3.0, 9.0, 0.0], [2.0, 1.5, 11.0]])


def wrap(x, cell):
    """Wrap Cartesian positions (..., 3) into the cell (rows = lattice vectors)."""
    f = x @ np.linalg.inv(cell)
    f -= np.floor(f)
    return f @ cell


def random_walk(rng, n_frames, n_atoms, dt, D_axes, cell=TRICLINIC_CELL):
    """Brownian walk with per-axis diffusivities D_axes [A^2/ps]; returns (unwrapped, wrapped, times)."""
    steps = rng.normal(size=(n_frames - 1, n_atoms, 3)) * np.sqrt(2.0 * np.asarray(D_axes) * dt)
    start = rng.uniform(0, 1, size=(1, n_atoms, 3)) @ cell
    x = np.concatenate([start, steps]).cumsum(axis=0)
    return x, wrap(x, cell), np.arange(n_frames) * dt


@pytest.fixture
def triclinic_cell():
    return TRICLINIC_CELL.copy()


@pytest.fixture(name='random_walk')
def random_walk_fixture():
    return random_walk


@pytest.fixture(name='wrap')
def wrap_fixture():
    return wrap


@pytest.fixture
def rng():
    # MSCALE_TEST_SEED lets one re-run the statistical tests with other draws
    return np.random.default_rng(int(os.environ.get('MSCALE_TEST_SEED', '20261121')))


def hopper_trap_trajectory(rng, n_frames=400, dt=0.1, n_hop=10, n_trap=10, p_hop=0.1, a=3.0, reps=6):
    """Host simple-cubic lattice 'C' (spacing a) with mobile 'Na' on cube-centre sites.

    The first ``n_hop`` Na hop to a random neighbouring site with probability ``p_hop`` per frame,
    the other ``n_trap`` only vibrate around their site. Returns (wrapped positions, cell, times,
    species, truth) with truth 1 for hoppers, 0 for trapped (per mobile ion).
    """
    L = a * reps
    cell = np.diag([L, L, L])
    g = np.array(np.meshgrid(*[np.arange(reps)] * 3, indexing='ij')).reshape(3, -1).T
    host = g * a
    sites = g * a + a / 2
    n_na = n_hop + n_trap
    occ = rng.choice(len(sites), n_na, replace=False)
    moves = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
    cur = g[occ].copy()  # unwrapped site coordinates in lattice units
    centres = np.empty((n_frames, n_na, 3))
    for f in range(n_frames):
        for k in np.flatnonzero(rng.uniform(size=n_hop) < p_hop):  # hop only to an empty site
            step = moves[rng.integers(0, 6)]
            target = np.mod(cur[k] + step, reps)
            if not np.any(np.all(np.mod(cur, reps) == target, axis=1)):
                cur[k] += step
        centres[f] = cur * a + a / 2
    na = centres + rng.normal(scale=0.15, size=centres.shape)
    hp = host[None] + rng.normal(scale=0.1, size=(n_frames, len(host), 3))
    pos = np.concatenate([hp, na], axis=1)
    pos = np.mod(pos, L)
    species = ['C'] * len(host) + ['Na'] * n_na
    truth = np.r_[np.ones(n_hop, int), np.zeros(n_trap, int)]
    return pos, cell, np.arange(n_frames) * dt, species, truth


@pytest.fixture(name='hopper_trap_trajectory')
def hopper_trap_fixture():
    return hopper_trap_trajectory
