"""Calculation functions: light derivations kept in the provenance graph."""

from .training_set import build_training_set_from_pw, merge_training_sets, record_failures

__all__ = ['build_training_set_from_pw', 'merge_training_sets', 'record_failures']
