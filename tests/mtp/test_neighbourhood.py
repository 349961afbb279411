"""Cutting the neighbourhoods of extrapolative atoms (local active learning, aiida_mscale.mtp.neighbourhood).

References are independent of the cutting code: (a) the potential's own evaluation (motep) of every core atom's
site energy and site-energy derivatives in the sampled cell; (b) atom counts summed by hand over the
coordination shells of ideal antifluorite Li2O.
"""

import numpy as np
import pytest
from ase.build import bulk

from aiida_mscale.mtp import generate_untrained_mtp
from aiida_mscale.mtp.neighbourhood import box_edge, cut_neighbourhood, cut_neighbourhoods, select_centres

pytestmark = pytest.mark.unit

A_LI2O = 4.61  # [Angstrom]


def li2o(repeat, rattle=0.0, seed=3):
    atoms = bulk('OLi2', 'fluorite', a=A_LI2O, cubic=True).repeat(repeat)
    if rattle:
        atoms.rattle(rattle, seed=seed)
    return atoms


@pytest.fixture(scope='module')
def random_mtp(tmp_path_factory):
    """A level-8 Li-O MTP with random (seeded) coefficients and cutoff 4 Angstrom: motep's data object."""
    import motep.io.mlip.mtp as motep_mtp

    path = generate_untrained_mtp(8, species_count=2, min_dist=1.5, max_dist=4.0).write(
        tmp_path_factory.mktemp('mtp') / 'l8.mtp'
    )
    data = motep_mtp.read_mtp(str(path))
    data.species = [3, 8]
    data.initialize(np.random.default_rng(1))
    return data


def _site_energies_and_rows(data, atoms):
    """Per-atom site energies [eV] and rows dV_i/dtheta (all parameters, radial ones included), by motep."""
    from motep.calculator import make_calculator

    from aiida_mscale.mtp.select import neighborhood_matrix

    atoms = atoms.copy()
    atoms.calc = make_calculator(data, engine='cext')
    atoms.get_potential_energy()
    return np.array(atoms.calc.results['energies']), neighborhood_matrix(data, [atoms])


def test_core_site_energies_and_grades_are_those_of_the_sampled_cell(random_mtp):
    """Every core atom's MTP site energy and its row b_i = dV_i/dtheta (hence its MaxVol grade for any active set)
    are the same in the cut cell as in the sampled cell: its neighbourhood within r_mtp is complete and sees no
    periodic image. The centre is picked next to a cell corner, so the cut crosses the periodic boundary."""
    r_mtp = float(random_mtp.radial_basis.max)
    assert r_mtp == pytest.approx(4.0)
    sampled = li2o(3, rattle=0.1)
    corner = int(np.argmin(np.linalg.norm(sampled.positions, axis=1)))
    grades = np.zeros(len(sampled))
    far = int(np.argmax(sampled.get_distances(corner, range(len(sampled)), mic=True)))
    grades[corner] = 9.0
    grades[far] = 4.0
    cuts = cut_neighbourhoods(sampled, grades, r_mtp=r_mtp, r_core=2.3, threshold=2.0, max_centres=4)
    assert [c.centre for c in cuts] == [corner, far]
    energies, rows = _site_energies_and_rows(random_mtp, sampled)
    scale = np.abs(rows).max()
    for cut in cuts:
        core = np.flatnonzero(cut.force_weights == 1.0)
        assert len(core) >= 5  # the centre and its first shell
        cut_energies, cut_rows = _site_energies_and_rows(random_mtp, cut.atoms)
        sources = cut.source_indices[core]
        np.testing.assert_allclose(cut_energies[core], energies[sources], rtol=0, atol=1e-10)
        np.testing.assert_allclose(cut_rows[core], rows[sources], rtol=0, atol=1e-12 * scale)
        # the non-core atoms of the surface shell do not keep their environment (so weight 0 is needed)
        outer = np.flatnonzero(cut.force_weights == 0.0)
        assert np.abs(cut_energies[outer] - energies[cut.source_indices[outer]]).max() > 1e-3


def test_box_too_small_would_let_images_in(random_mtp):
    """The box edge 2 (r_core + r_mtp) is needed: a cut into a box shrunk by 2 Angstrom changes core site energies
    (the check above can fail)."""
    r_mtp = 4.0
    sampled = li2o(3, rattle=0.1)
    energies, _ = _site_energies_and_rows(random_mtp, sampled)
    cut = cut_neighbourhood(sampled, 0, r_core=2.3, r_mtp=r_mtp, padding=0.0)
    small = cut.atoms.copy()
    small.set_cell(np.eye(3) * (box_edge(2.3, r_mtp, 0.0) - 2.0))
    core = np.flatnonzero(cut.force_weights)
    cut_energies, _ = _site_energies_and_rows(random_mtp, small)
    assert np.abs(cut_energies[core] - energies[cut.source_indices[core]]).max() > 1e-3


def test_cut_cells_of_li2o_are_much_smaller_than_the_sampled_cell():
    """4x4x4 antifluorite Li2O (768 atoms, 6270 A^3), r_mtp = 4 A. Hand-counted shells around O: 8 Li at
    sqrt(3)/4 a = 1.996, 12 O at a/sqrt(2) = 3.260, 24 Li at sqrt(11)/4 a = 3.823, 6 O at a = 4.610, 24 Li at
    sqrt(19)/4 a = 5.024, 24 O at sqrt(3/2) a = 5.646, 32 Li at sqrt(27)/4 a = 5.989 Angstrom. Around Li: 4 O at
    1.996, 6 Li at 2.305, 12 Li at 3.260, 12 O at 3.823, 8 Li at 3.993, 6 Li at 4.610."""
    sampled = li2o(4)
    assert len(sampled) == 768
    assert sampled.get_volume() == pytest.approx(4 * 4 * 4 * A_LI2O**3)
    o_index, li_index = 0, 1
    assert sampled[o_index].symbol == 'O' and sampled[li_index].symbol == 'Li'
    grades = np.zeros(len(sampled))
    grades[[o_index, li_index]] = [6.0, 3.0]

    # r_core = 1 A: the centre alone is core; sphere r_core + r_mtp = 5 A
    cuts = cut_neighbourhoods(sampled, grades, r_mtp=4.0, r_core=1.0, threshold=2.0)
    assert [c.centre for c in cuts] == [o_index, li_index]
    assert [len(c.atoms) for c in cuts] == [1 + 8 + 12 + 24 + 6, 1 + 4 + 6 + 12 + 12 + 8 + 6]  # 51, 49
    assert [c.number_of_core_atoms for c in cuts] == [1, 1]
    for cut in cuts:
        assert cut.atoms.cell.array == pytest.approx(np.eye(3) * 13.0)  # 2 (1 + 4) + 3 padding
        assert cut.atoms.pbc.all()
        centre = np.flatnonzero(cut.force_weights)[0]
        assert cut.atoms.positions[centre] == pytest.approx([6.5, 6.5, 6.5])

    # r_core = 2.1 A: the O centre and its 8 Li are core, one cut covers both centres (Li 1 is within r_core of O 0)
    cuts = cut_neighbourhoods(sampled, grades, r_mtp=4.0, r_core=2.1, threshold=2.0)
    assert len(cuts) == 1 and cuts[0].centre == o_index and cuts[0].covered == [o_index, li_index]
    assert len(cuts[0].atoms) == 1 + 8 + 12 + 24 + 6 + 24 + 24 + 32  # 131 of 768
    assert cuts[0].number_of_core_atoms == 9
    assert sorted(set(cuts[0].atoms[cuts[0].force_weights > 0].get_chemical_symbols())) == ['Li', 'O']
    # no two atoms closer across the box faces than in the crystal (Li-O sqrt(3)/4 a): padding 3 A > 1.996 A
    distances = cuts[0].atoms.get_all_distances(mic=True) + np.eye(131) * 100
    assert distances.min() == pytest.approx(np.sqrt(3) / 4 * A_LI2O)
    assert cuts[0].atoms.get_volume() == pytest.approx(15.2**3)  # edge 2 (2.1 + 4) + 3: 3512 A^3, vs 6270 A^3 sampled


def test_centres_are_deduplicated_and_capped():
    sampled = li2o(3)
    grades = np.zeros(len(sampled))
    # O 0 and its Li neighbour 1 (1.996 A apart), and a distant O
    far = int(np.argmax(sampled.get_distances(0, range(len(sampled)), mic=True) * (sampled.numbers == 8)))
    grades[[0, 1, far]] = [5.0, 8.0, 3.0]
    assert select_centres(sampled, grades, 2.0, None, r_core=2.1) == [1, far]
    assert select_centres(sampled, grades, 2.0, None, r_core=1.0) == [1, 0, far]
    assert select_centres(sampled, grades, 2.0, 2, r_core=1.0) == [1, 0]
    assert select_centres(sampled, grades, 4.0, None, r_core=1.0) == [1, 0]


@pytest.mark.parametrize(
    'kwargs, message',
    [
        ({'r_core': 0.0}, 'r_core'),
        ({'r_core': -1.0}, 'r_core'),
        ({'r_mtp': 0.0}, 'r_mtp'),
        ({'r_mtp': float('nan')}, 'r_mtp'),
        ({'padding': -0.5}, 'padding'),
        ({'threshold': 100.0}, 'no atom has a grade >= 100'),
        ({'max_centres': 0}, 'max_centres'),
        ({'grades': np.ones(5)}, 'one grade per atom'),
    ],
)
def test_bad_input_is_refused(kwargs, message):
    sampled = li2o(2)
    arguments = {'grades': np.full(len(sampled), 3.0), 'r_mtp': 4.0, 'r_core': 1.0, 'threshold': 2.0}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        cut_neighbourhoods(sampled, **arguments)
