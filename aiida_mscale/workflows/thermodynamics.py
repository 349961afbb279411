"""``ThermodynamicsWorkChain``: voltage profile, volume vs x, elastic constants and work of separation.

Every branch is optional (it runs when its inputs are given); every result is a calcfunction node of
:mod:`aiida_mscale.calculations.functions.thermodynamics`, every relaxation a
:class:`~aiida_mscale.workflows.lammps_static_base.LammpsMtpStaticBaseWorkChain` (or a ``PwBaseWorkChain`` for the
DFT elastic constants):

- **voltage** (``host``, ``guest``, ``guest_fractions``, ``guest_reference``): seeded orderings of the guest on the
  host's guest sites at each x (``orderings`` per x; x = 0 and 1 are single configurations), each relaxed with
  its cell (LAMMPS ``minimize`` + ``fix box/relax``), the guest's elemental crystal relaxed the same way (or its
  energy given as ``guest_reference_energy``, e.g. from DFT at the labels' settings) ->
  formation energies, convex hull (pymatgen ``PhaseDiagram``), voltage profile and average voltage (pymatgen
  ``InsertionElectrode``), with a band from the potential's validation energy RMSE
  (:mod:`aiida_mscale.analysis.voltage`);
- **volume** (``state_points``: the ``averages`` outputs of :class:`~aiida_mscale.workflows.md_production.
  MdProductionWorkChain`, NPT): V(x), lattice parameters vs x, relative volume change and detected
  transformations (:mod:`aiida_mscale.analysis.state_points`);
- **elastic** (``elastic_structure``): the structure's cell relaxed (LAMMPS; with pw.x the structure is taken as
  given), then +-0.5 % and +-1 % strains of each Voigt component, atoms relaxed in each strained cell, C_ij from
  the stress-strain slopes, VRH moduli and Born stability (:mod:`aiida_mscale.analysis.elastic`);
- **interface** (``interface.slab_1``, ``interface.slab_2``, ``interface.interface``, optional bulk crystals):
  atoms of the three cells relaxed with the same settings (cells fixed), W_sep and, with bulks, the interfacial
  energy (:mod:`aiida_mscale.analysis.adhesion`).
"""

from __future__ import annotations

import pathlib
from typing import Literal

import numpy as np
from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, if_
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin
from pydantic import Field

from aiida_mscale.analysis.adhesion import DEFAULT_MISMATCH_TOLERANCE, check_interface_cells
from aiida_mscale.analysis.elastic import check_strains
from aiida_mscale.calculations.functions.thermodynamics import (
    adhesion_energies,
    cauchy_stress_from_pw,
    configuration_summary,
    elastic_constants,
    guest_sites,
    hull_and_voltage_profile,
    seeded_ordering,
    strained_structure,
    volume_versus_fraction,
)
from aiida_mscale.data.mtp_potential import MtpPotentialData
from aiida_mscale.lammps import static_inputs
from aiida_mscale.schema import NonNegativeFloat, ParameterModel, PositiveFloat, PositiveInt, Seed, validate_parameters
from aiida_mscale.workflows.lammps_static_base import LammpsMtpStaticBaseWorkChain


class ThermodynamicsParameters(ParameterModel):
    """Settings of :class:`ThermodynamicsWorkChain`."""

    strains: list[float] = Field([-0.01, -0.005, 0.005, 0.01], description='Strain magnitudes (|s| <= 0.05).')
    elastic_components: list[int] = Field(
        [1, 2, 3, 4, 5, 6], description='Voigt components strained (all six; [1, 4] only for a cubic crystal).'
    )
    relax_elastic_cell: bool = Field(True, description='Relax the cell of elastic_structure first (LAMMPS).')
    relax_cells: bool = Field(
        True, description='Relax the cells of the configurations and the guest crystal (else atoms only, cells fixed).'
    )
    energy_rmse: NonNegativeFloat | None = Field(
        None, description="Energy error for the V(x) band [eV/atom]; default: the potential's validation RMSE."
    )
    end_members: bool = Field(
        True,
        description='Add x = 0 (empty host) and x = 1 (full host) to guest_fractions; False: the hull spans only the '
        'given fractions (for a host whose empty or full end member is outside the potential, e.g. Li_(2-x)O).',
    )
    seed: Seed = 4242
    symprec: PositiveFloat = Field(0.05, description='SpacegroupAnalyzer symprec [Angstrom].')
    angle_tolerance: PositiveFloat = Field(1.0, description='SpacegroupAnalyzer angle tolerance [degree].')
    jump_tolerance: PositiveFloat = Field(0.01, description='Relative lattice-parameter jump flagged along x.')
    temperature: PositiveFloat | None = Field(None, description='State points at this T [K] (default: the lowest).')
    mismatch_tolerance: PositiveFloat = Field(
        DEFAULT_MISMATCH_TOLERANCE, le=0.2, description='Largest in-plane mismatch of slab and interface cells.'
    )
    force_tolerance: PositiveFloat = Field(1e-4, description='Relaxations: force tolerance [eV/Angstrom].')
    min_style: Literal['cg', 'fire', 'sd', 'hftn'] = Field('cg', description='Relaxations: LAMMPS minimiser.')
    max_iterations: PositiveInt = Field(5000, description='Relaxations: minimiser iterations per run.')


def validate_inputs(inputs, _):
    """Refuse bad input before anything runs (strains, hosts without the guest, mismatched slabs, ...)."""
    try:
        p = validate_parameters(
            ThermodynamicsParameters, inputs['parameters'].get_dict() if 'parameters' in inputs else {}
        )
        check_strains(p.strains, p.elastic_components)
    except ValueError as exception:
        return str(exception)
    if set(p.elastic_components) not in ({1, 2, 3, 4, 5, 6}, {1, 4}):
        return f'parameters.elastic_components: all six, or [1, 4] for a cubic crystal (got {p.elastic_components})'
    potential, eam = inputs.get('potential'), inputs.get('eam_potential')
    needs_lammps = any(k in inputs for k in ('host', 'interface')) or (
        'elastic_structure' in inputs and 'elastic_pw' not in inputs
    )
    if needs_lammps:
        if 'code' not in inputs:
            return 'a LAMMPS `code` is needed for the relaxations'
        if (potential is None) == (eam is None):
            return 'give exactly one of `potential` (an MTP) and `eam_potential` (testing only)'
    if eam is not None:
        try:
            static_inputs.check_eam_potential(eam.value)
        except ValueError as exception:
            return f'eam_potential: {exception}'
    voltage_keys = ('host', 'guest', 'guest_fractions')
    given = [k for k in voltage_keys if k in inputs]
    references = [k for k in ('guest_reference', 'guest_reference_energy') if k in inputs]
    if (given or references) and (len(given) != len(voltage_keys) or len(references) != 1):
        missing = sorted(set(voltage_keys) - set(given))
        return (
            f'the voltage profile needs all of {list(voltage_keys)} (missing {missing}) and exactly one of '
            f'guest_reference, guest_reference_energy (got {references})'
        )
    if given:
        guest = inputs['guest'].value
        if not guest_sites(inputs['host'], guest):
            return f'the host has no {guest} atoms: give the host with every {guest} site occupied'
        if 'guest_reference' in inputs and {k.symbol for k in inputs['guest_reference'].kinds} != {guest}:
            return f'guest_reference must be a crystal of {guest} only'
        if 'guest_reference_energy' in inputs:
            reference = inputs['guest_reference_energy'].get_dict()
            energy, count = reference.get('energy'), reference.get('number_of_atoms')
            if not (
                isinstance(energy, (int, float))
                and not isinstance(energy, bool)
                and np.isfinite(energy)
                and isinstance(count, int)
                and not isinstance(count, bool)
                and count > 0
            ):
                return f'guest_reference_energy needs a finite `energy` [eV] and `number_of_atoms` > 0, got {reference}'
        fractions = inputs['guest_fractions'].get_list()
        if not fractions or any(
            isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 <= x <= 1 for x in fractions
        ):
            return f'guest_fractions must be fractions in [0, 1], got {fractions}'
        if not p.end_members and len(set(fractions)) < 2:
            return f'guest_fractions: without end members the hull needs two or more distinct x, got {fractions}'
        if potential is not None and guest not in potential.species:
            return f'guest {guest} is not a species of the potential {potential.species}'
    interface = inputs.get('interface', {})
    if interface:
        missing = [k for k in ('slab_1', 'slab_2', 'interface') if k not in interface]
        if missing:
            return f'interface: missing {missing}'
        try:
            check_interface_cells(
                {k: np.asarray(interface[k].cell) for k in ('slab_1', 'slab_2', 'interface')},
                tolerance=p.mismatch_tolerance,
            )
        except ValueError as exception:
            return f'interface: {exception}'
        if ('bulk_1' in interface) != ('bulk_2' in interface):
            return 'interface: give both bulk_1 and bulk_2 (for the interfacial energy) or neither'
    state_points = inputs.get('state_points', {})
    if len(state_points) == 1:
        return 'state_points: a trend along x needs at least two state points'
    return None


class ThermodynamicsWorkChain(ProtocolMixin, WorkChain):
    """Voltage profile, volume vs x, elastic constants, work of separation (see the module docstring)."""

    @classmethod
    def define(cls, spec):
        from aiida_quantumespresso.workflows.pw.base import PwBaseWorkChain

        super().define(spec)
        spec.input('code', valid_type=orm.AbstractCode, required=False, help='LAMMPS code (lmp@localhost-mpich).')
        spec.input('potential', valid_type=MtpPotentialData, required=False, help='Trained MTP.')
        spec.input('eam_potential', valid_type=orm.Str, required=False, help='An allowed EAM file (testing only).')
        spec.input('options', valid_type=orm.Dict, required=False, help='metadata.options of the LAMMPS runs.')
        spec.input('parameters', valid_type=orm.Dict, default=lambda: orm.Dict({}), help='ThermodynamicsParameters.')
        spec.input('host', valid_type=orm.StructureData, required=False, help='Host with every guest site occupied.')
        spec.input('guest', valid_type=orm.Str, required=False, help='The guest element.')
        spec.input('guest_fractions', valid_type=orm.List, required=False, help='Guest fractions x of the orderings.')
        spec.input('orderings', valid_type=orm.Int, default=lambda: orm.Int(2), help='Orderings per 0 < x < 1.')
        spec.input('guest_reference', valid_type=orm.StructureData, required=False, help="The guest's crystal.")
        spec.input(
            'guest_reference_energy',
            valid_type=orm.Dict,
            required=False,
            help="Instead of `guest_reference`: the guest's elemental energy, `energy` [eV] of `number_of_atoms` "
            'atoms, '
            "computed on the same energy scale (e.g. DFT at the settings of the potential's labels).",
        )
        spec.input_namespace(
            'state_points',
            valid_type=orm.Dict,
            dynamic=True,
            required=False,
            help='MdProductionWorkChain `averages` (NPT) per state point.',
        )
        spec.input('elastic_structure', valid_type=orm.StructureData, required=False, help='Crystal for C_ij.')
        spec.expose_inputs(
            PwBaseWorkChain,
            namespace='elastic_pw',
            exclude=('pw.structure', 'clean_workdir'),
            namespace_options={
                'required': False,
                'populate_defaults': False,
                'help': 'C_ij with pw.x instead of LAMMPS (the structure is used as given).',
            },
        )
        spec.input_namespace(
            'interface',
            valid_type=orm.StructureData,
            dynamic=True,
            required=False,
            help='slab_1, slab_2, interface (and optionally bulk_1, bulk_2).',
        )
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            cls.run_relaxations,
            cls.inspect_relaxations,
            if_(cls.has_elastic)(cls.run_strains, cls.inspect_strains),
            cls.results,
        )
        spec.output('formation_energies', valid_type=orm.Dict, required=False)
        spec.output('hull', valid_type=orm.Dict, required=False)
        spec.output('voltage_profile', valid_type=orm.ArrayData, required=False, help='x, V [V], band [V].')
        spec.output('voltage_steps', valid_type=orm.Dict, required=False)
        spec.output('average_voltage', valid_type=orm.Float, required=False, help='[V]')
        spec.output('volume_trend', valid_type=orm.Dict, required=False)
        spec.output('volume_curve', valid_type=orm.ArrayData, required=False)
        spec.output('elastic_tensor', valid_type=orm.ArrayData, required=False, help='C_ij [GPa].')
        spec.output('elastic_moduli', valid_type=orm.Dict, required=False, help='B, G, E [GPa], nu, Born stability.')
        spec.output('adhesion', valid_type=orm.Dict, required=False, help='W_sep (and interfacial energy).')
        spec.exit_code(431, 'ERROR_RELAXATION_FAILED', message='Relaxations failed: {labels}')
        spec.exit_code(432, 'ERROR_STRAIN_FAILED', message='Strained-cell calculations failed: {labels}')
        spec.exit_code(433, 'ERROR_ANALYSIS', message='The analysis refused the results: {message}')

    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        return pathlib.Path(__file__).parent / 'protocols' / 'thermodynamics.yaml'

    @classmethod
    def get_builder_from_protocol(cls, code=None, protocol: str | None = None, overrides: dict | None = None, **kwargs):
        """A builder with the protocol's precision (``fast``/``moderate``/``precise``); ``kwargs`` are inputs."""
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        if code is not None:
            builder.code = orm.load_code(code) if isinstance(code, str) else code
        builder.parameters = orm.Dict(inputs.get('parameters', {}))
        for key, value in kwargs.items():
            builder[key] = value
        return builder

    # ------------------------------------------------------------------------------------------------- outline
    def setup(self):
        self.ctx.p = validate_parameters(ThermodynamicsParameters, self.inputs.parameters.get_dict()).dump()
        self.ctx.relax = {}  # label -> StructureData to relax
        self.ctx.relax_box = {}  # label -> relax the cell too

    def has_elastic(self):
        return 'elastic_structure' in self.inputs

    def _static(self, label: str, structure, task: str, relax_box: str):
        p = self.ctx.p
        parameters = {'task': task, 'relax_box': relax_box}
        if task == 'minimize':
            parameters.update(
                force_tolerance=p['force_tolerance'], max_iterations=p['max_iterations'], min_style=p['min_style']
            )
        lammps = {'code': self.inputs.code, 'structure': structure, 'parameters': orm.Dict(parameters)}
        if 'potential' in self.inputs:
            lammps['potential'] = self.inputs.potential
        else:
            lammps['eam_potential'] = self.inputs.eam_potential
        if 'options' in self.inputs:
            lammps['metadata'] = {'options': self.inputs.options.get_dict()}
        node = self.submit(LammpsMtpStaticBaseWorkChain, lammps=lammps, metadata={'call_link_label': label})
        return node

    def run_relaxations(self):
        """Relax every configuration (cell and atoms), the guest's crystal, slabs and interface (atoms)."""
        futures = {}
        p = self.ctx.p
        if 'host' in self.inputs:
            guest = self.inputs.guest
            n_sites = len(guest_sites(self.inputs.host, guest.value))
            self.ctx.n_sites = {}
            fractions = set(float(v) for v in self.inputs.guest_fractions.get_list())
            if p['end_members']:
                fractions |= {0.0, 1.0}
            for ix, x in enumerate(sorted(fractions)):
                count = 1 if round(x * n_sites) in (0, n_sites) else self.inputs.orderings.value
                for ordering in range(count):
                    label = f'config_{ix}_{ordering}'
                    structure = seeded_ordering(
                        self.inputs.host,
                        guest,
                        orm.Float(x),
                        orm.Int(p['seed'] + 100 * ordering + ix),
                        metadata={'call_link_label': f'ordering_{ix}_{ordering}'},
                    )
                    self.ctx.n_sites[label] = n_sites
                    futures[label] = self._static(label, structure, 'minimize', 'aniso' if p['relax_cells'] else 'none')
            if 'guest_reference' in self.inputs:
                futures['guest_reference'] = self._static(
                    'guest_reference', self.inputs.guest_reference, 'minimize', 'iso' if p['relax_cells'] else 'none'
                )
        if 'elastic_structure' in self.inputs and 'elastic_pw' not in self.inputs and p['relax_elastic_cell']:
            futures['elastic_reference'] = self._static(
                'elastic_reference', self.inputs.elastic_structure, 'minimize', 'aniso'
            )
        for key, structure in self.inputs.get('interface', {}).items():
            relax_box = 'iso' if key.startswith('bulk') else 'none'  # slabs and interface: atoms only, same settings
            futures[f'interface_{key}'] = self._static(f'interface_{key}', structure, 'minimize', relax_box)
        self.report(f'submitted {len(futures)} relaxations')
        return ToContext(**futures)

    def inspect_relaxations(self):
        labels = [
            k for k in self.ctx if k.startswith(('config_', 'guest_reference', 'elastic_reference', 'interface_'))
        ]
        failed = [k for k in labels if not self.ctx[k].is_finished_ok]
        if failed:
            return self.exit_codes.ERROR_RELAXATION_FAILED.format(labels=failed)
        self.ctx.relaxed_labels = labels
        return None

    def run_strains(self):
        """Strained copies of the (relaxed) elastic reference; atoms relaxed in each (LAMMPS) or pw.x stress."""
        p = self.ctx.p
        if 'elastic_reference' in self.ctx:
            reference = self.ctx.elastic_reference.outputs.structure
        else:
            reference = self.inputs.elastic_structure
        self.ctx.strain_points = {}
        futures = {}
        kpoints = None
        if 'elastic_pw' in self.inputs:
            kpoints = self._pw_kpoints(reference)
        for component in p['elastic_components']:
            for k, strain in enumerate(p['strains']):
                key = f'strain_{component}_{k}'
                structure = strained_structure(
                    reference, orm.Int(component), orm.Float(strain), metadata={'call_link_label': key}
                )
                self.ctx.strain_points[key] = [component, strain]
                if kpoints is None:
                    futures[key] = self._static(key, structure, 'minimize', 'none')
                else:
                    futures[key] = self._submit_pw(key, structure, kpoints)
        return ToContext(**futures)

    def _pw_kpoints(self, reference):
        """One k-point mesh for every strained cell (from ``kpoints_distance`` on the reference cell)."""
        from aiida_quantumespresso.calculations.functions.create_kpoints_from_distance import (
            create_kpoints_from_distance,
        )

        pw_inputs = self.inputs.elastic_pw
        if 'kpoints' in pw_inputs:
            return pw_inputs.kpoints
        return create_kpoints_from_distance(
            reference,
            pw_inputs.kpoints_distance,
            pw_inputs.get('kpoints_force_parity', orm.Bool(False)),
            metadata={'call_link_label': 'elastic_kpoints'},
        )

    def _submit_pw(self, key, structure, kpoints):
        from aiida_quantumespresso.workflows.pw.base import PwBaseWorkChain

        inputs = AttributeDict(self.exposed_inputs(PwBaseWorkChain, namespace='elastic_pw'))
        inputs.pop('kpoints_distance', None)
        inputs.pop('kpoints_force_parity', None)
        inputs.kpoints = kpoints
        inputs.pw.structure = structure
        parameters = inputs.pw.parameters.get_dict()
        parameters.setdefault('CONTROL', {})
        parameters['CONTROL']['tstress'] = True
        parameters['CONTROL']['tprnfor'] = True
        if len(structure.sites) > 1:
            parameters['CONTROL']['calculation'] = 'relax'  # atoms relax in the strained cell
        inputs.pw.parameters = orm.Dict(parameters)
        inputs.metadata = {'call_link_label': key}
        return self.submit(PwBaseWorkChain, **inputs)

    def inspect_strains(self):
        failed = [k for k in self.ctx.strain_points if not self.ctx[k].is_finished_ok]
        if failed:
            return self.exit_codes.ERROR_STRAIN_FAILED.format(labels=failed)
        return None

    def _stress(self, key):
        """The Cauchy stress [GPa] of strain point ``key`` as an ArrayData (pw.x's sign turned by a calcfunction)."""
        node = self.ctx[key]
        if 'stress' in node.outputs:
            return node.outputs.stress
        return cauchy_stress_from_pw(node.outputs.output_trajectory, metadata={'call_link_label': f'stress_{key}'})

    def results(self):
        p = self.ctx.p
        try:
            if 'host' in self.inputs:
                self._voltage()
            state_points = self.inputs.get('state_points', {})
            if state_points:
                chosen = self._state_points_at_temperature(dict(state_points))
                trend = volume_versus_fraction(
                    orm.Dict({k: p[k] for k in ('symprec', 'angle_tolerance', 'jump_tolerance')}),
                    **chosen,
                    metadata={'call_link_label': 'volume_versus_fraction'},
                )
                self.out('volume_trend', trend['volume_trend'])
                self.out('volume_curve', trend['volume_curve'])
                for item in trend['volume_trend']['transformations']:
                    self.report(
                        f'structural transformation between x = {item["x_low"]} and {item["x_high"]}: '
                        f'{"; ".join(item["reasons"])}'
                    )
            if 'elastic_structure' in self.inputs:
                stresses = {key: self._stress(key) for key in self.ctx.strain_points}
                result = elastic_constants(
                    orm.Dict({'points': self.ctx.strain_points}),
                    **stresses,
                    metadata={'call_link_label': 'elastic_constants'},
                )
                self.out('elastic_tensor', result['elastic_tensor'])
                self.out('elastic_moduli', result['elastic_moduli'])
                if not result['elastic_moduli']['born_stable']:
                    self.report('the crystal is not Born-stable: C has a non-positive eigenvalue')
            if 'interface' in self.inputs:
                self._adhesion()
        except ValueError as exception:
            return self.exit_codes.ERROR_ANALYSIS.format(message=str(exception))
        return None

    def _state_points_at_temperature(self, state_points: dict) -> dict:
        temperatures = sorted({node['temperature'] for node in state_points.values() if 'temperature' in node})
        target = self.ctx.p['temperature'] or (temperatures[0] if temperatures else None)
        chosen = {k: v for k, v in state_points.items() if target is None or v.get('temperature') == target}
        if len(chosen) < 2:
            raise ValueError(f'fewer than two state points at T = {target} K (temperatures: {temperatures})')
        return chosen

    def _voltage(self):
        configurations = {}
        for label in sorted(self.ctx.n_sites):
            node = self.ctx[label]
            configurations[label] = configuration_summary(
                node.outputs.energy, node.outputs.structure, metadata={'call_link_label': f'summary_{label}'}
            )
        if 'guest_reference_energy' in self.inputs:
            guest_summary = self.inputs.guest_reference_energy
        else:
            reference = self.ctx.guest_reference
            guest_summary = configuration_summary(
                reference.outputs.energy, reference.outputs.structure, metadata={'call_link_label': 'summary_guest'}
            )
        rmse = self.ctx.p['energy_rmse']
        if rmse is None and 'potential' in self.inputs:
            errors = self.inputs.potential.errors or {}
            rmse_mev = ((errors.get('validation') or {}).get('energy_per_atom') or {}).get('rmse')
            rmse = float(rmse_mev) / 1000.0 if rmse_mev is not None else 0.0
            if rmse_mev is None:
                self.report('the potential records no validation energy RMSE: V(x) band set to zero')
        result = hull_and_voltage_profile(
            self.inputs.guest,
            guest_summary,
            orm.Dict({'energy_rmse': rmse or 0.0, 'n_sites': self.ctx.n_sites}),
            **configurations,
            metadata={'call_link_label': 'hull_and_voltage'},
        )
        for name in ('formation_energies', 'hull', 'voltage_profile', 'voltage_steps', 'average_voltage'):
            self.out(name, result[name])
        self.report(
            f'average voltage {result["average_voltage"].value:.4f} V over {len(configurations)} configurations'
        )

    def _adhesion(self):
        interface = self.inputs.interface
        energies = {k: self.ctx[f'interface_{k}'].outputs.energy for k in interface}
        structures = {k: self.ctx[f'interface_{k}'].outputs.structure for k in interface}
        result = adhesion_energies(
            **{f'energy_{k}': v for k, v in energies.items()},
            **{f'structure_{k}': v for k, v in structures.items()},
            metadata={'call_link_label': 'work_of_separation'},
        )
        self.out('adhesion', result)
        self.report(f'W_sep = {result["work_of_separation_si"]:.4f} J/m^2')


__all__ = ['ThermodynamicsParameters', 'ThermodynamicsWorkChain']
