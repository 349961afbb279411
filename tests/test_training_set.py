"""TrainingSetData: construction, exact ASE and MLIP .cfg round trips, merging with provenance."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_mscale.mtp.cfg import CfgFormatError, read_cfg


def _labelled_images(seed=0):
    """Three configurations of Li-Co-O with random labels (the numbers need no physics, only exactness)."""
    rng = np.random.default_rng(seed)
    images = []
    for k, (name, a) in enumerate([('Li', 3.43), ('Fe', 2.87), ('Ni', 3.52)]):
        atoms = bulk(name, cubic=True, a=a) * (1, 1, 2)
        atoms.rattle(0.1, seed=k)
        atoms.cell[0, 1] = 0.123 * k  # triclinic
        atoms.calc = SinglePointCalculator(
            atoms,
            energy=float(rng.normal(-3, 1)) * len(atoms),
            forces=rng.normal(0, 0.3, (len(atoms), 3)),
            stress=rng.normal(0, 0.01, 6),
        )
        atoms.info['weight'] = [1.0, 2.5, 0.5][k]
        images.append(atoms)
    return images


def test_ase_round_trip_exact(aiida_profile):
    from aiida_mscale.data.training_set import TrainingSetData

    images = _labelled_images()
    node = TrainingSetData.from_ase(images).store()
    back = node.to_ase()
    assert len(back) == 3 and node.number_labelled == 3
    assert node.species == ['Li', 'Fe', 'Ni']  # ordered by atomic number
    for a, b in zip(images, back):
        assert np.array_equal(a.positions, b.positions)
        assert np.array_equal(a.cell.array, b.cell.array)
        assert np.array_equal(a.numbers, b.numbers)
        assert a.get_potential_energy() == b.get_potential_energy()
        assert np.array_equal(a.get_forces(), b.get_forces())
        assert np.array_equal(a.get_stress(), b.get_stress())
        assert a.info['weight'] == b.info['weight']
    # And a second pass through ASE is bit-identical too (the virial travels in atoms.info).
    again = TrainingSetData.from_ase(back)
    for name, array in node.get_arrays().items():
        assert np.array_equal(array, again.get_array(name), equal_nan=array.dtype.kind == 'f'), name


def test_cfg_round_trip_exact(aiida_profile):
    from aiida_mscale.data.training_set import TrainingSetData

    node = TrainingSetData.from_ase(_labelled_images(1))
    species = ['Ni', 'Li', 'Fe']  # a type order different from the atomic-number order
    text = node.to_cfg(species=species)
    back = TrainingSetData.from_cfg(text, species=species)
    assert back.to_cfg(species=species) == text  # text -> numbers -> text is bit-exact
    for name in ('positions', 'cells', 'atomic_numbers', 'energies', 'forces', 'virials', 'weights'):
        assert np.array_equal(node.get_array(name), back.get_array(name)), name
    # Stress is derived from the virial on reading: equal to rounding.
    np.testing.assert_allclose(back.get_array('stresses'), node.get_array('stresses'), rtol=1e-14, atol=1e-18)

    first = read_cfg(text)[0]
    atoms = node.to_ase()[0]
    assert first.types.tolist() == [1] * len(atoms)  # Li is type 1 in this order
    # MLIP's virial convention: PlusStress = -V * stress (ASE sign), in eV.
    voigt = atoms.get_stress()
    assert first.virial[0, 0] == pytest.approx(-atoms.get_volume() * voigt[0], rel=1e-14)
    assert first.virial[1, 2] == pytest.approx(-atoms.get_volume() * voigt[3], rel=1e-14)


def test_cfg_written_by_hand_is_read():
    """A .cfg in the layout MLIP writes (fixed-width columns, Feature lines) is read with the right numbers."""
    text = """BEGIN_CFG
 Size
    2
 Supercell
         3.000000      0.000000      0.000000
         0.000000      3.000000      0.000000
         0.000000      0.000000      3.000000
 AtomData:  id type       cartes_x      cartes_y      cartes_z           fx          fy          fz
             1    0       0.000000      0.000000      0.000000     0.100000    0.000000   -0.200000
             2    1       1.500000      1.500000      1.500000    -0.100000    0.000000    0.200000
 Energy
      -7.250000000000
 PlusStress:  xx          yy          zz          yz          xz          xy
         0.10000     0.20000     0.30000     0.01000     0.02000     0.03000
 Feature   EFS_by	VASP
END_CFG
"""
    (conf,) = read_cfg(text)
    assert conf.energy == -7.25
    assert conf.types.tolist() == [0, 1]
    assert conf.forces[1].tolist() == [-0.1, 0.0, 0.2]
    assert conf.virial[0, 1] == conf.virial[1, 0] == 0.03
    assert conf.virial[1, 2] == 0.01 and conf.virial[0, 2] == 0.02
    assert conf.features == {'EFS_by': 'VASP'}


@pytest.mark.parametrize(
    'text, message',
    [
        ('BEGIN_CFG\n Size\n 2\n AtomData: id type cartes_x cartes_y cartes_z\n 1 0 0 0 0\nEND_CFG\n', 'fewer than'),
        ('BEGIN_CFG\n Size\n 1\n AtomData: id type cartes_x cartes_y\n 1 0 0 0\nEND_CFG\n', 'cartes_z'),
        ('BEGIN_CFG\n Size\n 1\n AtomData: id type cartes_x cartes_y cartes_z\n 1 0 0 0 0\n', 'missing END_CFG'),
        ('BEGIN_CFG\n Size\n x\nEND_CFG\n', 'Size must be followed'),
        ('BEGIN_CFG\n Bogus\nEND_CFG\n', "unknown section 'Bogus'"),
    ],
)
def test_malformed_cfg_is_refused(text, message):
    with pytest.raises(CfgFormatError, match=message):
        read_cfg(text)


def test_bad_arrays_are_refused(aiida_profile):
    from aiida_mscale.data.training_set import TrainingSetData

    with pytest.raises(ValueError, match='`forces` has shape'):
        TrainingSetData.from_arrays(
            [2], np.eye(3)[None] * 3, [[True] * 3], np.zeros((2, 3)), [3, 3], forces=np.zeros((3, 3))
        )
    with pytest.raises(ValueError, match='at least one configuration'):
        TrainingSetData.from_ase([])
    node = TrainingSetData.from_ase(_labelled_images())
    with pytest.raises(ValueError, match=r"species \['Fe'\]"):
        node.to_cfg(species=['Li', 'Ni'])


def test_merge_keeps_both_parents_in_provenance(aiida_profile):
    from aiida import orm

    from aiida_mscale.calculations.functions import merge_training_sets
    from aiida_mscale.data.training_set import TrainingSetData

    images = _labelled_images(2)
    first = TrainingSetData.from_ase(images[:1]).store()
    second = TrainingSetData.from_ase(images[1:]).store()
    merged = merge_training_sets(a=first, b=second)
    assert len(merged) == 3
    assert np.array_equal(merged.get_array('energies'), [a.get_potential_energy() for a in images])
    assert np.array_equal(merged.get_array('weights'), [1.0, 2.5, 0.5])

    creator = merged.creator
    parents = {link.link_label: link.node.uuid for link in creator.base.links.get_incoming().all()}
    assert parents == {'a': first.uuid, 'b': second.uuid}
    query = orm.QueryBuilder().append(TrainingSetData, filters={'uuid': merged.uuid}, tag='merged')
    query.append(orm.CalcFunctionNode, with_outgoing='merged', tag='merge')
    query.append(TrainingSetData, with_outgoing='merge', project='uuid')
    assert sorted(query.all(flat=True)) == sorted([first.uuid, second.uuid])
