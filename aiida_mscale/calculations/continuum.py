"""``ContinuumCalculation``: one FEniCSx continuum model (``aiida_mscale/continuum/solver.py``) as a CalcJob.

The solver scripts are copied into the sandbox and run as ``python solver.py input.json`` by the code's
executable (Debian's /usr/bin/python3 with python3-dolfinx: code ``fenics@localhost``). The tables D(x)
and OCV(x) enter as ``ArrayData`` nodes, written unchanged as ``.npy`` files that ``input.json``
references, so a table computed upstream (MD, DFT) links straight to every prediction made with it.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
from aiida import orm
from aiida.engine import CalcJob

from aiida_mscale.calculations.script_job import script_calcinfo, write_text
from aiida_mscale.continuum import MODELS, SOLVER_DIR, SOLVER_FILES
from aiida_mscale.schema import unsafe_strings

#: array names of the two table inputs: (abscissa, values), and the key of the values in the solver's JSON
TABLES = {'diffusivity': ('x', 'D'), 'ocv': ('x', 'V')}
#: models that read each table (polycrystal takes Arrhenius parameters, not D(x))
TABLE_MODELS = {
    'diffusivity': ('particle_diffusion', 'phase_field', 'porous_electrode'),
    'ocv': ('particle_diffusion', 'phase_field', 'porous_electrode'),
}
#: keys of ``parameters`` that are separate inputs of the CalcJob
RESERVED_KEYS = ('model', 'write_xdmf', 'output_dir')
#: models that assume a single phase: an OCV(x) that rises and falls (a miscibility gap) is refused for them
SINGLE_PHASE_MODELS = ('particle_diffusion', 'porous_electrode')
#: sub-dicts whose keys depend on a `type` (checked by the model itself)
VARIANT_KEYS = ('driving', 'initial', 'free_energy', 'particle')
#: top-level keys each model reads besides those of its ``DEFAULTS`` (see the model's module docstring)
REQUIRED_KEYS = {
    'particle_diffusion': ('particle', 'diffusivity', 'ocv', 'x_initial', 'x_final', 'c_rates', 'cutoff_voltage'),
    'phase_field': ('particle', 'diffusivity', 'free_energy', 'E0', 'driving', 'interface_width', 'initial'),
    'porous_electrode': ('particle', 'diffusivity', 'ocv', 'x_initial', 'x_final', 'c_rates', 'cutoff_voltage'),
}
INPUT_FILENAME = 'input.json'
STDOUT_FILENAME = 'solver.log'
STDERR_FILENAME = 'solver.err'


def read_table(node: orm.ArrayData, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The (x, values) arrays of a table input, or :class:`ValueError` saying what is wrong with them."""
    xname, yname = TABLES[name]
    missing = [a for a in (xname, yname) if a not in node.get_arraynames()]
    if missing:
        raise ValueError(f'`{name}` needs arrays `{xname}` and `{yname}`; it lacks {missing}')
    x = np.asarray(node.get_array(xname), dtype=float)
    y = np.asarray(node.get_array(yname), dtype=float)
    if x.ndim != 1 or y.shape != x.shape or len(x) < 2:
        raise ValueError(
            f'`{name}`: `{xname}` and `{yname}` must be 1-D of equal length >= 2, got {x.shape}, {y.shape}'
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(f'`{name}` holds non-finite values')
    if not np.all(np.diff(x) > 0):
        raise ValueError(f'`{name}`: `{xname}` must be strictly increasing')
    return x, y


def _window(model: str, parameters: dict) -> tuple[float, float] | None:
    """Concentration range (x = c/c_max) over which the model evaluates D(x) and OCV(x), if known."""
    if model == 'phase_field':
        return 0.0, 1.0
    try:
        x0, x1 = float(parameters['x_initial']), float(parameters['x_final'])
    except (KeyError, TypeError, ValueError):
        return None  # the solver refuses a missing or malformed window itself
    return min(x0, x1), max(x0, x1)


def _check_rates(model: str, parameters: dict) -> str | None:
    if model in ('particle_diffusion', 'porous_electrode'):
        rates = parameters.get('c_rates')
        if not isinstance(rates, (list, tuple)) or not rates:
            return '`c_rates` must be a non-empty list of C-rates [1/h]'
        try:
            values = [float(r) for r in rates]
        except (TypeError, ValueError):
            return f'`c_rates` must hold numbers, got {rates}'
        bad = [r for r in values if not (np.isfinite(r) and r > 0)]
        if bad:
            return f'`c_rates` must be positive and finite; refused {bad} (a C-rate of zero never ends)'
    if model == 'phase_field':
        driving = parameters.get('driving') or {}
        if isinstance(driving, dict) and driving.get('type', 'galvanostatic') == 'galvanostatic':
            rate = driving.get('c_rate', 1.0)
            try:
                ok = np.isfinite(float(rate)) and float(rate) > 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                return f'`driving.c_rate` must be positive and finite, got {rate} (a C-rate of zero never ends)'
    return None


def validate_inputs(inputs, _):
    """Refuse what needs no solve: unknown model, bad tables, OCV/D not covering the window, a zero C-rate.

    Everything else the solver checks itself before any solve (exit code 2 -> 302 with its message).
    """
    model = inputs.get('model')
    parameters = inputs.get('parameters')
    if model is None or parameters is None:
        return None
    write_xdmf = inputs.get('write_xdmf')
    allow = inputs.get('allow_non_monotonic_ocv')
    return check_model_inputs(
        model.value,
        parameters.get_dict(),
        diffusivity=inputs.get('diffusivity'),
        ocv=inputs.get('ocv'),
        write_xdmf=write_xdmf is not None and write_xdmf.value,
        allow_non_monotonic_ocv=allow is not None and allow.value,
    )


def non_monotonic(voltage: np.ndarray) -> bool:
    """Whether an OCV table both rises and falls (plateaus, i.e. equal neighbours, are allowed)."""
    steps = np.diff(np.asarray(voltage, dtype=float))
    return bool(np.any(steps > 0) and np.any(steps < 0))


def _model_module(model: str):
    from importlib import import_module

    return import_module(f'aiida_mscale.continuum.{model}')


def _unknown_keys(model: str, parameters: dict) -> str | None:
    """Keys of ``parameters`` (and of its sub-dicts with defaults) that the model does not read."""
    defaults = getattr(_model_module(model), 'DEFAULTS', None)
    if model not in REQUIRED_KEYS or not isinstance(defaults, dict):
        return None  # the model checks its own keys (polycrystal)
    allowed = set(defaults) | set(REQUIRED_KEYS[model])
    unknown = sorted(set(parameters) - allowed)
    if unknown:
        return f'unknown parameters {unknown} for model `{model}`; allowed: {sorted(allowed)}'
    for key, value in parameters.items():
        if key in VARIANT_KEYS:
            continue  # their keys depend on their `type`: the model's own validation checks them
        sub = defaults.get(key)
        if isinstance(sub, dict) and isinstance(value, dict):
            unknown = sorted(set(value) - set(sub))
            if unknown:
                return f'unknown parameters {unknown} in `{key}` of model `{model}`; allowed: {sorted(sub)}'
    return None


def _solver_check(model: str, parameters: dict, tables: dict) -> str | None:
    """Run the model's own input validation (dolfinx-free; it never solves) on the input the solver will read."""
    import tempfile

    from aiida_mscale.continuum import common

    script_input = {**parameters, 'model': model}
    for name, (x, y) in tables.items():
        xname, yname = TABLES[name]
        inline = {xname: x.tolist(), yname: y.tolist()}
        if model == 'phase_field' and name == 'ocv':
            script_input['free_energy'] = {**(parameters.get('free_energy') or {}), 'type': 'ocv', **inline}
        else:
            script_input[name] = inline
    try:
        with tempfile.TemporaryDirectory() as scratch:
            _model_module(model).validate(script_input, base_dir=scratch)
    except common.InputError as exception:
        return str(exception)
    return None


def check_model_inputs(
    model: str,
    parameters: dict,
    diffusivity: orm.ArrayData | None = None,
    ocv: orm.ArrayData | None = None,
    write_xdmf: bool = False,
    allow_non_monotonic_ocv: bool = False,
    solver_checks: bool = True,
) -> str | None:
    """What is wrong with these inputs of one model (a message), or None. Also used by ElectrodeWorkChain.

    Besides the table checks here, the model's own ``validate`` (the solver's input checks, dolfinx-free) runs
    in-process, so every input the solver would refuse is refused before the calculation is stored.

    :param solver_checks: run the model's own validation too (False when some inputs are only known later,
        e.g. D_bulk/D_gb of the polycrystal computed from a D(x) table by a calcfunction).
    """
    if model not in MODELS:
        return f'unknown model `{model}`; choose one of {list(MODELS)}'
    unsafe = unsafe_strings(parameters)
    if unsafe:
        return (
            f'`parameters` holds strings that are not plain words (file references, quotes, spaces or newlines are '
            f'not accepted; tables are ArrayData inputs): {"; ".join(unsafe[:3])}'
        )
    reserved = sorted(set(parameters) & set(RESERVED_KEYS))
    if reserved:
        return f'`parameters` must not hold {reserved}: `model` and `write_xdmf` are inputs of their own'
    nodes = {'diffusivity': diffusivity, 'ocv': ocv}
    for name, models in TABLE_MODELS.items():
        node = nodes[name]
        if node is not None and model not in models:
            return f'model `{model}` takes no `{name}` table (it uses {_uses(model)})'
        if isinstance(parameters.get(name), (dict, list)):
            return f'give the {name} table as the `{name}` ArrayData input, not inside `parameters`'
        if node is not None and name in parameters:
            return f'`{name}` given twice: as an ArrayData input and in `parameters`'
    if isinstance(parameters.get('free_energy'), dict) and {'x', 'V'} & set(parameters['free_energy']):
        return 'give the OCV table of the free energy as the `ocv` ArrayData input, not inside `parameters`'
    if model == 'porous_electrode' and write_xdmf:
        return 'model `porous_electrode` writes no XDMF fields yet: set `write_xdmf` to False'
    if model in ('particle_diffusion', 'porous_electrode') and ocv is None:
        return f'model `{model}` needs the open-circuit voltage: give the `ocv` input (arrays `x`, `V`)'
    if model == 'phase_field' and ocv is not None:
        kind = (parameters.get('free_energy') or {}).get('type', 'ocv')
        if kind != 'ocv':
            return f'an `ocv` input was given but `free_energy.type` is `{kind}`: drop one of the two'

    window = _window(model, parameters)
    tables = {}
    for name, node in nodes.items():
        if node is None:
            continue
        try:
            x, y = read_table(node, name)
        except ValueError as exception:
            return str(exception)
        tables[name] = (x, y)
        if name == 'ocv' and model in SINGLE_PHASE_MODELS and non_monotonic(y) and not allow_non_monotonic_ocv:
            return (
                f'the OCV table rises and falls (a miscibility gap) but model `{model}` assumes a single phase: '
                'use model `phase_field` for a two-phase material, or set `allow_non_monotonic_ocv` to True to '
                'run the single-phase model on it anyway'
            )
        if name == 'diffusivity':
            bad = np.nonzero(y <= 0)[0]
            if len(bad):
                return (
                    f'the diffusivity table has non-positive values D = {y[bad].tolist()} at x = {x[bad].tolist()}; '
                    'D(x) must be > 0 everywhere'
                )
        if window is not None:
            lo, hi = window
            if name == 'ocv' and model == 'phase_field':
                lo, hi = 1e-3, 1 - 1e-3  # the phase-field free energy needs OCV over (0, 1)
            if not (x[0] <= lo + 1e-12 and x[-1] >= hi - 1e-12):
                label = 'OCV' if name == 'ocv' else 'diffusivity'
                return (
                    f'the {label} table covers x in [{x[0]}, {x[-1]}] but model `{model}` needs the concentration '
                    f'range [{lo}, {hi}]: extend the table or narrow x_initial/x_final'
                )
    message = _check_rates(model, parameters) or _unknown_keys(model, parameters)
    if message:
        return message
    return _solver_check(model, parameters, tables) if solver_checks else None


def _uses(model: str) -> str:
    return 'Arrhenius D_bulk and D_gb' if model == 'polycrystal' else 'its own parameters'


def _write_array(folder, array: np.ndarray, filename: str) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array, dtype=float))
    with folder.open(filename, 'wb') as handle:
        handle.write(buffer.getvalue())


def solver_input(model: str, parameters: dict, tables: dict, write_xdmf: bool) -> dict:
    """The solver's JSON: ``parameters`` + model + table file references (``<name>_<array>.npy``)."""
    script_input = {**parameters, 'model': model, 'write_xdmf': bool(write_xdmf)}
    for name in tables:
        xname, yname = TABLES[name]
        reference = {xname: f'{name}_{xname}.npy', yname: f'{name}_{yname}.npy'}
        if model == 'phase_field' and name == 'ocv':
            script_input['free_energy'] = {**(parameters.get('free_energy') or {}), 'type': 'ocv', **reference}
        else:
            script_input[name] = reference
    return script_input


class ContinuumCalculation(CalcJob):
    """Run one continuum model (particle_diffusion, polycrystal, phase_field, porous_electrode) with FEniCSx.

    The solver's exit codes map to this CalcJob's: 2 bad input -> 302, 3 non-convergence -> 310,
    4 unphysical state -> 320, 5 internal error -> 301; each carries the solver's message.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('model', valid_type=orm.Str, help=f'The model to solve, one of {list(MODELS)}.')
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            help="The solver's JSON input without `model`, `write_xdmf` and the D(x)/OCV(x) tables "
            '(keys and units: the docstring of aiida_mscale/continuum/<model>.py).',
        )
        spec.input(
            'diffusivity',
            valid_type=orm.ArrayData,
            required=False,
            help='D(x) [m^2/s] against stoichiometry x = c/c_max: arrays `x` (increasing) and `D` (> 0).',
        )
        spec.input(
            'ocv',
            valid_type=orm.ArrayData,
            required=False,
            help='Open-circuit voltage OCV(x) [V]: arrays `x` (increasing) and `V`.',
        )
        spec.input(
            'write_xdmf',
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            help='Write the XDMF fields and return them in the `fields` output.',
        )
        spec.input(
            'allow_non_monotonic_ocv',
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            help='Run a single-phase model (particle_diffusion, porous_electrode) on an OCV(x) that rises and falls '
            '(a miscibility gap). Refused by default: such a material needs the phase_field model.',
        )
        spec.inputs.validator = validate_inputs
        spec.inputs['metadata']['options']['parser_name'].default = 'mscale.continuum'
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        spec.inputs['metadata']['options']['withmpi'].default = False
        # the continuum Python is not this environment's: no PYTHONPATH leaking in, one thread
        spec.inputs['metadata']['options']['environment_variables'].default = {
            'PYTHONPATH': '',
            'OMP_NUM_THREADS': '1',
            'OPENBLAS_NUM_THREADS': '1',
        }

        spec.output('results', valid_type=orm.Dict, help='Scalars and small tables of results.json.')
        spec.output('arrays', valid_type=orm.ArrayData, help='The named arrays of results.npz.')
        spec.output('fields', valid_type=orm.FolderData, required=False, help='XDMF (+ HDF5) fields, if asked.')
        spec.exit_code(300, 'ERROR_MISSING_OUTPUT_FILES', message='The solver produced no {filename}.')
        spec.exit_code(301, 'ERROR_INTERNAL', message='The solver stopped with an internal error: {message}')
        spec.exit_code(302, 'ERROR_INVALID_INPUT', message='The solver refused the input: {message}')
        spec.exit_code(410, 'ERROR_NOT_CONVERGED', message='The solver did not converge: {message}')
        spec.exit_code(420, 'ERROR_UNPHYSICAL_STATE', message='The solution reached an unphysical state: {message}')

    def prepare_for_submission(self, folder):
        tables = {}
        for name in TABLES:
            if name in self.inputs:
                x, y = read_table(self.inputs[name], name)
                xname, yname = TABLES[name]
                _write_array(folder, x, f'{name}_{xname}.npy')
                _write_array(folder, y, f'{name}_{yname}.npy')
                tables[name] = True
        script_input = solver_input(
            self.inputs.model.value, self.inputs.parameters.get_dict(), tables, self.inputs.write_xdmf.value
        )
        write_text(folder, json.dumps(script_input, indent=2), INPUT_FILENAME)
        for filename in SOLVER_FILES:
            folder.insert_path(os.path.join(SOLVER_DIR, filename), filename)

        calcinfo = script_calcinfo(
            self, ['solver.py', INPUT_FILENAME], STDOUT_FILENAME, STDERR_FILENAME, ['results.json']
        )
        # arrays and fields become nodes of their own: not kept twice in the retrieved folder
        calcinfo.retrieve_temporary_list = ['results.npz', '*.xdmf', '*.h5']
        return calcinfo
