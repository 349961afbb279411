"""``aiida-mscale query``: the questions users ask of the provenance graph.

- ``dft-sources NODE``: which pw.x calculations fed this number (every ``quantumespresso.pw`` calculation among the
  node's ancestors: through the training set, the potential, the MD, the analysis);
- ``computed-with POTENTIAL``: every quantity computed with a potential (the data nodes descending from it, with the
  process that made each);
- ``diffusivities --host STRUCTURE``: all D(T, x) computed for a host structure (the transport analyses descending
  from it: temperature, guest fraction where the MD stage recorded it, tracer D and its sigma per species).

Each is one ``QueryBuilder`` query over the links, so it works the same on a laptop's SQLite profile and on a
PostgreSQL server profile.
"""

from __future__ import annotations

import click
from aiida.cmdline.groups import VerdiCommandGroup
from aiida.cmdline.utils import decorators

from aiida_mscale.cli.launch import PROFILE
from aiida_mscale.cli.root import cmd_root

PW_PROCESS_TYPE = 'aiida.calculations:quantumespresso.pw'
TRANSPORT_PROCESS_TYPE = 'aiida.workflows:mscale.transport'


def load(identifier: str, param_hint: str, kind=None, what: str = ''):
    """The node ``identifier`` (PK, UUID or label), optionally of class ``kind``, or a click error."""
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    try:
        node = orm.load_node(identifier)
    except (NotExistent, MultipleObjectsError, ValueError) as exception:
        raise click.BadParameter(str(exception), param_hint=param_hint) from None
    if kind is not None and not isinstance(node, kind):
        raise click.BadParameter(
            f'node {identifier} is a {node.__class__.__name__}, not {what or kind.__name__}', param_hint=param_hint
        )
    return node


def dft_sources(node) -> list:
    """The pw.x CalcJobNodes among the ancestors of ``node`` (itself included if it is one), oldest first."""
    from aiida import orm
    from aiida.common.links import LinkType
    from aiida.tools.graph.graph_traversers import traverse_graph

    if node.process_type == PW_PROCESS_TYPE:
        return [node]
    # the data provenance backwards, node by node (a set per step): QueryBuilder's with_descendants walks every path,
    # millions of rows for a multiscale run whose tables descend from the same labels along many routes
    ancestors = traverse_graph([node.pk], links_backward=[LinkType.CREATE, LinkType.INPUT_CALC])['nodes']
    query = orm.QueryBuilder().append(
        orm.CalcJobNode, filters={'id': {'in': list(ancestors)}, 'process_type': PW_PROCESS_TYPE}, project='*'
    )
    return sorted(query.all(flat=True), key=lambda n: (n.ctime, n.pk))


def computed_with(potential) -> list:
    """The data nodes that descend from ``potential``, oldest first."""
    from aiida import orm

    query = orm.QueryBuilder()
    query.append(orm.Node, filters={'id': potential.pk}, tag='potential')
    query.append(orm.Data, with_ancestors='potential', project='*')
    return sorted(query.distinct().all(flat=True), key=lambda n: (n.ctime, n.pk))


def guest_fraction(trajectory) -> float | None:
    """The guest fraction x of the MD run that made ``trajectory`` (a ``settings`` input with ``x`` or
    ``guest_fraction`` of its creator or a caller of it), or None if the MD stage recorded none."""
    from aiida import orm

    process = trajectory.creator
    while process is not None:
        settings = process.base.links.get_incoming(link_label_filter='settings').all_nodes()
        for node in settings:
            if isinstance(node, orm.Dict):
                for key in ('x', 'guest_fraction'):
                    if key in node.keys():
                        return float(node[key])
        process = process.caller
    return None


def diffusivities(host) -> list[dict]:
    """Rows {temperature, x, species, D, D_sigma [cm^2/s], node} of every transport analysis descending from
    ``host``, sorted by (x, T)."""
    from aiida import orm

    query = orm.QueryBuilder()
    query.append(orm.Node, filters={'id': host.pk}, tag='host')
    query.append(orm.Dict, with_ancestors='host', tag='result', project='*')
    query.append(
        orm.WorkflowNode,
        with_outgoing='result',
        filters={'process_type': TRANSPORT_PROCESS_TYPE},
        edge_filters={'label': {'like': 'diffusivity__%'}},
    )
    rows = []
    for result in query.distinct().all(flat=True):
        summary = result.get_dict()
        creator = result.creator
        trajectory = None
        if creator is not None:
            trajectory = next(iter(creator.base.links.get_incoming(link_label_filter='trajectory').all_nodes()), None)
        x = guest_fraction(trajectory) if trajectory is not None else None
        for species, entry in sorted(summary.get('species', {}).items()):
            tracer = entry.get('tracer', {})
            rows.append(
                {
                    'temperature': summary.get('temperature'),
                    'x': x,
                    'species': species,
                    'D': tracer.get('D_cm2_s'),
                    'D_sigma': tracer.get('D_cm2_s_err'),
                    'n_ions': entry.get('n_ions'),
                    'node': result,
                }
            )
    return sorted(rows, key=lambda r: (r['x'] if r['x'] is not None else -1, r['temperature'] or 0, r['species']))


# ------------------------------------------------------------------------------------------------- commands
@cmd_root.group('query', cls=VerdiCommandGroup)
@PROFILE()
def cmd_query():
    """Questions of the provenance graph: DFT sources, what a potential computed, D(T, x) of a host."""


@cmd_query.command('dft-sources')
@click.argument('identifier')
@PROFILE()
@decorators.with_dbenv()
def query_dft_sources(identifier):
    """Which pw.x calculations fed the node IDENTIFIER (a number, a potential, a training set, a work chain)."""
    node = load(identifier, 'IDENTIFIER')
    sources = dft_sources(node)
    click.echo(f'{len(sources)} pw.x calculation(s) fed {node.__class__.__name__}<{node.pk}>')
    for calc in sources:
        structure = calc.inputs.structure.get_formula() if 'structure' in calc.inputs else '?'
        status = calc.exit_status if calc.exit_status is not None else '-'
        click.echo(f'  PwCalculation<{calc.pk}> [{status}] {structure} {calc.ctime:%Y-%m-%d %H:%M}')


@cmd_query.command('computed-with')
@click.argument('potential')
@PROFILE()
@decorators.with_dbenv()
def query_computed_with(potential):
    """Every quantity computed with the MTP POTENTIAL (MtpPotentialData PK, UUID or label)."""
    from aiida_mscale.data.mtp_potential import MtpPotentialData

    node = load(potential, 'POTENTIAL', MtpPotentialData, 'an MtpPotentialData')
    nodes = computed_with(node)
    click.echo(f'{len(nodes)} data node(s) computed with MtpPotentialData<{node.pk}>')
    for data in nodes:
        creator = data.creator
        made_by = f'{creator.process_label}<{creator.pk}>' if creator is not None else '-'
        click.echo(f'  {data.__class__.__name__}<{data.pk}> by {made_by}')


@cmd_query.command('diffusivities')
@click.option('-H', '--host', 'host', required=True, help='The host StructureData (PK, UUID or label).')
@PROFILE()
@decorators.with_dbenv()
def query_diffusivities(host):
    """All D(T, x) computed for the host structure: one row per transport result and species."""
    from aiida import orm

    node = load(host, '--host', orm.StructureData, 'a StructureData')
    rows = diffusivities(node)
    click.echo(f'{len(rows)} D(T, x) value(s) for host {node.get_formula()} <{node.pk}>')
    if rows:
        click.echo(f'  {"x":>6s} {"T [K]":>8s} {"species":>7s} {"D [cm^2/s]":>12s} {"sigma":>10s} {"node":>8s}')
    for row in rows:
        x = f'{row["x"]:.3f}' if row['x'] is not None else '-'
        d = f'{row["D"]:.3e}' if row['D'] is not None else '-'
        sigma = f'{row["D_sigma"]:.2e}' if row['D_sigma'] is not None else '-'
        click.echo(
            f'  {x:>6s} {row["temperature"]:>8.1f} {row["species"]:>7s} {d:>12s} {sigma:>10s} {row["node"].pk:>8d}'
        )


__all__ = ['cmd_query', 'computed_with', 'dft_sources', 'diffusivities']
