"""Transport analysis with provenance: calcfunction wrappers of :mod:`aiida_mscale.analysis` and
``TransportAnalysisWorkChain`` (entry point ``mscale.transport``).

Modules: ``reader`` (trajectory node -> arrays), ``settings`` (the ``parameters`` input), ``functions``
(calcfunctions), ``workchain``.
"""

from .functions import arrhenius, diffusion_modes_and_importance, diffusivity, environment_classes
from .reader import read_trajectory
from .workchain import TransportAnalysisWorkChain

__all__ = [
    'TransportAnalysisWorkChain',
    'arrhenius',
    'diffusion_modes_and_importance',
    'diffusivity',
    'environment_classes',
    'read_trajectory',
]
