"""Calculation functions: light derivations kept in the provenance graph."""

from .training_set import build_training_set_from_pw, merge_training_sets, record_failures, relabel_kinds_by_element

__all__ = ['build_training_set_from_pw', 'merge_training_sets', 'record_failures', 'relabel_kinds_by_element']
