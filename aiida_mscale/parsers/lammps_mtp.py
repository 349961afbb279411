"""Parser of ``LammpsMtpCalculation``."""

import re

import numpy as np
from aiida import orm
from aiida_lammps.parsers.raw import LammpsRawParser

from aiida_mscale.lammps import inputs as lammps_inputs

HALT = re.compile(r'pair_style mtp: extrapolation grade (\S+) > break threshold (\S+) at step (\d+): halting the run')


class LammpsMtpParser(LammpsRawParser):
    """aiida-lammps' raw results, plus trajectory, thermo series, extrapolative configurations and max grade."""

    def parse(self, **kwargs):
        from aiida_lammps.data.trajectory import LammpsTrajectory

        from aiida_mscale.data.training_set import TrainingSetData

        exit_code = super().parse(**kwargs)
        if exit_code is not None and exit_code.status != 0:
            return exit_code
        files = lammps_inputs.FILES
        retrieved = self.retrieved
        names = retrieved.base.repository.list_object_names()
        species = self.node.inputs.potential.species

        if files['thermo'] not in names:
            return self.exit_codes.ERROR_MISSING_THERMO
        text = retrieved.base.repository.get_object_content(files['thermo'])
        header = next(line for line in text.splitlines() if line.startswith('#'))[1:].split()
        table = np.loadtxt(io_lines(text), ndmin=2)
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

        log = retrieved.base.repository.get_object_content(self.node.base.attributes.get('output_filename'))
        halted = HALT.search(log)
        if halted:
            grade, _, step = halted.groups()
            return self.exit_codes.STOPPED_BY_EXTRAPOLATION_BREAK.format(step=step, grade=grade)
        return None


def io_lines(text):
    """The data lines of a ``fix print`` file (comments dropped)."""
    return [line for line in text.splitlines() if line.strip() and not line.startswith('#')]
