"""Unwrapping of periodic trajectories and mean squared displacement (MSD).

Units: positions in Angstrom, cells in Angstrom (rows are lattice vectors), time in ps,
MSD in Angstrom^2.

Methods
-------
* Unwrapping: the displacement between consecutive frames is reduced to the minimum image
  in fractional coordinates of the *current* frame's cell and accumulated ("toroidal"
  unwrapping). For constant-pressure runs with a fluctuating cell this is the scheme
  recommended by von Bülow, Bullerjahn and Hummer, J. Chem. Phys. 153, 021101 (2020); it
  reduces to the usual image-flag unwrapping for a fixed cell. It is exact as long as no
  atom moves more than half the smallest cell width between two stored frames.
* MSD: time-origin-averaged MSD computed via the Wiener-Khinchin theorem (the "FCA"
  algorithm of Kneller et al., Comput. Phys. Commun. 91, 191 (1995); see also Calandrini
  et al., Collection SFN 12, 201 (2011)):
  ``MSD(m) = S1(m) - 2 S2(m)`` with ``S2`` the position autocorrelation obtained by a
  zero-padded FFT and ``S1`` a running sum of squared positions. Cost O(N log N) in the
  number of frames N and memory linear in N (atoms are processed in chunks).
"""

import numpy as np

from ._checks import as_cells, as_positions, as_times, species_indices

__all__ = [
    'unwrap_positions',
    'msd_fft',
    'msd_direct',
    'tracer_msd',
    'collective_msd',
    'lag_times',
    'msd_by_species',
]

#: bytes of complex work array allowed per atom chunk in :func:`msd_fft`
_CHUNK_BYTES = 64 * 1024 * 1024


def unwrap_positions(positions, cells):
    """Unwrap periodic (wrapped) coordinates into continuous trajectories.

    Parameters
    ----------
    positions : array (n_frames, n_atoms, 3)
        Wrapped Cartesian positions [Angstrom].
    cells : array (3, 3) or (n_frames, 3, 3)
        Lattice vectors as rows [Angstrom]; may vary per frame (NPT), may be triclinic.

    Returns
    -------
    unwrapped : array (n_frames, n_atoms, 3) [Angstrom], with ``unwrapped[0] == positions[0]``.

    Notes
    -----
    For each step the Cartesian difference ``w(t+1) - w(t)`` is expressed in fractional
    coordinates of cell ``h(t+1)``, the nearest integer lattice translation is removed and the
    result is accumulated (von Bülow, Bullerjahn, Hummer, JCP 153, 021101 (2020)).
    """
    pos = as_positions(positions)
    n_frames = pos.shape[0]
    h = as_cells(cells, n_frames)
    if n_frames == 1:
        return pos.copy()
    dw = np.diff(pos, axis=0)  # (n-1, atoms, 3)
    hinv = np.linalg.inv(h[1:])  # (n-1, 3, 3)
    frac = np.einsum('fai,fij->faj', dw, hinv)
    shift = np.rint(frac)
    dr = dw - np.einsum('fai,fij->faj', shift, h[1:])
    out = np.empty_like(pos)
    out[0] = pos[0]
    np.cumsum(dr, axis=0, out=out[1:])
    out[1:] += pos[0]
    return out


def _msd_fft_chunk(x):
    """FCA MSD for x of shape (n_frames, n_series, dim); returns (n_frames, n_series, dim)."""
    n = x.shape[0]
    nfft = 1 << int(np.ceil(np.log2(2 * n)))  # zero padding avoids circular wrap-around
    f = np.fft.rfft(x, n=nfft, axis=0)
    s2 = np.fft.irfft(f * f.conj(), n=nfft, axis=0)[:n]
    counts = (n - np.arange(n)).astype(float)[:, None, None]
    s2 /= counts
    d = x * x
    # S1(m) = [sum_{k=0}^{N-m-1} x_k^2 + sum_{k=m}^{N-1} x_k^2] / (N - m), via prefix sums C
    c = np.concatenate([np.zeros((1,) + d.shape[1:]), np.cumsum(d, axis=0)])
    m = np.arange(n)
    s1 = (c[n - m] + c[n] - c[m]) / counts
    return s1 - 2.0 * s2


def msd_fft(x, per_dimension=False):
    """Time-origin-averaged MSD of each series by FFT (Wiener-Khinchin).

    Parameters
    ----------
    x : array (n_frames, n_series, dim) or (n_frames, dim)
        Unwrapped positions [Angstrom] (or any vector series).
    per_dimension : bool
        If True keep the Cartesian components separate.

    Returns
    -------
    msd : array (n_frames, n_series) [Angstrom^2], or (n_frames, n_series, dim) if
        ``per_dimension``; entry ``m`` is the MSD at lag ``m`` frames averaged over all
        ``n_frames - m`` time origins. A 2-D input gives (n_frames,) or (n_frames, dim).
    """
    arr = np.asarray(x, dtype=float)
    squeeze = arr.ndim == 2
    if squeeze:
        arr = arr[:, None, :]
    if arr.ndim != 3:
        raise ValueError(f'x must have shape (n_frames, n_series, dim), got {arr.shape}')
    n, ns, dim = arr.shape
    if n < 2:
        raise ValueError('at least 2 frames are needed for an MSD')
    # subtract the first frame: MSD is translation invariant and this improves round-off
    arr = arr - arr[0]
    nfft = 1 << int(np.ceil(np.log2(2 * n)))
    chunk = max(1, int(_CHUNK_BYTES // (16 * nfft * dim)))
    out = np.empty((n, ns, dim))
    for a in range(0, ns, chunk):
        out[:, a : a + chunk] = _msd_fft_chunk(arr[:, a : a + chunk])
    np.maximum(out, 0.0, out=out)  # clip round-off negatives at tiny lags
    out[0] = 0.0
    if not per_dimension:
        out = out.sum(axis=-1)
    return out[:, 0] if squeeze else out


def msd_direct(x, per_dimension=False):
    """Reference O(N^2) MSD (explicit loop over lags); same conventions as :func:`msd_fft`.

    Intended for testing only.
    """
    arr = np.asarray(x, dtype=float)
    squeeze = arr.ndim == 2
    if squeeze:
        arr = arr[:, None, :]
    n = arr.shape[0]
    out = np.zeros((n,) + arr.shape[1:])
    for m in range(1, n):
        d = arr[m:] - arr[:-m]
        out[m] = np.mean(d * d, axis=0)
    if not per_dimension:
        out = out.sum(axis=-1)
    return out[:, 0] if squeeze else out


def _prepare(positions, species, target, cells):
    pos = as_positions(positions)
    if cells is not None:
        pos = unwrap_positions(pos, cells)
    if target is not None:
        if species is None:
            raise ValueError('species must be given to select a target species')
        idx = species_indices(species, target, pos.shape[1])
        pos = pos[:, idx]
    return pos


def tracer_msd(positions, species=None, target=None, cells=None, per_dimension=False):
    """Tracer (self) MSD, averaged over the selected atoms [Angstrom^2].

    ``<|r_i(t0 + t) - r_i(t0)|^2>`` averaged over time origins t0 and atoms i.

    Parameters
    ----------
    positions : (n_frames, n_atoms, 3) [Angstrom]; unwrapped, or wrapped if ``cells`` given.
    species : sequence of n_atoms symbols (needed with ``target``).
    target : symbol or list of symbols to select (None: all atoms).
    cells : (3, 3) or (n_frames, 3, 3) [Angstrom]; if given, positions are unwrapped first.
    per_dimension : return (n_frames, 3) Cartesian components instead of (n_frames,).
    """
    pos = _prepare(positions, species, target, cells)
    return msd_fft(pos, per_dimension=per_dimension).mean(axis=1)


def collective_msd(
    positions, species=None, target=None, cells=None, charges=None, per_dimension=False, normalization='per_ion'
):
    """Collective MSD of the (optionally charge-weighted) summed displacement [Angstrom^2].

    With weights ``q_i`` (``charges``; default 1 for every selected atom) and ``N`` selected
    atoms, the quantity is ``<|sum_i q_i [r_i(t0+t) - r_i(t0)]|^2> / N`` for
    ``normalization='per_ion'`` (this is the MSD whose slope gives the "sigma" or
    collective diffusivity D_sigma of the Haven ratio; with charges it is the charge
    displacement MSD of the Green-Kubo/Einstein conductivity), or the centre-of-mass
    form ``<|sum_i q_i dr_i / sum_i q_i|^2>`` for ``normalization='centre_of_mass'``.

    Parameters as for :func:`tracer_msd`; ``charges`` is a per-atom array over *all* atoms
    (n_atoms,) or over the selected atoms.
    """
    pos = _prepare(positions, species, target, cells)
    n_sel = pos.shape[1]
    if charges is None:
        w = np.ones(n_sel)
    else:
        w = np.asarray(charges, dtype=float).ravel()
        n_all = np.asarray(positions).shape[1]
        if w.shape[0] == n_all and n_all != n_sel:
            w = w[species_indices(species, target, n_all)]
        if w.shape[0] != n_sel:
            raise ValueError(
                f'charges has {w.shape[0]} entries, expected {n_sel} (selected atoms) or {n_all} (all atoms)'
            )
    summed = np.einsum('fai,a->fi', pos, w)
    msd = msd_fft(summed, per_dimension=per_dimension)
    if normalization == 'per_ion':
        return msd / n_sel
    if normalization == 'centre_of_mass':
        if abs(w.sum()) < 1e-300:
            raise ValueError('centre-of-mass normalization needs weights with a non-zero sum')
        return msd / w.sum() ** 2
    raise ValueError(f"normalization must be 'per_ion' or 'centre_of_mass', got {normalization!r}")


def lag_times(times):
    """Lag times [ps] matching the MSD arrays: ``times - times[0]``, uniform spacing required."""
    t = as_times(times, np.asarray(times).shape[0])
    return t - t[0]


def msd_by_species(positions, times, species, cells=None, charges=None):
    """Tracer and collective MSD for every species present.

    Returns
    -------
    dict with ``lag_time`` [ps] and, per symbol, ``{'tracer': (n_frames,), 'collective': (n_frames,)}``
    [Angstrom^2].
    """
    pos = as_positions(positions)
    t = as_times(times, pos.shape[0])
    t = t - t[0]
    if cells is not None:
        pos = unwrap_positions(pos, cells)
    sp = np.asarray(species).astype(str)
    out = {'lag_time': t}
    for s in sorted(set(sp.tolist())):
        out[s] = {
            'tracer': tracer_msd(pos, sp, s),
            'collective': collective_msd(pos, sp, s, charges=charges),
        }
    return out
