"""Settings of a MultiscaleWorkChain run on Li_{2-x}O: the refusal tests (tests/test_multiscale_inputs.py) build on
them, and tests/scripts/multiscale_chain_daemon.py runs the whole chain with them on a daemon it kills and restarts
in the middle. That script is not part of the suite yet: with this cheap one-iteration potential the chain stops at
the transport stage (no Li hop in 3 ps: D < 0 at 700-1000 K) or at the hull (pymatgen's InsertionElectrode raises for
the Li_xO entries, x = 0 being pure O); see docs/multiscale.md.
"""

OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 900}
CELL = {
    'particle': {'radius': 1e-6, 'c_max': 5.0e4, 'density': 2.0},
    'kinetics': {'i0': 1.0, 'alpha': 0.5},
    'temperature': 300.0,
    'x_initial': 0.05,
    'x_final': 0.95,
    'c_rates': [1.0, 10.0],
    'cutoff_voltage': -10.0,
}
#: active learning for MD that runs NPT: forces and stress in the fit (the AL test fits energies first), GCMC kept
#: out of the radial basis' undefined range (min_dist 1.1 A < overlap_cutoff 1.5 A), one iteration
ACTIVE_LEARNING = {
    'dft': {
        'max_concurrent': 2,
        'pw_base': {'kpoints_distance': 3.0, 'pw': {'parameters': {'SYSTEM': {'ecutwfc': 25.0, 'ecutrho': 200.0}}}},
    },
    'mtp': {'level': 6, 'min_dist': 1.1, 'max_dist': 4.0, 'radial_basis_size': 6},
    'train': {
        'mtp': {
            'parameters': {
                'validation_fraction': 0.0,
                'loss': {'energy_weight': 1.0, 'forces_weight': 0.1, 'stress_weight': 0.01},
                'steps': [{'method': 'minimize', 'kwargs': {'method': 'BFGS', 'options': {'maxiter': 300}}}],
            }
        }
    },
    'initial': {'fractions': [1.0, 0.75, 0.5], 'per_fraction': 3, 'strain': 0.03, 'rattle': 0.1, 'seed': 3},
    'mu_offsets': [-1.0, 0.0, 1.0],
    'temperatures': [800.0],
    'select_threshold': 1.5,
    'break_threshold': 5.0,
    'max_iterations': 1,
    'max_labels_per_iteration': 3,
    'max_concurrent_md': 2,
    'md': {
        'ensemble': 'nvt',
        'timestep': 0.001,
        'steps': 300,
        'thermo_every': 10,
        'dump_every': 100,
        'gcmc': {'every': 10, 'exchanges': 5, 'moves': 5, 'max_displacement': 0.2, 'overlap_cutoff': 1.5},
        'extrapolation': {'every': 2},
    },
}
OVERRIDES = {
    'guest_fractions': [0.5, 0.75],
    'temperatures': [700.0, 850.0, 1000.0],
    'active_learning': ACTIVE_LEARNING,
    'reference': {'pw_base': {'kpoints_distance': 0.4}},
    'md_production': {
        'parameters': {
            'equilibration_steps': 500,
            'production_steps': 3000,
            'dump_every': 20,
            'equilibration_dump_every': 100,
            'grading': {'enabled': False},
            # the cheap one-iteration potential holds NVT but loses atoms under a barostat: constant volume
            'equilibration_ensemble': 'nvt',
            'production_ensemble': 'nvt',
        },
        'max_concurrent': 2,
    },
    'thermodynamics': {'parameters': {'end_members': True, 'relax_cells': False}, 'orderings': 1},
    'electrode': {
        'models': ['particle_diffusion'],
        'cell': CELL,
        'uncertainty': {'ensemble_size': 3, 'seed': 7},
    },
}


def host():
    from aiida import orm
    from ase.build import bulk

    return orm.StructureData(ase=bulk('OLi2', 'fluorite', a=4.61, cubic=True))
