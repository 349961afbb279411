"""``python -m aiida_mscale.lammps [--force] [-v]``: build mtpplugin.so, print its path."""

import sys

from . import build

if __name__ == '__main__':
    args = sys.argv[1:]
    print(build(force='--force' in args, verbose='-v' in args or '--verbose' in args))
