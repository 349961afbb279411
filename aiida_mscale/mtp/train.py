"""``mscale-mtp-train``: fit a Moment Tensor Potential with motep and report its errors.

Runs as the executable of ``MtpTrainCalculation`` (no AiiDA import). Reads ``input.json``::

    {
      "species": ["Li", "Co", "O"],          # type order of the potential
      "initial_potential": "initial.mtp",    # untrained template or a previous fit (warm start)
      "training": "train.cfg",               # MLIP .cfg with energies, forces, virials
      "validation": "validation.cfg",        # or null
      "loss": {"energy_weight": 1.0, "forces_weight": 0.01, "stress_weight": 0.001},
      "steps": [{"method": "minimize", "kwargs": {"method": "BFGS", "options": {"maxiter": 1000}}}],
      "seed": 42,
      "engine": "cext",
      "checkpoint_every": 50                 # write checkpoint.mtp every 50 optimizer iterations (0: never)
    }

and writes ``final.mtp`` (MLIP layout, coefficients bit-exact), ``learning_curve.json`` (the loss after
every optimizer iteration, per step) and ``errors.json`` (RMSE and MAX of energy per atom [meV/atom],
forces [meV/Angstrom] and stress [GPa] on the training and validation sets, evaluated afresh with the final
potential). Method: Shapeev, Multiscale Model. Simul. 14, 1153 (2016); fit by motep's loss (energy, forces,
stress terms with the given weights).

Per-atom weights: when ``train.cfg`` carries ``Feature energy_weight`` / ``stress_weight`` / ``force_weights``
(cells cut around extrapolative atoms, :mod:`aiida_mscale.mtp.neighbourhood`), the fit uses
:class:`aiida_mscale.mtp.weighted_loss.WeightedLossFunction` (only weighted atoms' forces, energy/stress terms
scaled per configuration) and refuses motep's linear steps (LLS, Level2MTP, NI), which ignore weights, before
anything is fitted. The error tables then count only weighted forces, energies and stresses. Without those
features the fit is motep's ``Trainer``, exactly as before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from pathlib import Path

import numpy as np

from aiida_mscale.constants import EV_PER_ANG3_IN_GPA
from aiida_mscale.mtp.script import run_script


class _LossRecorder(logging.Handler):
    """Collect the ``loss N: value`` lines motep's optimizer callback logs after each iteration.

    With ``checkpoint`` (a callable) and ``every`` > 0, ``checkpoint()`` is called after every ``every``-th
    iteration: the training script writes the current coefficients to ``checkpoint.mtp`` there, so a run cut short
    (walltime) leaves a potential to warm start from.
    """

    pattern = re.compile(r'^loss (\d+): ([-+0-9.eEnaif]+)$')

    def __init__(self, checkpoint=None, every: int = 0):
        super().__init__(level=logging.INFO)
        self.values: list[float] = []
        self.checkpoint = checkpoint
        self.every = int(every)

    def emit(self, record):
        match = self.pattern.match(record.getMessage())
        if match:
            self.values.append(float(match.group(2)))
            if self.checkpoint is not None and self.every > 0 and len(self.values) % self.every == 0:
                self.checkpoint()


def evaluate_errors(images, make_calculator) -> dict:
    """RMSE and MAX errors of the potential against the labels carried by ``images``.

    :param make_calculator: returns a fresh ASE calculator (motep's calculators keep per-atom neighbour
        settings, so one calculator is not reused across configurations of different sizes).
    :param images: ASE Atoms whose ``info['targets']`` holds ``energy`` [eV], ``forces`` [eV/A] and optionally
        ``stress`` (3x3, ASE sign, eV/A^3).
    :return: ``{'energy_per_atom': {'rmse', 'max'} [meV/atom], 'forces': ... [meV/A], 'stress': ... [GPa], 'n'}``.
    """
    de, df, ds = [], [], []
    for atoms in images:
        targets = atoms.info['targets']
        atoms = atoms.copy()
        atoms.calc = make_calculator()
        # weights (cut cells): only atoms with a force weight > 0, energies/stresses with a weight > 0 count
        force_weights = targets.get('force_weights')
        if targets.get('energy_weight', 1.0) > 0:
            de.append((atoms.get_potential_energy() - targets['energy']) / len(atoms) * 1000.0)
        difference = (atoms.get_forces() - targets['forces']) * 1000.0
        if force_weights is not None:
            difference = difference[np.asarray(force_weights) > 0]
        df.append(difference.ravel())
        if targets.get('stress') is not None and targets.get('stress_weight', 1.0) > 0:
            ds.append(((atoms.get_stress(voigt=False) - targets['stress']) * EV_PER_ANG3_IN_GPA).ravel())

    def stats(values):
        values = np.concatenate([np.atleast_1d(v) for v in values]) if values else np.array([])
        if values.size == 0:
            return {'rmse': None, 'max': None}
        return {'rmse': float(np.sqrt(np.mean(values**2))), 'max': float(np.max(np.abs(values)))}

    return {'n': len(images), 'energy_per_atom': stats(de), 'forces': stats(df), 'stress': stats(ds)}


def read_labelled_cfg(path: Path, species: list[str]) -> list:
    """Read a ``.cfg`` with our reader into ASE Atoms carrying their labels in ``info['targets']``."""
    from ase import Atoms

    from aiida_mscale.mtp.cfg import read_cfg, stress_from_virial, weights_from_features

    images = []
    for conf in read_cfg(path.read_text()):
        energy_weight, stress_weight, force_weights = weights_from_features(conf.features, len(conf.types))
        atoms = Atoms(symbols=[species[t] for t in conf.types], positions=conf.positions, cell=conf.cell, pbc=True)
        if conf.energy is None or conf.forces is None:
            raise ValueError(f'{path.name}: a configuration without energy or forces cannot be fitted')
        atoms.info['targets'] = {
            'energy': conf.energy,
            'forces': conf.forces,
            'stress': None if conf.virial is None else stress_from_virial(conf.virial, conf.cell),
            'energy_weight': energy_weight,
            'stress_weight': stress_weight,
            'force_weights': force_weights,
        }
        images.append(atoms)
    return images


def read_fit_weights(path: Path) -> dict | None:
    """The weights of the configurations of a ``.cfg`` file, or None when every weight is 1.

    :return: ``{'energy_weights': (N,), 'stress_weights': (N,), 'force_weights': [(n_i,), ...]}``.
    """
    from aiida_mscale.mtp.cfg import read_cfg, weights_from_features

    read = [weights_from_features(c.features, len(c.types)) for c in read_cfg(Path(path).read_text())]
    weights = {
        'energy_weights': np.array([r[0] for r in read]),
        'stress_weights': np.array([r[1] for r in read]),
        'force_weights': [r[2] for r in read],
    }
    from aiida_mscale.mtp.weights import has_weights

    return weights if has_weights(**weights) else None


def _fit_weighted(data, images, inputs: dict, step: dict, weights: dict) -> None:
    """One optimizer step of the weighted fit: motep's optimizer on :class:`WeightedLossFunction`.

    Mirrors what ``motep.train.Trainer`` does for one step (fresh seeded generator, parameters initialised where
    unset, the optimizer run on the loss); the loss is ours.
    """
    from motep.loss import LossSetting
    from motep.optimizers import make_optimizer

    from aiida_mscale.mtp.weighted_loss import WeightedLossFunction

    data.initialize(np.random.default_rng(int(inputs.get('seed', 42))))
    loss = WeightedLossFunction(
        images,
        data,
        LossSetting.from_any(inputs.get('loss')),
        engine=inputs.get('engine', 'cext'),
        **weights,
    )
    optimizer = make_optimizer(step['method'])(loss, **step)
    optimizer.optimize(**step.get('kwargs', {}))
    loss.broadcast_results()


def train(inputs: dict, workdir: Path = Path('.')) -> dict:
    """Fit the potential described by ``inputs`` (see the module docstring); return the error table."""
    import motep.io
    from ase.data import atomic_numbers
    from motep.calculator import make_calculator
    from motep.io.mlip.mtp import read_mtp
    from motep.parallel import world
    from motep.train import Trainer

    from aiida_mscale.mtp.potential_file import MtpPotential
    from aiida_mscale.mtp.potential_file import read_mtp as read_mtp_exact

    workdir = Path(workdir).resolve()
    species = list(inputs['species'])
    numbers = [atomic_numbers[s] for s in species]
    steps = inputs.get('steps') or [{'method': 'minimize', 'kwargs': {'method': 'BFGS'}}]
    weights = read_fit_weights(workdir / inputs['training'])
    if weights is not None:
        from aiida_mscale.mtp.weights import check_steps

        check_steps(steps)  # before anything is fitted
    initial = workdir / inputs['initial_potential']
    read_mtp_exact(initial)  # a malformed file fails here with a message naming the line
    data = read_mtp(str(initial))
    data.species = numbers
    training_images = motep.io.read(str(workdir / inputs['training']), species=numbers)

    def checkpoint():
        # motep sets the coefficients of ``data`` at every evaluation of the loss; after the optimizer's callback
        # they are those of the accepted iterate. Written atomically (rename), so a cut never leaves half a file.
        if world.rank == 0 and np.all(np.isfinite(data.parameters)):
            partial = workdir / 'checkpoint.mtp.partial'
            MtpPotential.from_motep(data).write(partial)
            partial.replace(workdir / 'checkpoint.mtp')

    recorder = _LossRecorder(checkpoint, int(inputs.get('checkpoint_every', 0) or 0))
    motep_logger = logging.getLogger('motep')
    motep_logger.setLevel(logging.INFO)
    motep_logger.addHandler(recorder)
    learning_curve = []
    for index, step in enumerate(steps):
        start = len(recorder.values)
        if weights is not None:
            _fit_weighted(data, training_images, inputs, step, weights)
            learning_curve.append({'step': index, 'method': step.get('method'), 'loss': recorder.values[start:]})
            continue
        trainer = Trainer(
            data,
            seed=int(inputs.get('seed', 42)),
            engine=inputs.get('engine', 'cext'),
            loss=inputs.get('loss'),
            steps=[step],
        )
        with contextlib.chdir(workdir):  # motep's Trainer writes intermediate_<step>.mtp into the working directory
            trainer.train(training_images)
        learning_curve.append({'step': index, 'method': step.get('method'), 'loss': recorder.values[start:]})
    motep_logger.removeHandler(recorder)

    if world.rank != 0:  # under MPI (mpi4py), every rank trained its share of the images; rank 0 reports
        return {}
    final = MtpPotential.from_motep(data)
    final.write(workdir / 'final.mtp')

    def calculator():
        return make_calculator(data, engine=inputs.get('engine', 'cext'))

    errors = {'training': evaluate_errors(read_labelled_cfg(workdir / inputs['training'], species), calculator)}
    if inputs.get('validation'):
        images = read_labelled_cfg(workdir / inputs['validation'], species)
        errors['validation'] = evaluate_errors(images, calculator)
    (workdir / 'learning_curve.json').write_text(json.dumps(learning_curve))
    (workdir / 'errors.json').write_text(json.dumps(errors, indent=2))
    return errors


def main(argv=None) -> int:
    """Command-line entry point: ``mscale-mtp-train input.json``."""
    return run_script('mscale-mtp-train', train, argv)


if __name__ == '__main__':
    sys.exit(main())
