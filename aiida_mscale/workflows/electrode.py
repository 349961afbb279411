"""``ElectrodeWorkChain``: continuum electrode models driven by D(x) and OCV(x), with the predictions as nodes.

From the concentration-dependent diffusivity D(x) and open-circuit voltage OCV(x) (``ArrayData``, given by
the user or produced upstream) and the material's properties (inputs, never protocol values), it runs the
requested continuum models concurrently, each as a :class:`ContinuumBaseWorkChain` (a :class:`ContinuumCalculation`
restarted with a smaller time step, then a finer mesh, when it does not converge), and gathers, each with a
calcfunction so it stays in the provenance graph:

- ``rate_capability``: delivered capacity against C-rate of a single particle (``particle_diffusion``);
- ``electrode_rate_capability``: the same at electrode scale (``porous_electrode``, pseudo-2-D);
- ``phase_boundary``: phase-boundary (front) position against time of a phase-field particle (``phase_field``);
- ``effective_diffusivity``: D_eff(grain size, T) of a Voronoi polycrystal (``polycrystal``), with the
  Hashin-Shtrikman bounds and the apparent activation energy per grain size;
- with the ``uncertainty`` input, an ensemble of seeded draws of D(x) and OCV(x) (their sigmas ``D_sigma`` and
  ``V_sigma`` are arrays of the same ``ArrayData``) and the bands of the curves: ``rate_capability_band``,
  ``voltage_band`` (and ``electrode_*`` for the porous electrode). The draw model is documented in
  :mod:`aiida_mscale.calculations.functions.electrode`.

What is an input and what is a protocol value: the protocol (``protocols/electrode.yaml``) holds numerical
resolution only (mesh, time steps). The material (particle radius and c_max, exchange current and transfer
coefficient, temperature, electrode/separator/electrolyte, interface width, grain-boundary parameters: see
:data:`MATERIAL_KEYS`) and the experiment (window, C-rates, cut-off voltage, phase-field driving) are inputs; a
missing one is refused before anything runs, naming the key, never filled in by a default.
"""

from __future__ import annotations

import copy
import pathlib

import numpy as np
from aiida import orm
from aiida.engine import ToContext, WorkChain
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin, recursive_merge

from aiida_mscale.calculations.continuum import check_model_inputs, non_monotonic, read_table
from aiida_mscale.calculations.functions.electrode import (
    SIGMA_ARRAYS,
    UncertaintySettings,
    draw_tables,
    effective_diffusivity_table,
    ensemble_draws,
    phase_boundary_trajectory,
    polycrystal_diffusivities,
    rate_capability_band,
    rate_capability_table,
    read_sigma,
    uses_table,
    voltage_band,
)
from aiida_mscale.constants import GAS_CONSTANT
from aiida_mscale.continuum import MODELS
from aiida_mscale.schema import validate_parameters
from aiida_mscale.workflows.continuum_base import ContinuumBaseWorkChain

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
_PARTICLE = (('cell', 'particle.radius', 'm'), ('cell', 'particle.c_max', 'mol/m^3'))
_KINETICS = (('cell', 'kinetics.i0', 'A/m^2'), ('cell', 'kinetics.alpha', '-'), ('cell', 'temperature', 'K'))
_EXPERIMENT = (
    ('cell', 'x_initial', '-'),
    ('cell', 'x_final', '-'),
    ('cell', 'c_rates', '1/h'),
    ('cell', 'cutoff_voltage', 'V'),
)
_ELECTRODE = tuple(
    ('cell', key, unit)
    for key, unit in (
        ('electrode.thickness', 'm'),
        ('electrode.porosity', '-'),
        ('electrode.active_fraction', '-'),
        ('electrode.bruggeman', '-'),
        ('electrode.sigma', 'S/m'),
        ('separator.thickness', 'm'),
        ('separator.porosity', '-'),
        ('electrolyte.c0', 'mol/m^3'),
        ('electrolyte.D', 'm^2/s'),
        ('electrolyte.kappa', 'S/m'),
        ('electrolyte.t_plus', '-'),
    )
)
#: what each model needs from the user (input, dotted key, unit): material physics and the experiment. No protocol
#: or solver default stands in for any of them: a missing one is refused before anything runs.
MATERIAL_KEYS = {
    'particle_diffusion': _PARTICLE + _KINETICS + _EXPERIMENT,
    'porous_electrode': _PARTICLE + _KINETICS + _EXPERIMENT + _ELECTRODE,
    'phase_field': _PARTICLE
    + _KINETICS
    + (('phase_field', 'interface_width', 'm'), ('phase_field', 'driving', '{type, c_rate, direction}')),
    'polycrystal': (
        ('polycrystal', 'grain_sizes', 'm'),
        ('polycrystal', 'temperatures', 'K'),
        ('polycrystal', 'gb_width', 'm'),
        ('polycrystal', 'D_bulk', '{D0, Ea} or {Ea, x, T_ref}'),
        ('polycrystal', 'D_gb', '{D0, Ea} or {Ea, x, T_ref, factor}'),
    ),
}


def _has(data: dict, dotted: str) -> bool:
    for part in dotted.split('.'):
        if not isinstance(data, dict) or data.get(part) is None:
            return False
        data = data[part]
    return True


def missing_material(model: str, given: dict) -> list[str]:
    """The required keys of ``model`` (``input.key [unit]``) absent from ``given`` (input name -> dict)."""
    return [f'{name}.{key} [{unit}]' for name, key, unit in MATERIAL_KEYS[model] if not _has(given.get(name, {}), key)]


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
        omega_rt = float(free_energy.get('omega', 0.0)) / (GAS_CONSTANT * temperature)
    return float(omega_rt) > 2.0


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
    given = {key: inputs[key].get_dict() if key in inputs else {} for key in DICT_INPUTS}
    allow = inputs.get('allow_non_monotonic_ocv')
    allow = allow is not None and allow.value
    for model in models:
        missing = missing_material(model, given)
        if missing:
            return (
                f'{model}: the material and the experiment are inputs, not protocol defaults; missing '
                f'{", ".join(missing)}'
            )
        if model != 'polycrystal' and (inputs.get('diffusivity') is None or inputs.get('ocv') is None):
            continue  # exposed in a larger work chain that makes the tables: they are checked when it submits this
        parameters = model_parameters(model, **given)
        if model == 'polycrystal':
            message = _check_arrhenius(parameters, inputs.get('diffusivity'))
            if message:
                return f'polycrystal: {message}'
        tables = {name: inputs.get(name) for name in ('diffusivity', 'ocv')}
        if model == 'polycrystal':
            tables = {}
        elif model == 'phase_field' and (given['phase_field'].get('free_energy') or {}).get('type', 'ocv') != 'ocv':
            tables.pop('ocv')
        if model == 'phase_field' and not miscibility_gap(parameters, tables.get('ocv')):
            return (
                'phase_field: the free energy has no miscibility gap (OCV(x) never rises with x, or Omega <= 2 RT), '
                'so no phase boundary can form: the material is a solid solution; use particle_diffusion'
            )
        later = model == 'polycrystal' and any(uses_table(parameters.get(key)) for key in ('D_bulk', 'D_gb'))
        message = check_model_inputs(
            model,
            parameters,
            write_xdmf=False,
            allow_non_monotonic_ocv=allow,
            solver_checks=not later,  # D_bulk/D_gb from the D(x) table: the solver checks them when it runs
            **tables,
        )
        if message:
            return f'{model}: {message}'
    if 'uncertainty' in inputs:
        return _check_uncertainty(inputs, models, allow)
    return None


def _check_uncertainty(inputs, models: list[str], allow_non_monotonic_ocv: bool) -> str | None:
    """The ensemble settings, the sigma arrays, and every draw's OCV for the single-phase models."""
    try:
        settings = validate_parameters(UncertaintySettings, inputs['uncertainty'].get_dict(), 'uncertainty')
    except ValueError as exception:
        return str(exception)
    absent = [m for m in settings.models if m not in models]
    if absent:
        return f'uncertainty.models {absent} are not among the `models` run: {models}'
    if 'diffusivity' not in inputs or 'ocv' not in inputs:
        return None  # tables made upstream (e.g. by MultiscaleWorkChain): their sigmas are checked when they exist
    sigmas = {}
    for name in ('diffusivity', 'ocv'):
        try:
            sigmas[name] = read_sigma(inputs[name], name)
        except ValueError as exception:
            return f'uncertainty: {exception}'
    if all(sigma is None for sigma in sigmas.values()):
        return (
            'uncertainty: neither table carries a sigma; add the array `D_sigma` [m^2/s] to `diffusivity` and/or '
            '`V_sigma` [V] to `ocv` (same length as `x`)'
        )
    if not allow_non_monotonic_ocv and sigmas['ocv'] is not None:
        for k, draw in enumerate(
            draw_tables(inputs['diffusivity'], inputs['ocv'], settings.ensemble_size, settings.seed)
        ):
            if non_monotonic(draw['V']):
                return (
                    f'uncertainty: draw {k} (u = {draw["u"]:.3f}) of OCV(x) + u V_sigma(x) rises and falls, which the '
                    f'single-phase models {settings.models} refuse: V_sigma varies faster along x than OCV(x) falls; '
                    'smooth V_sigma or set `allow_non_monotonic_ocv`'
                )
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

    Each requested model is one :class:`ContinuumBaseWorkChain`; all run at once. The gathered tables are made by
    calcfunctions from the calculations' outputs, so each links back to the D(x) and OCV(x) nodes (the
    polycrystal's D_eff does when its Arrhenius prefactors come from D(x): ``{'Ea', 'x', 'T_ref'}``).
    A model that fails is reported and the others are still gathered; the work chain then exits with 401.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('code', valid_type=orm.AbstractCode, help='The continuum code (`fenics@localhost`).')
        spec.input(
            'diffusivity',
            valid_type=orm.ArrayData,
            help='D(x) [m^2/s]: arrays `x`, `D` (and `D_sigma` [m^2/s], its standard deviation, for `uncertainty`).',
        )
        spec.input(
            'ocv',
            valid_type=orm.ArrayData,
            help='OCV(x) [V]: arrays `x`, `V` (and `V_sigma` [V], its standard deviation, for `uncertainty`).',
        )
        spec.input('models', valid_type=orm.List, help=f'The models to run, from {list(MODELS)}.')
        spec.input(
            'cell',
            valid_type=orm.Dict,
            required=False,
            help='The particle (radius [m], c_max [mol/m^3], density [g/cm^3]), kinetics (i0 [A/m^2], alpha), '
            'temperature [K], electrode/separator/electrolyte (porous_electrode), and the experiment: window '
            'x_initial -> x_final, `c_rates` [1/h], `cutoff_voltage` [V]. Required keys: MATERIAL_KEYS.',
        )
        spec.input(
            'phase_field',
            valid_type=orm.Dict,
            required=False,
            help='Phase-field keys: interface_width [m], driving, initial, x_end/t_end, dimension, E0, free_energy '
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
        spec.input(
            'uncertainty',
            valid_type=orm.Dict,
            required=False,
            help='Ensemble of seeded draws of D(x) and OCV(x) from their sigmas: {ensemble_size (>= 1), seed, models '
            "(default ['particle_diffusion'])}; draw model: aiida_mscale.calculations.functions.electrode.",
        )
        spec.input(
            'max_iterations',
            valid_type=orm.Int,
            default=lambda: orm.Int(5),
            help='Restart budget of every ContinuumBaseWorkChain (runs per model, first run included).',
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
        for prefix, label in (('', 'Particle'), ('electrode_', 'Electrode')):
            spec.output(
                f'{prefix}rate_capability_band',
                valid_type=orm.ArrayData,
                required=False,
                help=f'{label}: capacity vs C-rate over the ensemble (mean, 2.5/97.5 % percentiles, draws).',
            )
            spec.output(
                f'{prefix}voltage_band',
                valid_type=orm.ArrayData,
                required=False,
                help=f'{label}: voltage vs capacity per C-rate over the ensemble (mean, 2.5/97.5 % percentiles).',
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

        The protocol sets the numerical resolution only; the material and the experiment come in ``overrides``.

        :param code: the continuum code (``mscale.continuum`` plugin) or its label.
        :param protocol: ``fast`` (default), ``moderate`` or ``precise``: mesh and time-step resolution.
        :param overrides: ``{'models': [...], 'cell': {...}, 'phase_field': {...}, 'polycrystal': {...},
            'uncertainty': {...}, 'allow_non_monotonic_ocv': bool, 'resolution': {model: {...}}}``; the required keys
            of each model are listed in :data:`MATERIAL_KEYS`.
        :param options: ``metadata.options`` for every ContinuumCalculation.
        """
        if isinstance(code, str):
            code = orm.load_code(code)
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.code = code
        builder.diffusivity = diffusivity
        builder.ocv = ocv
        if 'models' in inputs:
            builder.models = orm.List(list(inputs['models']))
        for key in DICT_INPUTS:
            if key in inputs:
                builder[key] = orm.Dict(inputs[key])
        if 'uncertainty' in inputs:
            builder.uncertainty = orm.Dict(inputs['uncertainty'])
        builder.write_xdmf = orm.Bool(inputs.get('write_xdmf', False))
        if 'max_iterations' in inputs:
            builder.max_iterations = orm.Int(inputs['max_iterations'])
        builder.allow_non_monotonic_ocv = orm.Bool(inputs.get('allow_non_monotonic_ocv', False))
        if options:
            builder.options = options
        return builder

    # ----------------------------------------------------------------------------- outline
    def setup(self):
        """Compose the solver parameters of every requested model; draw the ensemble's tables, if asked."""
        self.ctx.models = self.inputs.models.get_list()
        given = {key: self.inputs[key].get_dict() if key in self.inputs else {} for key in DICT_INPUTS}
        self.ctx.parameters = {model: model_parameters(model, **given) for model in self.ctx.models}
        self.report(
            f'running {", ".join(self.ctx.models)} on D(x)<{self.inputs.diffusivity.pk}>, OCV(x)<{self.inputs.ocv.pk}>'
        )
        self.ctx.ensemble = {}
        if 'uncertainty' in self.inputs:
            settings = validate_parameters(UncertaintySettings, self.inputs.uncertainty.get_dict(), 'uncertainty')
            draws = ensemble_draws(
                self.inputs.diffusivity,
                self.inputs.ocv,
                orm.Dict(settings.dump()),
                metadata={'call_link_label': 'ensemble_draws'},
            )
            self.ctx.ensemble = {
                'models': settings.models,
                'size': settings.ensemble_size,
                'diffusivity': [draws[f'diffusivity_{k}'] for k in range(settings.ensemble_size)],
                'ocv': [draws[f'ocv_{k}'] for k in range(settings.ensemble_size)],
            }
            without = [
                SIGMA_ARRAYS[name]
                for name in ('diffusivity', 'ocv')
                if SIGMA_ARRAYS[name] not in self.inputs[name].get_arraynames()
            ]
            note = f' (no {" or ".join(without)}: that table is exact)' if without else ''
            self.report(
                f'ensemble of {settings.ensemble_size} draws (seed {settings.seed}) for {", ".join(settings.models)}'
                f'{note}: factors <{draws["factors"].pk}>'
            )

    def _submit(self, model: str, label: str, diffusivity: orm.ArrayData, ocv: orm.ArrayData):
        parameters = self.ctx.parameters[model]
        continuum = {
            'code': self.inputs.code,
            'model': orm.Str(model),
            'write_xdmf': orm.Bool(self.inputs.write_xdmf.value and model != 'porous_electrode'),
            'metadata': {'options': dict(self.inputs.get('options', {}))},
        }
        if model == 'polycrystal':
            node = orm.Dict(parameters)
            if any(uses_table(parameters.get(key)) for key in ('D_bulk', 'D_gb')):
                node = polycrystal_diffusivities(
                    diffusivity, node, metadata={'call_link_label': 'polycrystal_diffusivities'}
                )
            continuum['parameters'] = node
        else:
            continuum['parameters'] = orm.Dict(parameters)
            continuum['diffusivity'] = diffusivity
            if model != 'phase_field':
                continuum['allow_non_monotonic_ocv'] = self.inputs.allow_non_monotonic_ocv
            if model != 'phase_field' or (parameters.get('free_energy') or {}).get('type', 'ocv') == 'ocv':
                continuum['ocv'] = ocv
        return self.submit(
            ContinuumBaseWorkChain,
            continuum=continuum,
            max_iterations=self.inputs.max_iterations,
            metadata={'call_link_label': label},
        )

    def run_models(self):
        """Submit one ContinuumBaseWorkChain per model (and per model and draw of the ensemble), all at once."""
        running = {}
        for model in self.ctx.models:
            running[model] = self._submit(model, model, self.inputs.diffusivity, self.inputs.ocv)
        for model in self.ctx.ensemble.get('models', []):
            for k in range(self.ctx.ensemble['size']):
                diffusivity, ocv = self.ctx.ensemble['diffusivity'][k], self.ctx.ensemble['ocv'][k]
                running[f'{model}_draw_{k}'] = self._submit(model, f'{model}_draw_{k}', diffusivity, ocv)
        self.ctx.labels = list(running)
        self.report(f'submitted {", ".join(f"{m} <{n.pk}>" for m, n in running.items())}')
        return ToContext(**running)

    def inspect_models(self):
        """Record the runs that failed (with the exit message)."""
        self.ctx.failed = {}
        for label in self.ctx.labels:
            node = self.ctx[label]
            if not node.is_finished_ok:
                message = node.exit_message or f'process ended in state {node.process_state.value}'
                last = self._last_calculation(node)
                if last is not None and last.exit_message and last.exit_message not in message:
                    message += f' (last ContinuumCalculation<{last.pk}>: {last.exit_message})'
                self.ctx.failed[label] = f'{label} <{node.pk}> [{node.exit_status}] {message}'
                self.report(f'{label} failed: {node.process_label}<{node.pk}> [{node.exit_status}] {message}')

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
            if np.isfinite(calc.outputs.arrays.get_array('front_position')).sum() < 2:
                no_front = 'the run stopped before a front nucleated (raise x_end or t_end)'
            else:
                trajectory = phase_boundary_trajectory(
                    calc.outputs.arrays, calc.outputs.results, metadata={'call_link_label': 'phase_boundary'}
                )
                self.out('phase_boundary', trajectory)
                front = trajectory.get_array('front_position_relative')
                self.report(f'phase boundary <{trajectory.pk}>: r/R {front[0]:.3f} -> {front[-1]:.3f}')
        self._gather_bands()
        if self.ctx.failed:
            failures = '; '.join(self.ctx.failed.values())
            return self.exit_codes.ERROR_MODEL_FAILED.format(number=len(self.ctx.failed), failures=failures)
        if no_front:
            self.report(f'no phase boundary: {no_front}')
            return self.exit_codes.ERROR_NO_PHASE_BOUNDARY.format(reason=no_front)
        return None

    def _gather_bands(self):
        """Bands of the rate capability and the voltage curves over the draws that finished."""
        for model in self.ctx.ensemble.get('models', []):
            prefix = '' if model == 'particle_diffusion' else 'electrode_'
            runs = {
                k: self.ctx[f'{model}_draw_{k}']
                for k in range(self.ctx.ensemble['size'])
                if f'{model}_draw_{k}' not in self.ctx.failed
            }
            if not runs:
                continue
            table = rate_capability_band(
                **{f'draw_{k}': run.outputs.results for k, run in runs.items()},
                metadata={'call_link_label': f'{prefix}rate_capability_band'},
            )
            self.out(f'{prefix}rate_capability_band', table)
            curves = {}
            for k, run in runs.items():
                curves[f'results_{k}'] = run.outputs.results
                curves[f'arrays_{k}'] = run.outputs.arrays
            self.out(
                f'{prefix}voltage_band',
                voltage_band(**curves, metadata={'call_link_label': f'{prefix}voltage_band'}),
            )
            pairs = zip(table.get_array('c_rate'), table.get_array('capacity_lower'), table.get_array('capacity_upper'))
            shown = ', '.join(f'{rate:g} C: {lo:.1f}-{hi:.1f}' for rate, lo, hi in pairs)
            self.report(f'{model} band over {len(runs)} draws <{table.pk}>: {shown} (2.5-97.5 %)')

    @staticmethod
    def _last_calculation(node) -> orm.CalcJobNode | None:
        """The last calculation a restart wrapper ran (the root cause of its failure), if any."""
        calcs = node.base.links.get_outgoing(node_class=orm.CalcJobNode).all_nodes()
        return max(calcs, key=lambda c: (c.ctime, c.pk)) if calcs else None

    @staticmethod
    def _describe(table: orm.ArrayData) -> str:
        unit = table.base.attributes.get('capacity_unit', '')
        pairs = zip(table.get_array('c_rate'), table.get_array('capacity'))
        return ', '.join(f'{rate:g} C: {capacity:.1f}' for rate, capacity in pairs) + f' {unit}'


__all__ = [
    'MATERIAL_KEYS',
    'ElectrodeWorkChain',
    'effective_diffusivity_table',
    'phase_boundary_trajectory',
    'polycrystal_diffusivities',
    'rate_capability_band',
    'rate_capability_table',
    'voltage_band',
]
