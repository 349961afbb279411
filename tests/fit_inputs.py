"""Inputs of MTP fits and selections built for the tests: a training set from ASE ``Atoms`` and the input dict of the
training script. One place instead of a copy of the same ``TrainingSetData.from_arrays`` call in each test file.

AiiDA is imported inside the functions, so that importing this module does not load a profile.
"""

import numpy as np


def training_set(configurations, energies=None, forces=None):
    """A ``TrainingSetData`` (not stored) of ``configurations`` (a list of ``ase.Atoms``), cells and pbc as the atoms
    have them.

    :param energies: total energies (eV), one per configuration; without them the set is unlabelled (candidates).
    :param forces: forces (eV/Angstrom), an (n_atoms_total, 3) array; with energies and without forces, all zero.
    """
    from aiida_mscale.data.training_set import TrainingSetData

    labels = {}
    if energies is not None:
        n_atoms = sum(len(a) for a in configurations)
        labels = {'energies': energies, 'forces': np.zeros((n_atoms, 3)) if forces is None else forces}
    return TrainingSetData.from_arrays(
        numbers_of_atoms=[len(a) for a in configurations],
        cells=[a.cell.array for a in configurations],
        pbc=[a.pbc for a in configurations],
        positions=np.concatenate([a.positions for a in configurations]),
        atomic_numbers=np.concatenate([a.numbers for a in configurations]),
        **labels,
    )


def bfgs(maxiter):
    """The ``steps`` of a fit of ``maxiter`` BFGS iterations (motep's ``minimize``)."""
    return [{'method': 'minimize', 'kwargs': {'method': 'BFGS', 'options': {'maxiter': maxiter}}}]


def train_script_inputs(species, loss, steps, **extra):
    """The input dict of ``aiida_mscale.mtp.train.train``: fit ``initial.mtp`` to ``train.cfg`` (both in the work
    directory, no validation set).

    :param loss: the weights of the loss, ``{'energy_weight', 'forces_weight', 'stress_weight'}``.
    :param steps: motep's optimisation steps, e.g. ``bfgs(15)``.
    :param extra: further keys of the dict (``seed``, ``engine``, ``checkpoint_every``).
    """
    return {
        'species': species,
        'initial_potential': 'initial.mtp',
        'training': 'train.cfg',
        'validation': None,
        'loss': loss,
        'steps': steps,
        **extra,
    }
