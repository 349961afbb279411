"""``ActiveLearningWorkChain``: learn an MTP over all guest concentrations with hybrid GCMC-MD sampling.

One iteration (generation) ``i``::

    train  (MtpTrainBaseWorkChain, warm start from generation i-1)      ─┐
    active set  (MtpSelectCalculation on the training set)               │ skipped when resuming with a
                                                                         ─┘ potential already trained
    sample  one LammpsMtpBaseWorkChain per state point (mu, T): fix gcmc (insert/delete/displace the guest,
            full_energy) + MD, pair_style mtp grading on the fly; a rolling pool of ``max_concurrent_md``.
            The MD potential has per-element reference energies e_s taken out of its species coefficients and
            GCMC gets mu - e_guest (shift_species_energies: fix gcmc underflows with DFT total energies)
    converged?  every state point ran its full length with max grade < select_threshold, and the fit's
            validation RMSEs meet ``target_rmse``: stop
    select  MtpSelectCalculation: greedy MaxVol over all saved extrapolative configurations of all state points
            (duplicates dropped), at most ``max_labels_per_iteration``; configurations with two atoms closer than the
            potential's min_dist (at least the DFT's min_interatomic_distance) are left out first
    label   DftLabelingWorkChain (a rolling pool of pw.x runs); failures recorded and skipped
    merge   merge_training_sets(previous, new) -> the training set of generation i+1

Local active learning (``selection: 'neighbourhood'``, the argyrodite seed study 004; Podryabinkin et al.,
J. Chem. Phys. 159, 084112 (2023)): between select and label, each selected configuration is replaced by cells
cut around its most extrapolative atoms (cut_selected_neighbourhoods: per-atom grades of the selection, at most
``neighbourhood.max_centres`` centres with grade >= ``select_threshold``, core radius ``neighbourhood.r_core``,
cluster radius r_core + the potential's ``max_dist``, a cubic box of edge 2 (r_core + max_dist) + ``padding``), and
the labelled cuts enter the training set with energy and stress weight 0 and force weight 1 on the core atoms only
(weight_cut_labels); the fit then uses the weighted loss, so the training steps must be gradient steps (no LLS).

The run stops after the sampling of iteration ``max_iterations`` (its potential is the one that was sampled).

Resume: ``previous`` (an earlier ActiveLearningWorkChain, finished, failed or killed) -> continue from the last
generation recorded in its group (potential, training set, and, if its sampling had finished, the candidates
it saved): nothing is relabelled and nothing already sampled is sampled again.

Every generation's potential (with its active set), training set and candidates are added to the group
``mscale.active_learning/<pk>`` with extras ``{'active_learning': {'iteration': i, 'role': ...}}``.
"""

from __future__ import annotations

import pathlib

import numpy as np
from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ExitCode, ToContext, WorkChain, if_, while_
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin

from aiida_mscale.calculations.functions import merge_training_sets
from aiida_mscale.calculations.functions.active_learning import (
    build_coverage,
    build_learning_curve,
    collect_candidates,
    default_mu_grid,
    evaluate_potential,
    gcmc_potential,
    generate_initial_configurations,
    guest_indices,
    merge_error_tables,
    record_loop_failures,
    reference_energies,
    reference_training_set,
    shift_species_energies,
    shortest_distances,
    split_configurations,
)
from aiida_mscale.calculations.functions.neighbourhood import (
    NEIGHBOURHOOD_DEFAULTS,
    cut_selected_neighbourhoods,
    weight_cut_labels,
)
from aiida_mscale.calculations.mtp_select import MtpSelectCalculation
from aiida_mscale.data.mtp_potential import MtpPotentialData
from aiida_mscale.data.training_set import TrainingSetData
from aiida_mscale.mtp.weights import linear_steps
from aiida_mscale.workflows.codes import load_role_codes
from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain
from aiida_mscale.workflows.lammps_mtp_base import LammpsMtpBaseWorkChain
from aiida_mscale.workflows.mtp_select_base import MtpSelectBaseWorkChain
from aiida_mscale.workflows.mtp_train_base import MtpTrainBaseWorkChain
from aiida_mscale.workflows.pool import RollingPoolMixin

PLUGINS = {
    'pw': 'quantumespresso.pw',
    'mtp_train': 'mscale.mtp.train',
    'mtp_select': 'mscale.mtp.select',
    'lammps': 'mscale.lammps.mtp',
}
ENTRY_POINT = 'aiida.workflows:mscale.active_learning'
EXTRAS = 'active_learning'


def group_label(node) -> str:
    """The label of the group holding every generation of the run ``node``."""
    return f'mscale.active_learning/{node.pk}'


def previous_serializer(value):
    """A process node (the earlier run) as the Str of its UUID: processes cannot be inputs of processes."""
    if isinstance(value, orm.ProcessNode):
        return orm.Str(value.uuid)
    return orm.to_aiida_type(value)


def load_previous(value: orm.Str):
    """The node of the ``previous`` input, or None if the UUID names no node."""
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    try:
        return orm.load_node(uuid=value.value)
    except (NotExistent, MultipleObjectsError, ValueError):
        return None


def validate_inputs(inputs, _):
    """Refuse bad input before anything runs (each message names the input)."""
    guest = inputs['guest'].value
    structure = inputs['structure']
    symbols = {kind.symbol for kind in structure.kinds}
    if guest not in symbols:
        return f'`guest` {guest!r} is not an element of the structure (it has {sorted(symbols)})'
    if len(symbols) < 2:
        return f'the structure holds only the guest {guest}: a host is needed'
    pseudos = inputs.get('dft', {}).get('pw_base', {}).get('pw', {}).get('pseudos', {})
    if pseudos and guest not in pseudos:
        return f'`guest` {guest!r} has no pseudopotential (pseudos given for {sorted(pseudos)})'
    if 'mu' in inputs and not inputs['mu'].get_list():
        return '`mu`: the grid of guest chemical potentials is empty'
    if 'mu' not in inputs and not inputs['mu_offsets'].get_list():
        return '`mu_offsets`: the grid of guest chemical potentials is empty'
    if not inputs['temperatures'].get_list():
        return '`temperatures` is empty'
    if any(not (isinstance(t, (int, float)) and np.isfinite(t) and t > 0) for t in inputs['temperatures'].get_list()):
        return '`temperatures` must be positive finite numbers [K]'
    mus = inputs['mu'].get_list() if 'mu' in inputs else inputs['mu_offsets'].get_list()
    if any(not (isinstance(m, (int, float)) and np.isfinite(m)) for m in mus):
        return '`mu` / `mu_offsets` must be finite numbers [eV]'
    select, brk = inputs['select_threshold'].value, inputs['break_threshold'].value
    if not 1 <= select <= brk:
        return f'need 1 <= select_threshold <= break_threshold, got select_threshold={select}, break_threshold={brk}'
    if 'swap_threshold' in inputs:
        swap = inputs['swap_threshold'].value
        if not 1 < swap <= select:
            return f'need 1 < swap_threshold <= select_threshold, got swap_threshold={swap}, select_threshold={select}'
    for name in ('max_iterations', 'max_labels_per_iteration', 'max_concurrent_md'):
        if inputs[name].value < 1:
            return f'`{name}` must be at least 1'
    codes = {
        'pw': inputs.get('dft', {}).get('pw_base', {}).get('pw', {}).get('code'),
        'mtp_train': inputs.get('train', {}).get('mtp', {}).get('code'),
        'mtp_select': inputs.get('select', {}).get('code'),
        'lammps': inputs.get('md', {}).get('lammps', {}).get('code'),
    }
    for role, code in codes.items():
        if code is not None and code.default_calc_job_plugin != PLUGINS[role]:
            return (
                f'the `{role}` code `{code.full_label}` is for plugin `{code.default_calc_job_plugin}`, '
                f'not `{PLUGINS[role]}`'
            )
    if 'previous' in inputs:
        previous = load_previous(inputs['previous'])
        if previous is None:
            return f'`previous`: no node with UUID {inputs["previous"].value!r}'
        if getattr(previous, 'process_type', None) != ENTRY_POINT:
            kind = getattr(previous, 'process_type', None) or type(previous).__name__
            return f'`previous` <{previous.pk}> is a {kind}, not an ActiveLearningWorkChain'
    if 'previous' not in inputs and 'training_set' not in inputs and 'initial' not in inputs:
        return 'give either an initial `training_set` or the `initial` set parameters'
    potential = inputs['potential']
    missing = sorted(symbols - set(potential.species))
    if missing:
        return f'the potential lacks species {missing} of the structure'
    validation_set = inputs.get('validation_set')
    if validation_set is not None:
        missing = sorted(set(validation_set.species) - set(potential.species))
        if missing:
            return f'`validation_set` has species {missing} that the potential lacks'
        if validation_set.number_labelled == 0:
            return '`validation_set` holds no labelled configuration'
    problem = validate_selection(inputs)
    if problem:
        return problem
    if 'target_rmse' in inputs:
        targets = inputs['target_rmse'].get_dict()
        unknown = sorted(set(targets) - {'energy', 'forces', 'stress'})
        if unknown:
            return f'`target_rmse`: unknown keys {unknown} (known: energy, forces, stress)'
        for key, value in targets.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
                return f'`target_rmse.{key}` must be a positive number, not {value!r}'
    return None


SELECTIONS = ('configuration', 'neighbourhood')


def neighbourhood_settings(inputs) -> dict:
    """The ``neighbourhood`` input over :data:`NEIGHBOURHOOD_DEFAULTS` (r_core, padding [Angstrom], max_centres)."""
    given = inputs['neighbourhood'].get_dict() if 'neighbourhood' in inputs else {}
    return {**NEIGHBOURHOOD_DEFAULTS, **given}


def validate_selection(inputs) -> str | None:
    """``selection`` and ``neighbourhood``: a known mode, settings only for the neighbourhood mode, positive radii,
    and training steps that respect weights (motep's linear steps ignore them)."""
    selection = inputs['selection'].value if 'selection' in inputs else 'configuration'
    if selection not in SELECTIONS:
        return f'`selection` must be one of {list(SELECTIONS)}, not {selection!r}'
    if selection != 'neighbourhood':
        if 'neighbourhood' in inputs:
            return f"`neighbourhood` settings are given but `selection` is {selection!r}, not 'neighbourhood'"
        return None
    settings = neighbourhood_settings(inputs)
    unknown = sorted(set(settings) - set(NEIGHBOURHOOD_DEFAULTS))
    if unknown:
        return f'`neighbourhood`: unknown keys {unknown} (known: {sorted(NEIGHBOURHOOD_DEFAULTS)})'

    def number(value):
        return not isinstance(value, bool) and isinstance(value, (int, float)) and np.isfinite(value)

    if not (number(settings['r_core']) and settings['r_core'] > 0):
        return f'`neighbourhood.r_core` must be a positive length [Angstrom], not {settings["r_core"]!r}'
    if not (number(settings['padding']) and settings['padding'] >= 0):
        return f'`neighbourhood.padding` must be a non-negative length [Angstrom], not {settings["padding"]!r}'
    centres = settings['max_centres']
    if isinstance(centres, bool) or not isinstance(centres, int) or centres < 1:
        return f'`neighbourhood.max_centres` must be an integer >= 1, not {centres!r}'
    max_dist = inputs['potential'].base.attributes.get('max_dist', None)
    if max_dist is None or not max_dist > 0:
        return "neighbourhood selection needs the potential's cutoff `max_dist` (the MTP radius r_mtp)"
    parameters = inputs.get('train', {}).get('mtp', {}).get('parameters')
    steps = parameters.get_dict().get('steps') if parameters is not None else None
    linear = linear_steps(steps)
    if linear:
        named = ', '.join(f'step {k} ({method})' for k, method in linear)
        return (
            f"selection 'neighbourhood' fits cut cells with per-atom force weights, but the training {named} is "
            "motep's linear least-squares solve, which ignores weights: use gradient steps (e.g. minimize/BFGS)"
        )
    return None


class ActiveLearningWorkChain(RollingPoolMixin, ProtocolMixin, WorkChain):
    """Active learning of an MTP with hybrid GCMC-MD sampling over a (mu, T) grid (see the module docstring)."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, help='Host with its guest sites filled (sampling cell).')
        spec.input('guest', valid_type=orm.Str, help='Guest element inserted/removed by GCMC (e.g. Li, Na).')
        spec.input('potential', valid_type=MtpPotentialData, help='Untrained template or a previous fit.')
        spec.input('training_set', valid_type=TrainingSetData, required=False, help='Initial labelled set.')
        spec.input(
            'initial',
            valid_type=orm.Dict,
            required=False,
            help='Initial set to generate and label when no `training_set` is given: fractions, per_fraction, '
            'strain, rattle [Angstrom], seed (generate_initial_configurations).',
        )
        spec.input('mu', valid_type=orm.List, required=False, help='Guest chemical potentials [eV] of the GCMC.')
        spec.input(
            'mu_offsets',
            valid_type=orm.List,
            default=lambda: orm.List([-1.0, 0.0, 1.0]),
            help='Without `mu`: offsets [eV] from the mean guest insertion energy mu_0 of the training set.',
        )
        spec.input('temperatures', valid_type=orm.List, help='MD/GCMC temperatures [K].')
        spec.input('select_threshold', valid_type=orm.Float, default=lambda: orm.Float(2.0), help='Grade to save.')
        spec.input('break_threshold', valid_type=orm.Float, default=lambda: orm.Float(10.0), help='Grade to stop.')
        spec.input(
            'swap_threshold',
            valid_type=orm.Float,
            required=False,
            help='MaxVol swap threshold of the selection (1 < swap_threshold <= select_threshold): a saved '
            'configuration (grade >= select_threshold) enters the active set while one of its atoms multiplies |det A| '
            'by at least this. Default: select_threshold. Lower: more configurations labelled per iteration.',
        )
        spec.input('max_iterations', valid_type=orm.Int, default=lambda: orm.Int(5))
        spec.input('max_labels_per_iteration', valid_type=orm.Int, default=lambda: orm.Int(20))
        spec.input('max_concurrent_md', valid_type=orm.Int, default=lambda: orm.Int(4))
        spec.input(
            'validation_set',
            valid_type=TrainingSetData,
            required=False,
            help='Held-out labelled configurations: every generation is evaluated on them (evaluate_potential), '
            "for the learning curve and `target_rmse`; without it, the fit's own validation split is used.",
        )
        spec.input(
            'target_rmse',
            valid_type=orm.Dict,
            required=False,
            help='Validation RMSE targets: energy [meV/atom], forces [meV/Angstrom], stress [GPa] (any subset).',
        )
        spec.input('seed', valid_type=orm.Int, default=lambda: orm.Int(1), help='Seed of the MD/GCMC runs.')
        spec.input(
            'selection',
            valid_type=orm.Str,
            default=lambda: orm.Str('configuration'),
            help="'configuration': label the selected configurations whole; 'neighbourhood': label cells cut around "
            "their most extrapolative atoms and fit only the core atoms' forces (local active learning).",
        )
        spec.input(
            'neighbourhood',
            valid_type=orm.Dict,
            required=False,
            help=f"Settings of selection 'neighbourhood': r_core [Angstrom] (atoms this close to a centre carry "
            f'force weight 1), max_centres (cuts per selected configuration), padding [Angstrom] (vacuum added to the '
            f'box edge 2 (r_core + max_dist)). Defaults: {NEIGHBOURHOOD_DEFAULTS}',
        )
        spec.input(
            'previous',
            valid_type=orm.Str,
            required=False,
            serializer=previous_serializer,
            help='UUID of an earlier ActiveLearningWorkChain to resume (the node itself may be given to the builder).',
        )
        spec.expose_inputs(
            DftLabelingWorkChain, namespace='dft', exclude=('structures',), namespace_options={'validator': None}
        )
        spec.expose_inputs(MtpTrainBaseWorkChain, namespace='train', exclude=('mtp.training_set', 'mtp.potential'))
        spec.expose_inputs(
            MtpSelectCalculation, namespace='select', exclude=('potential', 'training_set', 'candidates', 'parameters')
        )
        spec.expose_inputs(LammpsMtpBaseWorkChain, namespace='md', exclude=('lammps.structure', 'lammps.potential'))
        spec.inputs.validator = validate_inputs

        spec.outline(
            cls.setup,
            if_(cls.is_resume)(cls.restore_previous).elif_(cls.needs_initial_set)(
                cls.label_initial_set, cls.inspect_initial_set
            ),
            cls.setup_state_points,
            while_(cls.should_iterate)(
                if_(cls.needs_training)(cls.train, cls.inspect_train, cls.activate, cls.inspect_activate),
                if_(cls.needs_sampling)(
                    cls.start_sampling,
                    while_(cls.sampling_has_queue)(cls.run_sampling_pool),
                    cls.inspect_sampling,
                ),
                if_(cls.should_label)(cls.select, cls.inspect_select, cls.label, cls.inspect_label),
            ),
            cls.results,
        )

        spec.output('potential', valid_type=MtpPotentialData, help='Final potential with its active set.')
        spec.output('training_set', valid_type=TrainingSetData, help='Final training set.')
        spec.output('learning_curve', valid_type=orm.ArrayData, required=False)
        spec.output('coverage', valid_type=orm.ArrayData, required=False)
        spec.output('candidates', valid_type=TrainingSetData, required=False, help='Last unlabelled candidates.')
        spec.output('failures', valid_type=orm.Dict, required=False, help='Failed labels and state points.')

        spec.exit_code(320, 'ERROR_INITIAL_LABELLING_FAILED', message='The initial training set could not be labelled.')
        spec.exit_code(321, 'ERROR_TRAINING_FAILED', message='Training generation {iteration} failed.')
        spec.exit_code(322, 'ERROR_ACTIVE_SET_FAILED', message='The active set of generation {iteration} failed.')
        spec.exit_code(
            323, 'ERROR_ALL_STATE_POINTS_FAILED', message='Every state point of iteration {iteration} failed.'
        )
        spec.exit_code(324, 'ERROR_PREVIOUS_HAS_NO_GENERATION', message='`previous` recorded no trained generation.')
        spec.exit_code(
            430,
            'WARNING_NOT_CONVERGED',
            message='Not converged after {iteration} iterations (max grade {grade:.3g}); all outputs are attached.',
        )

    # --------------------------------------------------------------------------------------------- protocols
    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        """The protocol file (fast / moderate / precise)."""
        return pathlib.Path(__file__).parent / 'protocols' / 'active_learning.yaml'

    @classmethod
    def get_builder_from_protocol(
        cls,
        codes: dict,
        structure,
        guest: str,
        protocol: str | None = None,
        overrides: dict | None = None,
        options: dict | None = None,
    ):
        """A builder for active learning on ``structure`` with guest ``guest``.

        :param codes: ``{'pw': ..., 'mtp_train': ..., 'mtp_select': ..., 'lammps': ...}`` (codes or labels).
        :param overrides: nested dict over the protocol (keys as in ``active_learning.yaml``).
        :param options: ``metadata.options`` of every calculation (resources, walltime).
        :raises ValueError: naming a missing or wrong code, or a guest outside the structure or pseudo family.
        """
        codes = load_role_codes(codes, PLUGINS)
        symbols = sorted({kind.symbol for kind in structure.kinds})
        if guest not in symbols:
            raise ValueError(f'`guest` {guest!r} is not an element of the structure (it has {symbols})')
        inputs = cls.get_protocol_inputs(protocol, overrides)

        dft = DftLabelingWorkChain.get_builder_from_protocol(
            codes['pw'], [structure], protocol=inputs['dft_protocol'], overrides=inputs.get('dft'), options=options
        )
        builder = cls.get_builder()
        builder.structure = structure
        builder.guest = orm.Str(guest)
        builder.dft = {key: dft[key] for key in dft if key != 'structures'}
        mtp = inputs['mtp']
        builder.potential = MtpPotentialData.from_template(
            mtp['level'],
            symbols,
            min_dist=mtp['min_dist'],
            max_dist=mtp['max_dist'],
            radial_basis_size=mtp['radial_basis_size'],
        )
        train = MtpTrainBaseWorkChain.get_protocol_inputs(inputs['train_protocol'], inputs.get('train'))
        builder.train.mtp.code = codes['mtp_train']
        builder.train.mtp.parameters = orm.Dict(train['mtp']['parameters'])
        builder.train.max_iterations = orm.Int(train['max_iterations'])
        builder.select.code = codes['mtp_select']
        builder.md.lammps.code = codes['lammps']
        builder.md.lammps.parameters = orm.Dict(inputs['md'])
        if options:
            for namespace in (builder.train.mtp, builder.select, builder.md.lammps):
                namespace.metadata.options = options
        builder.initial = orm.Dict(inputs['initial'])
        builder.mu_offsets = orm.List(inputs['mu_offsets'])
        builder.temperatures = orm.List(inputs['temperatures'])
        for name in ('select_threshold', 'break_threshold'):
            builder[name] = orm.Float(inputs[name])
        if inputs.get('swap_threshold') is not None:
            builder.swap_threshold = orm.Float(inputs['swap_threshold'])
        for name in ('max_iterations', 'max_labels_per_iteration', 'max_concurrent_md', 'seed'):
            builder[name] = orm.Int(inputs[name])
        if inputs.get('target_rmse'):
            builder.target_rmse = orm.Dict(inputs['target_rmse'])
        if inputs.get('selection'):
            builder.selection = orm.Str(inputs['selection'])
        if inputs.get('neighbourhood'):
            builder.neighbourhood = orm.Dict(inputs['neighbourhood'])
        return builder

    # ----------------------------------------------------------------------------------------------- setup
    def setup(self):
        """Initialise the context and the group of this run."""
        self.ctx.iteration = 0
        self.ctx.fit = self.inputs.potential  # the fit (to referenced energies) to warm start from
        self.ctx.potential = None  # the current generation, total energies
        self.ctx.references = None
        self.ctx.active_potential = None  # the current generation with its active set
        self.ctx.training_set = self.inputs.get('training_set')
        self.ctx.candidates = None
        self.ctx.needs_training = True
        self.ctx.needs_sampling = True
        self.ctx.converged = False
        self.ctx.summary = {'iterations': [], 'labels': [], 'max_grades': []}
        self.ctx.errors = {}  # iteration_NNN -> errors Dict of the fit
        self.ctx.thermo = {}  # label -> thermo ArrayData
        self.ctx.coverage_keys = {}
        self.ctx.failures = {'labels': {}, 'state_points': {}}
        self.ctx.last_max_grade = float('nan')
        self.ctx.worst_mu = self.ctx.worst_t = float('nan')
        group, _ = orm.Group.collection.get_or_create(group_label(self.node))
        group.description = f'Every generation of ActiveLearningWorkChain<{self.node.pk}>.'
        self.ctx.group = group.uuid
        structure = self.inputs.structure
        self.ctx.guest_sites = len(guest_indices(structure, self.inputs.guest.value))
        self.ctx.host_atoms = len(structure.sites) - self.ctx.guest_sites

    def _keep(self, node, iteration: int, role: str, **extra) -> None:
        """Add ``node`` to this run's group, tagged with its generation and role (and ``extra`` facts)."""
        previous = node.base.extras.get(EXTRAS, {})
        extra = {**{k: v for k, v in previous.items() if k not in ('iteration', 'role', 'workchain')}, **extra}
        node.base.extras.set(EXTRAS, {'iteration': iteration, 'role': role, 'workchain': self.node.uuid, **extra})
        orm.load_group(uuid=self.ctx.group).add_nodes(node)

    def is_resume(self):
        return 'previous' in self.inputs

    def needs_initial_set(self):
        return self.ctx.training_set is None

    def restore_previous(self):
        """Continue from the last generation the previous run recorded in its group."""
        previous = load_previous(self.inputs.previous)
        try:
            group = orm.Group.collection.get(label=group_label(previous))
        except Exception:  # noqa: BLE001  (no group: the run was killed before its setup finished)
            return self.exit_codes.ERROR_PREVIOUS_HAS_NO_GENERATION
        recorded = {}
        for node in group.nodes:
            extras = node.base.extras.get(EXTRAS, {})
            recorded.setdefault(extras.get('iteration'), {})[extras.get('role')] = node
        generations = sorted(i for i, roles in recorded.items() if 'potential' in roles and 'training_set' in roles)
        if not generations:
            return self.exit_codes.ERROR_PREVIOUS_HAS_NO_GENERATION
        last = generations[-1]
        roles = recorded[last]
        self.ctx.iteration = last
        self.ctx.potential = self.ctx.active_potential = roles['potential']
        self.ctx.fit = roles.get('fit', roles['potential'])
        self.ctx.mu_grid = recorded.get(0, {}).get('mu_grid')
        if self.ctx.mu_grid is not None:
            self._keep(self.ctx.mu_grid, 0, 'mu_grid')
        references = recorded.get(0, {}).get('references')
        if references is not None:
            self.ctx.references = references
            self._keep(references, 0, 'references')
        self.ctx.training_set = roles['training_set']
        self.ctx.needs_training = False
        self.ctx.needs_sampling = 'candidates' not in roles
        self.ctx.candidates = roles.get('candidates')
        self._keep(self.ctx.potential, last, 'potential')
        self._keep(self.ctx.fit, last, 'fit')
        self._keep(self.ctx.training_set, last, 'training_set')
        if self.ctx.candidates is not None:
            self._keep(self.ctx.candidates, last, 'candidates')
            facts = self.ctx.candidates.base.extras.get(EXTRAS, {})
            self.ctx.last_max_grade = facts.get('max_grade', float('nan'))
            self.ctx.worst_mu = facts.get('mu', float('nan'))
            self.ctx.worst_t = facts.get('temperature', float('nan'))
        self.report(
            f'resuming ActiveLearningWorkChain<{previous.pk}> after iteration {last}: potential '
            f'<{self.ctx.potential.pk}>, training set <{self.ctx.training_set.pk}> ({len(self.ctx.training_set)} '
            f'labels){f", candidates <{self.ctx.candidates.pk}> to select from" if self.ctx.candidates else ""}'
        )
        return None

    def label_initial_set(self):
        """Generate strained and rattled cells at several guest fractions and label them."""
        structures = generate_initial_configurations(
            self.inputs.structure, self.inputs.guest, self.inputs.initial, metadata={'call_link_label': 'initial_set'}
        )
        inputs = AttributeDict(self.exposed_inputs(DftLabelingWorkChain, namespace='dft'))
        inputs.structures = structures
        inputs.metadata = {'call_link_label': 'label_initial'}
        node = self.submit(DftLabelingWorkChain, **inputs)
        self.report(f'labelling the initial set: {len(structures)} configurations <{node.pk}>')
        return ToContext(initial=node)

    def inspect_initial_set(self):
        node = self.ctx.initial
        self._record_label_failures(node, 0)
        if 'training_set' not in node.outputs:
            return self.exit_codes.ERROR_INITIAL_LABELLING_FAILED
        self.ctx.training_set = node.outputs.training_set
        return None

    def setup_state_points(self):
        """The (mu, T) grid: ``mu`` as given, or mu_0 + ``mu_offsets`` from the training set."""
        if 'mu' in self.inputs:
            mus = self.inputs.mu.get_list()
        elif self.ctx.get('mu_grid') is not None:  # resumed: the grid of the earlier run
            mus = self.ctx.mu_grid.get_list()
        else:
            grid = default_mu_grid(
                self.ctx.training_set,
                self.inputs.guest,
                self.inputs.mu_offsets,
                metadata={'call_link_label': 'mu_grid'},
            )
            self._keep(grid, 0, 'mu_grid')
            mus = grid.get_list()
        self.ctx.state_points = [[float(mu), float(t)] for t in self.inputs.temperatures.get_list() for mu in mus]
        # Fits are made to energies minus per-element references (order 1 eV: reference_training_set), and GCMC
        # runs with the guest's constant site energy taken out of the potential (gcmc_potential)
        if self.ctx.get('references') is None:
            self.ctx.references = reference_energies(self.ctx.training_set, metadata={'call_link_label': 'references'})
            self._keep(self.ctx.references, 0, 'references')
        self.ctx.summary['state_points'] = self.ctx.state_points
        grid = ', '.join(f'({mu:.3f} eV, {t:g} K)' for mu, t in self.ctx.state_points)
        self.report(f'{len(self.ctx.state_points)} state points (mu, T): {grid}')

    def should_iterate(self):
        """Another pass: a fit or a sampling is due, or candidates wait to be labelled while iterations remain."""
        if self.ctx.converged or self.ctx.get('stop'):
            return False
        return self.ctx.needs_training or self.ctx.needs_sampling or self.should_label()

    def needs_training(self):
        return self.ctx.needs_training

    def needs_sampling(self):
        return self.ctx.needs_sampling

    # ------------------------------------------------------------------------------------------- training
    def train(self):
        """Fit generation ``iteration + 1``, warm-started from the previous fit."""
        self.ctx.iteration += 1
        inputs = AttributeDict(self.exposed_inputs(MtpTrainBaseWorkChain, namespace='train'))
        inputs.mtp.training_set = reference_training_set(
            self.ctx.training_set,
            self.ctx.references,
            metadata={'call_link_label': f'referenced_set_{self.ctx.iteration:03d}'},
        )
        inputs.mtp.potential = self.ctx.fit
        inputs.metadata = {'call_link_label': f'train_{self.ctx.iteration:03d}'}
        node = self.submit(MtpTrainBaseWorkChain, **inputs)
        return ToContext(train=node)

    def inspect_train(self):
        node = self.ctx.train
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_TRAINING_FAILED.format(iteration=self.ctx.iteration)
        self.ctx.fit = node.outputs.potential
        self.ctx.potential = shift_species_energies(
            self.ctx.fit,
            self.ctx.references,
            orm.Int(1),
            metadata={'call_link_label': f'total_energy_potential_{self.ctx.iteration:03d}'},
        )
        self.ctx.errors[f'iteration_{self.ctx.iteration:03d}'] = node.outputs.errors
        return None

    def activate(self):
        """Attach the MaxVol active set of the training set to the new fit."""
        inputs = AttributeDict(self.exposed_inputs(MtpSelectCalculation, namespace='select'))
        inputs.potential = self.ctx.potential
        inputs.training_set = self.ctx.training_set
        inputs.candidates = self.ctx.training_set
        label = f'active_set_{self.ctx.iteration:03d}'
        return ToContext(activate=self.submit(MtpSelectBaseWorkChain, mtp=inputs, metadata={'call_link_label': label}))

    def inspect_activate(self):
        node = self.ctx.activate
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_ACTIVE_SET_FAILED.format(iteration=self.ctx.iteration)
        self.ctx.active_potential = node.outputs.potential
        if 'validation_set' in self.inputs:
            self.ctx.errors[f'iteration_{self.ctx.iteration:03d}'] = self._with_validation(
                self.ctx.errors.get(f'iteration_{self.ctx.iteration:03d}')
            )
        self._keep(self.ctx.active_potential, self.ctx.iteration, 'potential')
        self._keep(self.ctx.fit, self.ctx.iteration, 'fit')
        self._keep(self.ctx.training_set, self.ctx.iteration, 'training_set')
        self.ctx.needs_training = False
        self.ctx.needs_sampling = True
        return None

    # ------------------------------------------------------------------------------------------- sampling
    def start_sampling(self):
        """The generation's potential with reference energies taken out, for fix gcmc (shift_species_energies)."""
        self.ctx.sampling_started = False
        gcmc = gcmc_potential(
            self.ctx.active_potential,
            self.ctx.references,
            self.inputs.guest,
            metadata={'call_link_label': f'gcmc_potential_{self.ctx.iteration:03d}'},
        )
        self.ctx.md_potential = gcmc['potential']
        self.ctx.mu_offset = gcmc['mu_offset'].value

    def sampling_has_queue(self):
        return not self.ctx.sampling_started or self.pool_has_queue('md')

    def run_sampling_pool(self):
        """One LammpsMtpBaseWorkChain per state point, at most ``max_concurrent_md`` at once (rolling)."""
        if not self.ctx.sampling_started:
            keys = [f'sp{k:03d}' for k in range(len(self.ctx.state_points))]
            self.ctx.sampling_started = True
            if 'md' in self.ctx:
                del self.ctx['md']
        else:
            keys = self.ctx._pools['md']['queue']
        self.pool_start('md', keys, self.inputs.max_concurrent_md.value, 'submit_state_point')

    def submit_state_point(self, key):
        """Submit hybrid GCMC + MD at state point ``key`` with the current generation."""
        mu, temperature = self.ctx.state_points[int(key[2:])]
        inputs = AttributeDict(self.exposed_inputs(LammpsMtpBaseWorkChain, namespace='md'))
        parameters = inputs.lammps.parameters.get_dict() if 'parameters' in inputs.lammps else {}
        gcmc = dict(parameters.get('gcmc') or {})
        guest = self.inputs.guest.value
        # the guest's constant site energy c_guest is out of the MD potential: mu is referenced to it
        gcmc.update({'species': guest, 'mu': mu - self.ctx.mu_offset})
        gcmc.setdefault('max_count', self.ctx.guest_sites)  # x <= 1: at most the guest sites of `structure`
        parameters.update(
            {
                'temperature': temperature,
                'seed': int(self.inputs.seed.value) + 1000 * self.ctx.iteration + int(key[2:]),
                'gcmc': gcmc,
                'extrapolation': {
                    **(parameters.get('extrapolation') or {}),
                    'save_threshold': self.inputs.select_threshold.value,
                    'break_threshold': self.inputs.break_threshold.value,
                },
            }
        )
        inputs.lammps.parameters = orm.Dict(parameters)
        inputs.lammps.structure = self.inputs.structure
        inputs.lammps.potential = self.ctx.md_potential
        inputs.metadata = {'call_link_label': f'sample_{self.ctx.iteration:03d}_{key}'}
        return self.submit(LammpsMtpBaseWorkChain, **inputs)

    def inspect_sampling(self):
        """Gather max grades, coverage and the extrapolative configurations; decide convergence."""
        iteration = self.ctx.iteration
        grades, extrapolative, complete = [], {}, True
        for k, (mu, temperature) in enumerate(self.ctx.state_points):
            key = f'sp{k:03d}'
            node = self.ctx.md[key]
            if not node.is_finished_ok:
                self.ctx.failures['state_points'][f'{iteration:03d}_{key}'] = {
                    'mu': mu,
                    'temperature': temperature,
                    'exit_status': node.exit_status,
                    'process_uuid': node.uuid,
                    'reason': node.exit_message or f'state {node.process_state.value}',
                }
                self.report(f'state point mu={mu:.2f} eV T={temperature:g} K failed <{node.pk}>: {node.exit_message}')
                grades.append(None)
                complete = False
                continue
            grade = node.outputs.max_grade.value if 'max_grade' in node.outputs else 0.0
            grades.append(grade)
            label = f'it{iteration:03d}_{key}'
            if 'thermo' in node.outputs:
                self.ctx.thermo[label] = node.outputs.thermo
                self.ctx.coverage_keys[label] = [iteration, mu, temperature]
            if 'extrapolative_configurations' in node.outputs:
                extrapolative[label] = node.outputs.extrapolative_configurations
            if grade >= self.inputs.select_threshold.value:
                complete = False
        if all(g is None for g in grades):
            return self.exit_codes.ERROR_ALL_STATE_POINTS_FAILED.format(iteration=iteration)
        self.ctx.iteration_grades = grades
        known = [(g, sp) for g, sp in zip(grades, self.ctx.state_points) if g is not None]
        self.ctx.last_max_grade, (self.ctx.worst_mu, self.ctx.worst_t) = max(known, key=lambda item: item[0])
        self.ctx.candidates = None
        closest = self._closest_approach()
        shortest = {label: shortest_distances(node) for label, node in extrapolative.items()}
        dropped = sum(int((d < closest).sum()) for d in shortest.values())
        if dropped:
            self.report(
                f'iteration {iteration}: {dropped} extrapolative configuration(s) with atoms closer than {closest:g} '
                'Angstrom left out (not worth a DFT label)'
            )
        if any((d >= closest).any() for d in shortest.values()):
            self.ctx.candidates = collect_candidates(
                min_distance=orm.Float(closest),
                **extrapolative,
                metadata={'call_link_label': f'candidates_{iteration:03d}'},
            )
            self._keep(
                self.ctx.candidates,
                iteration,
                'candidates',
                max_grade=float(self.ctx.last_max_grade),
                mu=float(self.ctx.worst_mu),
                temperature=float(self.ctx.worst_t),
            )
        self.ctx.needs_sampling = False
        self.ctx.converged = complete and self._rmse_targets_met()
        self.ctx.summary['iterations'].append(iteration)
        self.ctx.summary['labels'].append(len(self.ctx.training_set))
        self.ctx.summary['max_grades'].append(grades)
        if self.ctx.converged:
            self.report(
                f'iteration {iteration}: converged, max grade {self.ctx.last_max_grade:.3g} < '
                f'{self.inputs.select_threshold.value:g} at every state point'
            )
        elif iteration >= self.inputs.max_iterations.value:
            self.report(self._progress(iteration, None, None, None))
        return None

    def _closest_approach(self) -> float:
        """[Angstrom] candidates with two atoms closer than this are not labelled: the potential's ``min_dist`` (below
        it the radial basis is evaluated outside its interval: a label there cannot be fitted) and at least
        DftLabelingWorkChain's ``min_interatomic_distance``."""
        dft = self.inputs.get('dft', {})
        closest = float(dft['min_interatomic_distance'].value) if 'min_interatomic_distance' in dft else 0.0
        min_dist = self.ctx.active_potential.base.attributes.get('min_dist', None)
        return max(closest, float(min_dist)) if min_dist is not None else closest

    def _with_validation(self, errors):
        """The fit's errors with the `validation` part replaced by the generation's errors on `validation_set`."""
        evaluated = evaluate_potential(
            self.ctx.active_potential,
            self.inputs.validation_set,
            metadata={'call_link_label': f'validation_{self.ctx.iteration:03d}'},
        )
        if errors is None:
            return evaluated
        return merge_error_tables(
            fit=errors, validation=evaluated, metadata={'call_link_label': f'errors_{self.ctx.iteration:03d}'}
        )

    def _rmse_targets_met(self) -> bool:
        if 'target_rmse' not in self.inputs:
            return True
        errors = self.ctx.errors.get(f'iteration_{self.ctx.iteration:03d}')
        if errors is None:
            return False
        table = errors.get_dict().get('validation') or errors.get_dict().get('training', {})
        keys = {'energy': 'energy_per_atom', 'forces': 'forces', 'stress': 'stress'}
        for quantity, target in self.inputs.target_rmse.get_dict().items():
            value = table.get(keys[quantity], {}).get('rmse')
            if value is None or value > target:
                return False
        return True

    def _progress(self, iteration, selected, labelled, failed) -> str:
        n_points = len(self.ctx.state_points)
        text = (
            f'iteration {iteration}: {n_points} state points, max grade {self.ctx.last_max_grade:.3g} at '
            f'mu={self.ctx.worst_mu:.2f} eV T={self.ctx.worst_t:g} K'
        )
        if selected is not None:
            text += f', {selected} selected, {labelled} labelled, {failed} failed'
        errors = self.ctx.errors.get(f'iteration_{iteration:03d}')
        if errors is not None:
            table = errors.get_dict().get('validation') or errors.get_dict().get('training', {})
            forces = table.get('forces', {}).get('rmse')
            if forces is not None:
                text += f'; force RMSE {forces:.3g} meV/A'
        return text

    # ------------------------------------------------------------------------------------- select and label
    def should_label(self):
        return (
            not self.ctx.converged
            and self.ctx.candidates is not None
            and self.ctx.iteration < self.inputs.max_iterations.value
        )

    def select(self):
        """Greedy MaxVol over all saved extrapolative configurations of the iteration, capped."""
        inputs = AttributeDict(self.exposed_inputs(MtpSelectCalculation, namespace='select'))
        inputs.potential = self.ctx.active_potential
        inputs.training_set = self.ctx.training_set
        inputs.candidates = self.ctx.candidates
        inputs.parameters = orm.Dict(
            {
                'threshold': self.inputs.get('swap_threshold', self.inputs.select_threshold).value,
                'max_count': self.inputs.max_labels_per_iteration.value,
            }
        )
        label = f'select_{self.ctx.iteration:03d}'
        return ToContext(selection=self.submit(MtpSelectBaseWorkChain, mtp=inputs, metadata={'call_link_label': label}))

    def inspect_select(self):
        node = self.ctx.selection
        self.ctx.selected = None
        if node.is_finished_ok and 'selected' in node.outputs:
            self.ctx.selected = node.outputs.selected
        elif not node.is_finished_ok:
            self.report(f'selection <{node.pk}> failed: {node.exit_message}; nothing labelled this iteration')

    def label(self):
        """Label the selected configurations with pw.x (rolling pool inside DftLabelingWorkChain)."""
        if self.ctx.selected is None:
            self.ctx.labelling = None
            return None
        to_label = self.ctx.selected
        self.ctx.cuts = None
        if self.inputs.selection.value == 'neighbourhood':
            to_label = self.ctx.cuts = self._cut_neighbourhoods()
        structures = split_configurations(to_label, metadata={'call_link_label': f'split_{self.ctx.iteration:03d}'})
        inputs = AttributeDict(self.exposed_inputs(DftLabelingWorkChain, namespace='dft'))
        inputs.structures = structures
        inputs.metadata = {'call_link_label': f'label_{self.ctx.iteration:03d}'}
        node = self.submit(DftLabelingWorkChain, **inputs)
        return ToContext(labelling=node)

    def _cut_neighbourhoods(self) -> TrainingSetData:
        """The selected configurations replaced by cells cut around their most extrapolative atoms (weighted)."""
        settings = neighbourhood_settings(self.inputs)
        settings.update(
            r_mtp=float(self.ctx.active_potential.base.attributes.get('max_dist')),
            threshold=self.inputs.select_threshold.value,
        )
        cuts = cut_selected_neighbourhoods(
            self.ctx.selected,
            self.ctx.selection.outputs.grades,
            orm.Dict(settings),
            metadata={'call_link_label': f'cut_{self.ctx.iteration:03d}'},
        )
        table = cuts.base.attributes.get('cuts')
        sizes = ', '.join(f'{c["atoms"]} ({c["core_atoms"]} core) of {c["sampled_atoms"]}' for c in table)
        self.report(
            f'iteration {self.ctx.iteration}: {len(self.ctx.selected)} selected configuration(s) cut into '
            f'{len(table)} neighbourhood cell(s) of r_core {settings["r_core"]:g} + r_mtp {settings["r_mtp"]:g} '
            f'Angstrom, atoms: {sizes}'
        )
        return cuts

    def inspect_label(self):
        """Merge the new labels into the training set; failures are recorded and skipped."""
        iteration = self.ctx.iteration
        node = self.ctx.labelling
        selected = len(self.ctx.selected) if self.ctx.selected is not None else 0
        labelled = failed = 0
        if node is not None:
            failed = self._record_label_failures(node, iteration)
            if 'training_set' in node.outputs:
                new = node.outputs.training_set
                if self.ctx.get('cuts') is not None:  # the cuts' weights: core forces only, no energy or stress
                    new = weight_cut_labels(
                        labelled=new, cuts=self.ctx.cuts, metadata={'call_link_label': f'weight_{iteration:03d}'}
                    )
                labelled = len(new)
                self.ctx.training_set = merge_training_sets(
                    a=self.ctx.training_set, b=new, metadata={'call_link_label': f'merge_{iteration:03d}'}
                )
        self.report(self._progress(iteration, selected, labelled, failed))
        self.ctx.needs_training = True
        if labelled == 0:  # nothing new to learn from: sampling again with the same potential gives the same
            self.report(f'iteration {iteration}: no new label; stopping')
            self.ctx.needs_training = False
            self.ctx.converged = False
            self.ctx.stop = True

    def _record_label_failures(self, node, iteration) -> int:
        if 'failures' not in node.outputs:
            if not node.is_finished_ok and 'training_set' not in node.outputs:
                self.ctx.failures['labels'][f'{iteration:03d}_all'] = {'process_uuid': node.uuid}
            return 0
        failures = node.outputs.failures.get_dict()
        for label, entry in failures.items():
            self.ctx.failures['labels'][f'{iteration:03d}_{label}'] = entry
        return len(failures)

    # ------------------------------------------------------------------------------------------- results
    def results(self):
        """Attach the final potential, training set, learning curve, coverage and failures."""
        self.out('potential', self.ctx.active_potential)
        self.out('training_set', self.ctx.training_set)
        if self.ctx.candidates is not None:
            self.out('candidates', self.ctx.candidates)
        if self.ctx.summary['iterations']:
            curve = build_learning_curve(
                orm.Dict(self.ctx.summary), **self.ctx.errors, metadata={'call_link_label': 'learning_curve'}
            )
            self.out('learning_curve', curve)
        if self.ctx.thermo:
            summary = {
                'host_atoms': self.ctx.host_atoms,
                'guest_sites': self.ctx.guest_sites,
                'keys': self.ctx.coverage_keys,
            }
            coverage = build_coverage(orm.Dict(summary), **self.ctx.thermo, metadata={'call_link_label': 'coverage'})
            self.out('coverage', coverage)
        if self.ctx.failures['labels'] or self.ctx.failures['state_points']:
            failures = record_loop_failures(orm.Dict(self.ctx.failures), metadata={'call_link_label': 'failures'})
            self.out('failures', failures)
        if not self.ctx.converged:
            return self.exit_codes.WARNING_NOT_CONVERGED.format(
                iteration=self.ctx.iteration, grade=float(self.ctx.last_max_grade)
            )
        return ExitCode(0)


__all__ = ['ActiveLearningWorkChain']
