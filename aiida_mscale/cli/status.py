"""``aiida-mscale status PK``: stage-by-stage progress of a work chain.

One line per process the work chain called (recursively, to ``--depth``), in the order they were launched: the
call-link label (the stage), the process and its PK, its state, its exit status and message. A summary line counts
the processes per state, so a long multiscale run shows at a glance how far it got and where it failed.
"""

from __future__ import annotations

import click
from aiida.cmdline.utils import decorators

from aiida_mscale.cli.launch import PROFILE, MscaleCommand
from aiida_mscale.cli.root import cmd_root


def state_of(node) -> str:
    """``finished``, ``failed [exit]``, ``running``, ``waiting``, ``excepted``, ``killed``, ``created``."""
    state = node.process_state.value if node.process_state else 'unknown'
    if state == 'finished' and not node.is_finished_ok:
        return 'failed'
    return state


def describe(node) -> str:
    """``Label<pk> state [exit] message``."""
    text = f'{node.process_label}<{node.pk}> {state_of(node)}'
    if node.exit_status is not None:
        text += f' [{node.exit_status}]'
    if node.exit_message:
        message = node.exit_message.replace('\n', ' ')
        text += f' {message[:160]}{"..." if len(message) > 160 else ""}'
    return text


def called(node) -> list[tuple[str, object]]:
    """(call-link label, child process) in launch order."""
    from aiida import orm
    from aiida.common.links import LinkType

    triples = node.base.links.get_outgoing(
        node_class=orm.ProcessNode, link_type=(LinkType.CALL_CALC, LinkType.CALL_WORK)
    ).all()
    return [(t.link_label, t.node) for t in sorted(triples, key=lambda t: (t.node.ctime, t.node.pk))]


def status_lines(node, depth: int, indent: int = 0, counts: dict | None = None) -> list[str]:
    """The tree of ``node``'s called processes to ``depth`` levels, one line each; ``counts`` gathers states."""
    lines = []
    for label, child in called(node):
        if counts is not None:
            counts[state_of(child)] = counts.get(state_of(child), 0) + 1
        lines.append(f'{"  " * indent}{"└─ "}{label}: {describe(child)}')
        if depth > 1:
            lines.extend(status_lines(child, depth - 1, indent + 1, counts))
    return lines


@cmd_root.command('status', cls=MscaleCommand)
@click.argument('identifier')
@click.option(
    '--depth',
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help='Levels of called processes to show (1: the stages only).',
)
@PROFILE()
@decorators.with_dbenv()
def cmd_status(identifier, depth):
    """Stage-by-stage progress of the work chain IDENTIFIER (PK, UUID or label): children, states, exit codes."""
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    try:
        node = orm.load_node(identifier)
    except (NotExistent, MultipleObjectsError, ValueError) as exception:
        raise click.BadParameter(str(exception), param_hint='IDENTIFIER') from None
    if not isinstance(node, orm.WorkflowNode):
        raise click.BadParameter(
            f'node {identifier} is a {node.__class__.__name__}, not a work chain: try `verdi process show` or '
            '`verdi node show`',
            param_hint='IDENTIFIER',
        )
    click.echo(describe(node))
    counts: dict[str, int] = {}
    for line in status_lines(node, depth, counts=counts):
        click.echo(line)
    if counts:
        click.echo('processes: ' + ', '.join(f'{n} {state}' for state, n in sorted(counts.items())))
    else:
        click.echo('no process called yet')
    outputs = sorted(node.base.links.get_outgoing(link_type=_return_link()).all_link_labels())
    if outputs:
        click.echo(f'outputs: {", ".join(outputs)}')


def _return_link():
    from aiida.common.links import LinkType

    return LinkType.RETURN


__all__ = ['cmd_status', 'status_lines']
