"""epochstack: reproducible epoch classifiers for physiological signals."""

__version__ = "0.1.0"
