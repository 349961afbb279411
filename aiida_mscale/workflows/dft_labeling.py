"""``DftLabelingWorkChain``: label many atomic configurations with pw.x (energy, forces, stress)."""

from __future__ import annotations

import pathlib

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import WorkChain, while_
from aiida_quantumespresso.common.types import ElectronicType, SpinType
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin, recursive_merge
from aiida_quantumespresso.workflows.pw.base import PwBaseWorkChain

from aiida_mscale.calculations.functions import build_training_set_from_pw, record_failures, relabel_kinds_by_element
from aiida_mscale.data.training_set import TrainingSetData
from aiida_mscale.schema import unsafe_strings
from aiida_mscale.workflows.codes import wrong_plugin
from aiida_mscale.workflows.pool import RollingPoolMixin

PW_PLUGIN = 'quantumespresso.pw'


def minimum_interatomic_distance(structure: orm.StructureData) -> float:
    """Shortest distance between two atoms [Angstrom], periodic images included (inf for a single atom)."""
    from ase.neighborlist import neighbor_list

    atoms = structure.get_ase()
    if len(atoms) == 1 and not any(atoms.pbc):
        return float('inf')
    cutoff = 3.0
    while True:
        distances = neighbor_list('d', atoms, cutoff)
        if len(distances):
            return float(distances.min())
        if cutoff > 50:
            return float('inf')
        cutoff *= 2


#: pw.x reads species labels of at most three characters (QE 6.7, ``atom_label`` in ``read_cards.f90``).
PW_LABEL_LENGTH = 3


def structure_problem(structure: orm.StructureData) -> str | None:
    """What makes ``structure`` unfit for a periodic pw.x SCF label, or None.

    Refused: no atoms, periodicity missing along some direction (a label for a slab or molecule needs a vacuum
    cell made on purpose, periodic in 3D), no cell, or cell vectors that are (nearly) linearly dependent
    (volume below 1e-6 of the product of the vector lengths).
    """
    import numpy as np

    if not structure.sites:
        return 'has no atoms'
    if not all(structure.pbc):
        return (
            f'is not periodic in all three directions (pbc={tuple(bool(p) for p in structure.pbc)}): pw.x labels '
            'need a 3D-periodic cell (put a slab or molecule in a vacuum cell and set pbc=(True, True, True))'
        )
    cell = np.asarray(structure.cell, dtype=float)
    lengths = np.linalg.norm(cell, axis=1)
    if not np.all(np.isfinite(cell)) or np.any(lengths == 0):
        return 'has no cell (a zero or non-finite cell vector)'
    volume = abs(float(np.linalg.det(cell)))
    if volume <= 1e-6 * float(np.prod(lengths)):
        return f'has linearly dependent cell vectors (volume {volume:.3g} Angstrom^3)'
    return None


def kinds_need_relabelling(structure: orm.StructureData) -> bool:
    """Whether a kind name cannot go to pw.x as it is (longer than pw.x's three-character species label)."""
    return any(len(kind.name) > PW_LABEL_LENGTH for kind in structure.kinds)


def validate_inputs(inputs, _):
    """Refuse bad input before anything runs: no structures, wrong code, missing pseudos, unusable cells, overlaps."""
    structures = inputs.get('structures', {})
    if not structures:
        return 'no structures given: pass at least one StructureData in `structures`.'
    pw = inputs.get('pw_base', {}).get('pw', {})
    code = pw.get('code')
    message = wrong_plugin(code, PW_PLUGIN, f'labelling needs a `{PW_PLUGIN}` code (pw.x)')
    if message:
        return message
    parameters = pw.get('parameters')
    if parameters is not None:
        # aiida-quantumespresso writes these strings into Fortran namelists between quotes: a quote or newline
        # in one would end the string and the namelist, so only plain words pass
        unsafe = unsafe_strings(parameters.get_dict(), 'pw_base.pw.parameters')
        if unsafe:
            return f'pw.x parameters hold strings that are not plain words: {"; ".join(unsafe[:3])}'
    for label, structure in structures.items():
        problem = structure_problem(structure)
        if problem:
            return f'structure `{label}` {problem}.'
    pseudos = pw.get('pseudos', {})
    if pseudos:
        for label, structure in structures.items():
            # pseudopotentials are looked up by element: kinds Li1/Li2 both take the pseudo of Li
            missing = sorted({kind.symbol for kind in structure.kinds} - set(pseudos))
            if missing:
                return (
                    f'structure `{label}` has species {missing} with no pseudopotential '
                    f'(pseudos given for {sorted(pseudos)}).'
                )
    min_distance = inputs['min_interatomic_distance'].value
    for label, structure in structures.items():
        distance = minimum_interatomic_distance(structure)
        if distance < min_distance:
            return (
                f'structure `{label}` has overlapping atoms: two atoms are {distance:.3f} Angstrom apart '
                f'(minimum allowed {min_distance} Angstrom, input `min_interatomic_distance`).'
            )
    if inputs['max_concurrent'].value < 1:
        return '`max_concurrent` must be at least 1.'
    return None


class DftLabelingWorkChain(RollingPoolMixin, ProtocolMixin, WorkChain):
    """Label atomic configurations with pw.x SCF (energy, forces, stress) into a :class:`TrainingSetData`.

    Each configuration runs in its own :class:`PwBaseWorkChain` (with its restart handlers); at most
    ``max_concurrent`` run at once, as a rolling pool (:mod:`aiida_mscale.workflows.pool`): the next
    configuration starts as soon as any running one finishes. A configuration that still fails is recorded in
    ``failures`` and skipped: the work chain finishes with the others, and fails (exit code 401) only if all
    failed.

    Pseudopotentials are looked up by element, so kinds named ``Li1``/``Li2`` both take Li's. Kind names pw.x
    cannot read (longer than three characters, e.g. ``fcc111``) are renamed to their element by the
    calcfunction :func:`~aiida_mscale.calculations.functions.relabel_kinds_by_element` before the run; the
    training set always lists elements.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(
            PwBaseWorkChain,
            namespace='pw_base',
            exclude=('pw.structure', 'clean_workdir'),
            namespace_options={'help': 'Inputs of the PwBaseWorkChain run for every configuration.'},
        )
        spec.input_namespace(
            'structures',
            valid_type=orm.StructureData,
            dynamic=True,
            help='The configurations to label, keyed by a label (a valid link label).',
        )
        spec.input('max_concurrent', valid_type=orm.Int, default=lambda: orm.Int(4), help='PwBaseWorkChains at once.')
        spec.input(
            'min_interatomic_distance',
            valid_type=orm.Float,
            default=lambda: orm.Float(0.5),
            help='Refuse a configuration with two atoms closer than this [Angstrom].',
        )
        spec.input(
            'clean_workdir',
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            help='Clean the remote folders of the pw.x runs when this work chain terminates.',
        )
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            while_(cls.has_pending)(cls.run_pool),
            cls.inspect_labels,
            cls.results,
        )
        spec.output('training_set', valid_type=TrainingSetData, required=False, help='The labelled configurations.')
        spec.output(
            'failures',
            valid_type=orm.Dict,
            required=False,
            help='One entry per failed configuration: structure UUID, exit status and reason.',
        )
        spec.exit_code(
            401,
            'ERROR_ALL_CONFIGURATIONS_FAILED',
            message='Every one of the {number} configurations failed to be labelled; see the `failures` output.',
        )

    # ----------------------------------------------------------------------------- protocols
    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        """Return the path to the protocol file (fast / moderate / precise)."""
        return pathlib.Path(__file__).parent / 'protocols' / 'dft_labeling.yaml'

    @classmethod
    def get_builder_from_protocol(
        cls,
        code,
        structures,
        protocol: str | None = None,
        overrides: dict | None = None,
        electronic_type: ElectronicType = ElectronicType.METAL,
        spin_type: SpinType = SpinType.NONE,
        options: dict | None = None,
        **kwargs,
    ):
        """Return a builder for labelling ``structures`` with a protocol.

        :param code: a ``quantumespresso.pw`` code (or its label).
        :param structures: a list of ``StructureData`` (labelled ``structure_000``, ...) or a dict label -> structure.
        :param protocol: ``fast``, ``moderate`` (default) or ``precise``.
        :param overrides: nested dict of inputs overriding the protocol, e.g.
            ``{'pseudo_family': ..., 'max_concurrent': 2, 'pw_base': {'pw': {'parameters': {...}}}}``.
        :param options: ``metadata.options`` for every ``PwCalculation`` (e.g. resources).

        Thresholds that pw.x scales with the number of atoms (``conv_thr``, ``etot_conv_thr``) are taken from
        the smallest configuration, so they are strict enough for all; pseudopotentials and the recommended
        cutoffs cover every element of every configuration.
        """
        from aiida_pseudo.groups.mixins import RecommendedCutoffMixin

        if isinstance(code, str):
            code = orm.load_code(code)
        if isinstance(structures, (list, tuple)):
            structures = {f'structure_{i:03d}': s for i, s in enumerate(structures)}
        structures = dict(structures)
        if not structures:
            raise ValueError('no structures given: pass at least one StructureData.')

        inputs = cls.get_protocol_inputs(protocol, overrides)
        pw_base_overrides = recursive_merge(inputs.get('pw_base', {}), {'pseudo_family': inputs['pseudo_family']})
        family = orm.load_group(inputs['pseudo_family'])
        elements = sorted({kind.symbol for s in structures.values() for kind in s.kinds})
        missing = sorted(set(elements) - set(family.elements))
        if missing:
            raise ValueError(
                f'species {missing} have no pseudopotential in family `{family.label}` '
                f'(it covers {sorted(family.elements)}).'
            )
        smallest = min(structures.values(), key=lambda s: len(s.sites))
        builder_pw_base = PwBaseWorkChain.get_builder_from_protocol(
            code,
            smallest,
            protocol=inputs['pw_base_protocol'],
            overrides=pw_base_overrides,
            electronic_type=electronic_type,
            spin_type=spin_type,
            options=options,
            **kwargs,
        )
        parameters = builder_pw_base.pw.parameters.get_dict()
        system_overrides = inputs.get('pw_base', {}).get('pw', {}).get('parameters', {}).get('SYSTEM', {})
        if not all(key in system_overrides for key in ('ecutwfc', 'ecutrho')):
            if not isinstance(family, RecommendedCutoffMixin):
                raise ValueError(f'family `{family.label}` recommends no cutoffs: give ecutwfc and ecutrho.')
            ecutwfc, ecutrho = family.get_recommended_cutoffs(elements=tuple(elements), unit='Ry')
            parameters['SYSTEM']['ecutwfc'] = system_overrides.get('ecutwfc', ecutwfc)
            parameters['SYSTEM']['ecutrho'] = system_overrides.get('ecutrho', ecutrho)
        builder_pw_base.pw.parameters = orm.Dict(parameters)
        builder_pw_base.pw.pseudos = family.get_pseudos(elements=elements)
        builder_pw_base.pw.pop('structure', None)
        builder_pw_base.pop('clean_workdir', None)

        builder = cls.get_builder()
        builder.pw_base = builder_pw_base
        builder.structures = structures
        builder.max_concurrent = orm.Int(inputs['max_concurrent'])
        builder.clean_workdir = orm.Bool(inputs['clean_workdir'])
        return builder

    # ----------------------------------------------------------------------------- outline
    def setup(self):
        """Queue every configuration, in label order."""
        self.ctx.queue = sorted(self.inputs.structures)
        self.ctx.total = len(self.ctx.queue)
        self.ctx.labelled = {}  # label -> output_trajectory
        self.ctx.failed = {}  # label -> report
        self.ctx.pw_structures = {}  # label -> the structure pw.x ran (the input one, or its element-named copy)
        self.ctx.pool_started = False
        self.report(f'labelling {self.ctx.total} configurations, at most {self.inputs.max_concurrent.value} at once')

    def has_pending(self):
        """Whether configurations remain to be submitted."""
        if not self.ctx.pool_started:
            return True
        return self.pool_has_queue('pw')

    def run_pool(self):
        """Run the queue as a rolling pool of ``max_concurrent`` PwBaseWorkChains."""
        queue = self.ctx.queue if not self.ctx.pool_started else self.ctx._pools['pw']['queue']
        self.ctx.pool_started = True
        self.pool_start('pw', queue, self.inputs.max_concurrent.value, 'submit_label')

    def submit_label(self, label):
        """Submit the PwBaseWorkChain of configuration ``label`` and return its node."""
        inputs = AttributeDict(self.exposed_inputs(PwBaseWorkChain, namespace='pw_base'))
        structure = self.inputs.structures[label]
        if kinds_need_relabelling(structure):
            structure = relabel_kinds_by_element(structure, metadata={'call_link_label': f'relabel_{label}'})
        self.ctx.pw_structures[label] = structure.uuid
        inputs.pw.structure = structure
        # pw.x wants exactly one pseudopotential per kind of this configuration, looked up by element
        inputs.pw.pseudos = {kind.name: inputs.pw.pseudos[kind.symbol] for kind in structure.kinds}
        inputs.metadata.call_link_label = f'label_{label}'
        node = self.submit(PwBaseWorkChain, **inputs)
        self.report(f'submitted <{node.pk}> {label}')
        return node

    def inspect_labels(self):
        """Keep the labels of the configurations that finished; record the ones that failed."""
        for label in sorted(self.ctx.pw):
            node = self.ctx.pw[label]
            reason = None
            if not node.is_finished_ok:
                reason = node.exit_message or f'process ended in state {node.process_state.value}'
            elif 'output_trajectory' not in node.outputs:
                reason = 'finished without an output_trajectory'
            else:
                arrays = node.outputs.output_trajectory.get_arraynames()
                missing = [name for name in ('energy', 'forces', 'stress') if name not in arrays]
                if missing:
                    reason = f'output_trajectory lacks {missing}'
            if reason is None:
                self.ctx.labelled[label] = node.outputs.output_trajectory
            else:
                self.ctx.failed[label] = {
                    'exit_status': node.exit_status if node.exit_status is not None else -1,
                    'reason': reason,
                    'process_uuid': node.uuid,
                }
                self.report(f'configuration `{label}` failed (PwBaseWorkChain<{node.pk}>): {reason}')
        self.report(f'labelled {len(self.ctx.labelled)}/{self.ctx.total}, {len(self.ctx.failed)} failed')

    def results(self):
        """Collect the labels into a TrainingSetData and record the failures."""
        if self.ctx.failed:
            failures = record_failures(
                reports=orm.Dict(self.ctx.failed),
                **{label: self.inputs.structures[label] for label in self.ctx.failed},
                metadata={'call_link_label': 'record_failures'},
            )
            self.out('failures', failures)
        if not self.ctx.labelled:
            return self.exit_codes.ERROR_ALL_CONFIGURATIONS_FAILED.format(number=self.ctx.total)
        training_set = build_training_set_from_pw(
            **self.ctx.labelled, metadata={'call_link_label': 'build_training_set'}
        )
        self.out('training_set', training_set)
        self.report(
            f'training set <{training_set.pk}>: {len(training_set)} configurations, '
            f'{len(self.ctx.failed)} failed and skipped'
        )
        return None

    def on_terminated(self):
        """Clean the remote folders of the pw.x runs if ``clean_workdir`` is set."""
        super().on_terminated()
        if not self.inputs.clean_workdir.value:
            return
        cleaned = []
        for called in self.node.called_descendants:
            if isinstance(called, orm.CalcJobNode):
                try:
                    called.outputs.remote_folder._clean()
                    cleaned.append(called.pk)
                except (OSError, KeyError, AttributeError):
                    pass
        if cleaned:
            self.report(f'cleaned remote folders of calculations: {" ".join(map(str, cleaned))}')


__all__ = ['DftLabelingWorkChain', 'minimum_interatomic_distance', 'structure_problem']
