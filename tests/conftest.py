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
