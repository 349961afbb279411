"""``aiida-mscale export PK``: an AiiDA archive of a run, with a trajectory policy, its size printed before writing.

The archive is AiiDA's own (``verdi archive import`` reads it): the run, everything it called and created, and the
inputs that fed it (AiiDA's export traversal rules). Trajectories are most of a run's bytes, so ``--trajectories``
decides what happens to them (``TrajectoryData`` and ``LammpsTrajectoryData`` nodes):

- ``full``: as stored;
- ``subsampled``: every ``--stride``-th frame (the first frame always, the last if it falls on the stride);
- ``omitted``: the nodes stay (the graph keeps its shape: links, attributes, creators) but their frames do not.

A node written with ``subsampled`` or ``omitted`` is no longer the node that was computed: its extras say so
(``mscale_export``: policy, stride, original number of frames) and its cache hash is dropped, so an importing
profile never reuses it as if it were the original. Its UUID is kept, so the provenance is still traceable to the
full node in the source profile.

How: AiiDA writes the archive (``create_archive``); for a policy other than ``full`` the archive is then rewritten
(sqlite database rows and ``repo/<sha256>`` objects of the trajectory nodes only), before it is moved into place.
"""

from __future__ import annotations

import hashlib
import io
import json
import pathlib
import shutil
import sqlite3
import tempfile
import zipfile

import click
import numpy as np
from aiida.cmdline.utils import decorators

from aiida_mscale.cli.launch import PROFILE, MscaleCommand
from aiida_mscale.cli.root import cmd_root

POLICIES = ('full', 'subsampled', 'omitted')


# ------------------------------------------------------------------------------------------------- selection
def export_nodes(node) -> list:
    """The nodes AiiDA's export of ``node`` contains (its default traversal rules)."""
    from aiida import orm
    from aiida.tools.graph.graph_traversers import get_nodes_export

    pks = get_nodes_export(starting_pks={node.pk}, get_links=False)['nodes']
    return [orm.load_node(pk) for pk in sorted(pks)]


def is_trajectory(node) -> bool:
    from aiida import orm

    from aiida_mscale.data.lammps_trajectory import LammpsTrajectoryData

    return isinstance(node, (orm.TrajectoryData, LammpsTrajectoryData))


def repository_size(node) -> int:
    """Bytes in the node's repository."""
    total = 0
    for root, _, files in node.base.repository.walk():
        for name in files:
            with node.base.repository.open(str(root / name), 'rb') as handle:
                handle.seek(0, io.SEEK_END)
                total += handle.tell()
    return total


# ------------------------------------------------------------------------------------------------- subsampling
def frame_count(node) -> int:
    from aiida import orm

    if isinstance(node, orm.TrajectoryData):
        return int(node.numsteps)
    return int(node.base.attributes.get('number_steps'))


def trajectory_files(node, policy: str, stride: int) -> tuple[dict[str, bytes], dict]:
    """The repository files and the changed attributes of trajectory ``node`` under ``policy``."""
    from aiida import orm

    frames = frame_count(node)
    keep = np.arange(0, frames, stride) if policy == 'subsampled' else np.arange(0)
    if isinstance(node, orm.TrajectoryData):
        files, attributes = {}, {}
        for name in node.get_arraynames():
            array = node.get_array(name)
            if array.ndim and array.shape[0] == frames:
                array = array[keep]
            if policy == 'omitted':
                continue
            buffer = io.BytesIO()
            np.save(buffer, array)
            files[f'{name}.npy'] = buffer.getvalue()
            attributes[f'array|{name}'] = list(array.shape)
        return files, attributes
    # LammpsTrajectoryData: one file of arrays; the kept frames are written as the data type writes them
    if policy == 'omitted':
        return {}, {'number_steps': 0}
    from aiida_mscale.data.lammps_trajectory import FRAMES_FILE

    return {FRAMES_FILE: node.select(frames=keep).frames_file()}, {'number_steps': len(keep)}


def rewrite_archive(source: pathlib.Path, target: pathlib.Path, trajectories: list, policy: str, stride: int) -> None:
    """Copy the archive ``source`` to ``target`` with the trajectory nodes' files replaced under ``policy``."""
    with tempfile.TemporaryDirectory() as scratch:
        database = pathlib.Path(scratch) / 'db.sqlite3'
        with zipfile.ZipFile(source) as archive:
            database.write_bytes(archive.read('db.sqlite3'))
        new_objects: dict[str, bytes] = {}
        with sqlite3.connect(database) as connection:
            for node in trajectories:
                files, attributes = trajectory_files(node, policy, stride)
                row = connection.execute(
                    'SELECT attributes, extras FROM db_dbnode WHERE uuid = ?', (str(node.uuid),)
                ).fetchone()
                stored_attributes, extras = json.loads(row[0] or '{}'), json.loads(row[1] or '{}')
                if policy == 'omitted' and node.__class__.__name__ == 'TrajectoryData':
                    stored_attributes = {k: v for k, v in stored_attributes.items() if not k.startswith('array|')}
                stored_attributes.update(attributes)
                extras.pop('_aiida_hash', None)  # not the computed node any more: never a cache source
                extras['mscale_export'] = {
                    'trajectory_policy': policy,
                    'stride': stride if policy == 'subsampled' else None,
                    'original_number_of_frames': frame_count(node),
                }
                metadata = {'o': {}}
                for name, content in files.items():
                    key = hashlib.sha256(content).hexdigest()
                    new_objects[key] = content
                    metadata['o'][name] = {'k': key}
                connection.execute(
                    'UPDATE db_dbnode SET attributes = ?, extras = ?, repository_metadata = ? WHERE uuid = ?',
                    (json.dumps(stored_attributes), json.dumps(extras), json.dumps(metadata), str(node.uuid)),
                )
            used = set(new_objects)
            for (metadata,) in connection.execute('SELECT repository_metadata FROM db_dbnode'):
                used.update(_keys(json.loads(metadata or '{}')))
        with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, 'w', zipfile.ZIP_DEFLATED) as out:
            written = set()
            for info in archive.infolist():
                if info.filename == 'db.sqlite3':
                    out.write(database, 'db.sqlite3')
                elif info.filename.startswith('repo/') and info.filename != 'repo/':
                    key = info.filename.split('/', 1)[1]
                    if key in used:
                        out.writestr(info, archive.read(info.filename))
                        written.add(key)
                else:
                    out.writestr(info, archive.read(info.filename))
            for key, content in new_objects.items():
                if key not in written:
                    out.writestr(f'repo/{key}', content)


def _keys(metadata: dict) -> set[str]:
    """Object keys in a repository metadata tree (``{'o': {name: {'k': key} | {'o': ...}}}``)."""
    keys = set()
    for entry in metadata.get('o', {}).values():
        if 'k' in entry:
            keys.add(entry['k'])
        keys |= _keys(entry)
    return keys


def human(size: int) -> str:
    for unit in ('B', 'kB', 'MB', 'GB'):
        if size < 1000 or unit == 'GB':
            return f'{size:.0f} {unit}' if unit == 'B' else f'{size:.1f} {unit}'
        size /= 1000
    return f'{size} B'  # pragma: no cover


# ------------------------------------------------------------------------------------------------- command
@cmd_root.command('export', cls=MscaleCommand)
@click.argument('identifier')
@click.option(
    '-o',
    '--output',
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    default=None,
    help='The archive file (default: mscale_<pk>.aiida).',
)
@click.option(
    '-t',
    '--trajectories',
    type=click.Choice(POLICIES),
    default='full',
    show_default=True,
    help='What to do with trajectories: keep them, keep every --stride-th frame, or leave the frames out.',
)
@click.option(
    '--stride',
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help='Keep every n-th frame (with --trajectories subsampled).',
)
@click.option('-f', '--force', is_flag=True, help='Overwrite an existing archive file.')
@click.option('--dry-run', is_flag=True, help='Print what would be written and its size, write nothing.')
@PROFILE()
@decorators.with_dbenv()
def cmd_export(identifier, output, trajectories, stride, force, dry_run):
    """Write an AiiDA archive of the run IDENTIFIER (PK, UUID or label) with a trajectory policy."""
    from aiida.tools.archive import ArchiveExportError, create_archive

    from aiida_mscale.cli.query import load

    node = load(identifier, 'IDENTIFIER')
    output = output or pathlib.Path(f'mscale_{node.pk}.aiida')
    if output.exists() and not force and not dry_run:
        raise click.BadParameter(f'{output} exists: use --force to overwrite it', param_hint='--output')
    nodes = export_nodes(node)
    trajectory_nodes = [n for n in nodes if is_trajectory(n)]
    sizes = {n.pk: repository_size(n) for n in nodes}
    total = sum(sizes.values())
    in_trajectories = sum(sizes[n.pk] for n in trajectory_nodes)
    if trajectories == 'omitted':
        estimate = total - in_trajectories
    elif trajectories == 'subsampled':
        kept = sum(
            sizes[n.pk] * len(range(0, max(frame_count(n), 1), stride)) / max(frame_count(n), 1)
            for n in trajectory_nodes
        )
        estimate = total - in_trajectories + int(kept)
    else:
        estimate = total
    click.echo(
        f'{node.__class__.__name__}<{node.pk}>: {len(nodes)} nodes, {len(trajectory_nodes)} trajectories '
        f'({human(in_trajectories)} of {human(total)} in files); policy `{trajectories}`'
        + (f' (every {stride}th frame)' if trajectories == 'subsampled' else '')
    )
    click.echo(f'estimated size: {human(estimate)} before compression (files only; the database adds a little)')
    if dry_run:
        return
    with tempfile.TemporaryDirectory() as scratch:
        full = pathlib.Path(scratch) / 'full.aiida'
        try:
            create_archive([node], filename=full)
        except ArchiveExportError as exception:
            message = f'AiiDA refused to export {node.__class__.__name__}<{node.pk}>: {exception}'
            raise click.ClickException(message) from None
        if trajectories == 'full' or not trajectory_nodes:
            shutil.move(full, pathlib.Path(scratch) / 'final.aiida')
        else:
            rewrite_archive(full, pathlib.Path(scratch) / 'final.aiida', trajectory_nodes, trajectories, stride)
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(pathlib.Path(scratch) / 'final.aiida', output)
    click.echo(f'wrote {output} ({human(output.stat().st_size)})')


__all__ = ['cmd_export', 'export_nodes', 'rewrite_archive']
