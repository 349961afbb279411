"""``TransportAnalysisWorkChain``: D(T), Arrhenius verdict, diffusion modes, importance and environment classes
of a set of MD trajectories, every number the output of a process linked to the trajectories and the settings.

The light analyses (MSD -> D, Arrhenius fits) are calcfunctions. The heavy ones (per-ion descriptors, Gaussian
mixtures, random forests, environment classes) run as ``TransportAnalysisCalculation`` jobs, each inside a
``TransportAnalysisBaseWorkChain``, when the ``heavy`` inputs (a ``mscale.transport.analysis`` code and its options)
are given; without them they run as calcfunctions in the worker (a laptop, a test). Both paths call the same
functions of :mod:`aiida_mscale.analysis.pooled` on the same arrays and give the same numbers.
"""

from __future__ import annotations

import pathlib

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin

from aiida_mscale.calculations.transport_analysis import define_trajectory_inputs

from .base import TransportAnalysisBaseWorkChain
from .functions import arrhenius, diffusion_modes_and_importance, diffusivity, environment_classes
from .reader import creator_parameters, trajectory_metadata
from .settings import merge_parameters, species_list

#: inputs of ``TransportAnalysisCalculation`` that the work chain fills in itself
HEAVY_DATA_INPUTS = ('trajectories', 'analysis', 'mobile_species', 'parameters', 'timestep')
#: heavy analysis -> (calcfunction output names, work chain output names, exit code)
HEAVY = {
    'modes': (('result', 'arrays'), ('modes', 'modes_arrays'), 'ERROR_MODES'),
    'environments': (('result', 'fractions'), ('environments', 'environment_fractions'), 'ERROR_ENVIRONMENTS'),
}


def resolve_temperature(label: str, node, temperatures: dict) -> float:
    """Temperature [K] of trajectory ``label``: the ``temperatures`` input, else the creator's MD parameters."""
    if label in temperatures:
        return float(temperatures[label].value)
    parameters = creator_parameters(node)
    if parameters is None:
        raise ValueError(
            f'no temperature for trajectory `{label}`: give `temperatures.{label}` [K] '
            '(it has no creator with MD `parameters` to read it from)'
        )
    return float(parameters['temperature'])


def validate_inputs(inputs, _):
    """Refuse bad input before anything runs, with the analysis' own checks where they are cheap (the ports shared
    with ``TransportAnalysisCalculation`` check each input on its own)."""
    from aiida_mscale.analysis.diffusion import check_fit_window

    trajectories = inputs['trajectories']
    p = merge_parameters(inputs['parameters'].get_dict() if 'parameters' in inputs else {})
    symbols = species_list(inputs['mobile_species'].value)
    temperatures = inputs.get('temperatures', {})
    unknown = sorted(set(temperatures) - set(trajectories))
    if unknown:
        return f'`temperatures` {unknown} have no trajectory of the same label (trajectories: {sorted(trajectories)}).'
    timestep = inputs['timestep'].value if 'timestep' in inputs else None
    resolved = {}
    for label, node in sorted(trajectories.items()):
        try:
            meta = trajectory_metadata(node, timestep)
            if 'diffusivity' in p['analyses']:  # only D(T) and the conductivity need a temperature
                resolved[label] = resolve_temperature(label, node, temperatures)
        except ValueError as exception:
            return f'trajectory `{label}`: {exception}'
        if resolved.get(label, 1.0) <= 0:
            return f'trajectory `{label}`: temperature must be positive, got {resolved[label]} K'
        absent = [s for s in symbols if s not in meta['species']]
        if absent:
            return (
                f'trajectory `{label}`: mobile species {absent} absent from the trajectory '
                f'(present: {sorted(meta["species"])}).'
            )
        if 'diffusivity' in p['analyses']:
            # the analysis' own checks of time axis and fit window (no positions needed)
            window = None if p['fit_window'] is None else tuple(p['fit_window'])
            try:
                check_fit_window(
                    meta['times'], fit_window=window, n_blocks=int(p['n_blocks']), method=p['diffusivity_method']
                )
            except ValueError as exception:
                return f'trajectory `{label}`: {exception}'
    if 'arrhenius' in p['analyses'] and len(set(resolved.values())) < 3:
        return (
            f'the Arrhenius analysis needs at least 3 distinct temperatures, got {sorted(set(resolved.values()))} K '
            f'(drop `arrhenius` from `parameters.analyses` or add trajectories).'
        )
    if p['environment_train'] is not None and p['environment_train'] not in trajectories:
        return f'`environment_train` {p["environment_train"]!r} is not a trajectory label ({sorted(trajectories)}).'
    chosen = p['descriptor_trajectories'] or []
    missing = sorted(set(chosen) - set(trajectories))
    if missing:
        return f'`descriptor_trajectories` {missing} are not trajectory labels ({sorted(trajectories)}).'
    return None


class TransportAnalysisWorkChain(ProtocolMixin, WorkChain):
    """Transport and structure analysis of MD trajectories (``LammpsTrajectoryData`` or ``TrajectoryData``).

    Steps (chosen by ``parameters.analyses``): per-trajectory tracer/collective D with 1-sigma, Haven ratio and
    conductivity; Arrhenius / two-regime / VTF over the temperatures (calcfunctions of
    :mod:`aiida_mscale.workflows.transport.functions`); per-ion descriptors -> diffusion modes and supervised
    importance; local-environment classes and their fractions per frame (``TransportAnalysisBaseWorkChain`` jobs
    when ``heavy`` is given, else the calcfunctions of the same names). Input the analysis refuses ends the work
    chain with a 4xx exit code carrying the analysis' message.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        define_trajectory_inputs(spec, mobile_species_required=True)
        spec.input_namespace(
            'temperatures',
            valid_type=orm.Float,
            dynamic=True,
            required=False,
            help="Temperature [K] per trajectory label; default: the creator calculation's `parameters.temperature`.",
        )
        spec.expose_inputs(
            TransportAnalysisBaseWorkChain,
            namespace='heavy',
            exclude=tuple(f'analysis.{name}' for name in HEAVY_DATA_INPUTS),
            namespace_options={
                'required': False,
                'populate_defaults': False,
                'help': 'Code and options of the heavy analyses (modes, environments): each then runs as a '
                "`TransportAnalysisCalculation` (in a restart work chain) on the code's computer. Without them they "
                'run as calcfunctions in the worker.',
            },
        )
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            cls.run_diffusivity,
            cls.run_arrhenius,
            cls.run_heavy,
            cls.inspect_heavy,
            cls.results,
        )
        spec.output_namespace('diffusivity', valid_type=orm.Dict, dynamic=True, help='D, H_R, sigma per trajectory.')
        spec.output_namespace('msd', valid_type=orm.ArrayData, dynamic=True, help='MSD, fit and band per trajectory.')
        spec.output('arrhenius', valid_type=orm.Dict, required=False, help='Ea, prefactor, verdict, extrapolation.')
        spec.output('arrhenius_curves', valid_type=orm.ArrayData, required=False, help='D(T) of each model.')
        spec.output('modes', valid_type=orm.Dict, required=False, help='Diffusion modes and descriptor importance.')
        spec.output('modes_arrays', valid_type=orm.ArrayData, required=False, help='Descriptors, modes, map.')
        spec.output('environments', valid_type=orm.Dict, required=False, help='Environment classes.')
        spec.output('environment_fractions', valid_type=orm.ArrayData, required=False, help='Class fractions.')
        spec.exit_code(401, 'ERROR_DIFFUSIVITY', message='The diffusivity analysis failed: {message}')
        spec.exit_code(402, 'ERROR_ARRHENIUS', message='The Arrhenius analysis failed: {message}')
        spec.exit_code(403, 'ERROR_MODES', message='The diffusion-mode / importance analysis failed: {message}')
        spec.exit_code(404, 'ERROR_ENVIRONMENTS', message='The environment classification failed: {message}')

    # ----------------------------------------------------------------------------- protocols
    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        """Return the path to the protocol file (fast / moderate / precise)."""
        return pathlib.Path(__file__).parent.parent / 'protocols' / 'transport.yaml'

    @classmethod
    def get_builder_from_protocol(
        cls,
        trajectories,
        mobile_species: str,
        temperatures: dict | None = None,
        timestep: float | None = None,
        protocol: str | None = None,
        overrides: dict | None = None,
        **_,
    ):
        """Return a builder for the analysis of ``trajectories`` with a protocol.

        :param trajectories: dict label -> LammpsTrajectoryData/TrajectoryData (or a list: ``traj_000``, ...).
        :param mobile_species: e.g. ``'Li'``.
        :param temperatures: dict label -> K (float or Float); default: read from the creator calculations.
        :param timestep: MD timestep [ps] if not derivable from the trajectories.
        :param protocol: ``fast``, ``moderate`` (default) or ``precise``: statistical effort (blocks, forest size).
        :param overrides: ``{'parameters': {...}}`` merged into the protocol's analysis settings.
        """
        if isinstance(trajectories, (list, tuple)):
            trajectories = {f'traj_{i:03d}': t for i, t in enumerate(trajectories)}
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.trajectories = dict(trajectories)
        builder.mobile_species = orm.Str(mobile_species)
        if temperatures:
            builder.temperatures = {
                k: v if isinstance(v, orm.Float) else orm.Float(float(v)) for k, v in temperatures.items()
            }
        if timestep is not None:
            builder.timestep = orm.Float(float(timestep))
        builder.parameters = orm.Dict(inputs.get('parameters', {}))
        return builder

    # ----------------------------------------------------------------------------- outline
    def setup(self):
        """Resolve the settings and the temperature of every trajectory."""
        self.ctx.parameters = merge_parameters(self.inputs.parameters.get_dict())
        self.ctx.analyses = self.ctx.parameters['analyses']
        given = self.inputs.get('temperatures', {})
        self.ctx.temperatures = {}
        for label, node in sorted(self.inputs.trajectories.items()):
            if 'diffusivity' not in self.ctx.analyses:
                break
            # a Float made here for a temperature read from the creator; a given Float is passed on as is
            self.ctx.temperatures[label] = (
                given[label] if label in given else orm.Float(resolve_temperature(label, node, {}))
            )
        temps = ', '.join(f'{k} {v.value:g} K' for k, v in self.ctx.temperatures.items()) or 'no temperatures needed'
        self.report(f'{len(self.inputs.trajectories)} trajectories ({temps}); analyses: {", ".join(self.ctx.analyses)}')

    def _optional(self) -> dict:
        return {'timestep': self.inputs.timestep} if 'timestep' in self.inputs else {}

    @staticmethod
    def _message(node) -> str:
        return node.exit_message or f'{node.process_label}<{node.pk}> ended with exit status {node.exit_status}'

    def run_diffusivity(self):
        """Tracer/collective D, Haven ratio and conductivity of every trajectory."""
        if 'diffusivity' not in self.ctx.analyses:
            return None
        self.ctx.diffusivity = {}
        for label, node in sorted(self.inputs.trajectories.items()):
            outputs, calc = diffusivity.run_get_node(
                node,
                self.inputs.mobile_species,
                self.ctx.temperatures[label],
                self.inputs.parameters,
                **self._optional(),
                metadata={'call_link_label': f'diffusivity_{label}'},
            )
            if not calc.is_finished_ok:
                return self.exit_codes.ERROR_DIFFUSIVITY.format(message=self._message(calc))
            self.out(f'diffusivity.{label}', outputs['result'])
            self.out(f'msd.{label}', outputs['msd'])
            self.ctx.diffusivity[label] = outputs['result']
            temperature = self.ctx.temperatures[label].value
            for symbol, entry in outputs['result']['species'].items():
                tracer = entry['tracer']
                self.report(
                    f'{label} ({temperature:g} K) {symbol}: D* = {tracer["D_cm2_s"]:.3e} +- '
                    f'{tracer["D_cm2_s_err"]:.1e} cm^2/s, H_R = {entry["haven_ratio"]}'
                )
        return None

    def run_arrhenius(self):
        """Arrhenius / non-Arrhenius fits of D(T)."""
        if 'arrhenius' not in self.ctx.analyses:
            return None
        outputs, calc = arrhenius.run_get_node(
            self.inputs.mobile_species,
            self.inputs.parameters,
            **self.ctx.diffusivity,
            metadata={'call_link_label': 'arrhenius'},
        )
        if not calc.is_finished_ok:
            return self.exit_codes.ERROR_ARRHENIUS.format(message=self._message(calc))
        self.out('arrhenius', outputs['result'])
        self.out('arrhenius_curves', outputs['curves'])
        for symbol, entry in outputs['result']['species'].items():
            self.report(
                f'{symbol}: Ea = {entry["Ea"]:.4f} +- {entry["Ea_err"]:.4f} eV, verdict {entry["verdict"]} '
                f'(best model {entry["best_model"]} by {entry["criterion"]})'
            )
        return None

    def run_heavy(self):
        """Per-ion descriptors -> diffusion modes and importance; environment classes: as jobs, or calcfunctions."""
        self.ctx.heavy = {}
        running = {}
        for analysis in HEAVY:
            if analysis not in self.ctx.analyses:
                continue
            if 'heavy' in self.inputs:
                inputs = AttributeDict(self.exposed_inputs(TransportAnalysisBaseWorkChain, 'heavy'))
                inputs.analysis = {
                    **inputs.get('analysis', {}),
                    'trajectories': dict(self.inputs.trajectories),
                    'analysis': orm.Str(analysis),
                    'parameters': self.inputs.parameters,
                    **self._optional(),
                }
                if analysis == 'modes':
                    inputs.analysis['mobile_species'] = self.inputs.mobile_species
                inputs.metadata = {'call_link_label': f'{analysis}_job'}
                running[analysis] = self.submit(TransportAnalysisBaseWorkChain, **inputs)
                self.report(f'launched TransportAnalysisBaseWorkChain<{running[analysis].pk}> ({analysis})')
                continue
            if analysis == 'modes':
                outputs, node = diffusion_modes_and_importance.run_get_node(
                    self.inputs.mobile_species,
                    self.inputs.parameters,
                    **self._optional(),
                    **self.inputs.trajectories,
                    metadata={'call_link_label': 'diffusion_modes_and_importance'},
                )
            else:
                outputs, node = environment_classes.run_get_node(
                    self.inputs.parameters,
                    **self._optional(),
                    **self.inputs.trajectories,
                    metadata={'call_link_label': 'environment_classes'},
                )
            self.ctx.heavy[analysis] = node
        return ToContext(**{f'heavy_{analysis}': node for analysis, node in running.items()})

    def inspect_heavy(self):
        """Attach the outputs of the heavy analyses, or stop with the first one that failed."""
        for analysis, (names, outputs, exit_code) in HEAVY.items():
            if analysis not in self.ctx.analyses:
                continue
            node = self.ctx.heavy.get(analysis) or self.ctx[f'heavy_{analysis}']
            if not node.is_finished_ok:
                return self.exit_codes[exit_code].format(message=self._message(node))
            if isinstance(node, orm.CalcFunctionNode):
                result, arrays = (node.outputs[name] for name in names)
            else:
                result, arrays = node.outputs.result, node.outputs.arrays
            self.out(outputs[0], result)
            self.out(outputs[1], arrays)
            if analysis == 'modes':
                modes = ', '.join(f'{m["label"]} {m["population"]:.2f}' for m in result['modes'])
                self.report(
                    f'{result["n_modes"]} modes ({modes}); importance R^2_cv = {result["r2_cv"]:.2f}, '
                    f'top descriptors {result["ranking"][:3]}'
                )
            else:
                self.report(f'{result["n_classes"]} environment classes, trained on `{result["train"]}`')
        return None

    def results(self):
        """Everything was attached on the way."""
        self.report('transport analysis done')


__all__ = ['TransportAnalysisWorkChain', 'resolve_temperature', 'validate_inputs']
