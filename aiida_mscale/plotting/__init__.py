"""Matplotlib figures drawn by ``aiida-mscale report`` (object API, no display needed)."""
