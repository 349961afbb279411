"""aiida-mscale: multiscale battery-materials workflows with full AiiDA provenance."""

__version__ = '0.1.0'
