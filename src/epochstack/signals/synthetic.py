"""Compatibility alias: the synthetic recordings live in :mod:`epochstack.synthetic`; import them from there."""

from epochstack.synthetic import *  # noqa: F403
