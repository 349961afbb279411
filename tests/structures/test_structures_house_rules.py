"""House rule of the builders: no AiiDA import; every public name resolves."""

import subprocess
import sys


def test_structures_never_import_aiida():
    code = (
        'import sys\n'
        'import aiida_mscale.structures as S\n'
        '[getattr(S, n) for n in S.__all__]\n'
        'bad = sorted(m for m in sys.modules if m == "aiida" or m.startswith("aiida."))\n'
        'assert not bad, bad\n'
    )
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
