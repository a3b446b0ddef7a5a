"""Gavel's workers: the group index and the evaluation consumers."""
