"""Settings of the MultiscaleWorkChain runs of the tests: the demo's (``examples/multiscale_demo.py``) with a few
deltas, so the two cannot drift apart.

The chain test (``tests/test_multiscale.py``, through ``tests/scripts/multiscale_chain_daemon.py``) enters the chain
with the demo's potential, imported with its provenance (the 19 pw.x labels, the training and selection runs) from
``tests/fixtures/multiscale/li2o_demo_potential.aiida``: the DFT labels and active learning of the demo take about 15
minutes, which the suite's 30-minute budget cannot hold; the active-learning loop has its own test
(``tests/test_active_learning.py``). Everything from the guest reference (real pw.x) to the electrode runs here.
"""

import copy
import importlib.util
import json
import pathlib
import zipfile

_DEMO = pathlib.Path(__file__).parent.parent / 'examples' / 'multiscale_demo.py'
_spec = importlib.util.spec_from_file_location('multiscale_demo', _DEMO)
demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo)

#: the demo's potential, exported with its provenance from a demo run (``verdi archive create -N <potential>
#: --no-call-calc-backward --no-call-work-backward``)
POTENTIAL_ARCHIVE = pathlib.Path(__file__).parent / 'fixtures' / 'multiscale' / 'li2o_demo_potential.aiida'
POTENTIAL_UUID = 'ae21ee30-7f21-4dc2-a152-e9f6d23a0e76'
#: the DEMO_VERSION of the demo run the archive was exported from (the archive itself holds no version); change it
#: with POTENTIAL_UUID whenever the archive is regenerated
POTENTIAL_DEMO_VERSION = 2


def check_potential_archive(archive=POTENTIAL_ARCHIVE, uuid=POTENTIAL_UUID, version=POTENTIAL_DEMO_VERSION) -> None:
    """Refuse an archive that is not the one these settings describe, or that is of another demo version.

    The archive must have been exported from node ``uuid`` (its ``metadata.json``, read without importing), and
    ``version`` must be the demo's DEMO_VERSION: a bumped demo has other settings, so its chain test would start
    from a potential fitted under the old ones.

    :raises ValueError: naming what disagrees and what to do.
    """
    with zipfile.ZipFile(archive) as opened:
        metadata = json.loads(opened.read('metadata.json'))
    starting = metadata.get('creation_parameters', {}).get('entities_starting_set', {}).get('node', [])
    if starting != [uuid]:
        raise ValueError(f'{archive.name} was exported from nodes {starting}, not from the potential {uuid}')
    if version != demo.DEMO_VERSION:
        raise ValueError(
            f'{archive.name} holds the potential of demo v{version}, but examples/multiscale_demo.py is at '
            f'DEMO_VERSION {demo.DEMO_VERSION}: regenerate it from a new demo run (tests/fixtures/multiscale/README.md)'
        )


OPTIONS = {**demo.OPTIONS, 'max_wallclock_seconds': 900}
CELL = {**demo.CELL, 'c_rates': [1.0, 10.0]}


def overrides() -> dict:
    """The demo's overrides, smaller: two guest fractions at three temperatures, one ordering, three draws."""
    result = copy.deepcopy(demo.overrides())
    result['guest_fractions'] = [0.5, 0.75]
    result['temperatures'] = [800.0, 1000.0, 1200.0]
    result['thermodynamics']['orderings'] = 1
    result['electrode'] = {
        'models': ['particle_diffusion'],
        'cell': copy.deepcopy(CELL),
        'uncertainty': {'ensemble_size': 3, 'seed': 7},
    }
    return result


host = demo.host
