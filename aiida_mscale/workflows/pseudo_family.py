"""``PseudoFamilyWorkChain``: generate PAW datasets with ld1.x, verify each one, install an aiida-pseudo family.

Per element, all as provenance nodes:

1. ``PseudoGenerationBaseWorkChain`` (ld1.x, with restarts): the dataset and its transferability test (AE vs PS
   excitation energies of the test configurations, eigenvalues, ghost states), judged against the stated tolerances.
2. (protocols ``moderate``/``precise``) pw.x on the element's ACWF unary crystal at the all-electron volume:
   a cutoff scan; :func:`converge_cutoff` (calcfunction) picks the lowest cutoff whose energy per atom is
   within ``energy_tolerance`` (1 meV) and pressure within ``pressure_tolerance`` (0.5 GPa) of the highest.
3. (same protocols) a 7-point equation of state at that cutoff; :func:`fit_equation_of_state`
   (calcfunction) fits Birch-Murnaghan and, for PBE, compares V0, B0, B1 with the all-electron reference of
   the ACWF study (relative errors, nu, Delta; :mod:`aiida_mscale.pseudo.eos`).
4. (``verification.oxides``, e.g. ``['XO', 'XO2']``; needs O in the family) the same equation of state of each
   element's ACWF oxides (:data:`aiida_mscale.pseudo.eos.OXIDES`) with the family's own O dataset, at the larger
   of the element's and O's converged cutoffs: a second crystal per element, in a bonding environment of its own.

:func:`summarize_verification` (calcfunction) collects the verdicts and the recommended cutoffs into one
``verification`` node; the family (``CutoffsPseudoPotentialFamily``, so ``get_recommended_cutoffs`` works) is
then installed from it. Elements that fail a tolerance are kept and named in the family description; elements
whose generation failed are left out and named too. At ``coarse`` (the default, used by ``aiida-mscale
setup``) step 2-3 are skipped and the cutoffs are ld1.x's own estimates.
"""

from __future__ import annotations

import math
import pathlib
from typing import Annotated, Literal

from aiida import orm
from aiida.engine import WorkChain, calcfunction, if_, while_
from aiida.plugins import CalculationFactory
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin, recursive_merge
from pydantic import Field, model_validator

from aiida_mscale.schema import ParameterModel, PositiveFloat, validate_parameters
from aiida_mscale.workflows.pool import RollingPoolMixin
from aiida_mscale.workflows.pseudo_generation_base import PseudoGenerationBaseWorkChain

#: The ACWF unary each element is verified on (non-magnetic, as the all-electron reference): the element's
#: own lattice where it is one of the four prototypes, simple cubic for the molecular/chain elements.
PROTOTYPE = {
    'Li': 'BCC',
    'Na': 'BCC',
    'C': 'Diamond',
    'Si': 'Diamond',
    'Mn': 'BCC',
    'Fe': 'BCC',
    'Co': 'FCC',
    'Ni': 'FCC',
}
DEFAULT_PROTOTYPE = 'SC'

#: Exit status of PseudoGenerationBaseWorkChain for a dataset that exists but fails ld1.x's tests (outputs attached).
DATASET_FAILED_TESTS = PseudoGenerationBaseWorkChain.exit_codes.ERROR_DATASET_FAILED_TESTS.status

#: Cutoffs (Ry) recorded in the family: stringency of aiida-pseudo.
STRINGENCY = 'normal'


def prototype_of(element: str) -> str:
    return PROTOTYPE.get(element, DEFAULT_PROTOTYPE)


def kpoints_distance_of(element: str, verification: dict, crystal: str | None = None) -> float:
    """The k-point spacing (1/Angstrom) of ``element``'s pw.x runs on ``crystal`` (default: its unary prototype):
    the protocol's ``kpoints_distance``, or the ``kpoints_distance_by_prototype`` entry of that crystal (a prototype
    or an oxide configuration) where that is finer (a cap, never coarser)."""
    spacing = float(verification['kpoints_distance'])
    capped = (verification.get('kpoints_distance_by_prototype') or {}).get(crystal or prototype_of(element))
    return min(spacing, float(capped)) if capped is not None else spacing


def verification_kpoints(element: str, verification: dict, crystal: str | None = None) -> orm.KpointsData:
    """The Monkhorst-Pack mesh of every pw.x run of ``element`` on ``crystal`` (default: its unary prototype; the
    cutoff scan and all EOS volumes).

    One mesh per crystal, from its ACWF cell at the all-electron volume and :func:`kpoints_distance_of`: a
    mesh that changed with the volume would put steps into E(V).
    """
    from aiida_mscale.pseudo import eos

    crystal = crystal or prototype_of(element)
    v0 = eos.reference_fit(eos.load_reference(), element, crystal)['v0']
    mesh = orm.KpointsData()
    mesh.set_cell_from_structure(orm.StructureData(ase=eos.crystal_structure(element, crystal, v0)))
    mesh.set_kpoints_mesh_from_density(kpoints_distance_of(element, verification, crystal))
    kpoints = orm.KpointsData()
    kpoints.set_kpoints_mesh(mesh.get_kpoints_mesh()[0])
    return kpoints


# ---------------------------------------------------------------------------------------- calcfunctions
def _run_values(runs: dict, key: str) -> tuple[float, float, int]:
    """(energy per atom in eV, pressure in GPa, number of atoms) of one pw.x run from its output nodes."""
    parameters = runs[f'{key}_parameters'].get_dict()
    trajectory = runs[f'{key}_trajectory']
    atoms = int(parameters.get('number_of_atoms') or len(trajectory.get_array('positions')[-1]))
    stress = trajectory.get_array('stress')[-1]
    pressure = float(stress[0][0] + stress[1][1] + stress[2][2]) / 3.0
    return float(parameters['energy']) / atoms, pressure, atoms


@calcfunction
def converge_cutoff(settings: orm.Dict, **runs) -> orm.Dict:
    """The recommended cutoff from a pw.x cutoff scan (runs ``c<ecutwfc>_parameters``/``_trajectory``).

    Recommended = the lowest scanned ``ecutwfc`` from which every higher one is within ``energy_tolerance``
    eV/atom and ``pressure_tolerance`` GPa of the reference (highest) cutoff; ``ecutrho = dual * ecutwfc``.
    """
    s = settings.get_dict()
    cutoffs = sorted({int(key[1:].split('_')[0]) for key in runs})
    values = {cutoff: _run_values(runs, f'c{cutoff}') for cutoff in cutoffs}
    reference = cutoffs[-1]
    e_ref, p_ref, _ = values[reference]
    rows = []
    for cutoff in cutoffs[:-1]:
        energy, pressure, _ = values[cutoff]
        within = abs(energy - e_ref) < s['energy_tolerance'] and abs(pressure - p_ref) < s['pressure_tolerance']
        rows.append(
            {
                'ecutwfc': cutoff,
                'delta_energy_per_atom': energy - e_ref,
                'delta_pressure': pressure - p_ref,
                'within_tolerance': within,
            }
        )
    converged = None
    for row in reversed(rows):
        if not row['within_tolerance']:
            break
        converged = row['ecutwfc']
    recommended = converged if converged is not None else reference
    return orm.Dict(
        {
            'scan': rows,
            'reference_cutoff': reference,
            'cutoff_wfc': float(recommended),
            'cutoff_rho': float(recommended * s['dual']),
            'converged_below_reference': converged is not None,
            'energy_tolerance_ev_per_atom': s['energy_tolerance'],
            'pressure_tolerance_gpa': s['pressure_tolerance'],
            'units': {'cutoff': 'Ry', 'energy': 'eV/atom', 'pressure': 'GPa'},
        }
    )


@calcfunction
def fit_equation_of_state(settings: orm.Dict, **runs) -> orm.Dict:
    """Birch-Murnaghan fit of the pw.x runs ``v<k>_parameters``/``_trajectory`` and, if ``settings`` carries a
    reference (``v0``, ``b0``, ``b1``, ``num_atoms``), the relative errors, nu and Delta against it."""
    import numpy as np

    from aiida_mscale.pseudo import eos

    s = settings.get_dict()
    keys = sorted({key.rsplit('_', 1)[0] for key in runs})
    volumes, energies = [], []
    for key in keys:
        energy, _, atoms = _run_values(runs, key)
        trajectory = runs[f'{key}_trajectory']
        cell = trajectory.get_array('cells')[-1]
        volumes.append(abs(float(np.linalg.det(cell))))
        energies.append(energy * atoms)
    result = {
        'prototype': s['prototype'],
        'volumes': volumes,
        'energies': energies,
        'units': {'volume': 'Angstrom^3 per cell', 'energy': 'eV per cell', 'b0': 'eV/Angstrom^3', 'delta': 'meV/atom'},
    }
    try:
        fit = eos.birch_murnaghan_fit(volumes, energies)
    except ValueError as exception:  # recorded, and the element marked as failing, instead of stopping the family
        result['fit_error'] = str(exception)
        return orm.Dict(result)
    result['fit'] = fit
    result['b0_gpa'] = fit['b0'] * eos.EV_PER_ANGSTROM3_IN_GPA
    reference = s.get('reference')
    if reference:
        result['reference'] = reference
        result.update(eos.relative_errors(fit, reference))
        result['nu'] = eos.nu_metric(fit, reference)
        result['delta'] = eos.delta_metric(fit, reference, reference['num_atoms'])
    return orm.Dict(result)


@calcfunction
def summarize_verification(settings: orm.Dict, **nodes) -> orm.Dict:
    """One verdict per element from its ``<El>_transferability``, ``<El>_cutoff`` and ``<El>_eos`` nodes.

    Recommended cutoffs: the pw.x-converged ones when a cutoff scan ran, else ld1.x's estimates (the largest
    wavefunction estimate, and the larger of ld1.x's augmentation estimate and ``dual`` times it), raised to the
    cutoff measured once with pw.x where ``settings['measured_cutoffs']`` has one (:mod:`aiida_mscale.pseudo.cutoffs`),
    rounded up. ``cutoff_notes`` names the elements whose stored cutoff is not pw.x-checked or not converged.
    """
    from aiida_mscale.pseudo.cutoffs import dataset_key

    s = settings.get_dict()
    tolerances = s['tolerances']
    elements = sorted({key.split('_', 1)[0] for key in nodes})
    summary, cutoffs, failing, notes = {}, {}, {}, {}
    for element in elements:
        transferability = nodes[f'{element}_transferability'].get_dict()
        entry = {
            'dataset': transferability.get('dataset'),
            'source': transferability.get('source'),
            'max_transferability_error': transferability.get('max_transferability_error'),
            'max_eigenvalue_error': transferability.get('max_eigenvalue_error'),
            'ghosts': transferability.get('ghosts', []),
        }
        failures = list(transferability.get('failures', []))
        cutoff_node = nodes.get(f'{element}_cutoff')
        if cutoff_node is not None:
            cutoff = cutoff_node.get_dict()
            wfc, rho = cutoff['cutoff_wfc'], cutoff['cutoff_rho']
            entry['cutoff_source'] = 'pw.x convergence'
            if not cutoff['converged_below_reference']:
                failures.append(f'cutoff not converged below {cutoff["reference_cutoff"]} Ry')
        else:
            wfc = transferability.get('wfc_cutoff_estimate') or s['fallback_cutoff']
            rho = max(transferability.get('rho_cutoff_estimate') or 0.0, s['dual'] * wfc)
            entry['cutoff_source'] = 'ld1.x estimate'
            measured = s.get('measured_cutoffs', {}).get(element)
            if measured is not None and dataset_key(measured['dataset']) != dataset_key(entry['dataset'] or ''):
                measured = None  # measured with another pslibrary dataset of the element (e.g. PBEsol N 0.1)
            if measured is None:
                notes[element] = "ld1.x's estimate, not checked with pw.x"
            elif measured['ecutwfc'] > wfc:
                # the scan is the measurement: it raises the estimate where that is not energy-converged
                wfc = measured['ecutwfc']
                rho = max(rho, s['dual'] * wfc)
                entry['cutoff_source'] = 'pw.x scan (measured)'
            else:
                entry['cutoff_source'] = 'ld1.x estimate (pw.x-checked)'
            if measured is not None and not measured['converged_below_reference']:
                notes[element] = (
                    f'energy per atom not within {s["measured_criterion"]} of the {measured["reference_cutoff"]:g} Ry '
                    'reference at any lower scanned cutoff: the reference is stored'
                )
        wfc, rho = float(math.ceil(wfc)), float(math.ceil(rho))
        entry['cutoff_wfc'], entry['cutoff_rho'] = wfc, rho
        cutoffs[element] = {'cutoff_wfc': wfc, 'cutoff_rho': rho}
        eos_node = nodes.get(f'{element}_eos')
        if eos_node is not None:
            entry['eos'], eos_failures = _eos_entry(eos_node.get_dict(), tolerances, '')
            failures += eos_failures
        oxide_keys = sorted(key for key in nodes if key.startswith(f'{element}_eos_'))
        if oxide_keys:
            entry['oxides'] = {}
            for key in oxide_keys:
                configuration = key.rsplit('_', 1)[1]
                entry['oxides'][configuration], eos_failures = _eos_entry(
                    nodes[key].get_dict(), tolerances, f' {configuration}'
                )
                failures += eos_failures
        entry['failures'] = failures
        entry['passed'] = not failures
        if failures:
            failing[element] = failures
        summary[element] = entry
    extra = {}
    if 'measured_eos' in s and s['functional'] == 'PBE':  # pw.x EOS measured once with these very datasets
        verdicts = {e: s['measured_eos'].get(summary[e]['dataset']) for e in elements if 'eos' not in summary[e]}
        extra['measured_eos'] = {e: verdict for e, verdict in verdicts.items() if verdict is not None}
        extra['eos_not_verified'] = sorted(e for e, verdict in verdicts.items() if verdict is None)
    return orm.Dict(
        {
            **extra,
            'functional': s['functional'],
            'level': s['level'],
            'elements': summary,
            'cutoffs': cutoffs,
            'failing': failing,
            'cutoff_notes': notes,
            'missing': s.get('missing', {}),
            'tolerances': tolerances,
        }
    )


def _eos_entry(fit: dict, tolerances: dict, crystal: str) -> tuple[dict, list[str]]:
    """The summary of one :func:`fit_equation_of_state` result and its failures (``crystal``: '' for the unary
    prototype, ' XO2' etc. for an oxide, named in every failure so that the verdict says which crystal failed)."""
    if 'fit_error' in fit:
        return {'prototype': fit['prototype']}, [f'EOS{crystal} fit failed: {fit["fit_error"]}']
    entry = {
        key: fit.get(key)
        for key in ('prototype', 'v0_relative_error', 'b0_relative_error', 'b1_relative_error', 'nu', 'delta')
    }
    entry['v0'] = fit['fit']['v0']
    entry['b0_gpa'] = fit['b0_gpa']
    failures = []
    if 'nu' in fit:
        if fit['nu'] > tolerances['nu']:
            failures.append(f'EOS{crystal} nu = {fit["nu"]:.2f} > {tolerances["nu"]}')
        if abs(fit['v0_relative_error']) > tolerances['v0_relative_error']:
            failures.append(f'V0{crystal} error {fit["v0_relative_error"] * 100:.2f} %')
        if abs(fit['b0_relative_error']) > tolerances['b0_relative_error']:
            failures.append(f'B0{crystal} error {fit["b0_relative_error"] * 100:.1f} %')
    return entry, failures


# ---------------------------------------------------------------------------------------- the work chain
class Tolerances(ParameterModel):
    transferability: PositiveFloat
    eigenvalue: PositiveFloat
    nu: PositiveFloat
    v0_relative_error: PositiveFloat
    b0_relative_error: PositiveFloat


class VerificationSettings(ParameterModel):
    """The ``verification`` input (see protocols/pseudo_family.yaml): cutoffs in Ry, k-point spacing in 1/A,
    smearing width in Ry, tolerances in eV/atom, GPa, Ry (ld1.x) and relative units."""

    pw: bool
    eos: bool = True  # False: the pw.x cutoff scan only (for measuring cutoffs)
    cutoffs: list[Annotated[float, Field(gt=5, le=400)]] = Field(min_length=1, max_length=20)
    reference_cutoff: Annotated[float, Field(gt=5, le=500)]
    dual: Annotated[float, Field(ge=4, le=16)]
    kpoints_distance: Annotated[float, Field(gt=0.02, le=2.0)]
    # a finer spacing for the elements verified on one crystal (``PROTOTYPE``), e.g. the metallic fictitious SC,
    # or for one oxide configuration
    kpoints_distance_by_prototype: dict[
        Literal['BCC', 'FCC', 'SC', 'Diamond', 'X2O', 'XO', 'XO2', 'XO3'], Annotated[float, Field(gt=0.02, le=2.0)]
    ] = Field(default_factory=dict)
    # the ACWF oxides whose EOS is run for every element but O (with the family's O dataset); [] for none
    oxides: list[Literal['X2O', 'XO', 'XO2', 'XO3']] = Field(default_factory=list, max_length=4)
    smearing: Literal['cold', 'gaussian', 'mv', 'mp', 'fd']
    degauss: Annotated[float, Field(gt=0, le=0.2)]
    conv_thr_per_atom: Annotated[float, Field(gt=0, le=1e-4)]
    eos_points: Annotated[int, Field(ge=7, le=21)]
    eos_range: Annotated[float, Field(gt=0.005, le=0.15)]
    energy_tolerance: PositiveFloat
    pressure_tolerance: PositiveFloat
    tolerances: Tolerances

    @model_validator(mode='after')
    def _reference_above_scan(self):
        if self.reference_cutoff <= max(self.cutoffs):
            raise ValueError(f'reference_cutoff {self.reference_cutoff} must exceed every scanned cutoff')
        return self


def validate_inputs(inputs, _):
    from aiida_mscale.pseudo import ld1

    try:
        ld1.check_functional(inputs['functional'].value)
        elements = inputs['elements'].get_list()
        if not elements:
            return 'no elements given'
        for element in elements:
            ld1.check_element(element)
    except ValueError as exception:
        return str(exception)
    if len(set(elements)) != len(elements):
        return f'elements repeated in {elements}'
    try:
        verification = validate_parameters(VerificationSettings, inputs['verification'].get_dict(), 'verification')
    except ValueError as exception:
        return str(exception)
    if verification.pw and 'pw_code' not in inputs:
        return 'verification with pw.x (protocol moderate/precise) needs `pw_code`'
    if verification.oxides and not (verification.pw and verification.eos):
        return f'verification.oxides {verification.oxides} needs the pw.x equation of state (`pw` and `eos` true)'
    if verification.oxides and 'O' not in elements:
        return f'verification.oxides {verification.oxides} needs O among the elements (its dataset is in the oxides)'
    if len(set(verification.oxides)) != len(verification.oxides):
        return f'verification.oxides repeats a configuration: {verification.oxides}'
    label = inputs['family_label'].value
    if orm.QueryBuilder().append(orm.Group, filters={'label': label}).count():
        return f'a group `{label}` already exists: choose another family_label or delete it'
    return None


class PseudoFamilyWorkChain(RollingPoolMixin, ProtocolMixin, WorkChain):
    """Generate, verify and install a family of ld1.x PAW datasets.

    Children (ld1.x generations, pw.x runs) run as rolling pools of at most ``max_concurrent`` at a time.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('code', valid_type=orm.AbstractCode, help='ld1.x (`ld1@localhost`).')
        spec.input('pw_code', valid_type=orm.AbstractCode, required=False, help='pw.x, for the pw.x checks.')
        spec.input('elements', valid_type=orm.List, help='Chemical symbols.')
        spec.input('functional', valid_type=orm.Str, help='`PBE` or `PBEsol`.')
        spec.input('family_label', valid_type=orm.Str, help='Label of the aiida-pseudo family to install.')
        spec.input('level', valid_type=orm.Str, default=lambda: orm.Str('custom'), help='Name of the protocol.')
        spec.input('verification', valid_type=orm.Dict, help='Precision of the verification (see the protocol).')
        spec.input('options', valid_type=orm.Dict, required=False, help='metadata.options of the pw.x runs.')
        spec.input(
            'max_concurrent',
            valid_type=orm.Int,
            default=lambda: orm.Int(2),
            help='At most this many ld1.x or pw.x jobs at once.',
        )
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            while_(cls.generation_pending)(cls.generate),
            cls.inspect_generation,
            if_(cls.should_run_pw)(
                while_(cls.cutoff_pending)(cls.run_cutoff_scan),
                cls.inspect_cutoff_scan,
                if_(cls.should_run_eos)(
                    while_(cls.eos_pending)(cls.run_eos),
                    cls.inspect_eos,
                ),
            ),
            cls.summarize,
            cls.install_family,
        )
        spec.output('verification', valid_type=orm.Dict, help='Per-element verdicts, errors and cutoffs.')
        spec.output_namespace('pseudos', dynamic=True, help='The installed datasets by element.')
        spec.exit_code(401, 'ERROR_ALL_GENERATIONS_FAILED', message='no dataset could be generated: {message}')
        spec.exit_code(402, 'ERROR_PW_FAILED', message='pw.x verification runs failed for {message}')

    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        return pathlib.Path(__file__).parent / 'protocols' / 'pseudo_family.yaml'

    @classmethod
    def get_builder_from_protocol(
        cls,
        code,
        elements,
        functional: str,
        family_label: str,
        protocol: str | None = None,
        pw_code=None,
        overrides: dict | None = None,
        options: dict | None = None,
        max_concurrent: int = 2,
    ):
        """A builder at ``protocol`` (coarse / moderate / precise), ``overrides`` merged into the inputs."""
        inputs = cls.get_protocol_inputs(protocol, overrides)
        if 'O' not in elements and 'oxides' not in ((overrides or {}).get('verification') or {}):
            inputs['verification']['oxides'] = []  # the protocol's oxides need O; an explicit request is validated
        builder = cls.get_builder()
        builder.code = code
        builder.elements = orm.List(list(elements))
        builder.functional = orm.Str(functional)
        builder.family_label = orm.Str(family_label)
        builder.level = orm.Str(protocol or cls.get_default_protocol())
        builder.verification = orm.Dict(inputs['verification'])
        if pw_code is not None:
            builder.pw_code = pw_code
        if options:
            builder.options = orm.Dict(options)
        builder.max_concurrent = orm.Int(max_concurrent)
        return builder

    # ------------------------------------------------------------------------ pools
    def setup(self):
        self.ctx.started = []

    def _pending(self, name):
        return name not in self.ctx.started or self.pool_has_queue(name)

    def _run_pool(self, name, keys, submit):
        queue = keys if name not in self.ctx.started else self.ctx._pools[name]['queue']
        self.ctx.started = self.ctx.started + [name]
        self.pool_start(name, queue, self.inputs.max_concurrent.value, submit)

    # ------------------------------------------------------------------------ generation
    def generation_pending(self):
        return self._pending('generate')

    def generate(self):
        self._run_pool('generate', self.inputs.elements.get_list(), 'submit_generation')

    def submit_generation(self, element):
        builder = PseudoGenerationBaseWorkChain.get_builder()
        builder.generate.code = self.inputs.code
        builder.generate.element = orm.Str(element)
        builder.generate.functional = self.inputs.functional
        builder.metadata.call_link_label = f'generate_{element}'
        return self.submit(builder)

    def inspect_generation(self):
        self.ctx.pseudos, self.ctx.transferability, self.ctx.missing = {}, {}, {}
        for element in self.inputs.elements.get_list():
            node = self.ctx.generate[element]
            if 'transferability' in node.outputs:
                self.ctx.transferability[element] = node.outputs.transferability
            # 310: the dataset was generated but fails an ld1.x test or has a ghost: kept, and marked by the summary
            if 'pseudo' in node.outputs and node.exit_status in (0, DATASET_FAILED_TESTS):
                self.ctx.pseudos[element] = node.outputs.pseudo
            else:
                self.ctx.missing[element] = f'generation failed: [{node.exit_status}] {node.exit_message}'
                self.report(f'{element}: {self.ctx.missing[element]}')
        if not self.ctx.pseudos:
            return self.exit_codes.ERROR_ALL_GENERATIONS_FAILED.format(message='; '.join(self.ctx.missing.values()))
        return None

    # ------------------------------------------------------------------------ pw.x checks
    def should_run_pw(self):
        return bool(self.inputs.verification.get_dict().get('pw'))

    @staticmethod
    def _system(key: str) -> tuple[str, str]:
        """(element, crystal) of a run key's system: ``Na`` is Na's unary prototype, ``Na_XO2`` its XO2 oxide."""
        element, _, crystal = key.partition('_')
        return element, crystal or prototype_of(element)

    def _reference(self, element, crystal=None):
        from aiida_mscale.pseudo import eos

        return eos.reference_fit(eos.load_reference(), element, crystal or prototype_of(element))

    def _pw_builder(self, element, volume, ecutwfc, crystal=None):
        from aiida_mscale.pseudo import eos

        v = self.inputs.verification.get_dict()
        crystal = crystal or prototype_of(element)
        PwCalculation = CalculationFactory('quantumespresso.pw')
        atoms = eos.crystal_structure(element, crystal, volume)
        builder = PwCalculation.get_builder()
        builder.code = self.inputs.pw_code
        builder.structure = orm.StructureData(ase=atoms)
        builder.kpoints = verification_kpoints(element, v, crystal)
        builder.pseudos = {kind: self.ctx.pseudos[kind] for kind in sorted(set(atoms.get_chemical_symbols()))}
        builder.parameters = orm.Dict(
            {
                'CONTROL': {'calculation': 'scf', 'tstress': True, 'tprnfor': True},
                'SYSTEM': {
                    'ecutwfc': float(ecutwfc),
                    'ecutrho': float(ecutwfc * v['dual']),
                    'occupations': 'smearing',
                    'smearing': v['smearing'],
                    'degauss': v['degauss'],
                },
                'ELECTRONS': {'conv_thr': v['conv_thr_per_atom'] * len(atoms), 'mixing_beta': 0.4},
            }
        )
        options = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 1800}
        if 'options' in self.inputs:
            options.update(self.inputs.options.get_dict())
        builder.metadata.options = options
        return builder

    def _cutoffs(self):
        v = self.inputs.verification.get_dict()
        return sorted(set(v['cutoffs']) | {v['reference_cutoff']})

    def cutoff_pending(self):
        return self._pending('cutoff')

    def run_cutoff_scan(self):
        keys = [f'{element}_c{cutoff}' for element in self.ctx.pseudos for cutoff in self._cutoffs()]
        self._run_pool('cutoff', keys, 'submit_cutoff')

    def submit_cutoff(self, key):
        element, cutoff = key.split('_c')
        builder = self._pw_builder(element, self._reference(element)['v0'], int(cutoff))
        builder.metadata.call_link_label = f'cutoff_{key}'
        return self.submit(builder)

    def _collect(self, prefix, element, keys):
        runs, failed = {}, []
        for key in keys:
            node = self.ctx[prefix][f'{element}_{key}']
            if not node.is_finished_ok:
                failed.append(f'{element} {prefix} {key}: [{node.exit_status}] {node.exit_message}')
                continue
            runs[f'{key}_parameters'] = node.outputs.output_parameters
            runs[f'{key}_trajectory'] = node.outputs.output_trajectory
        return runs, failed

    def inspect_cutoff_scan(self):
        v = self.inputs.verification.get_dict()
        cutoffs = self._cutoffs()
        self.ctx.cutoff_results = {}
        failed_all = []
        for element in self.ctx.pseudos:
            runs, failed = self._collect('cutoff', element, [f'c{c}' for c in cutoffs])
            failed_all += failed
            if failed:
                continue
            settings = orm.Dict({key: v[key] for key in ('energy_tolerance', 'pressure_tolerance', 'dual')})
            self.ctx.cutoff_results[element] = converge_cutoff(settings, **runs)
        if failed_all:
            self.report('; '.join(failed_all))
            return self.exit_codes.ERROR_PW_FAILED.format(message='; '.join(failed_all))
        return None

    def _volumes(self, element, crystal=None):
        import numpy as np

        v = self.inputs.verification.get_dict()
        v0 = self._reference(element, crystal)['v0']
        return [float(v0 * (1 + x)) for x in np.linspace(-v['eos_range'], v['eos_range'], v['eos_points'])]

    def _eos_systems(self) -> list[str]:
        """The EOS systems: every element with a converged cutoff on its prototype, then ``<El>_<oxide>`` for every
        element but O and every configuration of ``verification.oxides`` (when O's cutoff is there too)."""
        systems = list(self.ctx.cutoff_results)
        if 'O' in self.ctx.cutoff_results:
            oxides = self.inputs.verification.get_dict().get('oxides', [])
            systems += [f'{e}_{c}' for e in self.ctx.cutoff_results if e != 'O' for c in oxides]
        return systems

    def should_run_eos(self):
        return bool(self.inputs.verification.get_dict().get('eos', True))

    def eos_pending(self):
        return self._pending('eos')

    def run_eos(self):
        v = self.inputs.verification.get_dict()
        keys = [f'{system}_v{index}' for system in self._eos_systems() for index in range(v['eos_points'])]
        self._run_pool('eos', keys, 'submit_eos')

    def submit_eos(self, key):
        system, index = key.rsplit('_v', 1)
        element, crystal = self._system(system)
        kinds = {element, 'O'} if system != element else {element}  # an oxide: the larger of the two cutoffs
        ecutwfc = max(self.ctx.cutoff_results[kind]['cutoff_wfc'] for kind in kinds)
        builder = self._pw_builder(element, self._volumes(element, crystal)[int(index)], ecutwfc, crystal)
        builder.metadata.call_link_label = f'eos_{key}'
        return self.submit(builder)

    def inspect_eos(self):
        v = self.inputs.verification.get_dict()
        self.ctx.eos_results = {}
        failed_all = []
        for system in self._eos_systems():
            runs, failed = self._collect('eos', system, [f'v{i}' for i in range(v['eos_points'])])
            failed_all += failed
            if failed:
                continue
            element, crystal = self._system(system)
            settings = {'prototype': crystal}
            if self.inputs.functional.value == 'PBE':
                settings['reference'] = self._reference(element, crystal)
            self.ctx.eos_results[system] = fit_equation_of_state(orm.Dict(settings), **runs)
        if failed_all:
            self.report('; '.join(failed_all))
            return self.exit_codes.ERROR_PW_FAILED.format(message='; '.join(failed_all))
        return None

    # ------------------------------------------------------------------------ summary and family
    def summarize(self):
        v = self.inputs.verification.get_dict()
        settings = orm.Dict(
            {
                'functional': self.inputs.functional.value,
                'level': self.inputs.level.value,
                'tolerances': v['tolerances'],
                'dual': v['dual'],
                'fallback_cutoff': 60.0,
                'missing': self.ctx.missing,
                **_measured_settings(),
            }
        )
        nodes = {}
        for element in self.ctx.pseudos:
            nodes[f'{element}_transferability'] = self.ctx.transferability[element]
            if element in self.ctx.get('cutoff_results', {}):
                nodes[f'{element}_cutoff'] = self.ctx.cutoff_results[element]
            for system, fit in self.ctx.get('eos_results', {}).items():
                if system == element or system.startswith(f'{element}_'):  # Na, Na_XO2 -> Na_eos, Na_eos_XO2
                    nodes[f'{element}_eos{system[len(element) :]}'] = fit
        self.ctx.summary = summarize_verification(settings, **nodes)
        self.out('verification', self.ctx.summary)
        self.out('pseudos', dict(self.ctx.pseudos))

    def install_family(self):
        from aiida_pseudo.groups.family import CutoffsPseudoPotentialFamily

        summary = self.ctx.summary.get_dict()
        label = self.inputs.family_label.value
        family = CutoffsPseudoPotentialFamily(label=label, description=family_description(summary)).store()
        family.add_nodes(list(self.ctx.pseudos.values()))
        family.set_cutoffs(summary['cutoffs'], STRINGENCY, unit='Ry')
        family.base.extras.set('verification_uuid', self.ctx.summary.uuid)
        family.base.extras.set('workchain_uuid', self.node.uuid)
        self.report(f'installed family `{label}`: {family.description}')


def _measured_settings() -> dict:
    """The pw.x-measured cutoffs (``measured_cutoffs.yaml``) as inputs of :func:`summarize_verification`."""
    from aiida_mscale.pseudo.cutoffs import load_measured_cutoffs
    from aiida_mscale.pseudo.verification import eos_verdicts, load_results

    measured = load_measured_cutoffs()
    criterion = measured['settings'].get('criterion', '1 meV/atom and 0.5 GPa')
    return {
        'measured_cutoffs': measured['elements'],
        'measured_criterion': criterion,
        'measured_eos': eos_verdicts(load_results()),
    }


def family_description(summary: dict) -> str:
    """What the family is, how it was verified, and which elements fail a tolerance or are missing."""
    elements = sorted(summary['elements'])
    text = (
        f'{summary["functional"]} PAW datasets generated with ld1.x from pslibrary parameters '
        f'(A. Dal Corso, Comput. Mater. Sci. 95, 337 (2014)) for {", ".join(elements)}; verification level '
        f'`{summary["level"]}`. '
    )
    if summary['failing']:
        text += (
            'FAILING a tolerance: '
            + '; '.join(
                f'{element} ({", ".join(failures)})' for element, failures in sorted(summary['failing'].items())
            )
            + '. '
        )
    else:
        text += 'All elements pass the tolerances. '
    notes = summary.get('cutoff_notes', {})
    unchecked = sorted(e for e, note in notes.items() if note.startswith("ld1.x's estimate"))
    unconverged = sorted(e for e in notes if e not in unchecked)
    if unchecked:
        text += (
            f"Cutoffs of {', '.join(unchecked)} are ld1.x's estimates, not checked with pw.x (they may not be "
            'converged to 1 meV/atom). '
        )
    if unconverged:
        text += (
            f'Cutoffs of {", ".join(unconverged)} are the highest measured and NOT converged to 1 meV/atom below it: '
            + '; '.join(f'{e} ({notes[e]})' for e in unconverged)
            + '. '
        )
    eos = summary.get('measured_eos')
    if eos is not None:
        passed = sorted(e for e in eos if eos[e]['passed'])
        parts = [f'pass {", ".join(passed)}'] if passed else []
        parts += [f'FAIL {e} ({", ".join(eos[e]["failures"])})' for e in sorted(eos) if not eos[e]['passed']]
        if summary.get('eos_not_verified'):
            parts.append(f'NOT VERIFIED {", ".join(summary["eos_not_verified"])}')
        text += (
            'pw.x equation of state against the all-electron reference (measured once with these datasets, see '
            'docs/pseudopotentials.md): ' + '; '.join(parts) + '. '
        )
    if summary['missing']:
        text += 'NOT GENERATED: ' + '; '.join(f'{e} ({m})' for e, m in sorted(summary['missing'].items())) + '.'
    return text.strip()


def verification_overrides(protocol: str, overrides: dict | None) -> dict:
    """The ``verification`` dict of ``protocol`` with ``overrides`` merged in (for scripts and docs)."""
    inputs = PseudoFamilyWorkChain.get_protocol_inputs(protocol, {'verification': overrides or {}})
    return recursive_merge({}, inputs['verification'])


def verification_markdown(label: str | list[str]) -> str:
    """The verification table of the installed family ``label`` (or one table of several families, e.g. one per
    element verified one at a time), read from their ``verification`` nodes."""
    from aiida_mscale.pseudo.report import merge_verifications, verification_table

    labels = [label] if isinstance(label, str) else list(label)
    nodes = [orm.load_node(orm.load_group(name).base.extras.get('verification_uuid')) for name in labels]
    if len(labels) == 1:
        node = nodes[0]
        header = f'### `{labels[0]}`\n\nFrom the `verification` node `{node.uuid}` (pk {node.pk}) of this family.\n\n'
    else:
        header = 'From the `verification` nodes of the families ' + ', '.join(
            f'`{name}` (`{node.uuid}`, pk {node.pk})' for name, node in zip(labels, nodes)
        )
        header += '.\n\n'
    return header + verification_table(merge_verifications([node.get_dict() for node in nodes]))
