"""Root of the ``aiida-mscale`` command: ``aiida-mscale setup``, ``aiida-mscale demo``, ..."""

import sys

import click


@click.group('aiida-mscale')
@click.version_option(package_name='aiida-mscale')
def cmd_root():
    """Multiscale battery-materials workflows with AiiDA provenance."""


@cmd_root.command('setup')
@click.option(
    '--profile',
    'profile',
    default=None,
    help='Use this existing AiiDA profile instead of creating the embedded default `mscale` profile.',
)
@click.option('--check', is_flag=True, help='Only report what exists and what is missing; change nothing.')
@click.option(
    '--storage',
    type=click.Choice(['sqlite', 'postgres']),
    default='sqlite',
    help='postgres: PostgreSQL storage and RabbitMQ broker (services installed and started), profile `mscale-pg`.',
)
@click.option('--broker', type=click.Choice(['zeromq', 'rabbitmq']), default=None, help='Goes with --storage.')
@click.option(
    '--scheduler',
    type=click.Choice(['direct', 'slurm']),
    default='direct',
    help='slurm: also a single-node SLURM cluster here and the computers localhost-slurm(-mpich).',
)
def cmd_setup(profile, check, storage, broker, scheduler):
    """Create the embedded default setup: profile, computers, codes, pseudopotential families.

    Families: `mscale/debian-qe/PBEsol` (Debian's files) and `mscale/ld1/PBEsol`, `mscale/ld1/PBE` (16 elements
    generated here with ld1.x and checked at the `coarse` level, about a minute each; the pw.x verification runs
    on demand, see docs/pseudopotentials.md). Idempotent: a second run finds everything in place and says so.
    """
    from aiida.manage.configuration import get_config

    from aiida_mscale.setup import bootstrap, scale_out

    broker = broker or {'sqlite': 'zeromq', 'postgres': 'rabbitmq'}[storage]
    if (storage, broker) not in (('sqlite', 'zeromq'), ('postgres', 'rabbitmq')):
        raise click.BadParameter(
            f'--storage {storage} goes with --broker {scale_out.BROKERS[storage]}', param_hint='--broker'
        )
    if storage == 'postgres':  # --profile names the PostgreSQL profile, created if missing
        steps = scale_out.run(profile or scale_out.PG_PROFILE, create=not check, slurm=scheduler == 'slurm')
    else:
        if profile is not None and profile not in get_config(create=True).profile_names:
            raise click.BadParameter(
                f'no AiiDA profile named `{profile}` (see `verdi profile list`)', param_hint='--profile'
            )
        steps = bootstrap.run(profile or bootstrap.DEFAULT_PROFILE, create=not check)
        if scheduler == 'slurm' and not any(s.status in ('missing', 'error') for s in steps):
            steps += scale_out.run_slurm(create=not check)
    for step in steps:
        click.echo(str(step))
    bad = [s for s in steps if s.status in ('missing', 'error')]
    if bad:
        hint = 'run `aiida-mscale setup`' if check else 'fix the errors above and run it again'
        click.echo(f'{len(bad)} item(s) missing or broken: {hint}.', err=True)
        sys.exit(1)
    if all(s.status == 'exists' for s in steps):
        click.echo('Everything is already set up; nothing to do.')
    elif not check:
        click.echo('Setup complete.')


from aiida_mscale.cli import report  # noqa: E402, F401  (registers `aiida-mscale report` on cmd_root)

# isort: split
from aiida_mscale.cli import export, launch, query, status  # noqa: E402, F401  (register themselves on cmd_root)
