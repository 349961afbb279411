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


POPULATIONS = ('free', 'hopping', 'trapped', 'clustered')


def mixture_trajectory(rng, populations, n_per=12, n_frames=200, dt=0.1, a=3.0, reps=9, p_hop=0.15, d_free=2.0):
    """Mobile 'Na' of known populations in a simple-cubic host 'C' (spacing ``a``, sites at the cube centres) with
    a liquid-like channel: the slab of the first third of the cell along x holds no host atoms and no sites.

    ``populations``: names from :data:`POPULATIONS`, ``n_per`` ions each:
    * ``free``: Brownian walkers (D = ``d_free`` A^2/ps) confined to the channel (reflected at its walls),
    * ``hopping``: vibrate (0.15 A) on a site and hop to an empty neighbouring site with probability ``p_hop``
      per frame,
    * ``trapped``: vibrate on an isolated site,
    * ``clustered``: vibrate on the four sites of a 2 x 2 square (nearest sites ``a`` apart: clusters of 4 with a
      Na-Na link of 3.3 A).
    Trapped ions and squares sit at the corners of distinct 3 x 3 x 3 blocks of sites outside the channel (so at
    least two empty sites apart); hoppers start on random empty sites and never enter the channel. Returns
    (wrapped positions, cell, times, species, truth) with truth the index in :data:`POPULATIONS` of each mobile
    ion.
    """
    L = a * reps
    cell = np.diag([L, L, L])
    g = np.array(np.meshgrid(*[np.arange(reps)] * 3, indexing='ij')).reshape(3, -1).T
    channel = reps // 3  # site / host layers x < channel form the channel
    blocks = g[np.all(g % 3 == 0, axis=1) & (g[:, 0] >= channel)]
    blocks = blocks[rng.permutation(len(blocks))]
    bound, kinds, b = [], [], 0
    if 'trapped' in populations:
        bound.extend(blocks[b : b + n_per])
        kinds.extend(['trapped'] * n_per)
        b += n_per
    if 'clustered' in populations:
        for s in blocks[b : b + n_per // 4]:
            bound.extend([s, s + [1, 0, 0], s + [0, 1, 0], s + [1, 1, 0]])
            kinds.extend(['clustered'] * 4)
    if 'hopping' in populations:
        occupied = {tuple(s) for s in bound}
        empty = [s for s in g if tuple(s) not in occupied and s[0] >= channel]
        bound.extend(empty[k] for k in rng.choice(len(empty), n_per, replace=False))
        kinds.extend(['hopping'] * n_per)
    cur = np.array(bound, dtype=int).reshape(-1, 3)
    hopper = np.array([k == 'hopping' for k in kinds], bool)
    moves = np.concatenate([np.eye(3, dtype=int), -np.eye(3, dtype=int)])
    centres = np.empty((n_frames, len(cur), 3))
    for f in range(n_frames):
        for k in np.flatnonzero(hopper & (rng.uniform(size=len(cur)) < p_hop)):
            new = cur[k] + moves[rng.integers(6)]
            if not channel <= new[0] < reps:  # stays out of the channel (no wrapping along x)
                continue
            if not np.any(np.all(np.mod(cur, reps) == np.mod(new, reps), axis=1)):  # only to an empty site
                cur[k] = new
        centres[f] = cur * a + a / 2
    site_bound = centres + rng.normal(scale=0.15, size=centres.shape)
    n_free = n_per if 'free' in populations else 0
    steps = rng.normal(scale=np.sqrt(2 * d_free * dt), size=(n_frames - 1, n_free, 3))
    free = rng.uniform(0, L, (1, n_free, 3)) + np.concatenate([np.zeros((1, n_free, 3)), np.cumsum(steps, axis=0)])
    width = channel * a  # reflect x into [0, width): free walkers stay in the channel
    free[..., 0] = width - np.abs(np.mod(free[..., 0], 2 * width) - width)
    framework = g[g[:, 0] > channel]  # host atoms bound the channel's sites, none inside it
    host = framework[None] * a + rng.normal(scale=0.1, size=(n_frames, len(framework), 3))
    pos = np.mod(np.concatenate([host, free, site_bound], axis=1), L)
    names = ['free'] * n_free + kinds
    truth = np.array([POPULATIONS.index(k) for k in names])
    species = ['C'] * len(framework) + ['Na'] * len(names)
    return pos, cell, np.arange(n_frames) * dt, species, truth


@pytest.fixture(name='mixture_trajectory')
def mixture_trajectory_fixture():
    return mixture_trajectory
