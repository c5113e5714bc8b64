"""The one error type for bad input, importable from every layer.

``InputDataError`` names the source (a file, a parameter such as ``dataset.train_path``), the
problem and the fix, on one line. It pickles, so a check that fails inside a joblib worker or on
a Dask cluster reaches the user with its message intact. The command line (``epochstack.cli``)
prints it as one line without a traceback and exits with status 1.
"""

from __future__ import annotations


class InputDataError(ValueError):
    """Bad input data or parameters: ``<source>: <problem> Fix: <fix>``."""

    def __init__(self, source: object, problem: str, fix: str | None = None):
        self.source, self.problem, self.fix = str(source), str(problem), fix
        message = f"{self.source}: {self.problem}"
        if fix:
            message += f" Fix: {fix}"
        super().__init__(message)

    def __reduce__(self):
        # Exceptions pickle as ``cls(*self.args)``; args holds the formatted message only.
        return type(self), (self.source, self.problem, self.fix)


class ParameterError(InputDataError):
    """A parameter with a wrong type or value, found before anything is computed or saved."""
