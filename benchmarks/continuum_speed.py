"""Speed of the FEniCSx continuum solvers at the default resolution and at 4x the elements, measured in one run.

Each model runs as the CalcJob runs it: ``/usr/bin/python3 aiida_mscale/continuum/solver.py input.json`` (Debian's
python3-dolfinx, OMP_NUM_THREADS=1, PYTHONPATH cleared) in a temporary folder. For every model the table gives the
degrees of freedom, time steps, Newton iterations per time step and the fraction of the solver's wall time spent in
the linear solver (LU factorisation and solve), all from the solver's own statistics in results.json (``n/a`` where a
model does not record one); the solver's wall time (results.json ``wall_time``: from before the mesh is built to the
end of the solve; it includes importing dolfinx, about 0.4 s, except for phase_field, which imports it first) and the
part of it outside the time loops or linear solves (set-up); the CPU time of the whole process (robust against a busy
machine, unlike wall time); and the ratio 4x/default of the wall time, of the CPU time and of the wall time per step.
"4x the elements" is 4x the cells in 1-D (particle 60 -> 240 radial cells, phase-field sphere 200 -> 800) and 2x per
side in 2-D (polycrystal: grid 96^2 -> 192^2 squares, each cut along the grain-boundary band, phase-field disk
48 -> 96 across, porous electrode 30 x 20 -> 60 x 40 cells in (x, r)).

Every input is first run once on a coarse mesh so that the JIT-compiled forms are cached and no timed run pays for
compilation; runs shorter than 10 s are repeated and the fastest of three kept (the machine is shared). Then the
10-C-rate rate-capability table of ``particle_diffusion`` (0.1C .. 20C, tabulated D(x) and OCV(x), default mesh) is
timed end to end, process start to results.json.

Polycrystal (issue 11): after the table, D_eff of a 25-grain Voronoi sample with blocking (D_gb/D_b = 1e-3, 1e-2)
and fast (1e2) boundaries against the grid (24 ... 384 squares per side, the mesh cut along the band), with the
observed order of convergence and the change of the default grid (96) relative to the finest.

Targets (issue 5): the wall time and Newton iterations per time step of each model at both resolutions, with the
linear-solver fraction; the 10-C-rate rate-capability table in seconds, not minutes (checked here as < 60 s end to
end).

Run: ``make bench`` (or ``python benchmarks/continuum_speed.py [--quick] [--full-2d]``). ``--quick``: only
particle_diffusion and the 1-D phase-field sphere. The 2-D phase-field disk runs at the default resolution only unless
``--full-2d`` is given (its 4x run takes about 5 minutes).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SOLVER = REPO / 'aiida_mscale' / 'continuum' / 'solver.py'
FENICS_PYTHON = os.environ.get('MSCALE_FENICS_PYTHON', '/usr/bin/python3')
RATES = [0.1, 0.2, 0.5, 1, 2, 3, 5, 7, 10, 20]
TARGET_RATE_TABLE_S = 60.0  # "seconds, not minutes"
REPEATS, SHORT_RUN_S = 3, 10.0  # runs shorter than this are repeated, the fastest of REPEATS kept


def tables() -> dict:
    """D(x) [m^2/s] and OCV(x) [V] tables of a layered-oxide-like cathode (as in tests/continuum)."""
    x = np.linspace(0.0, 1.0, 41)
    ocv = 4.3 - 0.9 * x - 0.024 * np.log(np.clip(x, 1e-4, None) / np.clip(1 - x, 1e-4, None))
    ocv -= 0.5 * np.exp(-(1 - x) / 0.03)
    return {
        'diffusivity': {'x': x.tolist(), 'D': (1e-14 * (1 - 0.9 * x)).tolist()},
        'ocv': {'x': x.tolist(), 'V': ocv.tolist()},
    }


def particle_input(rates, n_cells=None) -> dict:
    inp = {
        'model': 'particle_diffusion',
        'particle': {'radius': 5e-6, 'c_max': 4.9e4, 'density': 4.7},
        **tables(),
        'x_initial': 0.05,
        'x_final': 0.99,
        'c_rates': list(rates),
        'cutoff_voltage': 3.0,
        'kinetics': {'i0': 2.0, 'concentration_dependent': True},
    }
    if n_cells:
        inp['mesh'] = {'n_cells': n_cells}
    return inp


def phase_field_input(dim: int, n_cells: int) -> dict:
    """1C galvanostatic lithiation of a regular-solution particle (Omega = 3 RT) up to a mean x of 0.9 (1-D) or 0.6
    (2-D disk, symmetry broken by 0.5 % noise; wider interface so that the 48-cell default mesh resolves it)."""
    inp = {
        'model': 'phase_field',
        'particle': {'radius': 1e-6, 'c_max': 2.0e4},
        'free_energy': {'type': 'regular_solution', 'omega_RT': 3.0},
        'E0': 3.4,
        'interface_width': 2e-8 if dim == 1 else 1e-7,
        'diffusivity': 1e-15,
        'dimension': dim,
        'mesh': {'n_cells': n_cells},
        'driving': {'type': 'galvanostatic', 'c_rate': 1.0},
        'initial': {'type': 'uniform', 'x': 0.03},
        'x_end': 0.9 if dim == 1 else 0.6,
    }
    if dim == 2:
        inp['initial'].update(noise=0.005, seed=3)
    return inp


def polycrystal_input(cells_per_side: int) -> dict:
    """3 grain sizes x 3 temperatures, GB about 100x faster than bulk at 300 K: 9 x 2 steady linear solves."""
    return {
        'model': 'polycrystal',
        'grain_sizes': [1e-8, 2e-8, 4e-8],
        'temperatures': [300.0, 400.0, 600.0],
        'gb_width': 2e-9,
        'D_bulk': {'D0': 1e-6, 'Ea': 0.6},
        'D_gb': {'D0': 1e-6, 'Ea': 0.48},
        'mesh': {'cells_per_side': cells_per_side},
    }


POLYCRYSTAL_RATIOS = (1e-3, 1e-2, 1e2)  # D_gb / D_bulk of the convergence study
POLYCRYSTAL_GRIDS = (24, 48, 96, 192, 384)


def polycrystal_convergence(workdir: Path) -> dict:
    """D_eff of 25 random Voronoi grains (d = 20 nm, w = 1 nm: GB fraction 0.10) against the grid (squares per side;
    the band is 0.24 ... 3.8 squares wide), for blocking and fast boundaries; the successive changes, the observed
    order p = log2(change / next change) and the change of the default grid (96) relative to the finest."""
    kb = 8.617333262e-5
    temperatures = [1.0 / (kb * (30.0 - np.log(r))) for r in POLYCRYSTAL_RATIOS]  # D_gb/D_b = r at these T
    values, cells = [], []
    for m in POLYCRYSTAL_GRIDS:
        res = run_solver(
            workdir / f'grid{m}',
            {
                'model': 'polycrystal',
                'grain_sizes': [2e-8],
                'temperatures': temperatures,
                'gb_width': 1e-9,
                'D_bulk': 1e-14,
                'D_gb': {'D0': 1e-14 * float(np.exp(30.0)), 'Ea': 1.0},
                'mesh': {'cells_per_side': m},
            },
        )
        values.append([row['D_eff'] / row['D_bulk'] for row in res['table']])
        cells.append((res['mesh']['n_cells'], res['wall_time']))
        hs = [(row['hs_lower'] / row['D_bulk'], row['hs_upper'] / row['D_bulk']) for row in res['table']]
    values = np.array(values)
    print('\npolycrystal convergence under grid refinement (25 grains, f = 0.10; D_eff / D_bulk for D_gb/D_bulk = r):')
    print(f'{"grid":>10} {"cells":>8} {"wall s":>7} ' + ' '.join(f'{f"r={r:g}":>12}' for r in POLYCRYSTAL_RATIOS))
    for k, m in enumerate(POLYCRYSTAL_GRIDS):
        print(f'{m:>10} {cells[k][0]:>8} {cells[k][1]:>7.1f} ' + ' '.join(f'{v:>12.6g}' for v in values[k]))
    diffs = np.abs(np.diff(values, axis=0))
    orders = np.log2(diffs[:-1] / diffs[1:])
    print(
        f'{"changes":>27} '
        + ' | '.join(
            f'r={r:g}: {np.round(diffs[:, q] / values[-1, q], 5).tolist()}' for q, r in enumerate(POLYCRYSTAL_RATIOS)
        )
    )
    print(
        f'{"order p":>27} '
        + ' | '.join(f'r={r:g}: {np.round(orders[:, q], 2).tolist()}' for q, r in enumerate(POLYCRYSTAL_RATIOS))
    )
    default = POLYCRYSTAL_GRIDS.index(96)
    print(f'{"grid 96 vs finest":>27} ' + ' '.join(f'{v:>12.3%}' for v in values[default] / values[-1] - 1))
    print(f'{"HS bounds":>27} ' + ' '.join(f'[{lo:.4g}, {hi:.4g}]' for lo, hi in hs))
    return {'values': values, 'orders': orders}


def porous_input(n_x: int, n_r: int) -> dict:
    """P2D half cell, 1 M electrolyte, discharges at 1C and 5C to 3.0 V."""
    return {
        'model': 'porous_electrode',
        'particle': {'radius': 5e-6, 'c_max': 4.9e4, 'density': 4.7},
        **tables(),
        'x_initial': 0.05,
        'x_final': 0.99,
        'c_rates': [1.0, 5.0],
        'cutoff_voltage': 3.0,
        'kinetics': {'i0': 2.0, 'alpha': 0.5},
        'mesh': {'n_x': n_x, 'n_r': n_r},
    }


def warm_up_input(inp: dict) -> dict:
    """The same forms (model, dimension, tables, physical constants) on a coarse mesh, run briefly: fills the JIT
    cache. Only the mesh and the run length change; floats such as kappa are literals in the generated code."""
    inp = copy.deepcopy(inp)
    model = inp['model']
    if model == 'particle_diffusion':
        inp.update(mesh={'n_cells': 8}, c_rates=[20.0])
    elif model == 'phase_field':
        inp['mesh'] = {'n_cells': 60 if inp['dimension'] == 1 else 24}
        inp.pop('x_end')
        inp['t_end'] = 1.0
    elif model == 'polycrystal':
        inp.update(mesh={'cells_per_side': 8}, grain_sizes=inp['grain_sizes'][:1], temperatures=[300.0])
    elif model == 'porous_electrode':
        inp.update(mesh={'n_x': 6, 'n_r': 4}, c_rates=[5.0])  # 20C does not converge on this coarse mesh
    return inp


def run_solver(workdir: Path, inp: dict) -> dict:
    """Run solver.py on ``inp`` in ``workdir``; results.json plus end-to-end wall and CPU time of the process.

    Raises RuntimeError with the solver's own message when it fails.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / 'input.json').write_text(json.dumps(inp))
    env = dict(os.environ, OMP_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1', PYTHONPATH='')
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [FENICS_PYTHON, str(SOLVER), str(workdir / 'input.json')],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    process_wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res_file = workdir / 'results.json'
    res = json.loads(res_file.read_text()) if res_file.exists() else {}
    if proc.returncode or res.get('status') != 'ok':
        message = res.get('message') or proc.stderr.strip()[-2000:] or '(no message)'
        raise RuntimeError(f'{inp["model"]} solver failed with exit code {proc.returncode}: {message}')
    res['process_wall'] = process_wall
    res['process_cpu'] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return res


def statistics(res: dict) -> dict:
    """Steps, Newton iterations per step and linear-solver fraction from one results.json (None = not recorded)."""
    wall = res['wall_time']
    out = {'wall': wall, 'cpu': res['process_cpu'], 'process_wall': res['process_wall'], 'lin_note': ''}
    mesh = res.get('mesh', {})
    out['dofs'] = mesh.get('n_dofs')
    if res['model'] == 'polycrystal':
        # steady and linear: no time steps, no Newton; ``solve_time`` times assembly + LU of every solve
        out.update(steps=None, newton=None, lin=res['solve_time'] / wall, lin_note='*')
        out['setup'] = wall - res['solve_time']  # mesh, forms, GB band fractions per grain size
    elif 'runs' in res:  # one discharge per C-rate
        steps = sum(r['n_steps'] for r in res['runs'])
        its = sum(r['newton_iterations'] for r in res['runs'])
        lin = sum(r['linear_solve_time'] for r in res['runs'])
        out.update(steps=steps, newton=its / steps if steps else None, lin=lin / wall)
        out['setup'] = wall - sum(r['wall_time'] for r in res['runs'])  # mesh, forms, everything outside the loops
    else:  # phase_field: its wall_time includes the set-up, which it does not time separately
        out.update(steps=res.get('n_steps'), newton=res.get('newton_per_step'), setup=None)
        lin = res.get('linear_solve_time')
        out['lin'] = lin / wall if lin is not None else None
    return out


def measure(workdir: Path, inp: dict) -> dict:
    """Statistics of one run; runs shorter than SHORT_RUN_S are repeated and the fastest kept (shared machine)."""
    best = None
    for attempt in range(REPEATS):
        s = statistics(run_solver(workdir / f'try{attempt}', inp))
        best = s if best is None or s['wall'] < best['wall'] else best
        if s['process_wall'] > SHORT_RUN_S:
            break
    return best


def cases(quick: bool, full_2d: bool) -> list[tuple]:
    """(model label, resolution label, input at default, input at 4x or None)."""
    out = [
        ('particle_diffusion 1C', 'radial cells 60 -> 240', particle_input([1.0], 60), particle_input([1.0], 240)),
        ('phase_field sphere 1-D', 'radial cells 200 -> 800', phase_field_input(1, 200), phase_field_input(1, 800)),
    ]
    if quick:
        return out
    out += [
        (
            'phase_field disk 2-D',
            'cells across 48 -> 96',
            phase_field_input(2, 48),
            phase_field_input(2, 96) if full_2d else None,
        ),
        (
            'polycrystal 2-D',
            'grid squares 96 -> 192',
            polycrystal_input(96),
            polycrystal_input(192),
        ),
        ('porous_electrode P2D', 'n_x x n_r 30x20 -> 60x40', porous_input(30, 20), porous_input(60, 40)),
    ]
    return out


def fmt(value, spec: str, width: int) -> str:
    return f'{"n/a":>{width}}' if value is None else f'{value:>{width}{spec}}'


HEADER = (
    f'{"model":<24} {"res":>4} {"dofs":>7} {"steps":>6} {"newton/step":>11} {"lin frac":>9} {"wall s":>8} '
    f'{"setup s":>7} {"cpu s":>7} {"wall 4x/1x":>10} {"cpu 4x/1x":>9} {"per step 4x/1x":>14}'
)


def print_row(label: str, res_label: str, s: dict | None, base: dict | None = None, error: str = ''):
    if s is None:
        print(f'{label:<24} {res_label:>4}   FAILED: {error}', flush=True)
        return
    ratio = cpu_ratio = per_step = None
    if base is not None:
        ratio, cpu_ratio = s['wall'] / base['wall'], s['cpu'] / base['cpu']
        if s['steps'] and base['steps']:
            per_step = (s['wall'] / s['steps']) / (base['wall'] / base['steps'])
    lin = fmt(s['lin'], '.2f', 8) + (s['lin_note'] or ' ')
    print(
        f'{label:<24} {res_label:>4} {fmt(s["dofs"], "d", 7)} {fmt(s["steps"], "d", 6)} '
        f'{fmt(s["newton"], ".2f", 11)} {lin} {s["wall"]:>8.2f} {fmt(s["setup"], ".2f", 7)} {s["cpu"]:>7.1f} '
        f'{fmt(ratio, ".2f", 10)} {fmt(cpu_ratio, ".2f", 9)} {fmt(per_step, ".2f", 14)}',
        flush=True,
    )


def rate_table(workdir: Path) -> dict:
    """The 10-C-rate rate-capability table of particle_diffusion, timed end to end."""
    res = run_solver(workdir, particle_input(RATES[::-1]))
    print(
        f'\nparticle_diffusion rate capability, {len(RATES)} C-rates, default mesh '
        f'({res["mesh"]["n_cells"]} cells, {res["mesh"]["n_dofs"]} dofs):'
    )
    print(f'{"C-rate":>7} {"mAh/g":>8} {"delivered":>9} {"steps":>6} {"newton/step":>11} {"wall s":>7} {"lin frac":>8}')
    for run in sorted(res['runs'], key=lambda r: r['c_rate']):
        print(
            f'{run["c_rate"]:>7g} {run["capacity_mAh_per_g"]:>8.1f} {run["soc_delivered"]:>9.3f} {run["n_steps"]:>6d} '
            f'{run["newton_per_step"]:>11.2f} {run["wall_time"]:>7.2f} '
            f'{run["linear_solve_time"] / run["wall_time"]:>8.2f}'
        )
    caps = [r['capacity_mAh_per_g'] for r in sorted(res['runs'], key=lambda r: r['c_rate'])]
    res['monotone'] = all(b < a for a, b in zip(caps, caps[1:]))
    return res


def main(quick: bool = False, full_2d: bool = False) -> dict:
    rows, failures = {}, []
    with tempfile.TemporaryDirectory(prefix='continuum_speed_') as tmp:
        tmp = Path(tmp)
        todo = cases(quick, full_2d)
        print(f'load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; warming the JIT cache ...', flush=True)
        for k, (label, _, inp, _) in enumerate(todo):
            try:
                run_solver(tmp / f'warm{k}', warm_up_input(inp))
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f'  warm-up of {label} failed (timed run may include JIT compilation): {exc}', flush=True)
        print(
            '4x = 4x the cells in 1-D, 2x per side in 2-D; lin frac = linear-solver time / solver wall time; '
            'setup = solver wall outside the time loops or linear solves (cpu s: whole process)\n'
        )
        print(HEADER)
        for k, (label, res_label, inp1, inp4) in enumerate(todo):
            print(f'  ({label}: {res_label})', flush=True)
            base = None
            for tag, inp in (('1x', inp1), ('4x', inp4)):
                if inp is None:
                    print(f'{label:<24} {tag:>4}   skipped (--full-2d runs it, about 5 minutes)', flush=True)
                    continue
                try:
                    s = measure(tmp / f'{k}_{tag}', inp)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    failures.append(f'{label} {tag}: {exc}')
                    print_row(label, tag, None, error=str(exc))
                    continue
                rows[(label, tag)] = s
                print_row(label, tag, s, base if tag == '4x' else None)
                if tag == '1x':
                    base = s
        if not quick:
            print(
                '  * polycrystal is steady and linear (no time steps, no Newton): its fraction is the recorded '
                'solve_time (assembly + LU of 18 solves) over the solver wall time, an upper bound; its set-up '
                'includes the exact band geometry and the mesh cut along the band, once per grain size'
            )
            try:
                polycrystal_convergence(tmp / 'polycrystal_convergence')
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                failures.append(f'polycrystal convergence: {exc}')
                print(f'\npolycrystal convergence FAILED: {exc}')
        try:
            rate = rate_table(tmp / 'rates')
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            failures.append(f'rate-capability table: {exc}')
            print(f'\nrate-capability table FAILED: {exc}')
            rate = None
    print(f'load average at the end {os.getloadavg()[0]:.1f} (wall times above it are inflated; cpu s is not)')
    return {'rows': rows, 'rate_table': rate, 'failures': failures}


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='particle_diffusion and the 1-D phase-field sphere only')
    parser.add_argument('--full-2d', action='store_true', help='also the 2-D phase-field disk at 4x (about 5 minutes)')
    args = parser.parse_args()
    out = main(quick=args.quick, full_2d=args.full_2d)
    rate = out['rate_table']
    if rate is not None:
        ok = rate['process_wall'] < TARGET_RATE_TABLE_S
        print(
            f'\n{len(RATES)}-C-rate rate-capability table: {rate["process_wall"]:.1f} s end to end '
            f'({rate["wall_time"]:.1f} s in the solver, {rate["process_cpu"]:.1f} s CPU); target seconds, not minutes '
            f'(< {TARGET_RATE_TABLE_S:.0f} s): {"met" if ok else "NOT MET"}; capacity falls with every rate step: '
            f'{"yes" if rate["monotone"] else "NO"}'
        )
    ratios = [
        (label, s['wall'] / out['rows'][(label, '1x')]['wall'], s['cpu'] / out['rows'][(label, '1x')]['cpu'])
        for (label, tag), s in out['rows'].items()
        if tag == '4x' and (label, '1x') in out['rows']
    ]
    if ratios:
        print(
            '4x/default, solver wall time (process CPU time): '
            + ', '.join(f'{label} {r:.1f}x ({c:.1f}x)' for label, r, c in ratios)
        )
    if out['failures']:
        print('\nFAILED:\n  ' + '\n  '.join(out['failures']))
        raise SystemExit(1)
