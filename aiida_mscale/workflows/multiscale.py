"""``MultiscaleWorkChain``: from DFT labels to electrode curves in one launch, with the provenance of every number.

Stages (each a work chain of its own, called by this one; every hand-over a calcfunction node):

1. **guest reference** (``reference``): the guest's elemental crystal (``guest_crystal``) labelled by
   :class:`~aiida_mscale.workflows.dft_labeling.DftLabelingWorkChain` at several isotropic strains, with the pw.x
   settings of the active-learning labels except for a k-point density fit for a metal; its Birch-Murnaghan
   minimum is the guest's energy per atom ``mu_guest`` of the voltage (:func:`guest_reference_energy`). The host's
   energies come from the MTP fitted to labels at the same cutoffs and pseudopotentials, so both are on one energy
   scale up to the potential's error, which the voltage band carries;
2. **active learning** (``active_learning``): :class:`~aiida_mscale.workflows.active_learning.ActiveLearningWorkChain`
   on ``structure`` (GCMC-MD over x): the MTP;
3. **MD production** (``md_production``): :class:`~aiida_mscale.workflows.md_production.MdProductionWorkChain` over
   ``temperatures`` x ``guest_fractions`` on a supercell of ``structure`` (``md_supercell``);
4. **transport** (``transport``): one :class:`~aiida_mscale.workflows.transport.TransportAnalysisWorkChain` per guest
   fraction over its temperatures: D(T) with 1-sigma, Arrhenius / non-Arrhenius verdict, D extrapolated to the
   electrode's temperature -> the D(x) table with ``D_sigma`` (:func:`diffusivity_table`);
5. **thermodynamics** (``thermodynamics``): :class:`~aiida_mscale.workflows.thermodynamics.ThermodynamicsWorkChain`:
   seeded orderings at ``guest_fractions`` relaxed with the MTP, convex hull, voltage steps with their band, average
   voltage, and the volume change from the MD state points -> the OCV(x) table with ``V_sigma``
   (:func:`ocv_table`: the hull's steps plus the lattice-gas entropy term at the electrode's temperature);
6. **electrode** (``electrode``): :class:`~aiida_mscale.workflows.electrode.ElectrodeWorkChain` on D(x) and OCV(x):
   rate capability, phase boundary, D_eff as asked; with ``electrode.uncertainty`` an ensemble of seeded draws of
   both tables from their sigmas gives the bands of the rate-capability and voltage curves.

Entering anywhere: ``potential`` skips active learning; ``diffusivity`` (a D(x) table) skips MD production and
transport; ``ocv`` (an OCV(x) table) skips thermodynamics and the guest reference; ``guest_reference_energy`` skips
the guest reference. A stage that is needed and has neither its inputs nor its replacement is refused before
anything runs. The state of charge of the electrode, ``y = (x - x_min)/(x_max - x_min)``, spans the window of the
computed guest fractions (the hull's end members).

The electrode's temperature (``electrode.cell.temperature``) is the one temperature of the hand-over: D(x) is
extrapolated to it and the OCV's entropy term is taken at it.
"""

from __future__ import annotations

import copy
import pathlib

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, if_
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin, recursive_merge

from aiida_mscale.calculations.functions.multiscale import (
    diffusivity_table,
    guest_reference_energy,
    multiscale_summary,
    ocv_table,
    strained_crystals,
    supercell,
)
from aiida_mscale.data.mtp_potential import MtpPotentialData
from aiida_mscale.schema import validate_parameters
from aiida_mscale.workflows.active_learning import ActiveLearningWorkChain
from aiida_mscale.workflows.active_learning import validate_inputs as validate_active_learning
from aiida_mscale.workflows.codes import load_role_codes
from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain
from aiida_mscale.workflows.electrode import ElectrodeWorkChain
from aiida_mscale.workflows.md_production import MdProductionParameters, MdProductionWorkChain
from aiida_mscale.workflows.thermodynamics import ThermodynamicsParameters, ThermodynamicsWorkChain
from aiida_mscale.workflows.transport import TransportAnalysisWorkChain
from aiida_mscale.workflows.transport.settings import TransportParameters

#: temperatures per guest fraction that the transport stage's Arrhenius analysis needs
MIN_TEMPERATURES = 3
#: the codes of the chain: role -> calculation plugin
CODE_PLUGINS = {
    'pw': 'quantumespresso.pw',
    'mtp_train': 'mscale.mtp.train',
    'mtp_select': 'mscale.mtp.select',
    'lammps': 'mscale.lammps.mtp',
    'continuum': 'mscale.continuum',
}


def _optional_stage() -> dict:
    """Namespace options of an exposed stage: optional, and validated by :func:`validate_inputs` as a whole (the
    stage's own validator would miss the inputs this chain hands over; plumpy consumes the dict, hence a new one)."""
    return {'required': False, 'populate_defaults': False, 'validator': None}


def _fractions(inputs) -> list[float]:
    return [float(x) for x in inputs['guest_fractions'].get_list()] if 'guest_fractions' in inputs else []


def _fraction(averages) -> float:
    """The guest fraction a state point was run at (its ``averages``: ``target_x``, else the composition's x)."""
    target = averages.get('target_x')
    return float(target if target is not None else averages['x'])


def validate_inputs(inputs, _):
    """Refuse contradictions between stages, and stages without their inputs or their replacement results."""
    structure, guest = inputs['structure'], inputs['guest'].value
    symbols = sorted({kind.symbol for kind in structure.kinds})
    if guest not in symbols:
        return f'`guest` {guest!r} is not an element of the structure (it has {symbols})'
    potential = inputs.get('potential')
    if potential is not None:
        missing = sorted(set(symbols) - set(potential.species))
        if missing:
            return f"`potential` has species {potential.species}: the structure's {missing} are not among them"
    elif 'active_learning' not in inputs or not inputs['active_learning']:
        return 'no `potential` and no `active_learning` inputs: give one (the potential skips active learning)'
    else:
        message = validate_active_learning(
            {**inputs['active_learning'], 'structure': structure, 'guest': inputs['guest']}, None
        )
        if message:
            return f'active_learning: {message}'
    for name, model in (
        ('md_production', MdProductionParameters),
        ('transport', TransportParameters),
        ('thermodynamics', ThermodynamicsParameters),
    ):
        if inputs.get(name) and 'parameters' in inputs[name]:
            try:
                validate_parameters(model, inputs[name]['parameters'].get_dict(), f'{name}.parameters')
            except ValueError as exception:
                return str(exception)
    fractions = _fractions(inputs)
    if any(not 0 <= x <= 1 for x in fractions) or len(set(fractions)) != len(fractions):
        return f'`guest_fractions` must be distinct fractions in [0, 1], got {fractions}'
    if 'diffusivity' not in inputs:
        if not inputs.get('md_production'):
            return 'no `diffusivity` table and no `md_production` inputs: give one (the table skips MD and transport)'
        temperatures = inputs['temperatures'].get_list() if 'temperatures' in inputs else []
        if not fractions or not temperatures:
            return 'MD production needs `guest_fractions` and `temperatures` (or give the `diffusivity` table)'
        if any(not t > 0 for t in temperatures) or len(set(temperatures)) < MIN_TEMPERATURES:
            return (
                f'`temperatures` must be {MIN_TEMPERATURES} or more distinct positive temperatures [K] (the Arrhenius '
                f"analysis extrapolates D to the electrode's temperature along them), got {temperatures}"
            )
    if 'ocv' not in inputs:
        if not inputs.get('thermodynamics') or 'code' not in inputs['thermodynamics']:
            return 'no `ocv` table and no `thermodynamics` inputs (with its LAMMPS code): give one'
        if len(fractions) < 2:
            return f'the voltage profile needs two or more `guest_fractions`, got {fractions}'
        if 'guest_reference_energy' not in inputs:
            if 'guest_crystal' not in inputs or not inputs.get('reference'):
                return "the voltage needs the guest's energy: give `guest_crystal` with `reference` DFT inputs, or "
                'give `guest_reference_energy`'
            crystal = {kind.symbol for kind in inputs['guest_crystal'].kinds}
            if crystal != {guest}:
                return f'`guest_crystal` must be a crystal of {guest} only, got {sorted(crystal)}'
            if len(inputs['reference_strains'].get_list()) < 5:
                return '`reference_strains`: the Birch-Murnaghan fit needs at least 5 strains'
    electrode = inputs.get('electrode')
    if not electrode or 'code' not in electrode or 'models' not in electrode:
        return 'the `electrode` stage needs its `code`, `models` and the material (`cell`, ...)'
    if 'cell' not in electrode or electrode['cell'].get('temperature') is None:
        return '`electrode.cell.temperature` [K] is needed: D(x) and the OCV are taken at this temperature'
    for name in ('diffusivity', 'ocv'):
        if name in inputs:
            node = inputs[name]
            if not {'x', 'D' if name == 'diffusivity' else 'V'} <= set(node.get_arraynames()):
                return f'`{name}` needs the arrays `x` and `{"D" if name == "diffusivity" else "V"}`'
    return None


class MultiscaleWorkChain(ProtocolMixin, WorkChain):
    """DFT labels -> MTP active learning -> MD over (T, x) -> D(T, x) -> OCV(x), volume -> electrode curves with bands.

    See the module docstring for the stages, how each hands over to the next, and how to enter the chain anywhere.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, help='The host with every guest site occupied.')
        spec.input('guest', valid_type=orm.Str, help='The guest element (Li, Na).')
        spec.input('guest_fractions', valid_type=orm.List, required=False, help='Guest fractions x of MD and hull.')
        spec.input('temperatures', valid_type=orm.List, required=False, help='MD temperatures [K] (three or more).')
        spec.input('md_supercell', valid_type=orm.List, default=lambda: orm.List([1, 1, 1]), help='MD supercell.')
        spec.input('guest_crystal', valid_type=orm.StructureData, required=False, help="The guest's elemental crystal.")
        spec.input(
            'reference_strains',
            valid_type=orm.List,
            default=lambda: orm.List([-0.04, -0.02, 0.0, 0.02, 0.04]),
            help="Isotropic strains of the guest crystal's equation of state (>= 5).",
        )
        # results that replace stages
        spec.input(
            'potential', valid_type=MtpPotentialData, required=False, help='A trained MTP: skips active learning.'
        )
        spec.input('diffusivity', valid_type=orm.ArrayData, required=False, help='D(x) table: skips MD and transport.')
        spec.input('ocv', valid_type=orm.ArrayData, required=False, help='OCV(x) table: skips thermodynamics.')
        spec.input(
            'guest_reference_energy', valid_type=orm.Dict, required=False, help='Guest energy: skips its labelling.'
        )
        spec.expose_inputs(
            DftLabelingWorkChain, namespace='reference', exclude=('structures',), namespace_options=_optional_stage()
        )
        spec.expose_inputs(
            ActiveLearningWorkChain,
            namespace='active_learning',
            exclude=('structure', 'guest'),
            namespace_options=_optional_stage(),
        )
        spec.expose_inputs(
            MdProductionWorkChain,
            namespace='md_production',
            exclude=('potential', 'host', 'guest', 'temperatures', 'guest_fractions'),
            namespace_options=_optional_stage(),
        )
        spec.expose_inputs(
            TransportAnalysisWorkChain,
            namespace='transport',
            exclude=('trajectories', 'temperatures', 'mobile_species'),
            namespace_options=_optional_stage(),
        )
        spec.expose_inputs(
            ThermodynamicsWorkChain,
            namespace='thermodynamics',
            include=('code', 'options', 'parameters', 'orderings'),
            namespace_options=_optional_stage(),
        )
        spec.expose_inputs(
            ElectrodeWorkChain,
            namespace='electrode',
            exclude=('diffusivity', 'ocv'),
            namespace_options={'required': True, 'populate_defaults': True},  # its validator waits for the tables
        )
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            cls.run_learning,
            cls.inspect_learning,
            if_(cls.needs_md)(cls.run_md_production, cls.inspect_md_production),
            cls.run_analyses,
            cls.inspect_analyses,
            cls.make_tables,
            cls.run_electrode,
            cls.inspect_electrode,
            cls.results,
        )
        spec.output('potential', valid_type=MtpPotentialData, help='The MTP of the chain (trained here or given).')
        spec.output('training_set', valid_type=orm.Data, required=False, help='Its DFT training set.')
        spec.output('guest_reference_energy', valid_type=orm.Dict, required=False, help="The guest's E0 [eV/atom].")
        spec.output('diffusivity', valid_type=orm.ArrayData, help='D(x) [m^2/s] with D_sigma at the electrode T.')
        spec.output('ocv', valid_type=orm.ArrayData, help='OCV(x) [V] with V_sigma.')
        spec.output('average_voltage', valid_type=orm.Float, required=False, help='Average voltage [V] of the hull.')
        spec.output('voltage_profile', valid_type=orm.ArrayData, required=False, help='0 K voltage steps with band.')
        spec.output('volume_trend', valid_type=orm.Dict, required=False, help='V(x), relative volume change.')
        spec.output_namespace('arrhenius', valid_type=orm.Dict, dynamic=True, required=False, help='Per x.')
        for name in (
            'rate_capability',
            'rate_capability_band',
            'voltage_band',
            'phase_boundary',
            'effective_diffusivity',
            'electrode_rate_capability',
        ):
            spec.output(name, valid_type=orm.ArrayData, required=False, help=f'ElectrodeWorkChain `{name}`.')
        spec.output('summary', valid_type=orm.Dict, help='The headline numbers of the run.')
        spec.exit_code(410, 'ERROR_REFERENCE_FAILED', message='The guest reference stage failed: {message}')
        spec.exit_code(411, 'ERROR_ACTIVE_LEARNING_FAILED', message='The active-learning stage failed: {message}')
        spec.exit_code(412, 'ERROR_MD_PRODUCTION_FAILED', message='The MD production stage failed: {message}')
        spec.exit_code(413, 'ERROR_TRANSPORT_FAILED', message='The transport stage failed: {message}')
        spec.exit_code(414, 'ERROR_THERMODYNAMICS_FAILED', message='The thermodynamics stage failed: {message}')
        spec.exit_code(415, 'ERROR_HANDOVER', message='The hand-over to the electrode failed: {message}')
        spec.exit_code(416, 'ERROR_ELECTRODE_FAILED', message='The electrode stage failed: {message}')

    # ----------------------------------------------------------------------------------------------- protocols
    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        """Return the path to the protocol file (fast / moderate / precise)."""
        return pathlib.Path(__file__).parent / 'protocols' / 'multiscale.yaml'

    @classmethod
    def get_builder_from_protocol(
        cls,
        codes: dict,
        structure,
        guest: str,
        protocol: str | None = None,
        overrides: dict | None = None,
        options: dict | None = None,
        potential=None,
        diffusivity=None,
        ocv=None,
        guest_reference_energy=None,
        guest_crystal=None,
    ):
        """A builder for the whole chain on ``structure`` with guest ``guest``.

        :param codes: role -> code (or label): ``pw``, ``mtp_train``, ``mtp_select``, ``lammps``, ``continuum`` (the
            roles of skipped stages may be left out).
        :param protocol: ``fast``, ``moderate`` or ``precise``: the precision of every stage (their own protocols).
        :param overrides: ``{'guest_fractions': [...], 'temperatures': [...], 'active_learning': {...},
            'md_production': {...}, 'transport': {...}, 'thermodynamics': {...}, 'electrode': {...}, 'reference':
            {...}}``; the physics (fractions, temperatures, the electrode's material and experiment) comes here.
        :param options: ``metadata.options`` of every calculation.
        :param potential, diffusivity, ocv, guest_reference_energy: results that replace their stages.
        :param guest_crystal: the guest's elemental crystal (default: ``ase.build.bulk(guest)``, ASE's reference
            structure of the element, e.g. bcc Li a = 3.51 Angstrom; the EOS finds its own minimum).
        :raises ValueError: naming a missing code or a code of the wrong plugin.
        """
        from ase.build import bulk

        inputs = cls.get_protocol_inputs(protocol, overrides)
        needed = {'lammps', 'continuum'} | ({'pw', 'mtp_train', 'mtp_select'} if potential is None else set())
        if ocv is None and guest_reference_energy is None:
            needed.add('pw')
        codes = load_role_codes(codes, CODE_PLUGINS, needed)
        builder = cls.get_builder()
        builder.structure = structure
        builder.guest = orm.Str(guest)
        for key in ('guest_fractions', 'temperatures', 'md_supercell', 'reference_strains'):
            if key in inputs:
                builder[key] = orm.List([float(v) if key != 'md_supercell' else int(v) for v in inputs[key]])
        for key, value in (
            ('potential', potential),
            ('diffusivity', diffusivity),
            ('ocv', ocv),
            ('guest_reference_energy', guest_reference_energy),
        ):
            if value is not None:
                builder[key] = value

        al_overrides = inputs.get('active_learning', {})
        if potential is None:
            active_learning = ActiveLearningWorkChain.get_builder_from_protocol(
                codes,
                structure,
                guest,
                protocol=inputs['active_learning_protocol'],
                overrides=al_overrides,
                options=options,
            )
            active_learning.pop('structure', None)
            active_learning.pop('guest', None)
            builder.active_learning = active_learning._inputs(prune=True)
        if ocv is None and guest_reference_energy is None:
            crystal = guest_crystal or orm.StructureData(ase=bulk(guest))
            builder.guest_crystal = crystal
            dft_overrides = copy.deepcopy(al_overrides.get('dft', {}))
            if 'kpoints_distance' in inputs.get('reference', {}).get('pw_base', {}):
                # an explicit k mesh chosen for the host cell does not fit the guest's crystal: its own density wins
                dft_overrides.get('pw_base', {}).pop('kpoints', None)
            dft_overrides = recursive_merge(dft_overrides, inputs.get('reference', {}))
            reference = DftLabelingWorkChain.get_builder_from_protocol(
                codes['pw'], [crystal], protocol=inputs['reference_protocol'], overrides=dft_overrides, options=options
            )
            reference.pop('structures', None)
            builder.reference = reference._inputs(prune=True)
        if diffusivity is None:
            md = MdProductionWorkChain.get_protocol_inputs(
                inputs['md_production_protocol'], inputs.get('md_production')
            )
            builder.md_production.code = codes['lammps']
            builder.md_production.parameters = orm.Dict(md.get('parameters', {}))
            builder.md_production.max_concurrent = orm.Int(md.get('max_concurrent', 2))
            builder.md_production.orderings = orm.Int(md.get('orderings', 1))
            if options:
                builder.md_production.options = orm.Dict(options)
            transport = TransportAnalysisWorkChain.get_protocol_inputs(
                inputs['transport_protocol'], inputs.get('transport')
            )
            builder.transport.parameters = orm.Dict(transport.get('parameters', {}))
        if ocv is None:
            thermo = ThermodynamicsWorkChain.get_protocol_inputs(
                inputs['thermodynamics_protocol'], inputs.get('thermodynamics')
            )
            builder.thermodynamics.code = codes['lammps']
            builder.thermodynamics.parameters = orm.Dict(thermo.get('parameters', {}))
            if 'orderings' in thermo:
                builder.thermodynamics.orderings = orm.Int(thermo['orderings'])
            if options:
                builder.thermodynamics.options = orm.Dict(options)
        electrode = ElectrodeWorkChain.get_protocol_inputs(inputs['electrode_protocol'], inputs.get('electrode'))
        builder.electrode.code = codes['continuum']
        for key in ('models',):
            if key in electrode:
                builder.electrode[key] = orm.List(list(electrode[key]))
        for key in ('cell', 'phase_field', 'polycrystal', 'resolution', 'uncertainty'):
            if key in electrode:
                builder.electrode[key] = orm.Dict(electrode[key])
        for key, kind in (('max_iterations', orm.Int), ('write_xdmf', orm.Bool), ('allow_non_monotonic_ocv', orm.Bool)):
            if key in electrode:
                builder.electrode[key] = kind(electrode[key])
        if options:
            builder.electrode.options = options
        return builder

    # ----------------------------------------------------------------------------------------------- stages
    def setup(self):
        self.ctx.temperature = float(self.inputs.electrode.cell['temperature'])
        self.ctx.potential = self.inputs.get('potential')
        self.ctx.reference_energy = self.inputs.get('guest_reference_energy')
        self.ctx.diffusivity = self.inputs.get('diffusivity')
        self.ctx.ocv = self.inputs.get('ocv')
        skipped = [
            name
            for name, given in (
                ('active learning', 'potential'),
                ('MD production and transport', 'diffusivity'),
                ('thermodynamics', 'ocv'),
                ('guest reference', 'guest_reference_energy'),
            )
            if given in self.inputs
        ]
        if skipped:
            self.report(f'entering the chain with given results: skipping {", ".join(skipped)}')

    def run_learning(self):
        """The guest reference labels and active learning, side by side (both DFT)."""
        futures = {}
        if self.ctx.ocv is None and self.ctx.reference_energy is None:
            crystals = strained_crystals(
                self.inputs.guest_crystal, self.inputs.reference_strains, metadata={'call_link_label': 'guest_crystals'}
            )
            inputs = AttributeDict(self.exposed_inputs(DftLabelingWorkChain, 'reference'))
            inputs.structures = crystals
            inputs.metadata = {'call_link_label': 'reference'}
            futures['reference'] = self.submit(DftLabelingWorkChain, **inputs)
            self.report(f'guest reference: DftLabelingWorkChain<{futures["reference"].pk}> on {len(crystals)} strains')
        if self.ctx.potential is None:
            inputs = AttributeDict(self.exposed_inputs(ActiveLearningWorkChain, 'active_learning'))
            inputs.structure = self.inputs.structure
            inputs.guest = self.inputs.guest
            inputs.metadata = {'call_link_label': 'active_learning'}
            futures['active_learning'] = self.submit(ActiveLearningWorkChain, **inputs)
            self.report(f'active learning: ActiveLearningWorkChain<{futures["active_learning"].pk}>')
        return ToContext(**futures)

    def inspect_learning(self):
        if 'reference' in self.ctx:
            node = self.ctx.reference
            if not node.is_finished_ok:
                return self.exit_codes.ERROR_REFERENCE_FAILED.format(message=f'<{node.pk}> [{node.exit_status}]')
            try:
                self.ctx.reference_energy = guest_reference_energy(
                    node.outputs.training_set, metadata={'call_link_label': 'guest_reference_energy'}
                )
            except ValueError as exception:
                return self.exit_codes.ERROR_REFERENCE_FAILED.format(message=str(exception))
            self.out('guest_reference_energy', self.ctx.reference_energy)
            self.report(f'guest reference: E0 = {self.ctx.reference_energy["energy"]:.4f} eV/atom')
        if 'active_learning' in self.ctx:
            node = self.ctx.active_learning
            # a run that stopped at max_iterations without meeting its thresholds still returns its potential
            if 'potential' not in node.outputs:
                return self.exit_codes.ERROR_ACTIVE_LEARNING_FAILED.format(
                    message=f'<{node.pk}> [{node.exit_status}] {node.exit_message}'
                )
            if not node.is_finished_ok:
                self.report(f'active learning <{node.pk}> ended [{node.exit_status}]: {node.exit_message}; going on')
            self.ctx.potential = node.outputs.potential
            self.out('training_set', node.outputs.training_set)
        self.out('potential', self.ctx.potential)
        return None

    def needs_md(self):
        return self.ctx.diffusivity is None

    def run_md_production(self):
        inputs = AttributeDict(self.exposed_inputs(MdProductionWorkChain, 'md_production'))
        host = self.inputs.structure
        if self.inputs.md_supercell.get_list() != [1, 1, 1]:
            host = supercell(host, self.inputs.md_supercell, metadata={'call_link_label': 'md_supercell'})
        inputs.update(
            potential=self.ctx.potential,
            host=host,
            guest=self.inputs.guest,
            temperatures=self.inputs.temperatures,
            guest_fractions=self.inputs.guest_fractions,
            metadata={'call_link_label': 'md_production'},
        )
        node = self.submit(MdProductionWorkChain, **inputs)
        self.report(f'MD production: MdProductionWorkChain<{node.pk}>')
        return ToContext(md_production=node)

    def _state_points_by_fraction(self) -> dict:
        """{x: {label: T}} of the finished state points, for the guest fractions with two or more temperatures."""
        outputs = self.ctx.md_production.outputs
        by_fraction = {}
        for label, averages in outputs.averages.items():
            by_fraction.setdefault(_fraction(averages), {})[label] = float(averages['temperature'])
        return {x: labels for x, labels in by_fraction.items() if len(set(labels.values())) >= MIN_TEMPERATURES}

    def inspect_md_production(self):
        node = self.ctx.md_production
        if node.is_finished_ok:
            return None
        failed_points = node.exit_status == MdProductionWorkChain.exit_codes.ERROR_STATE_POINTS_FAILED.status
        usable = self._state_points_by_fraction() if failed_points and 'averages' in node.outputs else {}
        if not usable:
            return self.exit_codes.ERROR_MD_PRODUCTION_FAILED.format(
                message=f'<{node.pk}> [{node.exit_status}] {node.exit_message}'
            )
        # a state point the potential cannot hold (e.g. lost atoms) costs its guest fraction, not the run
        self.report(
            f'MD production <{node.pk}>: {node.exit_message}; going on with the guest fractions that kept '
            f'{MIN_TEMPERATURES} or more temperatures: {sorted(usable)}'
        )
        return None

    def run_analyses(self):
        """Transport per guest fraction and thermodynamics, side by side."""
        futures = {}
        if self.ctx.diffusivity is None:
            outputs = self.ctx.md_production.outputs
            by_fraction = self._state_points_by_fraction()
            self.ctx.fractions = {}
            base = AttributeDict(self.exposed_inputs(TransportAnalysisWorkChain, 'transport'))
            parameters = {'analyses': ['diffusivity', 'arrhenius'], **base.get('parameters', orm.Dict()).get_dict()}
            parameters['extrapolate_to'] = self.ctx.temperature
            for k, (fraction, labels) in enumerate(sorted(by_fraction.items())):
                key = f'x_{k}'
                self.ctx.fractions[key] = fraction
                inputs = AttributeDict(copy.copy(dict(base)))
                inputs.update(
                    trajectories={label: outputs.trajectories[label] for label in labels},
                    temperatures={label: orm.Float(t) for label, t in labels.items()},
                    mobile_species=self.inputs.guest,
                    parameters=orm.Dict(parameters),
                    metadata={'call_link_label': f'transport_{key}'},
                )
                futures[f'transport_{key}'] = self.submit(TransportAnalysisWorkChain, **inputs)
            self.report(f'transport: {len(by_fraction)} TransportAnalysisWorkChains, one per guest fraction')
        if self.ctx.ocv is None:
            inputs = AttributeDict(self.exposed_inputs(ThermodynamicsWorkChain, 'thermodynamics'))
            inputs.update(
                potential=self.ctx.potential,
                host=self.inputs.structure,
                guest=self.inputs.guest,
                guest_fractions=self.inputs.guest_fractions,
                guest_reference_energy=self.ctx.reference_energy,
                metadata={'call_link_label': 'thermodynamics'},
            )
            md_settings = self.ctx.md_production.inputs.parameters.get_dict() if 'md_production' in self.ctx else {}
            npt = 'npt' in (
                md_settings.get('equilibration_ensemble', 'npt'),
                md_settings.get('production_ensemble', 'npt'),
            )
            if 'md_production' in self.ctx and not npt:
                self.report('the MD state points ran at constant volume: no volume change from them')
            elif 'md_production' in self.ctx and 'averages' in self.ctx.md_production.outputs:
                # V(x) at one temperature: the lowest at which two or more guest fractions finished
                by_temperature = {}
                for label, averages in self.ctx.md_production.outputs.averages.items():
                    point = (averages, _fraction(averages))
                    by_temperature.setdefault(float(averages['temperature']), {})[label] = point
                usable = sorted(t for t, points in by_temperature.items() if len({x for _, x in points.values()}) >= 2)
                if usable:
                    inputs.state_points = {label: a for label, (a, _) in by_temperature[usable[0]].items()}
                else:
                    self.report('no temperature with two or more finished guest fractions: no volume change')
            futures['thermodynamics'] = self.submit(ThermodynamicsWorkChain, **inputs)
            self.report(f'thermodynamics: ThermodynamicsWorkChain<{futures["thermodynamics"].pk}>')
        return ToContext(**futures)

    def inspect_analyses(self):
        if self.ctx.diffusivity is None:
            failed = {}
            for key in sorted(self.ctx.fractions):
                node = self.ctx[f'transport_{key}']
                if not node.is_finished_ok or 'arrhenius' not in node.outputs:
                    failed[key] = f'x = {self.ctx.fractions[key]}: <{node.pk}> [{node.exit_status}] {node.exit_message}'
                else:
                    self.out(f'arrhenius.{key}', node.outputs.arrhenius)
            if len(failed) == len(self.ctx.fractions):
                return self.exit_codes.ERROR_TRANSPORT_FAILED.format(message='; '.join(failed.values()))
            # a guest fraction whose D(T) cannot be fitted (e.g. no hop resolved at the lower temperatures) costs that
            # fraction, reported, not the run: D(x) is built on the others
            for key, message in failed.items():
                self.report(f'transport: guest fraction left out of D(x): {message}')
                del self.ctx.fractions[key]
        if self.ctx.ocv is None:
            node = self.ctx.thermodynamics
            if not node.is_finished_ok or 'voltage_steps' not in node.outputs:
                return self.exit_codes.ERROR_THERMODYNAMICS_FAILED.format(
                    message=f'<{node.pk}> [{node.exit_status}] {node.exit_message}'
                )
            for name in ('average_voltage', 'voltage_profile', 'volume_trend'):
                if name in node.outputs:
                    self.out(name, node.outputs[name])
        return None

    def make_tables(self):
        """D(x) and OCV(x) on the state of charge of the window, each a calcfunction node."""
        try:
            if self.ctx.ocv is None:
                self.ctx.ocv = ocv_table(
                    self.ctx.thermodynamics.outputs.voltage_steps,
                    orm.Dict({'temperature': self.ctx.temperature}),
                    metadata={'call_link_label': 'ocv_table'},
                )
            if self.ctx.diffusivity is None:
                window = self.ctx.ocv.base.attributes.get('window', None)
                fractions = sorted(self.ctx.fractions.values())
                x_min, x_max = window if window else (fractions[0], fractions[-1])
                self.ctx.diffusivity = diffusivity_table(
                    orm.Dict(
                        {
                            'species': self.inputs.guest.value,
                            'x_min': float(x_min),
                            'x_max': float(x_max),
                            'fractions': self.ctx.fractions,
                            'temperature': self.ctx.temperature,
                        }
                    ),
                    **{key: self.ctx[f'transport_{key}'].outputs.arrhenius for key in self.ctx.fractions},
                    metadata={'call_link_label': 'diffusivity_table'},
                )
                held = self.ctx.diffusivity.base.attributes.get('held', [])
                if held:
                    self.report(f'D(x) held at its end values out to the window edges x = {held}')
                if self.ctx.diffusivity.base.attributes.get('clipped'):
                    self.report(f'guest fractions outside the hull window [{x_min}, {x_max}] were clipped to it')
        except (ValueError, KeyError) as exception:
            return self.exit_codes.ERROR_HANDOVER.format(message=str(exception))
        self.out('diffusivity', self.ctx.diffusivity)
        self.out('ocv', self.ctx.ocv)
        return None

    def run_electrode(self):
        inputs = AttributeDict(self.exposed_inputs(ElectrodeWorkChain, 'electrode'))
        inputs.diffusivity = self.ctx.diffusivity
        inputs.ocv = self.ctx.ocv
        inputs.metadata = {'call_link_label': 'electrode'}
        from aiida_mscale.workflows.electrode import validate_inputs as validate_electrode

        message = validate_electrode(inputs, None)
        if message:
            return self.exit_codes.ERROR_HANDOVER.format(message=f'the electrode refuses the tables: {message}')
        node = self.submit(ElectrodeWorkChain, **inputs)
        self.report(f'electrode: ElectrodeWorkChain<{node.pk}>')
        return ToContext(electrode=node)

    def inspect_electrode(self):
        node = self.ctx.electrode
        for name in (
            'rate_capability',
            'rate_capability_band',
            'voltage_band',
            'phase_boundary',
            'effective_diffusivity',
            'electrode_rate_capability',
        ):
            if name in node.outputs:
                self.out(name, node.outputs[name])
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_ELECTRODE_FAILED.format(
                message=f'<{node.pk}> [{node.exit_status}] {node.exit_message}'
            )
        return None

    def results(self):
        nodes = {'diffusivity': self.ctx.diffusivity, 'ocv': self.ctx.ocv}
        for name in ('average_voltage', 'volume_trend', 'rate_capability', 'rate_capability_band', 'phase_boundary'):
            if name in self.outputs:
                nodes[name] = self.outputs[name]
        summary = multiscale_summary(**nodes, metadata={'call_link_label': 'summary'})
        self.out('summary', summary)
        parts = []
        if 'average_voltage_V' in summary.get_dict():
            parts.append(f'average voltage {summary["average_voltage_V"]:.3f} V')
        if 'rate_capability' in summary.get_dict():
            parts.append(f'{len(summary["rate_capability"])} C-rates')
        self.report(f'done: {"; ".join(parts) or "summary written"}')


__all__ = ['MultiscaleWorkChain']
