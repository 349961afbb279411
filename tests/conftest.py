"""Shared fixtures: a temporary AiiDA profile (sqlite, no broker) with the embedded-default setup."""

import pytest

pytest_plugins = ['aiida.tools.pytest_fixtures']


@pytest.fixture(scope='session')
def mscale_setup(aiida_profile):
    """Computer `localhost`, code `pw@localhost` and the PBEsol pseudo family, made by the bootstrap code itself."""
    from aiida_mscale.setup import bootstrap

    steps = [
        bootstrap.ensure_computer(),
        bootstrap.ensure_code(bootstrap.PW_CODE_LABEL, 'pw.x', 'quantumespresso.pw'),
        bootstrap.ensure_pseudo_family(),
        bootstrap.ensure_code(bootstrap.MTP_TRAIN_CODE_LABEL, 'mscale-mtp-train', 'mscale.mtp.train'),
        bootstrap.ensure_lammps_code(),
    ]
    bad = [str(s) for s in steps if s.status in ('missing', 'error')]
    assert not bad, bad
    return steps


@pytest.fixture(scope='session')
def pw_code(mscale_setup):
    from aiida import orm

    return orm.load_code('pw@localhost')


@pytest.fixture(scope='session')
def mtp_train_code(mscale_setup):
    from aiida import orm

    return orm.load_code('mtp-train@localhost')


@pytest.fixture(scope='session')
def lammps_code(mscale_setup):
    from aiida import orm

    return orm.load_code('lmp@localhost')


@pytest.fixture(scope='session')
def fenics_code(mscale_setup):
    """`fenics@localhost`: Debian's /usr/bin/python3 with python3-dolfinx, made by the bootstrap code itself."""
    from aiida import orm

    from aiida_mscale.setup import bootstrap

    step = bootstrap.ensure_code(bootstrap.FENICS_CODE_LABEL, bootstrap.FENICS_PYTHON, 'mscale.continuum')
    assert step.status in ('created', 'exists'), str(step)
    return orm.load_code(f'{bootstrap.FENICS_CODE_LABEL}@localhost')


@pytest.fixture(scope='session')
def mtp_select_code(mscale_setup):
    """`mtp-select@localhost`: the `mscale-mtp-select` console script, made by the bootstrap code itself."""
    from aiida import orm

    from aiida_mscale.setup import bootstrap

    step = bootstrap.ensure_code(bootstrap.MTP_SELECT_CODE_LABEL, 'mscale-mtp-select', 'mscale.mtp.select')
    assert step.status in ('created', 'exists'), str(step)
    return orm.load_code(f'{bootstrap.MTP_SELECT_CODE_LABEL}@localhost')


#: Cheap but real pw.x settings for test labels (low cutoffs, coarse k-points).
CHEAP_DFT = {
    'max_concurrent': 2,
    'pw_base': {
        'kpoints_distance': 0.6,
        'pw': {'parameters': {'SYSTEM': {'ecutwfc': 25.0, 'ecutrho': 200.0}}},
    },
}
SERIAL = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 600}


@pytest.fixture(scope='session')
def lithium_training_set(pw_code):
    """Eight bcc Li cells (2 atoms), strained by -4..+4 % and rattled, labelled with real pw.x."""
    import numpy as np
    from aiida import orm
    from aiida.engine import run_get_node
    from ase.build import bulk

    from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain

    structures = {}
    for k, strain in enumerate(np.linspace(-0.04, 0.04, 8)):
        atoms = bulk('Li', 'bcc', a=3.43 * (1 + strain), cubic=True)
        atoms.rattle(0.08, seed=10 + k)
        structures[f'li_{k}'] = orm.StructureData(ase=atoms)
    builder = DftLabelingWorkChain.get_builder_from_protocol(
        pw_code, structures, protocol='fast', overrides=CHEAP_DFT, options=SERIAL
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    return results['training_set']


@pytest.fixture(scope='session')
def cheap_dft():
    """(overrides, options) for DftLabelingWorkChain.get_builder_from_protocol in tests."""
    return CHEAP_DFT, SERIAL
