"""The command-line shape of the package's scripts: ``NAME input.json``, errors as ``ERROR: ...`` on stderr."""

import json
import sys
from pathlib import Path


def run_script(name: str, function, argv=None, report=lambda result: result) -> int:
    """Run ``function(inputs, workdir=...)`` on the JSON file named in ``argv``; exit status 0, 1 (error) or 2 (usage).

    :param report: maps the result to what is printed as JSON on stdout (nothing if it is empty).
    """
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(f'usage: {name} input.json', file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        inputs = json.loads(path.read_text())
        result = function(inputs, workdir=path.parent)
    except (OSError, ValueError, KeyError) as exception:
        print(f'ERROR: {exception}', file=sys.stderr)
        return 1
    shown = report(result)
    if shown:
        print(json.dumps(shown, indent=2))
    return 0
