"""``TrainingSetData``: labelled atomic configurations for fitting interatomic potentials."""

from __future__ import annotations

import re

import numpy as np
from aiida.orm import ArrayData

from aiida_mscale.mtp.cfg import (
    CfgConfiguration,
    read_cfg,
    stress_from_virial,
    virial_from_stress,
    weight_features,
    write_cfg,
)

__all__ = ['TrainingSetData']

_UUID = re.compile(r'[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}')

_PER_CONFIGURATION = ('numbers_of_atoms', 'cells', 'pbc', 'energies', 'stresses', 'virials', 'weights', 'source_uuids')
_PER_ATOM = ('positions', 'atomic_numbers', 'forces')
#: Optional weight arrays (default 1 everywhere): stored only when some weight differs from 1, so a set without
#: them (every node made before they existed) reads as all ones.
_OPTIONAL_PER_CONFIGURATION = ('energy_weights', 'stress_weights')
_OPTIONAL_PER_ATOM = ('force_weights',)


class TrainingSetData(ArrayData):
    """N atomic configurations with their DFT labels, stored as arrays in the node's repository.

    Arrays (``M`` = total number of atoms over all configurations; atoms of configuration ``k`` are
    rows ``offsets[k]:offsets[k+1]`` of the per-atom arrays):

    ===================  ===========  ===============================================================
    name                 shape        meaning and unit
    ===================  ===========  ===============================================================
    ``numbers_of_atoms`` (N,)         atoms per configuration
    ``cells``            (N, 3, 3)    lattice vectors as rows [Angstrom] (zeros where not periodic)
    ``pbc``              (N, 3)       periodicity along each lattice vector
    ``positions``        (M, 3)       Cartesian positions [Angstrom]
    ``atomic_numbers``   (M,)         element of each atom
    ``energies``         (N,)         total energy [eV]; NaN for an unlabelled configuration
    ``forces``           (M, 3)       forces [eV/Angstrom]; NaN where unlabelled
    ``stresses``         (N, 3, 3)    stress [eV/Angstrom^3], ASE sign convention:
                                      ``sigma = (1/V) dE/d(strain)``, negative under compression
                                      (the opposite sign of the stress pw.x prints); NaN if absent
    ``virials``          (N, 3, 3)    MLIP's ``PlusStress`` virial [eV]: ``-V * sigma``; NaN if absent
    ``weights``          (N,)         per-configuration weight in a fit (default 1)
    ``source_uuids``     (N,)         UUID of the calculation each label came from ('' if unknown)
    ``energy_weights``   (N,)         optional: weight of the energy term of each configuration (default 1)
    ``stress_weights``   (N,)         optional: weight of the stress term of each configuration (default 1)
    ``force_weights``    (M,)         optional: weight of each atom's force (default 1)
    ===================  ===========  ===============================================================

    The optional weights are those of local active learning (:mod:`aiida_mscale.mtp.neighbourhood`): a cell cut
    around an extrapolative atom has energy and stress weight 0 and force weight 1 on its core atoms only. They
    are stored only when one of them differs from 1; :meth:`get_weights` gives ones for a set without them.

    ``stresses`` and ``virials`` carry the same information (they agree to floating-point
    rounding). Both are kept, each exactly as its source gave it, so that a round trip through ASE
    (which speaks stress) and through MLIP's ``.cfg`` (which speaks virial) is bit-exact.

    ``source_uuids`` names the calculation that computed each label. With AiiDA caching, a labelling step taken
    from the cache is a clone of an earlier one: its set names the earlier run's pw.x calculations (those the cached
    PwCalculations were cloned from), not its own ancestors, and an entry dangles once that run is deleted. The
    provenance graph is the record that always holds: ``aiida-mscale query dft-sources NODE`` walks it.

    Arrays live in the repository, not in the database, so 10^5 configurations stay cheap; the
    attributes hold only the summary (counts and species).
    """

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        numbers_of_atoms,
        cells,
        pbc,
        positions,
        atomic_numbers,
        energies=None,
        forces=None,
        stresses=None,
        virials=None,
        weights=None,
        source_uuids=None,
        energy_weights=None,
        stress_weights=None,
        force_weights=None,
    ) -> 'TrainingSetData':
        """Build a node from concatenated arrays (see the class docstring for shapes and units).

        Whichever of ``stresses`` and ``virials`` is missing is derived from the other.

        :raises ValueError: naming the inconsistent array.
        """
        counts = np.asarray(numbers_of_atoms, dtype=np.int64).reshape(-1)
        n_conf, n_atoms = len(counts), int(counts.sum())
        if n_conf == 0:
            raise ValueError('a training set needs at least one configuration')
        if np.any(counts <= 0):
            raise ValueError('every configuration needs at least one atom')

        def _array(value, shape, name, fill=np.nan, dtype=float):
            if value is None:
                return np.full(shape, fill, dtype=dtype)
            array = np.asarray(value, dtype=dtype)
            if array.shape != shape:
                raise ValueError(f'`{name}` has shape {array.shape}, expected {shape}')
            return array

        cells = _array(cells, (n_conf, 3, 3), 'cells')
        pbc = _array(pbc, (n_conf, 3), 'pbc', dtype=bool)
        positions = _array(positions, (n_atoms, 3), 'positions')
        atomic_numbers = _array(atomic_numbers, (n_atoms,), 'atomic_numbers', dtype=np.int64)
        energies = _array(energies, (n_conf,), 'energies')
        forces = _array(forces, (n_atoms, 3), 'forces')
        stresses = None if stresses is None else _array(stresses, (n_conf, 3, 3), 'stresses')
        virials = None if virials is None else _array(virials, (n_conf, 3, 3), 'virials')
        weights = _array(weights, (n_conf,), 'weights', fill=1.0)
        optional = {
            'energy_weights': _array(energy_weights, (n_conf,), 'energy_weights', fill=1.0),
            'stress_weights': _array(stress_weights, (n_conf,), 'stress_weights', fill=1.0),
            'force_weights': _array(force_weights, (n_atoms,), 'force_weights', fill=1.0),
        }
        for name, array in optional.items():
            if np.any(array < 0) or not np.all(np.isfinite(array)):
                raise ValueError(f'`{name}` must be finite and non-negative')
        if source_uuids is None:
            source_uuids = [''] * n_conf
        source_uuids = [str(u) for u in source_uuids]
        if len(source_uuids) != n_conf:
            raise ValueError(f'`source_uuids` has {len(source_uuids)} entries for {n_conf} configurations')
        bad = [u for u in source_uuids if u and not _UUID.fullmatch(u)]
        if bad:
            raise ValueError(f'`source_uuids` must be UUIDs (36 characters) or empty; refused {bad[:3]}')
        source_uuids = np.asarray(source_uuids, dtype='U36')
        if np.any(atomic_numbers < 1) or np.any(atomic_numbers > 118):
            raise ValueError('`atomic_numbers` must be between 1 and 118')
        if not np.all(np.isfinite(positions)):
            raise ValueError('`positions` must be finite')
        if np.any(weights < 0) or not np.all(np.isfinite(weights)):
            raise ValueError('`weights` must be finite and non-negative')
        if np.any(np.isinf(energies)):
            raise ValueError('`energies` must be finite (NaN marks an unlabelled configuration)')
        if np.any(np.isinf(forces)):
            raise ValueError('`forces` must be finite (NaN marks an unlabelled configuration)')
        offsets = np.concatenate([[0], np.cumsum(counts)])
        for k in range(n_conf):
            block = forces[offsets[k] : offsets[k + 1]]
            labelled = np.isfinite(energies[k])
            if labelled and not np.all(np.isfinite(block)):
                raise ValueError(f'configuration {k} has an energy but non-finite forces: label all of it or none')
            if not labelled and np.any(np.isfinite(block)):
                raise ValueError(f'configuration {k} has forces but no energy: label all of it or none')

        volumes = np.abs(np.linalg.det(cells))
        if not np.all(np.isfinite(cells)):
            raise ValueError('`cells` must be finite')
        degenerate = np.flatnonzero(pbc.all(axis=1) & ~(volumes > 1e-6))
        if len(degenerate):
            raise ValueError(
                f'configuration {int(degenerate[0])} is periodic but its cell has zero volume '
                f'(linearly dependent or missing lattice vectors)'
            )
        periodic = pbc.all(axis=1) & (volumes > 0)
        if stresses is None and virials is None:
            stresses = np.full((n_conf, 3, 3), np.nan)
            virials = np.full((n_conf, 3, 3), np.nan)
        elif virials is None:
            virials = np.full((n_conf, 3, 3), np.nan)
            for k in np.flatnonzero(periodic):
                virials[k] = virial_from_stress(stresses[k], cells[k])
        elif stresses is None:
            stresses = np.full((n_conf, 3, 3), np.nan)
            for k in np.flatnonzero(periodic):
                stresses[k] = stress_from_virial(virials[k], cells[k])

        node = cls()
        for name, array in (
            ('numbers_of_atoms', counts),
            ('cells', cells),
            ('pbc', pbc),
            ('positions', positions),
            ('atomic_numbers', atomic_numbers),
            ('energies', energies),
            ('forces', forces),
            ('stresses', stresses),
            ('virials', virials),
            ('weights', weights),
            ('source_uuids', source_uuids),
        ):
            node.set_array(name, array)
        for name, array in optional.items():
            if np.any(array != 1.0):
                node.set_array(name, array)
        node.base.attributes.set('number_of_configurations', n_conf)
        node.base.attributes.set('number_of_atoms_total', n_atoms)
        node.base.attributes.set('species', _species_of(atomic_numbers))
        node.base.attributes.set('number_labelled', int(np.isfinite(energies).sum()))
        return node

    # ------------------------------------------------------------------ summary
    @property
    def number_of_configurations(self) -> int:
        """Number of configurations N."""
        return self.base.attributes.get('number_of_configurations')

    def __len__(self) -> int:
        return self.number_of_configurations

    @property
    def species(self) -> list[str]:
        """Chemical symbols present, ordered by atomic number."""
        return list(self.base.attributes.get('species'))

    @property
    def number_labelled(self) -> int:
        """Configurations with an energy."""
        return self.base.attributes.get('number_labelled')

    def get_offsets(self) -> np.ndarray:
        """(N+1,) row offsets of each configuration into the per-atom arrays."""
        return np.concatenate([[0], np.cumsum(self.get_array('numbers_of_atoms'))])

    def get_arrays(self) -> dict[str, np.ndarray]:
        """All arrays in a dict, loaded once (the optional weights as :meth:`get_weights` gives them)."""
        arrays = {name: self.get_array(name) for name in _PER_CONFIGURATION + _PER_ATOM}
        arrays.update(self.get_weights())
        return arrays

    def has_weights(self) -> bool:
        """True if some energy, stress or force weight differs from 1 (the fit then needs the weighted loss)."""
        return any(name in self.get_arraynames() for name in _OPTIONAL_PER_CONFIGURATION + _OPTIONAL_PER_ATOM)

    def get_weights(self) -> dict[str, np.ndarray]:
        """``energy_weights`` (N,), ``stress_weights`` (N,), ``force_weights`` (M,): stored, or ones."""
        return {name: self.get_array(name) for name in _OPTIONAL_PER_CONFIGURATION + _OPTIONAL_PER_ATOM}

    def get_array(self, name: str | None = None) -> np.ndarray:
        """The array ``name``; an optional weight array that is not stored is all ones (weights default to 1)."""
        optional = _OPTIONAL_PER_CONFIGURATION + _OPTIONAL_PER_ATOM
        if name in optional and name not in self.get_arraynames():
            n_conf = self.base.attributes.get('number_of_configurations')
            n_atoms = self.base.attributes.get('number_of_atoms_total')
            return np.ones(n_atoms if name in _OPTIONAL_PER_ATOM else n_conf)
        return super().get_array(name)

    # ------------------------------------------------------------------ ASE
    @classmethod
    def from_ase(cls, images) -> 'TrainingSetData':
        """Build from ASE ``Atoms``, taking energy, forces and stress from each one's calculator results.

        ``atoms.info['weight']``, ``atoms.info['source_uuid']``, ``atoms.info['energy_weight']``,
        ``atoms.info['stress_weight']`` and ``atoms.arrays['force_weight']`` are kept when present.
        """
        images = list(images)
        if not images:
            raise ValueError('a training set needs at least one configuration')
        n_conf = len(images)
        energies = np.full(n_conf, np.nan)
        stresses = np.full((n_conf, 3, 3), np.nan)
        forces, has_virial, virials = [], False, np.full((n_conf, 3, 3), np.nan)
        for k, atoms in enumerate(images):
            results = dict(atoms.calc.results) if atoms.calc is not None else {}
            forces.append(np.asarray(results.get('forces', np.full((len(atoms), 3), np.nan)), dtype=float))
            if 'energy' in results:
                energies[k] = results['energy']
            if 'stress' in results:
                stresses[k] = _voigt_to_full(np.asarray(results['stress'], dtype=float))
            if 'mlip_virial' in atoms.info:
                has_virial = True
                virials[k] = np.asarray(atoms.info['mlip_virial'], dtype=float)
        return cls.from_arrays(
            numbers_of_atoms=[len(a) for a in images],
            cells=np.array([a.cell.array for a in images]),
            pbc=np.array([a.pbc for a in images]),
            positions=np.concatenate([a.positions for a in images]),
            atomic_numbers=np.concatenate([a.numbers for a in images]),
            energies=energies,
            forces=np.concatenate(forces),
            stresses=stresses,
            virials=virials if has_virial else None,
            weights=[a.info.get('weight', 1.0) for a in images],
            source_uuids=[a.info.get('source_uuid', '') for a in images],
            energy_weights=[a.info.get('energy_weight', 1.0) for a in images],
            stress_weights=[a.info.get('stress_weight', 1.0) for a in images],
            force_weights=np.concatenate([a.arrays.get('force_weight', np.ones(len(a))) for a in images]),
        )

    def to_ase(self) -> list:
        """Return the configurations as ASE ``Atoms`` with a ``SinglePointCalculator`` holding the labels.

        Stress is given in ASE's Voigt order (xx, yy, zz, yz, xz, xy) [eV/Angstrom^3]; the MLIP virial
        is in ``atoms.info['mlip_virial']`` [eV], the weight and source UUID in ``atoms.info`` too; weights other
        than 1 in ``atoms.info['energy_weight']``, ``atoms.info['stress_weight']`` and ``atoms.arrays['force_weight']``.
        """
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator
        from ase.stress import full_3x3_to_voigt_6_stress

        arrays = self.get_arrays()
        offsets = self.get_offsets()
        images = []
        for k in range(len(offsets) - 1):
            rows = slice(offsets[k], offsets[k + 1])
            atoms = Atoms(
                numbers=arrays['atomic_numbers'][rows],
                positions=arrays['positions'][rows],
                cell=arrays['cells'][k],
                pbc=arrays['pbc'][k],
            )
            results = {}
            if np.isfinite(arrays['energies'][k]):
                results['energy'] = float(arrays['energies'][k])
            if np.all(np.isfinite(arrays['forces'][rows])):
                results['forces'] = arrays['forces'][rows].copy()
            if np.all(np.isfinite(arrays['stresses'][k])):
                results['stress'] = full_3x3_to_voigt_6_stress(arrays['stresses'][k])
            if results:
                atoms.calc = SinglePointCalculator(atoms, **results)
            if np.all(np.isfinite(arrays['virials'][k])):
                atoms.info['mlip_virial'] = arrays['virials'][k].copy()
            atoms.info['weight'] = float(arrays['weights'][k])
            if arrays['source_uuids'][k]:
                atoms.info['source_uuid'] = str(arrays['source_uuids'][k])
            for name in ('energy_weight', 'stress_weight'):
                if arrays[f'{name}s'][k] != 1.0:
                    atoms.info[name] = float(arrays[f'{name}s'][k])
            if np.any(arrays['force_weights'][rows] != 1.0):
                atoms.arrays['force_weight'] = arrays['force_weights'][rows].copy()
            images.append(atoms)
        return images

    # ------------------------------------------------------------------ MLIP .cfg
    def to_cfg(self, species: list[str] | None = None, indices=None) -> str:
        """Return the set (or the configurations ``indices``) in MLIP's ``.cfg`` format.

        :param species: chemical symbols in the order of the potential's types (type 0 first);
            default: :attr:`species` (ordered by atomic number).
        :param indices: optional configuration indices to write, in that order.
        """
        from ase.data import atomic_numbers as number_of

        species = list(species) if species is not None else self.species
        type_of = {number_of[s]: t for t, s in enumerate(species)}
        missing = sorted(set(self.species) - set(species))
        if missing:
            raise ValueError(f'species {missing} of the training set are not in the type list {species}')
        arrays = self.get_arrays()
        offsets = self.get_offsets()
        configurations = []
        for k in range(len(offsets) - 1) if indices is None else indices:
            rows = slice(offsets[k], offsets[k + 1])
            periodic = bool(arrays['pbc'][k].all())
            if arrays['pbc'][k].any() and not periodic:
                raise ValueError(f'configuration {k} is periodic in some directions only; MLIP .cfg cannot hold it')
            features = {}
            if arrays['weights'][k] != 1.0:
                features['weight'] = repr(float(arrays['weights'][k]))
            if arrays['source_uuids'][k]:
                features['source_uuid'] = str(arrays['source_uuids'][k])
            features.update(
                weight_features(arrays['energy_weights'][k], arrays['stress_weights'][k], arrays['force_weights'][rows])
            )
            forces = arrays['forces'][rows]
            virial = arrays['virials'][k]
            configurations.append(
                CfgConfiguration(
                    types=np.array([type_of[z] for z in arrays['atomic_numbers'][rows]]),
                    positions=arrays['positions'][rows],
                    cell=arrays['cells'][k] if periodic else None,
                    forces=forces if np.all(np.isfinite(forces)) else None,
                    energy=float(arrays['energies'][k]) if np.isfinite(arrays['energies'][k]) else None,
                    virial=virial if np.all(np.isfinite(virial)) else None,
                    features=features,
                )
            )
        return write_cfg(configurations)

    @classmethod
    def from_cfg(cls, text: str, species: list[str]) -> 'TrainingSetData':
        """Build from the text of an MLIP ``.cfg`` file.

        :param species: chemical symbols of types 0, 1, ... (the file does not carry them).
        :raises ValueError: for malformed text or a type index outside ``species``.
        """
        from ase.data import atomic_numbers as number_of

        from aiida_mscale.schema import check_token

        numbers = np.array([number_of[check_token(s, 'element')] for s in species])
        configurations = read_cfg(text)
        if not configurations:
            raise ValueError('the .cfg text holds no configuration')
        for k, conf in enumerate(configurations):
            if conf.types.min() < 0 or conf.types.max() >= len(species):
                raise ValueError(f'configuration {k} has type {conf.types.max()} but only {len(species)} species')
        nan3 = np.full((3, 3), np.nan)
        return cls.from_arrays(
            numbers_of_atoms=[len(c.types) for c in configurations],
            cells=np.array([c.cell if c.cell is not None else np.zeros((3, 3)) for c in configurations]),
            pbc=np.array([[c.cell is not None] * 3 for c in configurations]),
            positions=np.concatenate([c.positions for c in configurations]),
            atomic_numbers=np.concatenate([numbers[c.types] for c in configurations]),
            energies=[c.energy if c.energy is not None else np.nan for c in configurations],
            forces=np.concatenate(
                [c.forces if c.forces is not None else np.full((len(c.types), 3), np.nan) for c in configurations]
            ),
            virials=np.array([c.virial if c.virial is not None else nan3 for c in configurations]),
            weights=[float(c.features.get('weight', 1.0)) for c in configurations],
            source_uuids=[c.features.get('source_uuid', '') for c in configurations],
            **_weights_of(configurations),
        )

    def __str__(self) -> str:
        return (
            f'{super().__str__()} [{self.number_of_configurations} configurations, '
            f'{self.number_labelled} labelled, species {"-".join(self.species)}]'
        )


def _weights_of(configurations) -> dict:
    """The optional weight arrays of ``from_arrays`` read from the configurations' ``Feature`` lines."""
    from aiida_mscale.mtp.cfg import weights_from_features

    read = [weights_from_features(c.features, len(c.types)) for c in configurations]
    return {
        'energy_weights': [r[0] for r in read],
        'stress_weights': [r[1] for r in read],
        'force_weights': np.concatenate([r[2] for r in read]),
    }


def _species_of(atomic_numbers) -> list[str]:
    from ase.data import chemical_symbols

    return [chemical_symbols[z] for z in sorted(set(int(z) for z in atomic_numbers))]


def _voigt_to_full(stress) -> np.ndarray:
    """A 3x3 stress from ASE's Voigt 6-vector (xx, yy, zz, yz, xz, xy), or a copy of a 3x3 one."""
    from ase.stress import voigt_6_to_full_3x3_stress

    return stress.copy() if stress.shape == (3, 3) else voigt_6_to_full_3x3_stress(stress)
