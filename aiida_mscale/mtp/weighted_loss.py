"""motep's loss with per-atom force weights and per-configuration energy and stress weights.

Used by the training script (:mod:`aiida_mscale.mtp.train`) when a training set carries weights other than 1:
the cut cells of local active learning (:mod:`aiida_mscale.mtp.neighbourhood`) count only their core atoms' forces
and neither their energy nor their stress.

The force term of configuration i (motep's ``forces_per_atom`` normalisation, with the number of atoms replaced
by the sum of the weights, so that all-ones weights give motep's term exactly)::

    L_F,i = sum_a w_a |F_a(theta) - F_DFT,a|^2 / sum_a w_a          [eV^2/Angstrom^2]
    dL_F,i/dtheta = 2 sum_a w_a (F_a - F_DFT,a) . dF_a/dtheta / sum_a w_a

(``forces_per_atom`` false: no division). A configuration whose weights are all zero adds nothing. The energy and
stress terms are motep's, with motep's ``configuration_weight`` of each term set per configuration (0 for a cut
cell). motep's linear steps (``LLS``, ``Level2MTP``, ``NI``) assemble their least-squares system from the images
directly and ignore every weight: :func:`check_steps` refuses them when weights are present.

Method: the weighted least-squares loss of MTP fitting (Shapeev, Multiscale Model. Simul. 14, 1153 (2016)) with
the per-atom force weights of local active learning (Podryabinkin et al., J. Chem. Phys. 159, 084112 (2023)).
"""

from __future__ import annotations

import numpy as np
from motep.loss import LossFunction, LossFunctionForces

from aiida_mscale.mtp.weights import LINEAR_STEPS, check_steps, has_weights

__all__ = ['LINEAR_STEPS', 'PerAtomForceLoss', 'WeightedLossFunction', 'check_steps', 'has_weights']


class PerAtomForceLoss(LossFunctionForces):
    """motep's force term with a weight per atom (see the module docstring for the formula)."""

    def __init__(self, images, *, atom_weights, **kwargs):
        super().__init__(images, **kwargs)
        if len(atom_weights) != len(images):
            raise ValueError(f'{len(atom_weights)} force-weight arrays for {len(images)} configurations')
        self.atom_weights = []
        for k, (atoms, weights) in enumerate(zip(images, atom_weights)):
            weights = np.asarray(weights, dtype=float).reshape(-1)
            if weights.shape != (len(atoms),):
                raise ValueError(f'configuration {k}: {weights.size} force weights for {len(atoms)} atoms')
            if np.any(weights < 0) or not np.all(np.isfinite(weights)):
                raise ValueError(f'configuration {k}: force weights must be finite and non-negative')
            self.atom_weights.append(weights)

    def _factor(self, i: int) -> float:
        """The configuration's factor in front of sum_a w_a |dF_a|^2 (0 if it has no weighted atom)."""
        total = self.atom_weights[i].sum()
        if total == 0.0:
            return 0.0
        factor = float(self.configuration_weight[i])
        return factor / total if self.forces_per_atom else factor

    def _mine(self):
        """Indices of the configurations with forces that this MPI rank evaluates."""
        with_forces = set(int(i) for i in self.idcs_frc)
        return [i for i in range(self.comm.rank, len(self.images), self.comm.size) if i in with_forces]

    def _normalised(self, value):
        return value / len(self.images) if self.forces_per_conf else value

    def calculate(self) -> float:
        local = 0.0
        for i in self._mine():
            calc = self.images[i].calc
            residual = calc.results['forces'] - calc.targets['forces']
            local += self._factor(i) * float(np.sum(self.atom_weights[i][:, None] * residual**2))
        return self._normalised(self.comm.allreduce(local))

    def jac(self) -> np.ndarray:
        size = self.mtp_data.number_of_parameters_optimized
        local, total = np.zeros(size), np.zeros(size)
        for i in self._mine():
            factor = self._factor(i)
            if factor == 0.0:
                continue
            atoms = self.images[i]
            residual = atoms.calc.results['forces'] - atoms.calc.targets['forces']
            weighted = self.atom_weights[i][:, None] * residual  # (n, 3)
            dforces = atoms.calc.engine.jac_forces(atoms).parameters  # (parameters, n, 3)
            local += factor * 2.0 * np.sum(weighted * dforces, axis=(-2, -1))
        self.comm.Allreduce(local, total)
        return self._normalised(total)


class WeightedLossFunction(LossFunction):
    """motep's ``LossFunction`` with per-atom force weights and per-configuration energy/stress weights.

    :param force_weights: one (n_i,) array per image.
    :param energy_weights: (N,) weight of each configuration's energy term (0: not fitted).
    :param stress_weights: (N,) weight of each configuration's stress term (0: not fitted).
    Other arguments as motep's ``LossFunction(images, mtp_data, setting, engine=..., comm=...)``.
    """

    def __init__(self, *args, force_weights, energy_weights, stress_weights, **kwargs):
        super().__init__(*args, **kwargs)
        n = len(self.images)
        for name, values in (('energy', energy_weights), ('stress', stress_weights)):
            values = np.asarray(values, dtype=float).reshape(-1)
            if values.shape != (n,) or np.any(values < 0) or not np.all(np.isfinite(values)):
                raise ValueError(f'{name} weights: need {n} finite non-negative numbers')
        self.loss_energy.configuration_weight = np.asarray(energy_weights, dtype=float).copy()
        self.loss_stress.configuration_weight = np.asarray(stress_weights, dtype=float).copy()
        # motep's calculators have replaced the labelled ones by now: keep the indices of the labelled forces
        labelled = self.loss_forces.idcs_frc
        self.loss_forces = PerAtomForceLoss(
            self.images,
            atom_weights=force_weights,
            mtp_data=self.mtp_data,
            forces_per_atom=self.setting.forces_per_atom,
            forces_per_conf=self.setting.forces_per_conf,
            comm=self.comm,
        )
        self.loss_forces.idcs_frc = labelled
