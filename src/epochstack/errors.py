"""The one error type for bad input, importable from every layer.

``InputDataError`` names the source (a file, a parameter such as ``dataset.train_path``), the
problem and the fix, on one line. It pickles, so a check that fails inside a joblib worker or on
a Dask cluster reaches the user with its message intact. The command line (``epochstack.cli``)
prints it as one line without a traceback and exits with status 1.
"""

from __future__ import annotations

import re


def one_line(text: object) -> str:
    """``text`` on one line: line breaks (a parser's multi-line message, a file name holding
    a newline) become single spaces."""
    return re.sub(r"\s*[\r\n]+\s*", " ", str(text)).strip()


class InputDataError(ValueError):
    """Bad input data or parameters: ``<source>: <problem> Fix: <fix>``, always on one line."""

    def __init__(self, source: object, problem: str, fix: str | None = None):
        self.source, self.problem = one_line(source), one_line(problem)
        self.fix = None if fix is None else one_line(fix)
        message = f"{self.source}: {self.problem}"
        if self.fix:
            message += f" Fix: {self.fix}"
        super().__init__(message)

    def __reduce__(self):
        # Exceptions pickle as ``cls(*self.args)``; args holds the formatted message only.
        return type(self), (self.source, self.problem, self.fix)


class ParameterError(InputDataError):
    """A parameter with a wrong type or value, found before anything is computed or saved."""
