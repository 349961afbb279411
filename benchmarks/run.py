"""Run every benchmark in this folder (``make bench``); each prints its own table with ratios."""

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == '__main__':
    quick = '--quick' in sys.argv
    for script in sorted(HERE.glob('*_speed.py')) + [HERE / 'active_learning_efficiency.py']:
        print(f'\n=== {script.name} ===', flush=True)
        sys.argv = [str(script)] + (['--quick'] if quick else [])
        runpy.run_path(str(script), run_name='__main__')
