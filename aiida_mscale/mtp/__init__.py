"""Moment Tensor Potentials: untrained templates and MLIP ``.mtp`` files.

Pure Python (numpy only); nothing here imports AiiDA.
"""

from .potential_file import MtpFileError, MtpPotential, parse_mtp, read_mtp, write_mtp
from .template import MtpTemplate, basis_graphs, generate_untrained_mtp, moment_level

__all__ = [
    'MtpFileError',
    'MtpPotential',
    'MtpTemplate',
    'basis_graphs',
    'generate_untrained_mtp',
    'moment_level',
    'parse_mtp',
    'read_mtp',
    'write_mtp',
]
