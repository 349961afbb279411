"""`aiida-mscale setup --storage postgres --broker rabbitmq --scheduler slurm`: the server-backed setup.

:mod:`~aiida_mscale.setup.services` makes the PostgreSQL + RabbitMQ profile, :mod:`~aiida_mscale.setup.slurm`
the single-node SLURM cluster and its computers; this module runs them in order for the command line.
"""

from __future__ import annotations

from aiida_mscale.setup.bootstrap import Step
from aiida_mscale.setup.services import PG_PROFILE, run_postgres_profile
from aiida_mscale.setup.slurm import run_slurm

#: the broker each storage goes with
BROKERS = {'sqlite': 'zeromq', 'postgres': 'rabbitmq'}

__all__ = ['BROKERS', 'PG_PROFILE', 'run', 'run_slurm']


def run(profile: str = PG_PROFILE, create: bool = True, slurm: bool = False) -> list[Step]:
    """The PostgreSQL + RabbitMQ profile with the default computers and codes, then (``slurm``) SLURM's."""
    steps = run_postgres_profile(profile, create=create)
    if slurm and not any(s.status in ('missing', 'error') for s in steps):
        steps += run_slurm(create=create)
    return steps
