"""House rules of the analysis layer: no AiiDA import; every public name resolves."""

import subprocess
import sys

MODULES = [
    'msd',
    'msd_gls',
    'diffusion',
    'arrhenius',
    'rdf',
    'descriptors',
    'modes',
    'importance',
    'environments',
    'polyhedra',
]


def test_analysis_never_imports_aiida():
    # run in a fresh interpreter: the test session itself has AiiDA loaded by the root conftest
    code = (
        'import sys, importlib\n'
        + ''.join(f'importlib.import_module("aiida_mscale.analysis.{m}")\n' for m in MODULES)
        + 'import aiida_mscale.analysis as A\n'
        + '[getattr(A, n) for n in A.__all__]\n'
        + 'bad = sorted(m for m in sys.modules if m == "aiida" or m.startswith("aiida."))\n'
        + 'assert not bad, bad\n'
    )
    res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
