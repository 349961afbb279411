"""FEniCSx (dolfinx) continuum solvers of aiida-mscale.

These modules run under the continuum code's own Python (Debian: /usr/bin/python3 with
python3-dolfinx) and import nothing from aiida. Importing this package does not import dolfinx,
so the main environment can locate the scripts (e.g. to copy them into a CalcJob folder)::

    from aiida_mscale.continuum import SOLVER_DIR, SOLVER_FILES
"""

import os

SOLVER_DIR = os.path.dirname(os.path.abspath(__file__))
#: files a CalcJob copies next to input.json; run as ``python solver.py input.json``
SOLVER_FILES = (
    'solver.py',
    'common.py',
    'fem_compat.py',
    'particle_diffusion.py',
    'polycrystal.py',
    'phase_field.py',
    'porous_electrode.py',
)
MODELS = ('particle_diffusion', 'polycrystal', 'phase_field', 'porous_electrode')
