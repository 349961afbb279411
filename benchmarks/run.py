"""Run every benchmark in this folder (``make bench``); each prints its own table with ratios."""

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == '__main__':
    quick = '--quick' in sys.argv
    runs = [(script, []) for script in sorted(HERE.glob('*_speed.py'))]
    # label efficiency across x (0.25-1), then in the Li-vacancy regime where the loop converges (x >= 0.75)
    runs += [
        (HERE / 'active_learning_efficiency.py', []),
        (HERE / 'active_learning_efficiency.py', ['--x-min', '0.75', '--random-seeds', '10']),
    ]
    for script, arguments in runs:
        print(f'\n=== {script.name} {" ".join(arguments)} ===', flush=True)
        sys.argv = [str(script)] + arguments + (['--quick'] if quick else [])
        runpy.run_path(str(script), run_name='__main__')
