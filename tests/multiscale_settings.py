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
import pathlib

_DEMO = pathlib.Path(__file__).parent.parent / 'examples' / 'multiscale_demo.py'
_spec = importlib.util.spec_from_file_location('multiscale_demo', _DEMO)
demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo)

#: the demo's potential, exported with its provenance from a demo run (``verdi archive create -N <potential>
#: --no-call-calc-backward --no-call-work-backward``)
POTENTIAL_ARCHIVE = pathlib.Path(__file__).parent / 'fixtures' / 'multiscale' / 'li2o_demo_potential.aiida'
POTENTIAL_UUID = 'ae21ee30-7f21-4dc2-a152-e9f6d23a0e76'

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
