"""Polyhedral distortion of coordination polyhedra (e.g. MnN6/FeC6 octahedra, PS4 tetrahedra).

For each centre atom the ligands are its ``n_ligands`` nearest atoms of the ligand species
(periodic, triclinic; or all within ``cutoff``). Measures (Robinson, Gibbs & Ribbe, Science
172, 567 (1971)):

* Bond-angle variance ``sigma^2 = sum_i (theta_i - theta_0)^2 / (m - 1)`` [deg^2] over the
  ``m`` ligand-centre-ligand angles subtended by polyhedron *edges* (12 for an octahedron,
  theta_0 = 90 deg; 6 for a tetrahedron, theta_0 = 109.47 deg). Edge angles are the ``m``
  smallest of all ligand pairs' angles, i.e. for an octahedron the cis angles (the three
  trans angles ~180 deg are not edges).
* Quadratic elongation ``<lambda> = (1/n) sum_i (l_i / l_0)^2`` with ``l_i`` the centre-ligand
  distances and ``l_0`` the centre-to-vertex distance of a regular polyhedron of the same
  volume (volume of the convex hull of the ligands): ``V = (4/3) l_0^3`` (octahedron),
  ``V = 8 l_0^3 / (9 sqrt 3)`` (tetrahedron). ``<lambda> = 1`` for a regular polyhedron.
* Off-centring distance ``|r_centre - mean(r_ligands)|`` [A] (a second-order Jahn-Teller /
  ferroelectric-type displacement measure).

Units: Angstrom, degrees.
"""

import numpy as np
from scipy.spatial import ConvexHull

from ._checks import as_frame, species_indices
from ._geometry import minimum_image_vectors

__all__ = ['POLYHEDRA', 'polyhedron_distortion', 'polyhedral_distortion']

#: n_ligands -> (name, number of edges m, ideal edge angle theta_0 [deg], V / l0^3 of the regular polyhedron)
POLYHEDRA = {
    4: ('tetrahedron', 6, np.degrees(np.arccos(-1.0 / 3.0)), 8.0 / (9.0 * np.sqrt(3.0))),
    6: ('octahedron', 12, 90.0, 4.0 / 3.0),
}


def polyhedron_distortion(centre, ligands):
    """Distortion measures of one polyhedron.

    Parameters
    ----------
    centre : (3,) [A]; ligands : (n, 3) [A] Cartesian, already as the nearest periodic
        images of the centre; n must be 4 (tetrahedron) or 6 (octahedron).

    Returns
    -------
    dict with ``bond_angle_variance`` [deg^2], ``quadratic_elongation``, ``off_centring`` [A],
    ``volume`` [A^3], ``mean_bond_length`` [A], ``polyhedron`` (name).
    """
    c = np.asarray(centre, dtype=float).reshape(3)
    L = np.asarray(ligands, dtype=float)
    n = L.shape[0]
    if L.ndim != 2 or L.shape[1] != 3:
        raise ValueError(f'ligands must have shape (n, 3), got {L.shape}')
    if n not in POLYHEDRA:
        raise ValueError(f'{n} ligands: only tetrahedra (4) and octahedra (6) are supported')
    name, m, theta0, vfac = POLYHEDRA[n]
    v = L - c
    d = np.linalg.norm(v, axis=1)
    if np.any(d < 1e-8):
        raise ValueError('a ligand coincides with the centre')
    u = v / d[:, None]
    iu = np.triu_indices(n, 1)
    ang = np.degrees(np.arccos(np.clip((u @ u.T)[iu], -1.0, 1.0)))
    edge = np.sort(ang)[:m]
    bav = float(np.sum((edge - theta0) ** 2) / (m - 1))
    vol = float(ConvexHull(L).volume)
    l0 = (vol / vfac) ** (1.0 / 3.0)
    qe = float(np.mean((d / l0) ** 2))
    return {
        'polyhedron': name,
        'bond_angle_variance': bav,
        'quadratic_elongation': qe,
        'off_centring': float(np.linalg.norm(c - L.mean(axis=0))),
        'volume': vol,
        'mean_bond_length': float(d.mean()),
    }


def polyhedral_distortion(frame, cell, species, centre, ligand, n_ligands=6, cutoff=None):
    """Distortion of every ``centre``-``ligand`` polyhedron in one frame.

    Parameters
    ----------
    frame : (n_atoms, 3) [A]; cell : (3, 3) [A]; species : per-atom symbols.
    centre, ligand : symbols of the centre and ligand species.
    n_ligands : 4 or 6, the nearest ligands taken as vertices.
    cutoff : optional [A]; a centre with fewer than ``n_ligands`` ligands inside raises.

    Returns
    -------
    dict of arrays over centres: ``index`` (atom indices), ``bond_angle_variance``,
    ``quadratic_elongation``, ``off_centring``, ``volume``, ``mean_bond_length``.
    """
    pos, cell = as_frame(frame, cell)
    ic = species_indices(species, centre, pos.shape[0])
    il = species_indices(species, ligand, pos.shape[0])
    il_all = il
    keys = ('bond_angle_variance', 'quadratic_elongation', 'off_centring', 'volume', 'mean_bond_length')
    out = {k: [] for k in keys}
    for a in ic:
        lig = il_all[il_all != a]
        if lig.size < n_ligands:
            raise ValueError(f'only {lig.size} {ligand} atoms available for a {n_ligands}-coordinated polyhedron')
        V = minimum_image_vectors(pos[a : a + 1], pos[lig], cell)[0]
        d = np.linalg.norm(V, axis=1)
        k = np.argsort(d)[:n_ligands]
        if cutoff is not None and d[k[-1]] > cutoff:
            raise ValueError(f'{centre} atom {a} has fewer than {n_ligands} {ligand} neighbours within {cutoff} A')
        res = polyhedron_distortion(pos[a], pos[a] + V[k])
        for kk in keys:
            out[kk].append(res[kk])
    result = {k: np.asarray(v) for k, v in out.items()}
    result['index'] = ic
    return result
