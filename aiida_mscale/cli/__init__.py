"""The ``aiida-mscale`` command line."""

from aiida_mscale.cli.root import cmd_root

__all__ = ['cmd_root']
