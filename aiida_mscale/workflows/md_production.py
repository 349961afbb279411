"""``MdProductionWorkChain``: MD with an MTP over a (temperature x guest fraction) grid of state points.

For each state point (T, x) and each seeded ordering, an :class:`MdStatePointWorkChain` runs, each stage a
:class:`~aiida_mscale.workflows.lammps_mtp_base.LammpsMtpBaseWorkChain` (continued exactly from its newest binary
restart file after a walltime cut, or from the last dumped frame without one):

1. composition: the host with ``round(x n_sites)`` of its guest sites kept at random (calcfunction
   :func:`~aiida_mscale.calculations.functions.thermodynamics.seeded_ordering`, seed per ordering) and, when a
   chemical potential is given for x, a GCMC equilibration (NVT + ``fix gcmc`` of the guest at mu(x), at most
   ``n_sites`` guests) that lets the guest content find its equilibrium;
2. NPT equilibration from the last frame;
3. production (NVE, NVT or NPT) from the last frame with its velocities, extrapolation grading on when the
   potential has an active set: a production run that saves or breaks on extrapolative configurations is
   reported (it has left the potential's domain) and its configurations are an output.

Results per state point (calcfunctions): the stored trajectory (restart segments joined, subsampled, species
subset, single precision: ``compact_trajectory``, with the stored size reported), the thermo series (joined:
``stitch_thermo``), block-averaged volume, lattice parameters, temperature and energy with standard errors, and the
composition (``state_point_averages``).
At most ``max_concurrent`` state points run at once, as a rolling pool (:mod:`aiida_mscale.workflows.pool`);
each runs one LAMMPS at a time, so this throttles the LAMMPS runs.

The stored trajectories are ``LammpsTrajectoryData`` nodes whose creator carries the production run's MD
parameters, so they feed :class:`~aiida_mscale.workflows.transport.TransportAnalysisWorkChain` as they are
(temperature and time axis are read from them):
``TransportAnalysisWorkChain.get_builder_from_protocol(dict(results['trajectories']), 'Li')`` gives D(T, x).
"""

from __future__ import annotations

import pathlib
import re
from typing import Literal

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, if_, while_
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin
from pydantic import Field

from aiida_mscale.calculations.functions.thermodynamics import (
    compact_trajectory,
    guest_sites,
    seeded_ordering,
    state_point_averages,
    stitch_thermo,
)
from aiida_mscale.calculations.lammps_mtp import LammpsMtpCalculation
from aiida_mscale.data.mtp_potential import MtpPotentialData
from aiida_mscale.schema import (
    ElementSymbol,
    NonNegativeInt,
    ParameterModel,
    PositiveFloat,
    PositiveInt,
    Real,
    Seed,
    validate_parameters,
)
from aiida_mscale.workflows.lammps_mtp_base import LammpsMtpBaseWorkChain
from aiida_mscale.workflows.pool import RollingPoolMixin


class GcmcSettings(ParameterModel):
    """GCMC of the guest during the composition stage (see :class:`aiida_mscale.lammps.inputs.GcmcParameters`)."""

    every: PositiveInt = 10
    exchanges: NonNegativeInt = 5
    moves: NonNegativeInt = 0
    max_displacement: PositiveFloat = Field(0.2, le=5.0)
    overlap_cutoff: PositiveFloat | None = Field(None, le=10.0)


class GradingSettings(ParameterModel):
    """Extrapolation grading of the production runs (needs the potential's active set)."""

    enabled: bool = True
    every: PositiveInt = 10
    save_threshold: float = Field(2.0, ge=1.0)
    break_threshold: float = Field(10.0, ge=1.0)


class StorageSettings(ParameterModel):
    """What of a production trajectory is stored: every ``stride``-th dumped frame of ``species`` (all if None)."""

    species: list[ElementSymbol] | None = None
    float32: bool = True
    stride: PositiveInt = 1


class MdProductionParameters(ParameterModel):
    """Settings of :class:`MdProductionWorkChain` (LAMMPS metal units: ps, K, bar)."""

    timestep: PositiveFloat = Field(0.001, le=0.1, description='[ps]')
    gcmc_steps: NonNegativeInt = Field(2000, le=10**9, description='Steps of the GCMC stage (with mu given).')
    equilibration_steps: PositiveInt = Field(
        2000, le=10**9, description='Steps of the equilibration (NPT, or the `equilibration_ensemble`).'
    )
    production_steps: PositiveInt = Field(10000, le=10**10, description='Steps of the production run.')
    production_ensemble: Literal['nve', 'nvt', 'npt'] = 'npt'
    equilibration_ensemble: Literal['nvt', 'npt'] = Field(
        'npt', description="'npt' (the volume at T and p: V(x)); 'nvt' keeps the host's cell (no V(x) then)."
    )
    pressure: Real = Field(1.0, ge=-1e7, le=1e7, description='[bar]')
    thermostat_damping: PositiveFloat = Field(0.1, description='[ps]')
    barostat_damping: PositiveFloat = Field(1.0, description='[ps]')
    barostat_coupling: Literal['iso', 'aniso', 'tri'] = Field(
        'tri', description="NPT cell degrees of freedom: 'iso', 'aniso' (lengths, angles fixed) or 'tri' (and tilts)."
    )
    thermo_every: PositiveInt = 10
    dump_every: PositiveInt = Field(
        100, description='Production dump interval [steps] (also the interval of its binary restart files).'
    )
    equilibration_dump_every: PositiveInt = Field(100, description='Dump interval of the GCMC and NPT stages.')
    seed: Seed = Field(12345, le=2**31 - 1000, description='Base seed; state point k uses seed + 10 k.')
    n_blocks: PositiveInt = Field(5, ge=2, description='Blocks of the block-averaged standard errors.')
    gcmc: GcmcSettings = GcmcSettings()
    grading: GradingSettings = GradingSettings()
    storage: StorageSettings = StorageSettings()


def _label(temperature: float, fraction: float, ordering: int) -> str:
    return re.sub(r'[^A-Za-z0-9_]', 'p', f'T{temperature:g}_x{fraction:.4f}_o{ordering}')


def validate_inputs(inputs, _):
    """Refuse a bad grid or settings before anything runs."""
    try:
        p = validate_parameters(
            MdProductionParameters, inputs['parameters'].get_dict() if 'parameters' in inputs else {}
        )
    except ValueError as exception:
        return str(exception)
    temperatures = inputs['temperatures'].get_list()
    fractions = inputs['guest_fractions'].get_list()
    if not temperatures or not fractions:
        return f'the state-point grid is empty: temperatures {temperatures}, guest_fractions {fractions}'
    for t in temperatures:
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0 or t > 1e5:
            return f'temperatures: {t!r} is not a temperature in K (0 < T <= 1e5)'
    for x in fractions:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 <= x <= 1:
            return f'guest_fractions: {x!r} is not a fraction of the guest sites in [0, 1]'
    if len(set(temperatures)) != len(temperatures) or len(set(fractions)) != len(fractions):
        return 'temperatures and guest_fractions must not repeat a value'
    guest = inputs['guest'].value
    host, potential = inputs['host'], inputs['potential']
    if guest not in potential.species:
        return f'guest {guest!r} is not a species of the potential {potential.species}'
    n_sites = len(guest_sites(host, guest))
    if n_sites == 0:
        return (
            f'the host has no {guest} sites: give the host with every guest site occupied (its {guest} atoms define '
            'the guest sublattice)'
        )
    missing = sorted({k.symbol for k in host.kinds} - set(potential.species))
    if missing:
        return f'the host has species {missing} that the potential lacks ({potential.species})'
    mus = inputs.get('chemical_potentials')
    if mus is not None:
        values = mus.get_list()
        if len(values) != len(fractions) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            return f'chemical_potentials must be one number [eV] per guest fraction ({len(fractions)}), got {values}'
        if p.gcmc_steps == 0:
            return 'chemical_potentials given but parameters.gcmc_steps is 0: no GCMC stage would run'
    if p.storage.species and not set(p.storage.species) <= set(potential.species):
        return f'parameters.storage.species {p.storage.species} are not all species of the potential'
    if inputs['max_concurrent'].value < 1:
        return f'max_concurrent must be >= 1, got {inputs["max_concurrent"].value}'
    if inputs['orderings'].value < 1:
        return f'orderings must be >= 1, got {inputs["orderings"].value}'
    if p.grading.enabled and p.grading.save_threshold > p.grading.break_threshold:
        return 'parameters.grading: save_threshold must not exceed break_threshold'
    return None


class MdStatePointWorkChain(WorkChain):
    """One state point: [GCMC] -> NPT equilibration -> production, each a LammpsMtpBaseWorkChain (see module)."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('code', valid_type=orm.AbstractCode)
        spec.input('potential', valid_type=MtpPotentialData)
        spec.input('structure', valid_type=orm.StructureData, help='The seeded ordering of the state point.')
        spec.input('settings', valid_type=orm.Dict, help='Validated MdProductionParameters plus T, mu, seed, ...')
        spec.input('options', valid_type=orm.Dict, required=False, help='metadata.options of the LAMMPS runs.')
        spec.outline(
            cls.setup,
            if_(cls.has_gcmc)(cls.run_gcmc, cls.inspect_gcmc),
            cls.run_equilibration,
            cls.inspect_equilibration,
            cls.run_production,
            cls.inspect_production,
            cls.results,
        )
        spec.output('trajectory', valid_type=orm.Data, help='The stored production trajectory.')
        spec.output('thermo', valid_type=orm.ArrayData, help='Thermodynamic series of the production run.')
        spec.output('averages', valid_type=orm.Dict, help='Volume, lattice, T, E with standard errors; composition.')
        spec.output('storage', valid_type=orm.Dict, help='Stored size of the trajectory [bytes] and what it holds.')
        spec.output('extrapolative_configurations', valid_type=orm.Data, required=False)
        spec.output('max_grade', valid_type=orm.Float, required=False)
        spec.exit_code(411, 'ERROR_GCMC_FAILED', message='The GCMC composition stage failed: {message}')
        spec.exit_code(412, 'ERROR_EQUILIBRATION_FAILED', message='The equilibration failed: {message}')
        spec.exit_code(413, 'ERROR_PRODUCTION_FAILED', message='The production run failed: {message}')
        spec.exit_code(
            414,
            'ERROR_LEFT_DOMAIN',
            message='The production run stopped at step {step} of {steps}: its extrapolation grade reached the break '
            'threshold (the potential must be retrained on the extrapolative configurations, an output).',
        )

    def setup(self):
        self.ctx.settings = self.inputs.settings.get_dict()
        self.ctx.structure = self.inputs.structure
        self.ctx.velocities = None

    def has_gcmc(self):
        return self.ctx.settings.get('mu') is not None

    def _md_parameters(self, stage: str) -> dict:
        s = self.ctx.settings
        parameters = {
            'temperature': s['temperature'],
            'pressure': s['pressure'],
            'timestep': s['timestep'],
            'thermo_every': s['thermo_every'],
            'thermostat_damping': s['thermostat_damping'],
            'barostat_damping': s['barostat_damping'],
            'barostat_coupling': s['barostat_coupling'],
            'seed': s['state_seed'] + {'gcmc': 0, 'equilibration': 2, 'production': 4}[stage],
        }
        if stage == 'gcmc':
            gcmc = {k: v for k, v in s['gcmc'].items() if v is not None}
            parameters.update(
                ensemble='nvt',
                steps=s['gcmc_steps'],
                dump_every=s['equilibration_dump_every'],
                # the guest count is capped at the number of guest sites of the host (fix gcmc `max`)
                gcmc={'species': s['guest'], 'mu': s['mu'], 'max_count': s['n_sites'], **gcmc},
            )
        elif stage == 'equilibration':
            parameters.update(
                ensemble=s['equilibration_ensemble'],
                steps=s['equilibration_steps'],
                dump_every=s['equilibration_dump_every'],
            )
        else:
            parameters.update(
                ensemble=s['production_ensemble'], steps=s['production_steps'], dump_every=s['dump_every']
            )
            grading = s['grading']
            if grading['enabled'] and self.inputs.potential.has_active_set:
                parameters['extrapolation'] = {
                    'every': grading['every'],
                    'save_threshold': grading['save_threshold'],
                    'break_threshold': grading['break_threshold'],
                }
        if self.ctx.velocities is not None:
            parameters['initial_velocities'] = 'data'
        return parameters

    def _submit(self, stage: str):
        inputs = AttributeDict(
            {
                'lammps': {
                    'code': self.inputs.code,
                    'potential': self.inputs.potential,
                    'structure': self.ctx.structure,
                    'parameters': orm.Dict(self._md_parameters(stage)),
                },
                'metadata': {'call_link_label': stage},
            }
        )
        if self.ctx.velocities is not None:
            inputs.lammps['velocities'] = self.ctx.velocities
        if 'options' in self.inputs:
            inputs.lammps['metadata'] = {'options': self.inputs.options.get_dict()}
        node = self.submit(LammpsMtpBaseWorkChain, **inputs)
        self.report(f'{stage}: submitted LammpsMtpBaseWorkChain<{node.pk}>')
        return ToContext(**{stage: node})

    def _continue_from(self, node) -> None:
        """The next stage starts from the last dumped frame of ``node`` (positions, cell, velocities)."""
        from aiida_mscale.workflows.lammps_mtp_base import last_dumped_frame

        frame = last_dumped_frame(node.outputs.retrieved, self.ctx.structure)
        self.ctx.structure = frame['structure']
        self.ctx.velocities = frame.get('velocities')

    def run_gcmc(self):
        return self._submit('gcmc')

    def inspect_gcmc(self):
        node = self.ctx.gcmc
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_GCMC_FAILED.format(message=f'<{node.pk}> {node.exit_message}')
        self._continue_from(node)
        self.ctx.velocities = None  # GCMC inserted atoms: draw fresh velocities for the NPT stage
        guest = self.ctx.settings['guest']
        n_guest = sum(
            1 for site in self.ctx.structure.sites if self.ctx.structure.get_kind(site.kind_name).symbol == guest
        )
        self.report(
            f'GCMC at mu = {self.ctx.settings["mu"]} eV: {n_guest}/{self.ctx.settings["n_sites"]} {guest} sites'
        )
        return None

    def run_equilibration(self):
        return self._submit('equilibration')

    def inspect_equilibration(self):
        node = self.ctx.equilibration
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_EQUILIBRATION_FAILED.format(message=f'<{node.pk}> {node.exit_message}')
        self._continue_from(node)
        return None

    def run_production(self):
        return self._submit('production')

    def inspect_production(self):
        node = self.ctx.production
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_PRODUCTION_FAILED.format(message=f'<{node.pk}> {node.exit_message}')
        outputs = node.outputs
        if 'max_grade' in outputs:
            self.out('max_grade', outputs.max_grade)
        threshold = self.ctx.settings['grading']['save_threshold']
        left = 'extrapolative_configurations' in outputs or (
            'max_grade' in outputs and outputs.max_grade.value > threshold
        )
        if left:
            grade = outputs.max_grade.value if 'max_grade' in outputs else float('nan')
            self.report(
                f"production run <{node.pk}> left the potential's domain: max extrapolation grade {grade:.3g} > "
                f'{threshold} (its extrapolative configurations are an output: label them and retrain)'
            )
            if 'extrapolative_configurations' in outputs:
                self.out('extrapolative_configurations', outputs.extrapolative_configurations)
        calculations = [c for c in node.called if c.process_class is LammpsMtpCalculation]
        final = max(calculations, key=lambda c: c.ctime) if calculations else None
        if (
            final is not None
            and final.exit_status == LammpsMtpCalculation.exit_codes.STOPPED_BY_EXTRAPOLATION_BREAK.status
        ):
            steps = self.ctx.settings['production_steps']
            last = int(outputs.thermo.get_array('step')[-1]) if 'thermo' in outputs else 0
            return self.exit_codes.ERROR_LEFT_DOMAIN.format(step=last, steps=steps)
        return None

    def production_segments(self) -> tuple[dict, dict]:
        """The LammpsMtpCalculations of the production run in order, and the global step of each one's step 0.

        A restart (``LammpsMtpBaseWorkChain``'s walltime handler) continues from the previous segment's restart file
        (its header holds the step N, counted in that segment) or from the frame ``last_dumped_frame`` made (whose
        description is ``step N``); a rerun from the same start (nothing written) replaces the previous segment.
        """
        from aiida_mscale.calculations.lammps_mtp import restart_file_step

        calculations = sorted(
            (c for c in self.ctx.production.called if c.process_class is LammpsMtpCalculation), key=lambda c: c.ctime
        )
        segments, offsets = {}, {}
        offset, previous = 0, None
        for calculation in calculations:
            structure = calculation.inputs.structure
            restart = calculation.inputs.restart_file if 'restart_file' in calculation.inputs else None
            description = structure.description or ''
            if previous is not None and restart is not None and restart.creator.pk == previous.pk:
                offset += restart_file_step(restart)
            elif (
                previous is not None
                and restart is None
                and description.startswith('step ')
                and structure.creator is not None
                and structure.uuid != previous.inputs.structure.uuid
            ):
                offset += int(description.split()[1])
            elif previous is not None:  # rerun from the same start: the previous segment is replaced
                segments.pop(f'segment_{previous.pk}', None)
                offsets.pop(f'segment_{previous.pk}', None)
            label = f'segment_{calculation.pk}'
            if {'thermo', 'trajectory'} <= set(calculation.outputs):
                segments[label] = calculation
                offsets[label] = offset
            previous = calculation
        return segments, offsets

    def results(self):
        s = self.ctx.settings
        production = self.ctx.production
        segments, offsets = self.production_segments()
        if not segments:
            return self.exit_codes.ERROR_PRODUCTION_FAILED.format(
                message='no segment with a trajectory (did the number of atoms change?)'
            )
        if len(segments) > 1:
            self.report(
                f'production was restarted: {len(segments)} segments joined at steps {sorted(offsets.values())}'
            )
        thermo = stitch_thermo(
            orm.Dict(offsets),
            **{k: c.outputs.thermo for k, c in segments.items()},
            metadata={'call_link_label': 'thermo'},
        )
        md_parameters = production.inputs.lammps.parameters
        compact = compact_trajectory(
            md_parameters,
            orm.Dict(s['storage']),
            orm.Dict(offsets),
            **{k: c.outputs.trajectory for k, c in segments.items()},
            metadata={'call_link_label': 'store'},
        )
        if s['production_ensemble'] == 'npt':
            npt_thermo, npt_frames, source = thermo, compact['trajectory'], 'production'
        else:
            equilibration = self.ctx.equilibration.outputs
            npt_thermo, npt_frames, source = equilibration.thermo, equilibration.trajectory, 'equilibration'
        averages = state_point_averages(
            thermo,
            npt_thermo,
            npt_frames,
            production.inputs.lammps.structure,
            orm.Dict(
                {
                    'n_blocks': s['n_blocks'],
                    'guest': s['guest'],
                    'n_sites': s['n_sites'],
                    'source': source,
                    'state_point': {k: s[k] for k in ('temperature', 'x', 'ordering', 'mu', 'production_ensemble')},
                }
            ),
            metadata={'call_link_label': 'averages'},
        )
        self.out('trajectory', compact['trajectory'])
        self.out('storage', compact['storage'])
        self.out('thermo', thermo)
        self.out('averages', averages)
        size = compact['storage']['stored_bytes']
        self.report(
            f'stored trajectory <{compact["trajectory"].pk}>: {size} bytes ({size / 2**20:.3f} MiB; the raw dumps '
            f'take {compact["storage"]["raw_trajectory_bytes"]} bytes)'
        )
        return None


class MdProductionWorkChain(RollingPoolMixin, ProtocolMixin, WorkChain):
    """MD production over a (temperature x guest fraction x ordering) grid; see the module docstring."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('code', valid_type=orm.AbstractCode, help='LAMMPS code with the mtp plugin (lmp@localhost-mpich).')
        spec.input('potential', valid_type=MtpPotentialData, help='Trained MTP (with an active set for grading).')
        spec.input('host', valid_type=orm.StructureData, help='The host with every guest site occupied.')
        spec.input('guest', valid_type=orm.Str, help='The guest element, e.g. Li.')
        spec.input('temperatures', valid_type=orm.List, help='Temperatures [K].')
        spec.input('guest_fractions', valid_type=orm.List, help='Guest site fractions x in [0, 1].')
        spec.input(
            'chemical_potentials',
            valid_type=orm.List,
            required=False,
            help='Guest chemical potential [eV] per guest fraction: set the composition by GCMC at mu(x) '
            '(starting from the seeded ordering at x). Without it, the composition is fixed at x.',
        )
        spec.input('orderings', valid_type=orm.Int, default=lambda: orm.Int(1), help='Seeded orderings per x.')
        spec.input('parameters', valid_type=orm.Dict, default=lambda: orm.Dict({}), help='MdProductionParameters.')
        spec.input('max_concurrent', valid_type=orm.Int, default=lambda: orm.Int(2), help='State points at once.')
        spec.input('options', valid_type=orm.Dict, required=False, help='metadata.options of every LAMMPS run.')
        spec.inputs.validator = validate_inputs
        spec.outline(cls.setup, while_(cls.has_pending)(cls.run_pool), cls.results)
        for name, kind, text in (
            ('trajectories', orm.Data, 'Stored trajectory (LammpsTrajectoryData) per state point.'),
            ('thermo', orm.ArrayData, 'Thermodynamic series per state point.'),
            ('averages', orm.Dict, 'Volume, lattice parameters, T, E (with standard errors), composition.'),
            ('storage', orm.Dict, 'Stored trajectory size [bytes] per state point.'),
        ):
            spec.output_namespace(name, valid_type=kind, dynamic=True, help=text)
        spec.output_namespace('extrapolative_configurations', valid_type=orm.Data, dynamic=True, required=False)
        spec.exit_code(421, 'ERROR_STATE_POINTS_FAILED', message='{number} of {total} state points failed: {labels}')

    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        return pathlib.Path(__file__).parent / 'protocols' / 'md_production.yaml'

    @classmethod
    def get_builder_from_protocol(
        cls,
        code,
        potential,
        host,
        guest: str,
        temperatures,
        guest_fractions,
        chemical_potentials=None,
        protocol: str | None = None,
        overrides: dict | None = None,
        options: dict | None = None,
        **_,
    ):
        """A builder with the protocol's numerical precision (``fast``, ``moderate``, ``precise``).

        :param overrides: ``{'parameters': {...}, 'max_concurrent': n, 'orderings': n}`` over the protocol.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.code = orm.load_code(code) if isinstance(code, str) else code
        builder.potential = potential
        builder.host = host
        builder.guest = orm.Str(guest)
        builder.temperatures = orm.List([float(t) for t in temperatures])
        builder.guest_fractions = orm.List([float(x) for x in guest_fractions])
        if chemical_potentials is not None:
            builder.chemical_potentials = orm.List([float(m) for m in chemical_potentials])
        builder.parameters = orm.Dict(inputs.get('parameters', {}))
        builder.max_concurrent = orm.Int(inputs.get('max_concurrent', 2))
        builder.orderings = orm.Int(inputs.get('orderings', 1))
        if options:
            builder.options = orm.Dict(options)
        return builder

    def setup(self):
        """The grid of state points, each with its seeded ordering (a calcfunction node)."""
        p = validate_parameters(MdProductionParameters, self.inputs.parameters.get_dict()).dump()
        guest = self.inputs.guest.value
        n_sites = len(guest_sites(self.inputs.host, guest))
        mus = self.inputs.chemical_potentials.get_list() if 'chemical_potentials' in self.inputs else None
        self.ctx.grid = {}
        self.ctx.structures = {}
        k = 0
        for ix, x in enumerate(self.inputs.guest_fractions.get_list()):
            for ordering in range(self.inputs.orderings.value):
                structure = seeded_ordering(
                    self.inputs.host,
                    self.inputs.guest,
                    orm.Float(x),
                    orm.Int(p['seed'] + 1000 * ordering + ix),
                    metadata={'call_link_label': f'ordering_{ix}_{ordering}'},
                )
                for temperature in self.inputs.temperatures.get_list():
                    label = _label(temperature, x, ordering)
                    self.ctx.grid[label] = {
                        **p,
                        'temperature': float(temperature),
                        'x': float(x),
                        'ordering': ordering,
                        'mu': mus[ix] if mus else None,
                        'guest': guest,
                        'n_sites': n_sites,
                        'state_seed': p['seed'] + 10 * k,
                    }
                    self.ctx.structures[label] = structure.uuid
                    k += 1
        self.ctx.pool_started = False
        self.report(
            f'{len(self.ctx.grid)} state points ({"GCMC at mu(x)" if mus else "fixed composition"}), '
            f'at most {self.inputs.max_concurrent.value} at once'
        )

    def has_pending(self):
        return not self.ctx.pool_started or self.pool_has_queue('points')

    def run_pool(self):
        queue = sorted(self.ctx.grid) if not self.ctx.pool_started else self.ctx._pools['points']['queue']
        self.ctx.pool_started = True
        self.pool_start('points', queue, self.inputs.max_concurrent.value, 'submit_point')

    def submit_point(self, label):
        inputs = {
            'code': self.inputs.code,
            'potential': self.inputs.potential,
            'structure': orm.load_node(self.ctx.structures[label]),
            'settings': orm.Dict(self.ctx.grid[label]),
            'metadata': {'call_link_label': label},
        }
        if 'options' in self.inputs:
            inputs['options'] = self.inputs.options
        node = self.submit(MdStatePointWorkChain, **inputs)
        self.report(f'state point {label}: MdStatePointWorkChain<{node.pk}>')
        return node

    def results(self):
        failed = []
        total_bytes = 0
        for label in sorted(self.ctx.grid):
            node = self.ctx.points[label]
            if 'extrapolative_configurations' in node.outputs:
                self.out(f'extrapolative_configurations.{label}', node.outputs.extrapolative_configurations)
            if not node.is_finished_ok:
                failed.append(label)
                self.report(f'state point {label} <{node.pk}> failed: {node.exit_message}')
                continue
            outputs = node.outputs
            self.out(f'trajectories.{label}', outputs.trajectory)
            self.out(f'thermo.{label}', outputs.thermo)
            self.out(f'averages.{label}', outputs.averages)
            self.out(f'storage.{label}', outputs.storage)
            total_bytes += outputs.storage['stored_bytes']
        self.report(f'stored trajectories: {total_bytes} bytes in total')
        if failed:
            return self.exit_codes.ERROR_STATE_POINTS_FAILED.format(
                number=len(failed), total=len(self.ctx.grid), labels=failed
            )
        return None


__all__ = ['MdProductionParameters', 'MdProductionWorkChain', 'MdStatePointWorkChain']
