"""Parser of ``MtpSelectCalculation``."""

import json
import zipfile

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_mscale.data.mtp_potential import MtpPotentialData
from aiida_mscale.data.training_set import TrainingSetData
from aiida_mscale.parsers.script_job import script_error


def read_active_set_header(text: str) -> dict:
    """The ``key value`` header lines of an active-set file, up to ``inverse``; the matrix is checked for size.

    :raises ValueError: for a file that is not an active set or whose matrix does not have ``size`` rows and columns.
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith('#')]
    if not lines or lines[0] != 'MTP_ACTIVE_SET 1':
        raise ValueError('the file does not start with `MTP_ACTIVE_SET 1`')
    header = {}
    for index, line in enumerate(lines[1:], start=1):
        if line == 'inverse':
            rows = lines[index + 1 :]
            break
        key, _, value = line.partition(' ')
        header[key] = value.strip()
    else:
        raise ValueError('the file has no `inverse` block')
    size = int(header.get('size', -1))
    if len(rows) != size or any(len(row.split()) != size for row in rows):
        raise ValueError(f'the inverse is not a {size} x {size} matrix')
    matrix = np.array([[float(v) for v in row.split()] for row in rows])
    if not np.all(np.isfinite(matrix)):
        raise ValueError('the inverse has non-finite entries')
    return header


class MtpSelectParser(Parser):
    """Read the grades, the selection and the active set; attach the active set to a copy of the potential.

    A run the scheduler cut (it reported the walltime, exit status 120 set on the node before parsing) keeps that
    recoverable exit code when its output is missing or half-written: the walltime, not the script, is the cause,
    and ``MtpSelectBaseWorkChain`` reruns it with a longer walltime (as aiida-quantumespresso's parsers keep the
    scheduler's exit code).
    """

    def parse(self, **kwargs):
        walltime = self.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME
        scheduler_cut = self.node.exit_status == walltime.status
        retrieved = self.retrieved
        names = retrieved.base.repository.list_object_names()
        missing = [f for f in ('selection.json', 'grades.npz', 'active_set.als') if f not in names]
        if missing and scheduler_cut:
            return walltime
        if 'selection.json' not in names:
            message = script_error(retrieved, 'select.err')
            if message:
                return self.exit_codes.ERROR_SELECTION_FAILED.format(message=message)
            return self.exit_codes.ERROR_MISSING_OUTPUT_FILES.format(filename='selection.json')
        if missing:
            return self.exit_codes.ERROR_MISSING_OUTPUT_FILES.format(filename=missing[0])

        names_of_grades = ('max_grades', 'neighborhood_grades', 'numbers_of_atoms', 'duplicate_of', 'selected_indices')
        try:
            summary = json.loads(retrieved.base.repository.get_object_content('selection.json'))
            with retrieved.base.repository.open('grades.npz', 'rb') as handle:
                with np.load(handle) as npz:
                    arrays = {name: npz[name] for name in names_of_grades}
        except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exception:  # JSONDecodeError is a ValueError
            if scheduler_cut:  # cut by the walltime while writing its outputs
                return walltime
            # a half-written file: the script died while writing its outputs
            return self.exit_codes.ERROR_SELECTION_FAILED.format(
                message=f'selection.json or grades.npz is unreadable ({type(exception).__name__}: {exception})'
            )

        text = retrieved.base.repository.get_object_content('active_set.als')
        try:
            header = read_active_set_header(text)
        except ValueError as exception:
            return self.exit_codes.ERROR_INVALID_ACTIVE_SET.format(message=str(exception))
        source = self.node.inputs.potential
        potential = MtpPotentialData(source.get_text(), species=source.species)
        for key in ('training_set_size', 'errors'):
            if source.base.attributes.get(key, None) is not None:
                potential.base.attributes.set(key, source.base.attributes.get(key))
        potential.set_active_set(text)
        potential.base.attributes.set('active_set_layout', header.get('layout'))
        potential.base.attributes.set('active_set_size', int(header['size']))
        potential.base.attributes.set('active_set_training_set', self.node.inputs.training_set.uuid)

        grades = orm.ArrayData()
        for name in names_of_grades:
            grades.set_array(name, arrays[name])
        self.out('grades', grades)
        self.out('potential', potential)
        self.out('selection', orm.Dict(summary))

        selected = [int(i) for i in arrays['selected_indices']]
        if selected:
            self.out('selected', _subset_without_labels(self.node.inputs.candidates, selected))
        if not (np.all(np.isfinite(arrays['max_grades'])) and np.all(np.isfinite(arrays['neighborhood_grades']))):
            return self.exit_codes.ERROR_NON_FINITE_GRADES
        return None


def _subset_without_labels(candidates: TrainingSetData, indices: list[int]) -> TrainingSetData:
    """The configurations ``indices`` of ``candidates``: structures only (no energies, forces, stresses)."""
    arrays = candidates.get_arrays()
    offsets = candidates.get_offsets()
    rows = np.concatenate([np.arange(offsets[k], offsets[k + 1]) for k in indices])
    subset = TrainingSetData.from_arrays(
        numbers_of_atoms=arrays['numbers_of_atoms'][indices],
        cells=arrays['cells'][indices],
        pbc=arrays['pbc'][indices],
        positions=arrays['positions'][rows],
        atomic_numbers=arrays['atomic_numbers'][rows],
    )
    subset.base.attributes.set('candidate_indices', list(indices))
    return subset
