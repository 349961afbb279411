"""Parser of ``LammpsMtpCalculation``."""

import re

import numpy as np
from aiida import orm
from aiida_lammps.parsers.raw import LammpsRawParser

from aiida_mscale.calculations.script_job import merged_parameters
from aiida_mscale.lammps import inputs as lammps_inputs

UNKNOWN_PAIR_STYLE = re.compile(r'Unrecognized pair style .mtp.')
HALT = re.compile(r'pair_style mtp: extrapolation grade (\S+) > break threshold (\S+) at step (\d+): halting the run')


class LammpsMtpParser(LammpsRawParser):
    """aiida-lammps' raw results, plus trajectory, thermo series, extrapolative configurations and max grade."""

    def parse(self, **kwargs):
        from aiida_lammps.data.trajectory import LammpsTrajectory

        from aiida_mscale.data.training_set import TrainingSetData

        retrieved = self.retrieved
        names = retrieved.base.repository.list_object_names()
        stdout = self.node.base.attributes.get('output_filename')
        log = retrieved.base.repository.get_object_content(stdout) if stdout in names else ''
        if UNKNOWN_PAIR_STYLE.search(log):
            return self.exit_codes.ERROR_PLUGIN_NOT_LOADED
        try:
            exit_code = super().parse(**kwargs)
        except (ValueError, SyntaxError, IndexError, KeyError) as exception:
            # aiida-lammps' stdout reader fails on a table cut mid-line (a run killed by the walltime): the stdout
            # is only diagnostics, the thermo file below decides whether the run is complete
            self.logger.warning(f'the LAMMPS stdout could not be read ({type(exception).__name__}: {exception})')
            self.out('results', orm.Dict({'compute_variables': {'stdout_unreadable': str(exception)}}))
            exit_code = None
        if exit_code is not None and exit_code.status != 0:
            return exit_code
        files = lammps_inputs.FILES
        species = self.node.inputs.potential.species

        if files['thermo'] not in names:
            return self.exit_codes.ERROR_MISSING_THERMO
        text = retrieved.base.repository.get_object_content(files['thermo'])
        try:
            header, table = read_thermo(text)
        except ValueError:
            return self.exit_codes.ERROR_MISSING_THERMO
        thermo = orm.ArrayData()
        for k, name in enumerate(header):
            thermo.set_array(name, table[:, k])
        self.out('thermo', thermo)

        if files['trajectory'] in names:
            try:
                with retrieved.base.repository.open(files['trajectory']) as handle:
                    self.out('trajectory', LammpsTrajectory(handle))
            except OSError:  # LammpsTrajectory needs a fixed number of atoms; GCMC changes it
                with retrieved.base.repository.open(files['trajectory'], 'rb') as handle:
                    self.out('trajectory_dump', orm.SinglefileData(handle, filename=files['trajectory']))

        grades = list(table[:, header.index('max_grade')]) if 'max_grade' in header else []
        if files['extrapolative'] in names:
            cfg = retrieved.base.repository.get_object_content(files['extrapolative'])
            if cfg.strip():
                configurations = TrainingSetData.from_cfg(cfg, species)
                self.out('extrapolative_configurations', configurations)
                grades += [float(v) for v in re.findall(r'Feature\s+MV_grade\s+(\S+)', cfg)]
        if grades:
            self.out('max_grade', orm.Float(max(grades)))

        from aiida_mscale.calculations.lammps_mtp import latest_restart_file

        restart = latest_restart_file(kwargs.get('retrieved_temporary_folder'))
        if restart is not None:  # kept whatever the exit code: a run cut short continues from it
            self.out('restart_file', restart)

        halted = HALT.search(log)
        if halted:
            grade, _, step = halted.groups()
            return self.exit_codes.STOPPED_BY_EXTRAPOLATION_BREAK.format(step=step, grade=grade)
        steps = lammps_inputs.validate_md_parameters(merged_parameters(self.node.inputs), species)['steps']
        last = int(table[-1, header.index('step')]) if len(table) else 0
        if last < steps and 'Total wall time' not in log:
            return self.exit_codes.ERROR_OUT_OF_WALLTIME.format(step=last, steps=steps)
        return None


def read_thermo(text: str) -> tuple[list[str], np.ndarray]:
    """(column names, table) of a ``fix print`` file with a ``# name name ...`` title line.

    :raises ValueError: if the title line is missing, has no ``step`` column, or the rows do not match it.
    """
    header = next((line[1:].split() for line in text.splitlines() if line.startswith('#')), None)
    if not header:
        raise ValueError('the thermo file has no `# column ...` title line')
    if 'step' not in header:
        raise ValueError(f'the thermo file has no `step` column (columns: {header})')
    rows = [line for line in text.splitlines() if line.strip() and not line.startswith('#')]
    table = np.loadtxt(rows, ndmin=2) if rows else np.zeros((0, len(header)))
    if table.shape[1] != len(header):
        raise ValueError(f'the thermo file has {table.shape[1]} columns but {len(header)} names')
    return header, table
