"""Parser of ``LammpsMtpStaticCalculation``: energy, Cauchy stress [GPa], final structure, minimiser summary."""

from __future__ import annotations

import re

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_mscale.lammps import static_inputs

UNKNOWN_PAIR_STYLE = re.compile(r'Unrecognized pair style')
LAMMPS_ERROR = re.compile(r'^ERROR.*$', re.MULTILINE)
STOPPING = re.compile(r'Stopping criterion = (.+)')
ITERATIONS = re.compile(r'Iterations, force evaluations = (\d+) (\d+)')
#: 1 bar in GPa
BAR_TO_GPA = 1e-4


def lammps_frame_rotation(cell) -> np.ndarray:
    """The rotation R with x_lammps = x R for the input cell (see :func:`aiida_mscale.lammps.data_file.lammps_cell`)."""
    from aiida_mscale.lammps.data_file import lammps_cell

    return lammps_cell(np.asarray(cell, dtype=float))[1]


class LammpsMtpStaticParser(Parser):
    """Read ``results.dat`` and ``final.dump``; a minimisation stopped by its iteration limits is exit 401."""

    def parse(self, **kwargs):
        retrieved = self.retrieved
        names = retrieved.base.repository.list_object_names()
        stdout_name = self.node.get_option('output_filename')
        if stdout_name not in names and 'log.lammps' not in names:
            return self.exit_codes.ERROR_NO_RETRIEVED_FILES
        log = retrieved.base.repository.get_object_content(stdout_name) if stdout_name in names else ''
        if UNKNOWN_PAIR_STYLE.search(log) and 'mtp' in log:
            return self.exit_codes.ERROR_PLUGIN_NOT_LOADED
        files = static_inputs.FILES
        if files['results'] not in names or files['final'] not in names:
            error = LAMMPS_ERROR.search(log)
            if error:
                return self.exit_codes.ERROR_LAMMPS.format(message=error.group(0))
            return self.exit_codes.ERROR_MISSING_RESULTS.format(message='results.dat or final.dump absent')
        try:
            result = static_inputs.read_results(retrieved.base.repository.get_object_content(files['results']))
            symbols, positions = static_inputs.read_final_positions(
                retrieved.base.repository.get_object_content(files['final'])
            )
        except ValueError as exception:
            return self.exit_codes.ERROR_MISSING_RESULTS.format(message=str(exception))

        structure = self.node.inputs.structure
        rotation = lammps_frame_rotation(structure.cell)
        r = result
        cell_lammps = np.array([[r['lx'], 0.0, 0.0], [r['xy'], r['ly'], 0.0], [r['xz'], r['yz'], r['lz']]])
        origin = np.array([r['xlo'], r['ylo'], r['zlo']])
        cell = cell_lammps @ rotation.T
        cartesian = (np.array(positions) - origin) @ rotation.T
        final = orm.StructureData(cell=cell.tolist(), pbc=structure.pbc)
        for symbol, position in zip(symbols, cartesian):
            final.append_atom(position=position.tolist(), symbols=symbol)

        pressure = np.array(
            [[r['pxx'], r['pxy'], r['pxz']], [r['pxy'], r['pyy'], r['pyz']], [r['pxz'], r['pyz'], r['pzz']]]
        )
        stress = -(rotation @ pressure @ rotation.T) * BAR_TO_GPA  # Cauchy stress, tensile positive, input frame
        stress_node = orm.ArrayData()
        stress_node.set_array('stress', stress)
        stress_node.base.attributes.set('units', 'GPa')
        stress_node.base.attributes.set('sign_convention', 'Cauchy stress, tensile positive (= -pressure tensor)')

        criterion = STOPPING.search(log)
        iterations = ITERATIONS.search(log)
        parameters = static_inputs.validate_static_parameters(
            self.node.inputs.parameters.get_dict() if 'parameters' in self.node.inputs else {}
        )
        summary = {
            'energy': r['pe'],
            'energy_units': 'eV',
            'energy_per_atom': r['pe'] / len(symbols),
            'number_of_atoms': len(symbols),
            'volume': r['vol'],
            'volume_units': 'Angstrom^3',
            'pressure': float(np.trace(pressure) / 3 * BAR_TO_GPA),
            'pressure_units': 'GPa',
            'max_force': r['fmax'],
            'max_force_units': 'eV/Angstrom',
            'task': parameters['task'],
            'stopping_criterion': criterion.group(1).strip() if criterion else None,
            'iterations': int(iterations.group(1)) if iterations else 0,
        }
        self.out('energy', orm.Float(r['pe']))
        self.out('stress', stress_node)
        self.out('structure', final)
        self.out('output_parameters', orm.Dict(summary))
        if parameters['task'] == 'minimize':
            stopped = summary['stopping_criterion'] or 'unknown'
            converged = any(stopped.startswith(c) for c in static_inputs.CONVERGED_CRITERIA)
            if converged and stopped.startswith(static_inputs.PRECISION_CRITERIA):
                # the line search gave up: converged only if the forces are (near) the tolerance
                converged = r['fmax'] <= 10 * parameters['force_tolerance']
            if not converged:
                return self.exit_codes.ERROR_MINIMIZATION_NOT_CONVERGED.format(criterion=stopped)
        return None
