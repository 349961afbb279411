"""Local active learning: cut the neighbourhoods of the most extrapolative atoms out of a large cell.

Pure numpy/ASE; nothing here imports AiiDA.

Method (Podryabinkin, Garifullin, Shapeev, Novikov, J. Chem. Phys. 159, 084112 (2023), MLIP-3, "local"
active learning of the argyrodite seed study 004): a configuration too large for DFT is not labelled as a
whole. For each of its most extrapolative atoms (per-atom MaxVol grade, see :mod:`aiida_mscale.mtp.select`) a
sphere around the atom is cut out and labelled; only the forces on the atoms near the centre are fitted.

Geometry of one cut (all lengths in Angstrom):

- ``r_mtp``: the potential's cutoff (``max_dist``): the site energy of an atom depends only on the atoms closer
  than ``r_mtp``.
- core: the atoms (periodic images included) within ``r_core`` of the centre. They carry force weight 1.
- cluster: every atom (periodic images included) within ``r_core + r_mtp`` of the centre. Each core atom's
  whole MTP neighbourhood (radius ``r_mtp``) lies inside it, so the potential sees the same environment of a
  core atom in the cut cell as in the sampled cell. The other atoms carry force weight 0 (their environment is
  truncated by the cut surface).
- box: a cube of edge ``L = 2 (r_core + r_mtp) + padding`` with the centre at its middle, periodic. A periodic
  image of any cluster atom j (``|x_j - c| <= r_core + r_mtp``) lies at least ``L - (r_core + r_mtp)`` from the
  centre, i.e. at least ``L - (r_core + r_mtp) - r_core = r_mtp + padding`` from any core atom: no core atom
  sees an image within ``r_mtp``. (A smaller cube would let some image into some core atom's sphere.) Any two
  atoms of neighbouring images are at least ``L - 2 (r_core + r_mtp) = padding`` apart: the padding is the vacuum
  that keeps the cluster's surface from bonding to its images in DFT (default 3 Angstrom).

What is identical in the cut cell and the sampled cell is each core atom's site energy and its row of site-energy
derivatives, hence its extrapolation grade (tested). The force on a core atom is not: it sums the derivatives of
the site energies of its neighbours, whose own neighbourhoods reach ``r_core + 2 r_mtp`` and are truncated by the
cut. The fit compares the potential and DFT on the same cut cell, so it is consistent; the label is a force in the
cut cell, not the force the atom had in the sampled cell.

Energies and stresses of a cut cell describe a cluster with a surface, not the sampled material: in a fit they
get weight 0, and only the core atoms' forces count (``sum_a w_a |F_a - F_DFT,a|^2``, see
:mod:`aiida_mscale.mtp.weighted_loss`). What the cut does not fix: DFT forces on core atoms still feel the cut
surface electronically (beyond ``r_mtp``) - the locality MTP assumes anyway; a larger ``r_core + r_mtp`` (or a
larger ``padding`` of vacuum) reduces it at the cost of a larger DFT cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ['NeighbourhoodCut', 'box_edge', 'cut_neighbourhood', 'cut_neighbourhoods', 'select_centres']

#: [Angstrom] default vacuum margin added to the box edge 2 (r_core + r_mtp): the closest approach of an atom to a
#: periodic image of another (so 3 Angstrom: no bond across the box face, nothing DFT would choke on).
DEFAULT_PADDING = 3.0


@dataclass
class NeighbourhoodCut:
    """One cut cell.

    :ivar atoms: ASE Atoms in a periodic cubic box of edge :func:`box_edge` [Angstrom], centre at its middle.
    :ivar force_weights: (n,) 1.0 for core atoms, 0.0 for the others.
    :ivar centre: index of the central atom in the sampled cell.
    :ivar grade: the central atom's grade.
    :ivar source_indices: (n,) index in the sampled cell of each atom of the cut (an atom may appear more than
        once, as different periodic images, when the sampled cell is small).
    :ivar covered: indices of the sampled cell's atoms whose grade >= threshold are core atoms of this cut.
    """

    atoms: object
    force_weights: np.ndarray
    centre: int
    grade: float
    source_indices: np.ndarray
    covered: list = field(default_factory=list)

    @property
    def number_of_core_atoms(self) -> int:
        return int(np.count_nonzero(self.force_weights))


def _check_radii(r_core: float, r_mtp: float, padding: float) -> None:
    for name, value in (('r_core', r_core), ('r_mtp', r_mtp)):
        if isinstance(value, bool) or not np.isfinite(value) or value <= 0:
            raise ValueError(f'`{name}` must be a positive finite length [Angstrom], not {value!r}')
    if isinstance(padding, bool) or not np.isfinite(padding) or padding < 0:
        raise ValueError(f'`padding` must be a non-negative finite length [Angstrom], not {padding!r}')


def box_edge(r_core: float, r_mtp: float, padding: float = DEFAULT_PADDING) -> float:
    """[Angstrom] edge of the cubic box of a cut: ``2 (r_core + r_mtp) + padding`` (see the module docstring)."""
    _check_radii(r_core, r_mtp, padding)
    return 2.0 * (r_core + r_mtp) + padding


def _images_within(atoms, centre_position: np.ndarray, radius: float):
    """All atoms of ``atoms`` (periodic images included where periodic) within ``radius`` of ``centre_position``.

    :return: (indices, positions, distances), sorted by distance then index.
    """
    positions = atoms.positions
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = atoms.cell.array
    ranges = []
    if pbc.any():
        volume = abs(np.linalg.det(cell))
        if not volume > 0:
            raise ValueError('a periodic configuration needs a cell of non-zero volume')
    for k in range(3):
        if not pbc[k]:
            ranges.append([0])
            continue
        # spacing of the lattice planes normal to a_k: V / |a_i x a_j|
        spacing = volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))
        n = int(np.ceil(radius / spacing)) + 1
        ranges.append(range(-n, n + 1))
    shifts = np.array(np.meshgrid(*ranges, indexing='ij')).reshape(3, -1).T
    translations = shifts @ cell if pbc.any() else np.zeros((1, 3))
    # (S, N, 3) positions of every image
    images = positions[None, :, :] + translations[:, None, :]
    distances = np.linalg.norm(images - centre_position, axis=2)
    shift_index, atom_index = np.nonzero(distances <= radius)
    chosen = distances[shift_index, atom_index]
    order = np.lexsort((atom_index, np.round(chosen, 10)))
    return atom_index[order], images[shift_index[order], atom_index[order]], chosen[order]


def _minimum_image_distances(atoms, index: int, others) -> np.ndarray:
    """Distances [Angstrom] from atom ``index`` to atoms ``others`` under the minimum-image convention."""
    others = np.asarray(others, dtype=int)
    if len(others) == 0:
        return np.zeros(0)
    return atoms.get_distances(index, others, mic=bool(np.any(atoms.pbc)))


def select_centres(atoms, grades, threshold: float, max_centres: int | None, r_core: float) -> list[int]:
    """The centres of the cuts: atoms by decreasing grade, ``grade >= threshold``, at most ``max_centres``.

    An atom within ``r_core`` (minimum image) of an already chosen centre is a core atom of that centre's cut and
    is not a centre of its own (two centres closer than ``r_core`` share one cut).

    :raises ValueError: if no atom reaches ``threshold``, or on malformed input.
    """
    grades = np.asarray(grades, dtype=float).reshape(-1)
    if len(grades) != len(atoms):
        raise ValueError(f'{len(grades)} grades for {len(atoms)} atoms: one grade per atom is needed')
    if not np.all(np.isfinite(grades)):
        raise ValueError('the grades must be finite')
    if max_centres is not None and (isinstance(max_centres, bool) or int(max_centres) < 1):
        raise ValueError(f'`max_centres` must be at least 1 (or None), not {max_centres!r}')
    if isinstance(r_core, bool) or not np.isfinite(r_core) or r_core <= 0:
        raise ValueError(f'`r_core` must be a positive finite length [Angstrom], not {r_core!r}')
    candidates = np.flatnonzero(grades >= threshold)
    if len(candidates) == 0:
        raise ValueError(
            f'no atom has a grade >= {threshold:g} (largest {grades.max():.4g}): there is no neighbourhood to cut'
        )
    order = candidates[np.argsort(-grades[candidates], kind='stable')]
    centres: list[int] = []
    for index in order:
        index = int(index)
        if centres and np.any(_minimum_image_distances(atoms, index, centres) < r_core):
            continue
        centres.append(index)
        if max_centres is not None and len(centres) >= int(max_centres):
            break
    return centres


def cut_neighbourhood(
    atoms, centre: int, r_core: float, r_mtp: float, padding: float = DEFAULT_PADDING, grade: float = float('nan')
) -> NeighbourhoodCut:
    """The cut cell around atom ``centre`` of ``atoms`` (see the module docstring for radii and box).

    :param r_core: [Angstrom] radius of the core (atoms with force weight 1), > 0.
    :param r_mtp: [Angstrom] cutoff of the potential (its ``max_dist``), > 0.
    :param padding: [Angstrom] vacuum margin beyond the minimal box edge 2 (r_core + r_mtp).
    """
    from ase import Atoms

    _check_radii(r_core, r_mtp, padding)
    if not 0 <= int(centre) < len(atoms):
        raise ValueError(f'centre {centre} is not an atom index (the configuration has {len(atoms)} atoms)')
    centre = int(centre)
    origin = atoms.positions[centre]
    radius = r_core + r_mtp
    indices, positions, distances = _images_within(atoms, origin, radius)
    edge = box_edge(r_core, r_mtp, padding)
    weights = (distances <= r_core).astype(float)
    cut = Atoms(
        numbers=atoms.numbers[indices],
        positions=positions - origin + 0.5 * edge,
        cell=np.eye(3) * edge,
        pbc=True,
    )
    return NeighbourhoodCut(atoms=cut, force_weights=weights, centre=centre, grade=float(grade), source_indices=indices)


def cut_neighbourhoods(
    atoms,
    grades,
    r_mtp: float,
    r_core: float,
    threshold: float,
    max_centres: int | None = None,
    padding: float = DEFAULT_PADDING,
) -> list[NeighbourhoodCut]:
    """Cut cells around the most extrapolative atoms of ``atoms`` (one per centre of :func:`select_centres`).

    :param grades: (n,) per-atom extrapolation grades of ``atoms``.
    :param r_mtp: [Angstrom] cutoff of the potential (``max_dist``).
    :param r_core: [Angstrom] core radius: atoms within it of a centre carry force weight 1.
    :param threshold: least grade of a centre.
    :param max_centres: at most this many cuts (None: no limit).
    :raises ValueError: for non-positive radii, no atom at or above ``threshold``, or malformed input.
    """
    _check_radii(r_core, r_mtp, padding)
    grades = np.asarray(grades, dtype=float).reshape(-1)
    centres = select_centres(atoms, grades, threshold, max_centres, r_core)
    above = np.flatnonzero(grades >= threshold)
    cuts = []
    for centre in centres:
        cut = cut_neighbourhood(atoms, centre, r_core, r_mtp, padding, grade=grades[centre])
        core_sources = set(int(i) for i in cut.source_indices[cut.force_weights > 0])
        cut.covered = sorted(int(i) for i in above if int(i) in core_sources)
        cuts.append(cut)
    return cuts
