"""``aiida-mscale launch <stage>``: run or submit one work chain of the chain from its protocol.

Each command is a thin wrapper over the work chain's ``get_builder_from_protocol`` (model: aiida-quantumespresso's
``cli/workflows``): codes and input nodes by PK, UUID or label, ``--protocol`` (fast / moderate / precise: numerical
precision), ``--overrides FILE.yaml`` (a nested mapping merged over the protocol; material inputs such as the
electrode's particle go there), ``--daemon`` to submit instead of running in this interpreter, ``-p/--profile``.

Work chains are loaded lazily through their entry points, so a stage whose work chain is not installed (yet) gives a
clean error naming the entry point instead of breaking the whole command line.
"""

from __future__ import annotations

import pathlib

import click
from aiida.cmdline.groups import VerdiCommandGroup
from aiida.cmdline.groups.verdi import VerdiCommand, VerdiContext
from aiida.cmdline.params import types
from aiida.cmdline.params.options import OverridableOption

from aiida_mscale.cli.root import cmd_root

PROTOCOLS = ('fast', 'moderate', 'precise')


class MscaleCommand(VerdiCommand):
    """A ``verdi``-style command (verbosity, profile) hung directly on the plain ``aiida-mscale`` group."""

    context_class = VerdiContext

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        VerdiCommandGroup.add_verbosity_option(self)


# ------------------------------------------------------------------------------------------- shared options
PROFILE = OverridableOption(
    '-p',
    '--profile',
    type=types.ProfileParamType(load_profile=True),
    expose_value=False,
    is_eager=True,
    help='Execute the command for this profile instead of the default profile.',
)
DAEMON = OverridableOption(
    '-d', '--daemon', is_flag=True, default=False, help='Submit to the daemon instead of running in this interpreter.'
)
PROTOCOL = OverridableOption(
    '--protocol',
    type=click.Choice(PROTOCOLS),
    default=None,
    help="The protocol (numerical precision); default: the work chain's own default.",
)
OVERRIDES = OverridableOption(
    '--overrides',
    type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path),
    default=None,
    help='A YAML file with a nested mapping of inputs merged over the protocol.',
)


def code_option(*param_decls, entry_point: str, **kwargs):
    """A code option restricted to codes of the CalcJob plugin ``entry_point``."""
    return OverridableOption(*param_decls, type=types.CodeParamType(entry_point=entry_point), required=True, **kwargs)()


def data_option(*param_decls, entry_points: tuple[str, ...], **kwargs):
    """A data-node option (PK, UUID or label) restricted to the given ``aiida.data`` entry points."""
    return OverridableOption(*param_decls, type=types.DataParamType(sub_classes=entry_points), **kwargs)()


def read_overrides(path: pathlib.Path | None) -> dict:
    """The mapping in the overrides file, or a click error saying what is wrong with the file."""
    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exception:
        raise click.BadParameter(f'cannot read {path}: {exception}', param_hint='--overrides') from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise click.BadParameter(
            f'{path} must hold a mapping of inputs, not a {type(data).__name__}', param_hint='--overrides'
        )
    return data


def load_workflow(entry_point: str):
    """The work chain class of ``entry_point`` (``mscale.*``), or a click error if it is not installed."""
    from aiida.common.exceptions import EntryPointError
    from aiida.plugins import WorkflowFactory

    try:
        return WorkflowFactory(entry_point)
    except (EntryPointError, ImportError) as exception:
        raise click.ClickException(
            f'the work chain `{entry_point}` is not available in this installation ({type(exception).__name__}: '
            f'{exception}); is the package up to date?'
        ) from None


def build(factory, *args, **kwargs):
    """``factory(*args, **kwargs)`` (a ``get_builder_from_protocol``), its refusals turned into click errors."""
    try:
        return factory(*args, **kwargs)
    except (ValueError, TypeError, KeyError) as exception:
        raise click.ClickException(f'invalid input: {exception}') from None


def launch(builder, daemon: bool) -> None:
    """Submit ``builder`` to the daemon, or run it here and print its outputs and exit status."""
    from aiida.engine import run_get_node, submit

    name = builder.process_class.__name__
    try:
        if daemon:
            node = submit(builder)
            click.echo(f'Submitted {name}<{node.pk}> to the daemon')
            click.echo(f'Follow it with: aiida-mscale status {node.pk}')
            return
        click.echo(f'Running a {name}...')
        _, node = run_get_node(builder)
    except ValueError as exception:  # the process's own input validation
        raise click.ClickException(f'{name} refused the inputs: {exception}') from None
    for triple in sorted(node.base.links.get_outgoing().all(), key=lambda t: t.link_label):
        if triple.link_type.value in ('create', 'return'):
            click.echo(f'  {triple.link_label:<36s} {triple.node.__class__.__name__}<{triple.node.pk}>')
    state = node.process_state.value if node.process_state else 'unknown'
    click.echo(f'{name}<{node.pk}> {state} [{node.exit_status}] {node.exit_message or ""}'.rstrip())
    if not node.is_finished_ok:
        raise click.exceptions.Exit(1)


STRUCTURE_TYPES = ('aiida.data:core.structure',)
ARRAY_TYPES = ('aiida.data:core.array',)
MTP_TYPES = ('aiida.data:mscale.mtp',)


# ------------------------------------------------------------------------------------------------- group
@cmd_root.group('launch', cls=VerdiCommandGroup)
@PROFILE()
def cmd_launch():
    """Run or submit one stage of the multiscale chain from its protocol."""


@cmd_launch.command('dft-labeling')
@code_option('-X', '--code', entry_point='quantumespresso.pw', help='A pw.x code.')
@data_option(
    '-S', '--structure', entry_points=STRUCTURE_TYPES, multiple=True, required=True, help='Configurations to label.'
)
@PROTOCOL()
@OVERRIDES()
@DAEMON()
@PROFILE()
def launch_dft_labeling(code, structure, protocol, overrides, daemon):
    """DftLabelingWorkChain: pw.x energy, forces and stress of each structure -> TrainingSetData."""
    workflow = load_workflow('mscale.dft_labeling')
    builder = build(workflow.get_builder_from_protocol, code, list(structure), protocol, read_overrides(overrides))
    launch(builder, daemon)


@cmd_launch.command('active-learning')
@code_option('--pw-code', entry_point='quantumespresso.pw', help='A pw.x code (labels).')
@code_option('--mtp-train-code', entry_point='mscale.mtp.train', help='The MTP fitting code.')
@code_option('--mtp-select-code', entry_point='mscale.mtp.select', help='The MaxVol selection code.')
@code_option('--lammps-code', entry_point='mscale.lammps.mtp', help='LAMMPS with pair_style mtp.')
@data_option('-S', '--structure', entry_points=STRUCTURE_TYPES, required=True, help='The host with its guests.')
@click.option('-g', '--guest', required=True, help='The guest species, e.g. Li.')
@PROTOCOL()
@OVERRIDES()
@DAEMON()
@PROFILE()
def launch_active_learning(
    pw_code, mtp_train_code, mtp_select_code, lammps_code, structure, guest, protocol, overrides, daemon
):
    """ActiveLearningWorkChain: train an MTP with GCMC-MD sampling over x, MaxVol selection and DFT labels."""
    workflow = load_workflow('mscale.active_learning')
    codes = {'pw': pw_code, 'mtp_train': mtp_train_code, 'mtp_select': mtp_select_code, 'lammps': lammps_code}
    builder = build(workflow.get_builder_from_protocol, codes, structure, guest, protocol, read_overrides(overrides))
    launch(builder, daemon)


def float_list(ctx, param, value):
    """Comma-separated numbers, e.g. ``300,400,500``."""
    if value is None:
        return None
    try:
        numbers = [float(v) for v in value.split(',') if v.strip()]
    except ValueError:
        raise click.BadParameter(f'expected comma-separated numbers, got {value!r}') from None
    if not numbers:
        raise click.BadParameter('expected at least one number')
    return numbers


@cmd_launch.command('md-production')
@code_option('-X', '--code', entry_point='mscale.lammps.mtp', help='LAMMPS with pair_style mtp.')
@data_option('-P', '--potential', entry_points=MTP_TYPES, required=True, help='A trained MtpPotentialData.')
@data_option('-S', '--structure', entry_points=STRUCTURE_TYPES, required=True, help='The host structure.')
@click.option('-g', '--guest', required=True, help='The guest species, e.g. Li.')
@click.option('-T', '--temperatures', required=True, callback=float_list, help='Temperatures [K], e.g. 600,800,1000.')
@click.option('-x', '--guest-fractions', required=True, callback=float_list, help='Guest fractions x, e.g. 0.25,0.5.')
@PROTOCOL()
@OVERRIDES()
@DAEMON()
@PROFILE()
def launch_md_production(code, potential, structure, guest, temperatures, guest_fractions, protocol, overrides, daemon):
    """MdProductionWorkChain: LAMMPS MD over the (temperature x guest fraction) grid -> trajectories."""
    workflow = load_workflow('mscale.md_production')
    builder = build(
        workflow.get_builder_from_protocol,
        code,
        potential,
        structure,
        guest,
        temperatures,
        guest_fractions,
        protocol=protocol,
        overrides=read_overrides(overrides),
    )
    launch(builder, daemon)


@cmd_launch.command('transport')
@data_option(
    '-t',
    '--trajectory',
    entry_points=('aiida.data:core.array.trajectory', 'aiida.data:mscale.lammps.trajectory'),
    multiple=True,
    required=True,
    help='MD trajectories (TrajectoryData or LammpsTrajectoryData).',
)
@click.option('-m', '--mobile-species', required=True, help='The diffusing species, e.g. Li.')
@click.option('--timestep', type=click.FloatRange(min=0, min_open=True), default=None, help='MD time step [ps].')
@PROTOCOL()
@OVERRIDES()
@DAEMON()
@PROFILE()
def launch_transport(trajectory, mobile_species, timestep, protocol, overrides, daemon):
    """TransportAnalysisWorkChain: D(T) with uncertainty, Arrhenius verdict, modes, environments."""
    workflow = load_workflow('mscale.transport')
    builder = build(
        workflow.get_builder_from_protocol,
        list(trajectory),
        mobile_species,
        timestep=timestep,
        protocol=protocol,
        overrides=read_overrides(overrides),
    )
    launch(builder, daemon)


def node_inputs(ctx, param, value):
    """``NAME=PK`` pairs -> {name: node}."""
    from aiida.common.exceptions import MultipleObjectsError, NotExistent
    from aiida.orm import load_node

    inputs = {}
    for item in value or ():
        name, _, identifier = item.partition('=')
        if not name or not identifier:
            raise click.BadParameter(f'expected NAME=PK, got {item!r}')
        try:
            inputs[name] = load_node(identifier)
        except (NotExistent, MultipleObjectsError, ValueError) as exception:
            raise click.BadParameter(f'{name}: {exception}') from None
    return inputs


@cmd_launch.command('thermodynamics')
@OverridableOption('-X', '--code', type=types.CodeParamType(entry_point='mscale.lammps.mtp.static'))()
@click.option(
    '-i', '--input', 'inputs', multiple=True, callback=node_inputs, help='An input node as NAME=PK (repeatable).'
)
@PROTOCOL()
@OVERRIDES()
@DAEMON()
@PROFILE()
def launch_thermodynamics(code, inputs, protocol, overrides, daemon):
    """ThermodynamicsWorkChain: formation energies, hull, voltage profile, volume change, elastic constants."""
    workflow = load_workflow('mscale.thermodynamics')
    builder = build(workflow.get_builder_from_protocol, code, protocol, read_overrides(overrides), **inputs)
    launch(builder, daemon)


@cmd_launch.command('electrode')
@code_option('-X', '--code', entry_point='mscale.continuum', help='The continuum (FEniCSx) code.')
@data_option('-D', '--diffusivity', entry_points=ARRAY_TYPES, required=True, help='D(x): arrays x, D [, D_sigma].')
@data_option('-V', '--ocv', entry_points=ARRAY_TYPES, required=True, help='OCV(x): arrays x, V [, V_sigma].')
@PROTOCOL()
@OVERRIDES()
@DAEMON()
@PROFILE()
def launch_electrode(code, diffusivity, ocv, protocol, overrides, daemon):
    """ElectrodeWorkChain: particle, phase-field, polycrystal and porous-electrode models from D(x) and OCV(x).

    The material and the experiment go in the overrides file (models, cell, phase_field, polycrystal, uncertainty):
    the protocol holds the numerical resolution only. See docs/continuum.md.
    """
    workflow = load_workflow('mscale.electrode')
    builder = build(
        workflow.get_builder_from_protocol, code, diffusivity, ocv, protocol or 'fast', read_overrides(overrides)
    )
    launch(builder, daemon)


@cmd_launch.command('multiscale')
@click.option(
    '-c', '--code', 'codes', multiple=True, help='A code of the chain as ROLE=LABEL (e.g. pw=pw@localhost; repeatable).'
)
@data_option('-S', '--structure', entry_points=STRUCTURE_TYPES, required=True, help='The host with its guests.')
@click.option('-g', '--guest', required=True, help='The guest species, e.g. Li.')
@data_option('--potential', entry_points=MTP_TYPES, required=False, help='A trained MTP: skips active learning.')
@data_option('--diffusivity', entry_points=ARRAY_TYPES, required=False, help='D(x) table: skips MD and transport.')
@data_option('--ocv', entry_points=ARRAY_TYPES, required=False, help='OCV(x) table: skips thermodynamics.')
@PROTOCOL()
@OVERRIDES()
@DAEMON()
@PROFILE()
def launch_multiscale(codes, structure, guest, potential, diffusivity, ocv, protocol, overrides, daemon):
    """MultiscaleWorkChain: the whole chain, DFT labels to electrode curves, in one launch.

    Codes by role (pw, mtp_train, mtp_select, lammps, continuum); the physics (guest_fractions, temperatures, the
    electrode's material and experiment under `electrode`) in the overrides file; --potential, --diffusivity and
    --ocv enter the chain later with results you have. See docs/multiscale.md.
    """
    from aiida.common.exceptions import MultipleObjectsError, NotExistent
    from aiida.orm import load_code

    workflow = load_workflow('mscale.multiscale')
    roles = {}
    for item in codes:
        role, _, label = item.partition('=')
        if not role or not label:
            raise click.BadParameter(f'expected ROLE=LABEL, got {item!r}', param_hint='--code')
        try:
            roles[role] = load_code(label)
        except (NotExistent, MultipleObjectsError, ValueError) as exception:
            raise click.BadParameter(f'{role}: {exception}', param_hint='--code') from None
    builder = build(
        workflow.get_builder_from_protocol,
        roles,
        structure,
        guest,
        protocol,
        read_overrides(overrides),
        potential=potential,
        diffusivity=diffusivity,
        ocv=ocv,
    )
    launch(builder, daemon)


__all__ = ['MscaleCommand', 'cmd_launch', 'launch', 'load_workflow', 'read_overrides']
