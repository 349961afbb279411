"""``verdi data mscale.training_set`` and ``verdi data mscale.mtp``: show and export the suite's data nodes.

Registered with ``verdi data`` through the ``aiida.cmdline.data`` entry point group (as aiida-core's own
``core.dict``, ``core.array``)::

    verdi data mscale.training_set show PK
    verdi data mscale.training_set export PK --format cfg|extxyz [-o FILE]
    verdi data mscale.mtp show PK
    verdi data mscale.mtp export PK [-o FILE] [--active-set FILE]

``export`` writes to standard output unless ``-o`` names a file (refused if it exists, unless ``--force``).
"""

from __future__ import annotations

import io
import pathlib

import click
import numpy as np
from aiida.cmdline.groups import VerdiCommandGroup
from aiida.cmdline.params import arguments, types
from aiida.cmdline.utils import decorators

TRAINING_SET = ('aiida.data:mscale.training_set',)
MTP = ('aiida.data:mscale.mtp',)

OUTPUT = click.option(
    '-o', '--output', type=click.Path(dir_okay=False, path_type=pathlib.Path), default=None, help='Write to FILE.'
)
FORCE = click.option('-f', '--force', is_flag=True, help='Overwrite an existing output file.')


def write_output(text: str, output: pathlib.Path | None, force: bool) -> None:
    """``text`` to ``output`` (a click error if it exists and not ``force``) or to standard output."""
    if output is None:
        click.echo(text, nl=not text.endswith('\n'))
        return
    if output.exists() and not force:
        raise click.BadParameter(f'{output} exists: use --force to overwrite it', param_hint='--output')
    try:
        output.write_text(text)
    except OSError as exception:
        raise click.BadParameter(f'cannot write {output}: {exception}', param_hint='--output') from None
    click.echo(f'wrote {output}', err=True)


# ------------------------------------------------------------------------------------------- training sets
@click.group('mscale.training_set', cls=VerdiCommandGroup)
def training_set():
    """Inspect and export TrainingSetData (labelled configurations)."""


def training_set_summary(node) -> list[str]:
    """Lines describing a training set: counts, species, sizes, label ranges, sources."""
    arrays = node.get_arrays()
    counts = arrays['numbers_of_atoms']
    energies = arrays['energies']
    labelled = np.isfinite(energies)
    per_atom = energies[labelled] / counts[labelled]
    sources = {u for u in arrays['source_uuids'].tolist() if u}
    forces = arrays['forces'][np.isfinite(arrays['forces']).all(axis=1)]
    lines = [
        f'TrainingSetData<{node.pk}> {node.uuid}',
        f'configurations: {len(counts)} ({int(labelled.sum())} labelled)',
        f'species:        {", ".join(node.species)}',
        f'atoms:          {int(counts.sum())} in all, {int(counts.min())}-{int(counts.max())} per configuration',
        f'stress:         {int(np.isfinite(arrays["stresses"]).all(axis=(1, 2)).sum())} configurations',
        f'weights:        {float(arrays["weights"].min()):g}-{float(arrays["weights"].max()):g}',
        f'sources:        {len(sources)} calculation(s) recorded',
    ]
    if labelled.any():
        lines.insert(4, f'energy/atom:    {per_atom.min():.4f} .. {per_atom.max():.4f} eV')
    if len(forces):
        lines.insert(5, f'|F| max:        {np.linalg.norm(forces, axis=1).max():.4f} eV/A')
    return lines


@training_set.command('show')
@arguments.DATUM(type=types.DataParamType(sub_classes=TRAINING_SET))
@decorators.with_dbenv()
def training_set_show(datum):
    """Summary of a TrainingSetData: configurations, species, atoms, energy and force ranges, sources."""
    for line in training_set_summary(datum):
        click.echo(line)


@training_set.command('export')
@arguments.DATUM(type=types.DataParamType(sub_classes=TRAINING_SET))
@click.option(
    '-F',
    '--format',
    'fmt',
    type=click.Choice(['cfg', 'extxyz']),
    required=True,
    help="MLIP's .cfg (what motep and mlp read) or extended XYZ (ASE).",
)
@OUTPUT
@FORCE
@decorators.with_dbenv()
def training_set_export(datum, fmt, output, force):
    """Write a TrainingSetData as .cfg or extended XYZ (energies, forces, stresses included)."""
    if fmt == 'cfg':
        text = datum.to_cfg()
    else:
        from ase.io import write

        buffer = io.StringIO()
        write(buffer, datum.to_ase(), format='extxyz')
        text = buffer.getvalue()
    write_output(text, output, force)


# ------------------------------------------------------------------------------------------------- potentials
@click.group('mscale.mtp', cls=VerdiCommandGroup)
def mtp():
    """Inspect and export MtpPotentialData (Moment Tensor Potentials)."""


def mtp_summary(node) -> list[str]:
    """Lines describing a potential: species, level, radial basis, parameters, fit errors, active set."""
    attributes = node.base.attributes
    lines = [
        f'MtpPotentialData<{node.pk}> {node.uuid}',
        f'species:          {", ".join(node.species)} (type order)',
        f'level:            {node.level}',
        f'radial basis:     {attributes.get("radial_basis_size")} functions, '
        f'{attributes.get("min_dist"):g}-{attributes.get("max_dist"):g} A (cutoff {node.cutoff:g} A)',
        f'parameters:       {attributes.get("number_of_parameters")}',
        f'trained:          {"yes" if attributes.get("is_trained") else "no (template)"}',
        f'active set:       {"yes" if node.has_active_set else "no"}',
    ]
    if attributes.get('training_set_size', None) is not None:
        lines.append(f'training set:     {attributes.get("training_set_size")} configurations')
    units = {'energy_per_atom': 'meV/atom', 'forces': 'meV/A', 'stress': 'GPa'}
    for split, errors in sorted((node.errors or {}).items()):
        for quantity, unit in units.items():
            if isinstance(errors.get(quantity), dict) and errors[quantity].get('rmse') is not None:
                rmse, largest = errors[quantity]['rmse'], errors[quantity].get('max', float('nan'))
                lines.append(f'{split + " RMSE":<17s} {quantity}: {rmse:.3g} {unit} (max {largest:.3g})')
    return lines


@mtp.command('show')
@arguments.DATUM(type=types.DataParamType(sub_classes=MTP))
@decorators.with_dbenv()
def mtp_show(datum):
    """Summary of an MtpPotentialData: species, level, cutoff, parameters, fit errors, active set."""
    for line in mtp_summary(datum):
        click.echo(line)


@mtp.command('export')
@arguments.DATUM(type=types.DataParamType(sub_classes=MTP))
@OUTPUT
@click.option(
    '--active-set',
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    default=None,
    help='Also write the MaxVol active set (.als) to this file.',
)
@FORCE
@decorators.with_dbenv()
def mtp_export(datum, output, active_set, force):
    """Write an MtpPotentialData as an MLIP .mtp file (and its active set, if asked)."""
    if active_set is not None:
        if not datum.has_active_set:
            raise click.BadParameter(f'MtpPotentialData<{datum.pk}> has no active set', param_hint='--active-set')
        if active_set.exists() and not force:
            raise click.BadParameter(f'{active_set} exists: use --force to overwrite it', param_hint='--active-set')
    write_output(datum.get_text(), output, force)
    if active_set is not None:
        active_set.write_text(datum.get_active_set())
        click.echo(f'wrote {active_set}', err=True)


__all__ = ['mtp', 'training_set']
