"""``TransportAnalysisCalculation``: the heavy transport analyses (diffusion modes with random-forest importance,
local-environment classes) as a job on a computer, instead of a calcfunction in the daemon worker.

The script ``mscale-transport-analysis`` (:mod:`aiida_mscale.analysis.pooled`) runs the same functions as the
calcfunctions of :mod:`aiida_mscale.workflows.transport.functions`, on the same arrays, so both give the same nodes.
"""

from __future__ import annotations

import json

from aiida import orm
from aiida.engine import CalcJob

from aiida_mscale.calculations.script_job import script_calcinfo, write_text

#: the analyses this CalcJob runs (the light ones, D and Arrhenius, stay calcfunctions)
ANALYSES = ('modes', 'environments')
INPUT_FILENAME = 'input.json'
STDOUT_FILENAME = 'analysis.log'
STDERR_FILENAME = 'analysis.err'
OUTPUT_FILES = ('result.json', 'arrays.npz')


def _trajectory_filename(index: int) -> str:
    return f'trajectory_{index:03d}.npz'


def is_trajectory(node) -> bool:
    """Whether ``node`` is a trajectory the analyses read (LammpsTrajectoryData or TrajectoryData)."""
    from aiida_mscale.data.lammps_trajectory import LammpsTrajectoryData

    return isinstance(node, (LammpsTrajectoryData, orm.TrajectoryData))


def validate_trajectories(trajectories, _):
    """At least one trajectory, each a LammpsTrajectoryData or TrajectoryData."""
    if not trajectories:
        return 'no trajectories given: pass at least one LammpsTrajectoryData or TrajectoryData in `trajectories`.'
    for label, node in trajectories.items():
        if not is_trajectory(node):
            return f'trajectory `{label}` is a {node.__class__.__name__}, not a LammpsTrajectoryData or TrajectoryData.'
    return None


def validate_mobile_species(mobile_species, _):
    """A species or a comma-separated list of species."""
    from aiida_mscale.workflows.transport.settings import species_list

    try:
        species_list(mobile_species.value)
    except ValueError as exception:
        return str(exception)
    return None


def validate_parameters(parameters, _):
    """Settings :func:`~aiida_mscale.workflows.transport.settings.merge_parameters` accepts."""
    from aiida_mscale.workflows.transport.settings import merge_parameters

    try:
        merge_parameters(parameters.get_dict())
    except ValueError as exception:
        return str(exception)
    return None


def validate_timestep(timestep, _):
    """A positive timestep [ps]."""
    if timestep.value <= 0:
        return f'`timestep` must be positive [ps], got {timestep.value}'
    return None


def define_trajectory_inputs(spec, mobile_species_required: bool) -> None:
    """Declare the inputs the job and ``TransportAnalysisWorkChain`` share, with their validators and help.

    ``trajectories``, ``mobile_species``, ``parameters`` and ``timestep`` [ps]: the one place they are declared.

    :param mobile_species_required: whether ``mobile_species`` must be given (the work chain: always; the job: only
        for ``modes``, which its namespace validator checks).
    """
    spec.input_namespace(
        'trajectories',
        valid_type=orm.Data,
        dynamic=True,
        validator=validate_trajectories,
        help='The trajectories (LammpsTrajectoryData or TrajectoryData), keyed by a label (a valid link label).',
    )
    spec.input(
        'mobile_species',
        valid_type=orm.Str,
        required=mobile_species_required,
        validator=validate_mobile_species,
        help='The mobile species, e.g. `Li` (or `Li, Na`); the diffusion modes (`modes`) are those of the first.',
    )
    spec.input(
        'parameters',
        valid_type=orm.Dict,
        default=lambda: orm.Dict({}),
        validator=validate_parameters,
        help='Analysis settings (fit window, n_blocks, charge, descriptor window/stride, analyses to run...): '
        'see aiida_mscale.workflows.transport.settings.DEFAULTS.',
    )
    spec.input(
        'timestep',
        valid_type=orm.Float,
        required=False,
        validator=validate_timestep,
        help="MD timestep [ps]: time = step * timestep. Overrides the creator's `parameters.timestep`; needed "
        'for a TrajectoryData without a `times` array (then its stepids are the steps).',
    )


def validate_inputs(inputs, _):
    """Refuse an unknown analysis, missing species and unknown trajectory labels before any run (the ports check
    each input on its own)."""
    from aiida_mscale.workflows.transport.reader import trajectory_metadata
    from aiida_mscale.workflows.transport.settings import merge_parameters, species_list

    analysis = inputs.get('analysis')
    if analysis is None:
        return None
    if analysis.value not in ANALYSES:
        return f'`analysis` must be one of {list(ANALYSES)}, got {analysis.value!r}'
    trajectories = inputs['trajectories']
    p = merge_parameters(inputs['parameters'].get_dict() if 'parameters' in inputs else {})
    timestep = inputs['timestep'].value if 'timestep' in inputs else None
    if analysis.value == 'modes':
        if 'mobile_species' not in inputs:
            return 'the `modes` analysis needs `mobile_species`'
        symbols = species_list(inputs['mobile_species'].value)
        chosen = p['descriptor_trajectories'] or sorted(trajectories)
        missing = sorted(set(chosen) - set(trajectories))
        if missing:
            return f'`descriptor_trajectories` {missing} are not trajectory labels ({sorted(trajectories)}).'
        for label in chosen:
            try:
                meta = trajectory_metadata(trajectories[label], timestep)
            except ValueError as exception:
                return f'trajectory `{label}`: {exception}'
            if symbols[0] not in meta['species']:
                return f'trajectory `{label}`: mobile species {symbols[0]} absent (present: {sorted(meta["species"])}).'
    elif p['environment_train'] is not None and p['environment_train'] not in trajectories:
        return f'`environment_train` {p["environment_train"]!r} is not a trajectory label ({sorted(trajectories)}).'
    return None


class TransportAnalysisCalculation(CalcJob):
    """Diffusion modes and descriptor importance (``analysis = 'modes'``) or local-environment classes
    (``'environments'``) of a set of trajectories, run by ``mscale-transport-analysis``.

    Input files, all written by this class: ``input.json`` (the analysis, the mobile species and the settings as
    validated by :func:`aiida_mscale.workflows.transport.settings.merge_parameters`, the trajectory file of each
    label) and one ``trajectory_NNN.npz`` per trajectory (positions, cells, times, species as read by
    :func:`~aiida_mscale.workflows.transport.reader.read_trajectory`). Outputs: ``result`` (Dict) and ``arrays``
    (ArrayData), the nodes the calcfunctions of the same analysis return.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        define_trajectory_inputs(spec, mobile_species_required=False)
        spec.input('analysis', valid_type=orm.Str, help=f'Which analysis to run, one of {list(ANALYSES)}.')
        spec.inputs.validator = validate_inputs
        spec.inputs['metadata']['options']['parser_name'].default = 'mscale.transport.analysis'
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        spec.inputs['metadata']['options']['withmpi'].default = False
        spec.inputs['metadata']['options']['environment_variables'].default = {'OMP_NUM_THREADS': '1'}

        spec.output('result', valid_type=orm.Dict, help='The summary of the analysis (modes, importance or classes).')
        spec.output('arrays', valid_type=orm.ArrayData, help='Descriptors and modes, or class fractions per frame.')
        spec.exit_code(300, 'ERROR_MISSING_OUTPUT_FILES', message='The analysis produced no {filename}.')
        spec.exit_code(301, 'ERROR_UNREADABLE_OUTPUT', message='The output of the analysis is unreadable: {message}')
        spec.exit_code(310, 'ERROR_ANALYSIS_REFUSED', message='The analysis refused its input: {message}')

    def prepare_for_submission(self, folder):
        from aiida_mscale.analysis.pooled import save_trajectory
        from aiida_mscale.workflows.transport.reader import read_trajectory
        from aiida_mscale.workflows.transport.settings import merge_parameters, species_list

        timestep = self.inputs.timestep.value if 'timestep' in self.inputs else None
        files = {}
        for index, (label, node) in enumerate(sorted(self.inputs.trajectories.items())):
            files[label] = _trajectory_filename(index)
            with folder.open(files[label], 'wb') as handle:
                save_trajectory(handle, read_trajectory(node, timestep))
        script_input = {
            'analysis': self.inputs.analysis.value,
            'parameters': merge_parameters(self.inputs.parameters.get_dict()),
            'trajectories': files,
        }
        if 'mobile_species' in self.inputs:
            script_input['mobile_species'] = species_list(self.inputs.mobile_species.value)
        write_text(folder, json.dumps(script_input, indent=2), INPUT_FILENAME)
        return script_calcinfo(self, [INPUT_FILENAME], STDOUT_FILENAME, STDERR_FILENAME, list(OUTPUT_FILES))


__all__ = ['ANALYSES', 'TransportAnalysisCalculation', 'define_trajectory_inputs', 'is_trajectory']
