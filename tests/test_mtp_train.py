"""MtpTrainCalculation: fit an MTP with motep to a training set labelled by real pw.x."""

import numpy as np
import pytest


def _train(code, training_set, potential, maxiter, seed=3, mpiprocs=None):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.calculations.mtp_train import MtpTrainCalculation

    builder = MtpTrainCalculation.get_builder()
    builder.code = code
    builder.training_set = training_set
    builder.potential = potential
    if mpiprocs:
        builder.metadata.options.withmpi = True
        builder.metadata.options.resources = {'num_machines': 1, 'num_mpiprocs_per_machine': mpiprocs}
    builder.parameters = orm.Dict(
        {
            'validation_fraction': 0.25,
            'seed': seed,
            # At 25 Ry the semicore Li pseudopotential carries a Pulay stress of a few GPa, so these stresses
            # disagree with the slope of E(V); fitting them would fit the basis-set error. Energies and forces only.
            'loss': {'energy_weight': 1.0, 'forces_weight': 0.01, 'stress_weight': 0.0},
            'steps': [{'method': 'minimize', 'kwargs': {'method': 'BFGS', 'options': {'maxiter': maxiter}}}],
        }
    )
    return run_get_node(builder)


def test_train_and_warm_start(mtp_train_code, lithium_training_set):
    from aiida_mscale.calculations.mtp_train import split_training_validation
    from aiida_mscale.data.mtp_potential import MtpPotentialData

    template = MtpPotentialData.from_template(6, ['Li'], min_dist=2.0, max_dist=5.0)
    assert template.level == 6 and not template.base.attributes.get('is_trained')
    results, node = _train(mtp_train_code, lithium_training_set, template, maxiter=300)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)

    potential = results['potential']
    assert potential.species == ['Li'] and potential.base.attributes.get('training_set_size') == 8
    loss = results['learning_curve'].get_array('loss')
    assert loss[-1] < 0.01 * loss[0], (loss[0], loss[-1])  # the fit learned something

    # Errors recomputed independently with the stored potential (through motep's ASE calculator).
    _, validation = split_training_validation(8, 0.25, 3)
    images = lithium_training_set.to_ase()
    calculator = potential.get_calculator()
    de = []
    for index in validation:
        atoms = images[index].copy()
        reference = images[index].get_potential_energy()
        atoms.calc = calculator
        de.append((atoms.get_potential_energy() - reference) / len(atoms) * 1000)
    errors = results['errors'].get_dict()
    assert errors['validation']['n'] == 2 and errors['training']['n'] == 6
    assert errors['validation']['energy_per_atom']['rmse'] == pytest.approx(np.sqrt(np.mean(np.square(de))), rel=1e-9)
    # Better than the trivial models: the mean energy per atom, and zero forces.
    spread = np.std([a.get_potential_energy() / len(a) for a in images]) * 1000
    forces = np.sqrt(np.mean(np.concatenate([a.get_forces().ravel() for a in images]) ** 2)) * 1000
    print(f'\nMTP level 6 on bcc Li (energy spread {spread:.1f} meV/atom, forces rms {forces:.0f} meV/A): {errors}')
    assert errors['training']['energy_per_atom']['rmse'] < 0.5 * spread
    assert errors['training']['forces']['rmse'] < 0.3 * forces

    # Warm start: the loss starts where the first fit ended (the coefficients survived the .mtp round trip).
    results2, node2 = _train(mtp_train_code, lithium_training_set, potential, maxiter=2)
    assert node2.is_finished_ok, node2.exit_message
    restarted = results2['learning_curve'].get_array('loss')
    assert restarted[0] == pytest.approx(loss[-1], rel=1e-9)


def test_species_the_potential_lacks_are_refused(mtp_train_code, lithium_training_set):
    from aiida_mscale.data.mtp_potential import MtpPotentialData

    cobalt_only = MtpPotentialData.from_template(4, ['Co'])
    with pytest.raises(ValueError, match=r"the training set has species \['Li'\] that the potential lacks"):
        _train(mtp_train_code, lithium_training_set, cobalt_only, maxiter=1)


def test_malformed_potential_file_is_refused():
    from aiida_mscale.data.mtp_potential import MtpPotentialData

    good = MtpPotentialData.from_template(4, ['Li']).get_text()
    broken = good.replace('alpha_moments_count', 'alpha_moments_cuont')
    with pytest.raises(ValueError, match='alpha_moments'):
        MtpPotentialData(broken, species=['Li'])
    with pytest.raises(ValueError, match='species_count = 1 but 2 species'):
        MtpPotentialData(good, species=['Li', 'O'])


def test_training_under_mpi_matches_serial(mtp_train_code, lithium_training_set):
    """Two MPI ranks (mpi4py, the mpich wheel's mpiexec on localhost-mpich) follow the serial fit."""
    from aiida_mscale.data.mtp_potential import MtpPotentialData

    template = MtpPotentialData.from_template(6, ['Li'], min_dist=2.0, max_dist=5.0)
    serial, node = _train(mtp_train_code, lithium_training_set, template, maxiter=20)
    assert node.is_finished_ok, node.exit_message
    parallel, node = _train(mtp_train_code, lithium_training_set, template, maxiter=20, mpiprocs=2)
    assert node.is_finished_ok, node.exit_message
    assert 'mpiexec' in node.get_builder_restart()['code'].computer.get_mpirun_command()[0]
    loss_serial = serial['learning_curve'].get_array('loss')
    loss_parallel = parallel['learning_curve'].get_array('loss')
    assert loss_parallel[0] == pytest.approx(loss_serial[0], rel=1e-10)
    assert loss_parallel[-1] == pytest.approx(loss_serial[-1], rel=1e-4)
    # Rank 0 alone reports, on the whole training split.
    assert serial['errors']['training']['n'] == parallel['errors']['training']['n'] == 6
