"""``ElectrodeWorkChain``: continuum electrode models driven by D(x) and OCV(x), with the predictions as nodes.

From the concentration-dependent diffusivity D(x) and open-circuit voltage OCV(x) (``ArrayData``, given by
the user or produced upstream), it runs the requested :class:`ContinuumCalculation` models concurrently and
gathers, each with a calcfunction so it stays in the provenance graph:

- ``rate_capability``: delivered capacity against C-rate of a single particle (``particle_diffusion``);
- ``electrode_rate_capability``: the same at electrode scale (``porous_electrode``, pseudo-2-D);
- ``phase_boundary``: phase-boundary (front) position against time of a phase-field particle (``phase_field``);
- ``effective_diffusivity``: D_eff(grain size, T) of a Voronoi polycrystal (``polycrystal``), with the
  Hashin-Shtrikman bounds and the apparent activation energy per grain size.
"""

from __future__ import annotations

import copy
import pathlib

import numpy as np
from aiida import orm
from aiida.engine import ToContext, WorkChain, calcfunction
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin, recursive_merge

from aiida_mscale.calculations.continuum import ContinuumCalculation, check_model_inputs, read_table
from aiida_mscale.continuum import MODELS

BOLTZMANN_EV = 8.617333262e-5  # eV/K
#: keys of the `cell` input that each model reads
CELL_KEYS = {
    'particle_diffusion': ('particle', 'x_initial', 'x_final', 'c_rates', 'cutoff_voltage', 'temperature', 'kinetics'),
    'porous_electrode': (
        'particle',
        'x_initial',
        'x_final',
        'c_rates',
        'cutoff_voltage',
        'temperature',
        'kinetics',
        'electrode',
        'separator',
        'electrolyte',
    ),
    'phase_field': ('temperature', 'kinetics'),
    'polycrystal': (),
}
#: the Dict inputs that compose the solver parameters (arguments of :func:`model_parameters`)
DICT_INPUTS = ('cell', 'phase_field', 'polycrystal', 'resolution')
#: Arrhenius parameters whose prefactor is taken from the D(x) table: D(T_ref) = factor * D(x)
TABLE_ARRHENIUS_KEYS = ('Ea', 'x', 'T_ref')


def model_parameters(model: str, cell: dict, phase_field: dict, polycrystal: dict, resolution: dict) -> dict:
    """The solver parameters of one model: its part of ``cell`` (+ its own Dict) with the protocol resolution."""
    parameters = {key: copy.deepcopy(cell[key]) for key in CELL_KEYS[model] if key in cell}
    if model == 'phase_field':
        particle = cell.get('particle', {})
        parameters['particle'] = {key: particle[key] for key in ('radius', 'c_max') if key in particle}
        parameters = recursive_merge(parameters, copy.deepcopy(phase_field))
    elif model == 'polycrystal':
        parameters = copy.deepcopy(polycrystal)
    return recursive_merge(parameters, copy.deepcopy(resolution.get(model, {})))


def miscibility_gap(phase_field_parameters: dict, ocv: orm.ArrayData | None) -> bool:
    """Whether the phase-field free energy separates into two phases (is non-convex somewhere).

    With mu = -F (OCV - E0), g'' = dmu/dx < 0 exactly where OCV rises with x; a regular solution separates
    when Omega > 2 R T. Without it, the x = 1/2 contour the solver tracks is a diffusion profile, not a front.
    """
    free_energy = phase_field_parameters.get('free_energy') or {'type': 'ocv'}
    if free_energy.get('type', 'ocv') == 'ocv':
        if ocv is None:
            return False
        x, voltage = read_table(ocv, 'ocv')
        inside = (x[1:] > 0) & (x[:-1] < 1)
        return bool(np.any((np.diff(voltage) / np.diff(x))[inside] > 0))
    omega_rt = free_energy.get('omega_RT')
    if omega_rt is None:
        temperature = float(phase_field_parameters.get('temperature', 298.15))
        omega_rt = float(free_energy.get('omega', 0.0)) / (8.314462618 * temperature)
    return float(omega_rt) > 2.0


def uses_table(spec) -> bool:
    """Whether an Arrhenius specification (D_bulk or D_gb) takes its prefactor from the D(x) table."""
    return isinstance(spec, dict) and 'D0' not in spec and all(key in spec for key in TABLE_ARRHENIUS_KEYS)


# ---------------------------------------------------------------------------------- calcfunctions
@calcfunction
def polycrystal_diffusivities(diffusivity: orm.ArrayData, parameters: orm.Dict) -> orm.Dict:
    """Polycrystal parameters with D0 of D_bulk / D_gb from the D(x) table: D(T_ref) = factor * D(x).

    D0 = factor * D(x) * exp(Ea / (k_B T_ref)), so D(T) = D0 exp(-Ea / (k_B T)) passes through the
    tabulated value at T_ref; specifications that already give D0 are passed on unchanged.
    """
    x, d = read_table(diffusivity, 'diffusivity')
    result = parameters.get_dict()
    for key in ('D_bulk', 'D_gb'):
        spec = result.get(key)
        if uses_table(spec):
            value = float(spec.get('factor', 1.0)) * float(np.interp(float(spec['x']), x, d))
            d0 = value * float(np.exp(float(spec['Ea']) / (BOLTZMANN_EV * float(spec['T_ref']))))
            result[key] = {'D0': d0, 'Ea': float(spec['Ea'])}
    return orm.Dict(result)


@calcfunction
def rate_capability_table(results: orm.Dict) -> orm.ArrayData:
    """Rate-capability table of a particle or electrode run: ``c_rate`` [1/h] ascending, ``capacity``,
    ``soc_delivered`` (fraction of the window) and ``termination`` codes; the capacity unit is an attribute."""
    summary = results.get_dict()
    table = summary['rate_capability']
    rates = np.asarray(table['c_rate'], dtype=float)
    order = np.argsort(rates, kind='stable')
    out = orm.ArrayData()
    out.set_array('c_rate', rates[order])
    out.set_array('capacity', np.asarray(table['capacity'], dtype=float)[order])
    out.set_array('soc_delivered', np.asarray(table['soc_delivered'], dtype=float)[order])
    unit = summary.get('units', {}).get('capacity', '')
    out.base.attributes.set('capacity_unit', unit.replace('_per_', '/'))  # porous_electrode writes mAh_per_g
    out.base.attributes.set('model', summary.get('model', ''))
    out.base.attributes.set('termination', [summary['runs'][k].get('termination') for k in order.tolist()])
    return out


@calcfunction
def phase_boundary_trajectory(arrays: orm.ArrayData, results: orm.Dict) -> orm.ArrayData:
    """Phase-boundary trajectory: ``time`` [s] against ``front_position`` [m] (and r/R), while a front exists;
    ``x_mean`` and ``voltage`` [V] at the same times."""
    time = arrays.get_array('time')
    front = arrays.get_array('front_position')
    keep = np.isfinite(front)
    out = orm.ArrayData()
    out.set_array('time', time[keep])
    out.set_array('front_position', front[keep])
    radius = results.get_dict().get('radius') or float(np.max(arrays.get_array('r')))
    out.set_array('front_position_relative', front[keep] / radius)
    for name in ('x_mean', 'voltage'):
        if name in arrays.get_arraynames():
            out.set_array(name, arrays.get_array(name)[keep])
    out.base.attributes.set('radius', radius)
    out.base.attributes.set('plateau_voltage', results.get_dict().get('plateau_voltage'))
    return out


@calcfunction
def effective_diffusivity_table(arrays: orm.ArrayData, results: orm.Dict) -> orm.ArrayData:
    """D_eff(grain size, T) [m^2/s] of the polycrystal with its Hashin-Shtrikman bounds, the GB fraction, the
    bulk and (model) GB diffusivities per row, and the apparent activation energy [eV] per grain size."""
    summary = results.get_dict()
    sizes = arrays.get_array('grain_size')
    temperatures = arrays.get_array('temperature')
    shape = (len(sizes), len(temperatures))
    rows = summary['table']
    out = orm.ArrayData()
    out.set_array('grain_size', sizes)
    out.set_array('temperature', temperatures)
    out.set_array('D_eff', arrays.get_array('D_eff'))
    bounds = arrays.get_array('hs_bounds')
    out.set_array('hs_lower', bounds[..., 0])
    out.set_array('hs_upper', bounds[..., 1])
    out.set_array('gb_fraction', arrays.get_array('gb_fraction'))
    for key in ('D_bulk', 'D_gb', 'D_gb_model'):
        out.set_array(key, np.asarray([row[key] for row in rows], dtype=float).reshape(shape))
    out.set_array('band_widened', np.asarray([row['band_widened'] for row in rows], dtype=bool).reshape(shape))
    out.set_array('E_app', np.asarray(summary['apparent_activation_energy']['E_app'], dtype=float))
    return out


# ---------------------------------------------------------------------------------- validation
def validate_inputs(inputs, _):
    """Refuse bad input before anything runs, with the ContinuumCalculation's own checks per model."""
    models = inputs.get('models')
    if models is None:
        return None
    models = models.get_list()
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models or len(set(models)) != len(models):
        return f'`models` must be distinct names from {list(MODELS)}, got {models}'
    cell, phase_field, polycrystal, resolution = (
        inputs[key].get_dict() if key in inputs else {} for key in DICT_INPUTS
    )
    for model in models:
        if model == 'polycrystal' and not polycrystal:
            return 'model `polycrystal` needs the `polycrystal` input (grain sizes, temperatures, Arrhenius D)'
        if model == 'phase_field' and not phase_field:
            return 'model `phase_field` needs the `phase_field` input (interface width, driving, stop condition)'
        if model != 'polycrystal' and not cell:
            return f'model `{model}` needs the `cell` input (particle, window, C-rates, cut-off voltage)'
        parameters = model_parameters(model, cell, phase_field, polycrystal, resolution)
        if model == 'polycrystal':
            message = _check_arrhenius(parameters, inputs.get('diffusivity'))
            if message:
                return f'polycrystal: {message}'
        tables = {name: inputs.get(name) for name in ('diffusivity', 'ocv')}
        if model == 'polycrystal':
            tables = {}
        elif model == 'phase_field' and (phase_field.get('free_energy') or {}).get('type', 'ocv') != 'ocv':
            tables.pop('ocv')
        allow = inputs.get('allow_non_monotonic_ocv')
        later = model == 'polycrystal' and any(uses_table(parameters.get(key)) for key in ('D_bulk', 'D_gb'))
        message = check_model_inputs(
            model,
            parameters,
            write_xdmf=False,
            allow_non_monotonic_ocv=allow is not None and allow.value,
            solver_checks=not later,  # D_bulk/D_gb from the D(x) table: the solver checks them when it runs
            **tables,
        )
        if message:
            return f'{model}: {message}'
    return None


def _check_arrhenius(parameters: dict, diffusivity: orm.ArrayData | None) -> str | None:
    """D_bulk / D_gb given as {D0, Ea} (or a number), or as {Ea, x, T_ref[, factor]} with x inside the D(x) table."""
    for key in ('D_bulk', 'D_gb'):
        spec = parameters.get(key)
        if not isinstance(spec, dict) or 'D0' in spec:
            continue  # a number or {D0, Ea}: the solver checks it
        if not uses_table(spec):
            return f'`{key}` needs either D0 and Ea, or Ea, x and T_ref (D(T_ref) = factor * D(x)); got {spec}'
        if diffusivity is None:
            return f'`{key}` takes D from the diffusivity table, but no `diffusivity` was given'
        x, _ = read_table(diffusivity, 'diffusivity')
        if not x[0] <= float(spec['x']) <= x[-1]:
            return f'`{key}.x` = {spec["x"]} lies outside the diffusivity table [{x[0]}, {x[-1]}]'
        if float(spec['T_ref']) <= 0 or float(spec.get('factor', 1.0)) <= 0:
            return f'`{key}`: T_ref and factor must be > 0, got {spec}'
    return None


class ElectrodeWorkChain(ProtocolMixin, WorkChain):
    """Continuum electrode models (particle, phase field, polycrystal, porous electrode) from D(x) and OCV(x).

    Each requested model is one :class:`ContinuumCalculation`; all run at once. The gathered tables are made by
    calcfunctions from the calculations' outputs, so each links back to the D(x) and OCV(x) nodes (the
    polycrystal's D_eff does when its Arrhenius prefactors come from D(x): ``{'Ea', 'x', 'T_ref'}``).
    A model that fails is reported and the others are still gathered; the work chain then exits with 401.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('code', valid_type=orm.AbstractCode, help='The continuum code (`fenics@localhost`).')
        spec.input('diffusivity', valid_type=orm.ArrayData, help='D(x) [m^2/s]: arrays `x`, `D`.')
        spec.input('ocv', valid_type=orm.ArrayData, help='OCV(x) [V]: arrays `x`, `V`.')
        spec.input(
            'models',
            valid_type=orm.List,
            default=lambda: orm.List(['particle_diffusion', 'phase_field', 'polycrystal', 'porous_electrode']),
            help=f'The models to run, from {list(MODELS)}.',
        )
        spec.input(
            'cell',
            valid_type=orm.Dict,
            required=False,
            help='Particle (radius, c_max, density) and electrode/separator/electrolyte geometry, the window '
            'x_initial -> x_final, `c_rates`, `cutoff_voltage`, temperature, kinetics (solver keys and units).',
        )
        spec.input(
            'phase_field',
            valid_type=orm.Dict,
            required=False,
            help='Phase-field keys: interface_width, driving, initial, x_end/t_end, dimension, E0, free_energy '
            '(default: from the `ocv` input).',
        )
        spec.input(
            'polycrystal',
            valid_type=orm.Dict,
            required=False,
            help='grain_sizes, temperatures, gb_width, D_bulk and D_gb ({D0, Ea} or {Ea, x, T_ref, factor}: '
            'D(T_ref) = factor * D(x) of the `diffusivity` input), n_grains, seed.',
        )
        spec.input(
            'resolution',
            valid_type=orm.Dict,
            default=lambda: orm.Dict({}),
            help='Per model: `mesh`, `time_stepping` (and other numerical keys) merged into its parameters.',
        )
        spec.input('write_xdmf', valid_type=orm.Bool, default=lambda: orm.Bool(False), help='Keep XDMF fields.')
        spec.input(
            'allow_non_monotonic_ocv',
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            help='Run the single-phase models (particle_diffusion, porous_electrode) on an OCV(x) with a miscibility '
            'gap (rising and falling). Refused by default: a two-phase material needs phase_field.',
        )
        spec.input(
            'options',
            valid_type=dict,
            non_db=True,
            required=False,
            help='`metadata.options` of every ContinuumCalculation (e.g. max_wallclock_seconds).',
        )
        spec.inputs.validator = validate_inputs
        spec.outline(cls.setup, cls.run_models, cls.inspect_models, cls.results)

        spec.output('rate_capability', valid_type=orm.ArrayData, required=False, help='Particle: capacity vs C-rate.')
        spec.output(
            'electrode_rate_capability', valid_type=orm.ArrayData, required=False, help='Electrode: capacity vs C-rate.'
        )
        spec.output('phase_boundary', valid_type=orm.ArrayData, required=False, help='Front position vs time.')
        spec.output(
            'effective_diffusivity', valid_type=orm.ArrayData, required=False, help='D_eff(grain size, T) and bounds.'
        )
        spec.exit_code(401, 'ERROR_MODEL_FAILED', message='{number} of the continuum models failed: {failures}')
        spec.exit_code(
            402, 'ERROR_NO_PHASE_BOUNDARY', message='The phase-field particle formed no phase boundary: {reason}'
        )

    # ----------------------------------------------------------------------------- protocols
    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        """Return the path to the protocol file (fast / moderate / precise)."""
        return pathlib.Path(__file__).parent / 'protocols' / 'electrode.yaml'

    @classmethod
    def get_builder_from_protocol(
        cls, code, diffusivity, ocv, protocol: str | None = 'fast', overrides: dict | None = None, options=None
    ):
        """Return a builder for the models on D(x) = ``diffusivity`` and OCV(x) = ``ocv`` with a protocol.

        :param code: the continuum code (``mscale.continuum`` plugin) or its label.
        :param protocol: ``fast`` (default), ``moderate`` or ``precise``: mesh and time-step resolution.
        :param overrides: nested dict overriding the protocol, e.g. ``{'models': [...], 'cell': {'c_rates': [...]},
            'polycrystal': {...}, 'resolution': {'phase_field': {'mesh': {'n_cells': 150}}}}``.
        :param options: ``metadata.options`` for every ContinuumCalculation.
        """
        if isinstance(code, str):
            code = orm.load_code(code)
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.code = code
        builder.diffusivity = diffusivity
        builder.ocv = ocv
        builder.models = orm.List(list(inputs['models']))
        for key in DICT_INPUTS:
            builder[key] = orm.Dict(inputs.get(key, {}))
        builder.write_xdmf = orm.Bool(inputs.get('write_xdmf', False))
        builder.allow_non_monotonic_ocv = orm.Bool(inputs.get('allow_non_monotonic_ocv', False))
        if options:
            builder.options = options
        return builder

    # ----------------------------------------------------------------------------- outline
    def setup(self):
        """Compose the solver parameters of every requested model."""
        self.ctx.models = self.inputs.models.get_list()
        given = {key: self.inputs[key].get_dict() if key in self.inputs else {} for key in DICT_INPUTS}
        self.ctx.parameters = {model: model_parameters(model, **given) for model in self.ctx.models}
        self.report(
            f'running {", ".join(self.ctx.models)} on D(x)<{self.inputs.diffusivity.pk}>, OCV(x)<{self.inputs.ocv.pk}>'
        )

    def run_models(self):
        """Submit one ContinuumCalculation per model, all at once."""
        running = {}
        for model in self.ctx.models:
            parameters = self.ctx.parameters[model]
            inputs = {
                'code': self.inputs.code,
                'model': orm.Str(model),
                'write_xdmf': orm.Bool(self.inputs.write_xdmf.value and model != 'porous_electrode'),
                'metadata': {'call_link_label': model, 'options': dict(self.inputs.get('options', {}))},
            }
            if model == 'polycrystal':
                node = orm.Dict(parameters)
                if any(uses_table(parameters.get(key)) for key in ('D_bulk', 'D_gb')):
                    node = polycrystal_diffusivities(
                        self.inputs.diffusivity, node, metadata={'call_link_label': 'polycrystal_diffusivities'}
                    )
                inputs['parameters'] = node
            else:
                inputs['parameters'] = orm.Dict(parameters)
                inputs['diffusivity'] = self.inputs.diffusivity
                if model != 'phase_field':
                    inputs['allow_non_monotonic_ocv'] = self.inputs.allow_non_monotonic_ocv
                if model != 'phase_field' or (parameters.get('free_energy') or {}).get('type', 'ocv') == 'ocv':
                    inputs['ocv'] = self.inputs.ocv
            running[model] = self.submit(ContinuumCalculation, **inputs)
        self.report(f'submitted {", ".join(f"{m} <{n.pk}>" for m, n in running.items())}')
        return ToContext(**running)

    def inspect_models(self):
        """Record the models that failed (with the calculation's exit message)."""
        self.ctx.failed = {}
        for model in self.ctx.models:
            node = self.ctx[model]
            if not node.is_finished_ok:
                message = node.exit_message or f'process ended in state {node.process_state.value}'
                self.ctx.failed[model] = f'{model} <{node.pk}> [{node.exit_status}] {message}'
                self.report(f'{model} failed: ContinuumCalculation<{node.pk}> [{node.exit_status}] {message}')

    def results(self):
        """Gather the tables of the models that finished, each with a calcfunction."""
        done = {m: self.ctx[m] for m in self.ctx.models if m not in self.ctx.failed}
        if 'particle_diffusion' in done:
            table = rate_capability_table(
                done['particle_diffusion'].outputs.results, metadata={'call_link_label': 'rate_capability'}
            )
            self.out('rate_capability', table)
            self.report(f'rate capability <{table.pk}>: {self._describe(table)}')
        if 'porous_electrode' in done:
            table = rate_capability_table(
                done['porous_electrode'].outputs.results, metadata={'call_link_label': 'electrode_rate_capability'}
            )
            self.out('electrode_rate_capability', table)
            self.report(f'electrode rate capability <{table.pk}>: {self._describe(table)}')
        if 'polycrystal' in done:
            calc = done['polycrystal']
            table = effective_diffusivity_table(
                calc.outputs.arrays, calc.outputs.results, metadata={'call_link_label': 'effective_diffusivity'}
            )
            self.out('effective_diffusivity', table)
            self.report(f'D_eff(grain size, T) <{table.pk}>: E_app {np.round(table.get_array("E_app"), 3)} eV')
        no_front = None
        if 'phase_field' in done:
            calc = done['phase_field']
            if not miscibility_gap(self.ctx.parameters['phase_field'], getattr(calc.inputs, 'ocv', None)):
                no_front = (
                    'its free energy has no miscibility gap (OCV(x) never rises with x, or Omega <= 2 RT): '
                    'the material is a solid solution'
                )
            elif np.isfinite(calc.outputs.arrays.get_array('front_position')).sum() < 2:
                no_front = 'the run stopped before a front nucleated (raise x_end or t_end)'
            else:
                trajectory = phase_boundary_trajectory(
                    calc.outputs.arrays, calc.outputs.results, metadata={'call_link_label': 'phase_boundary'}
                )
                self.out('phase_boundary', trajectory)
                front = trajectory.get_array('front_position_relative')
                self.report(f'phase boundary <{trajectory.pk}>: r/R {front[0]:.3f} -> {front[-1]:.3f}')
        if self.ctx.failed:
            failures = '; '.join(self.ctx.failed.values())
            return self.exit_codes.ERROR_MODEL_FAILED.format(number=len(self.ctx.failed), failures=failures)
        if no_front:
            self.report(f'no phase boundary: {no_front}')
            return self.exit_codes.ERROR_NO_PHASE_BOUNDARY.format(reason=no_front)
        return None

    @staticmethod
    def _describe(table: orm.ArrayData) -> str:
        unit = table.base.attributes.get('capacity_unit', '')
        pairs = zip(table.get_array('c_rate'), table.get_array('capacity'))
        return ', '.join(f'{rate:g} C: {capacity:.1f}' for rate, capacity in pairs) + f' {unit}'


__all__ = [
    'ElectrodeWorkChain',
    'effective_diffusivity_table',
    'phase_boundary_trajectory',
    'polycrystal_diffusivities',
    'rate_capability_table',
]
