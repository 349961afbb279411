"""Parser of ``LammpsMtpCalculation``: the run's summary from LAMMPS's standard output, the thermo series, the
trajectory (:class:`~aiida_mscale.data.lammps_trajectory.LammpsTrajectoryData`), extrapolative configurations, the
largest extrapolation grade and the newest restart file."""

import io
import re

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_mscale.calculations.script_job import merged_parameters
from aiida_mscale.lammps import inputs as lammps_inputs

UNKNOWN_PAIR_STYLE = re.compile(r'Unrecognized pair style .mtp.')
HALT = re.compile(r'pair_style mtp: extrapolation grade (\S+) > break threshold (\S+) at step (\d+): halting the run')
VERSION = re.compile(r'^LAMMPS \((.+)\)\s*$')
LOOP = re.compile(r'^Loop time of (\S+) on (\d+) procs for (\d+) steps with (\d+) atoms')
PERFORMANCE = re.compile(r'^Performance:.*?([0-9.eE+-]+) timesteps/s')
TASKS = re.compile(r'CPU use with (\d+) MPI tasks x (\d+) OpenMP threads')
WALL_TIME = re.compile(r'^Total wall time: (\d+):(\d\d):(\d\d)\s*$')


def read_stdout(text: str) -> dict:
    """The summary of a LAMMPS run from its standard output (or ``log.lammps``): what the parser reports.

    Keys (each only when LAMMPS printed it): ``lammps_version``; ``errors`` (list of ``{'message', 'input_line'}``:
    the ``ERROR`` lines and the ``Last input line`` LAMMPS prints just after one); ``warnings`` (the ``WARNING`` lines);
    ``runs`` (one ``{'loop_time_s', 'procs', 'steps', 'atoms', 'timesteps_per_second'}`` per ``run`` finished:
    wall time [s] of its loop, MPI processes, MD steps, atoms at its end, speed); ``mpi_tasks`` and
    ``openmp_threads`` (of the last run); ``total_wall_time`` (``H:MM:SS`` as printed) and
    ``total_wall_time_seconds``. The thermodynamic table is not read from here: the thermo file is the record.
    Lines cut by a run killed mid-write are simply not matched.
    """
    summary: dict = {'errors': [], 'warnings': [], 'runs': []}
    lines = text.splitlines()
    for k, raw in enumerate(lines):
        line = raw.strip()
        if line.startswith('ERROR'):
            error = {'message': line}
            for following in (f.strip() for f in lines[k + 1 : k + 4]):  # after a "For more information" line
                if following.startswith(('Last input line:', 'Last command:')):
                    error['input_line'] = following.split(':', 1)[1].strip()
                    break
            summary['errors'].append(error)
        elif line.startswith('WARNING'):
            summary['warnings'].append(line)
        elif match := VERSION.match(line):
            summary.setdefault('lammps_version', match.group(1))
        elif match := LOOP.match(line):
            loop_time, procs, steps, atoms = match.groups()
            summary['runs'].append(
                {'loop_time_s': float(loop_time), 'procs': int(procs), 'steps': int(steps), 'atoms': int(atoms)}
            )
        elif (match := PERFORMANCE.match(line)) and summary['runs']:
            summary['runs'][-1]['timesteps_per_second'] = float(match.group(1))
        elif match := TASKS.search(line):
            summary['mpi_tasks'], summary['openmp_threads'] = int(match.group(1)), int(match.group(2))
        elif match := WALL_TIME.match(line):
            hours, minutes, seconds = (int(v) for v in match.groups())
            summary['total_wall_time'] = line.split(':', 1)[1].strip()
            summary['total_wall_time_seconds'] = 3600 * hours + 60 * minutes + seconds
    return summary


class LammpsMtpParser(Parser):
    """The run's summary (:func:`read_stdout`), trajectory, thermo series, extrapolative configurations and max
    grade of a ``LammpsMtpCalculation``."""

    def parse(self, **kwargs):
        from aiida_mscale.data.lammps_trajectory import DumpError, LammpsTrajectoryData
        from aiida_mscale.data.training_set import TrainingSetData

        retrieved = self.retrieved
        names = retrieved.base.repository.list_object_names()
        stdout = self.node.base.attributes.get('output_filename')
        if stdout not in names:
            return self.exit_codes.ERROR_OUTFILE_MISSING
        log = retrieved.base.repository.get_object_content(stdout, 'rb').decode('utf8', errors='replace')
        if UNKNOWN_PAIR_STYLE.search(log):
            return self.exit_codes.ERROR_PLUGIN_NOT_LOADED
        summary = read_stdout(log)
        self.out('results', orm.Dict(summary))
        if summary['errors']:
            for error in summary['errors']:
                self.logger.error(f'LAMMPS stopped with the error: {error["message"]}')
            return self.exit_codes.ERROR_PARSER_DETECTED_LAMMPS_RUN_ERROR.format(error=summary['errors'][0]['message'])
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
            dump = retrieved.base.repository.get_object_content(files['trajectory'], 'rb')
            try:
                trajectory = LammpsTrajectoryData.from_dump(dump.decode('utf8', errors='replace'))
            except DumpError as exception:  # GCMC changed the atoms: the dump itself is kept
                self.logger.warning(f'the dump is kept as a file, not a trajectory: {exception}')
                self.out('trajectory_dump', orm.SinglefileData(io.BytesIO(dump), filename=files['trajectory']))
            else:
                if trajectory.base.attributes.get('dropped_incomplete_frame'):
                    self.logger.warning('the dump ended inside a frame: that frame is left out of the trajectory')
                self.out('trajectory', trajectory)

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
