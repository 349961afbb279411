"""Thermodynamics of Li_(2-x)O with the demo's MTP: voltage profile, volume vs x, elastic moduli, W_sep (#12).

Run after ``make demo`` (``python examples/thermodynamics_li2o.py [--profile NAME]``): it takes the potential of the
finished demo run (``examples/multiscale_demo.py``), runs NPT MD at 600 K on Li4O4, Li6O4 and Li7O4
(``MdProductionWorkChain``), then one ``ThermodynamicsWorkChain`` with every branch:

- voltage: two seeded orderings per x relaxed with their cells, hull and voltage steps against the demo's bcc Li
  energy (pw.x, the labels' settings);
- volume: V(x) and lattice parameters from the NPT state points;
- elastic: C_ij of Li2O (x = 1, the conventional cell) from +-0.5 % and +-1 % strains, VRH moduli; measured
  for comparison: C11 ~ 200, C12 ~ 22, C44 ~ 59 GPa (Li2O at room temperature; S. Hull, T. W. D. Farley,
  W. Hayes, M. T. Hutchings, J. Nucl. Mater. 160, 125 (1988));
- interface: the Li2O(110) homo-interface (two 2-layer slabs against the 4-layer slab): W_sep = 2 gamma(110).

The potential saw no surface and no strain beyond 2 %: the interface and the elastic numbers are what this cheap
potential says, not predictions to cite. Measured on 2026-12-02 with the demo's potential (every branch finished,
2.5 min with the MD on this 2-core machine): C11 = 424, C12 = 238, C44 = 82 GPa (B_VRH = 300 GPa against about
80 GPa measured: the potential is far too stiff), Born-stable; W_sep(110) = 1.95 J/m^2; NPT volume per 12-atom cell
72.5, 95.4 and 101.3 A^3 at x = 0.5, 0.75, 0.875 (the Li4O4 cell collapses by 28 % against the 98 A^3 of Li2O,
flagged as a transformation); relaxed hull: one step from x = 0.5 to 0.875 at 3.73 V. Plots (voltage, V(x), C_ij)
go to demo-output/thermodynamics_<pk>/ through ``aiida-mscale report``.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import time

from aiida import load_profile, orm

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import multiscale_demo as demo_script  # noqa: E402  (finds the demo's run: one source)

SLAB_VACUUM = 8.0  # Angstrom of vacuum on each side of a slab


def li2o_110_slabs():
    """Two 2-layer Li2O(110) slabs and the 4-layer slab they make together, in cells of the same plane."""
    from ase.build import bulk, surface

    crystal = bulk('OLi2', 'fluorite', a=4.61, cubic=True)
    whole = surface(crystal, (1, 1, 0), 4, vacuum=SLAB_VACUUM)
    middle = whole.positions[:, 2].mean()
    lower, upper = whole.copy(), whole.copy()
    del lower[[k for k, z in enumerate(whole.positions[:, 2]) if z > middle]]
    del upper[[k for k, z in enumerate(whole.positions[:, 2]) if z < middle]]
    for atoms in (lower, upper, whole):
        atoms.pbc = True
    return {
        key: orm.StructureData(ase=atoms) for key, atoms in (('slab_1', lower), ('slab_2', upper), ('interface', whole))
    }


def wait(node):
    from aiida.manage import get_manager

    session = get_manager().get_profile_storage().get_session()
    while True:
        session.rollback()
        if node.is_terminated:
            return node
        time.sleep(3)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--profile', default=None)
    args = parser.parse_args(argv)
    load_profile(args.profile)
    from aiida.engine import submit
    from ase.build import bulk

    from aiida_mscale.workflows.md_production import MdProductionWorkChain
    from aiida_mscale.workflows.thermodynamics import ThermodynamicsWorkChain

    demo = demo_script.previous_run()
    if demo is None:
        sys.exit(f'no finished demo run (version {demo_script.DEMO_VERSION}) in this profile: run `make demo` first')
    potential, host = demo.outputs.potential, demo.inputs.structure
    fractions = [0.5, 0.75, 0.875]
    md = MdProductionWorkChain.get_builder_from_protocol(
        'lmp@localhost-mpich',
        potential,
        host,
        'Li',
        [600.0],
        fractions,
        protocol='fast',
        overrides={
            'parameters': {
                'equilibration_steps': 2000,
                'production_steps': 4000,
                'dump_every': 100,
                'grading': {'enabled': False},
            },
            'max_concurrent': 2,
            'orderings': 1,
        },
    )
    md_node = wait(submit(md))
    print(f'MdProductionWorkChain<{md_node.pk}>: [{md_node.exit_status}] {md_node.exit_message or "ok"}')
    inputs = {
        'potential': potential,
        'host': host,
        'guest': orm.Str('Li'),
        'guest_fractions': orm.List(fractions),
        'guest_reference_energy': demo.outputs.guest_reference_energy,
        'orderings': orm.Int(2),
        'elastic_structure': orm.StructureData(ase=bulk('OLi2', 'fluorite', a=4.61, cubic=True)),
        'interface': li2o_110_slabs(),
    }
    if 'averages' in md_node.outputs:
        inputs['state_points'] = dict(md_node.outputs.averages)
    builder = ThermodynamicsWorkChain.get_builder_from_protocol(
        'lmp@localhost-mpich',
        protocol='fast',
        overrides={'parameters': {'end_members': False, 'relax_cells': True}},
        **inputs,
    )
    node = wait(submit(builder))
    print(f'ThermodynamicsWorkChain<{node.pk}>: [{node.exit_status}] {node.exit_message or "ok"}')
    for name in sorted(node.outputs):
        print(f'  {name}: {node.outputs[name].__class__.__name__}<{node.outputs[name].pk}>')
    folder = f'demo-output/thermodynamics_{node.pk}'
    drawn = subprocess.run(['aiida-mscale', 'report', str(node.pk), '-o', folder], capture_output=True, text=True)
    print(f'plots: {drawn.stdout.split()}' if drawn.returncode == 0 else f'plots not drawn: {drawn.stderr[-300:]}')
    return 0 if node.is_finished_ok else 1


if __name__ == '__main__':
    sys.exit(main())
