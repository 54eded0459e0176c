"""Errors a person running genlab causes and can fix, and how the commands report them.

A ``UserError`` is raised for a problem in what the user gave genlab, never for a bug in genlab:

- ``genlab.validation.ConfigError``: a bad config value (the key, the value, what is allowed),
  an unset ``???``, a ``_target_`` that cannot be imported, a missing ``ckpt_path`` file;
- ``genlab.data.download.DataNotFoundError``: data files absent (the fix: ``GENLAB_DATA`` or
  ``data.source.download=true``); ``CorruptFileError``: a truncated or corrupt data file;
- ``genlab.runs.CheckpointError``: a file that is not a readable genlab checkpoint (corrupt,
  foreign, or holding objects other than tensors); ``CheckpointMismatchError``: a checkpoint
  whose weights do not fit the model;
- ``genlab.runs.RunNotFoundError``: a run directory (or its checkpoint) that does not exist;
- ``genlab.hydra_callbacks.RunDirectoryExistsError``: a new run pointed at an existing one;
- ``UsageError``: a command-line argument that does not fit the run (``--label``).

genlab-train, genlab-eval and genlab-sample print such an error as one short message (``Error:``
and the text, which names the problem and the fix) and a hint, with no traceback, and exit with
status 1; with ``HYDRA_FULL_ERROR=1`` the traceback is shown. Any other exception is a bug (or
an environment problem) and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from hydra.errors import CompactHydraException

FULL_ERROR_HINT = "Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace."
T = TypeVar("T")


class UserError(Exception):
    """Base of the errors a user can cause and fix (see the module docstring)."""


class UsageError(UserError, ValueError):
    """A command-line argument that does not fit the run, e.g. ``--label`` for an unconditional
    model."""


class ReportedUserError(CompactHydraException):
    """A UserError on its way out of a Hydra task function: Hydra prints a CompactHydraException
    as its message alone (then FULL_ERROR_HINT) and exits with status 1, and re-raises it, with
    the original error as its cause, under HYDRA_FULL_ERROR=1."""


def error_text(error: BaseException) -> str:
    """The message printed for a user error: ``Error: <its text>``."""
    return f"Error: {error}"


def full_error_wanted() -> bool:
    """Whether HYDRA_FULL_ERROR asks for tracebacks (as Hydra reads it: set and not '0')."""
    return os.environ.get("HYDRA_FULL_ERROR", "0") not in ("", "0")


@contextmanager
def user_errors_for_hydra() -> Iterator[None]:
    """In a Hydra task function: turn a UserError into a ReportedUserError (printed compactly)."""
    try:
        yield
    except UserError as error:
        raise ReportedUserError(error_text(error)) from error


def run_reporting_user_errors(command: Callable[[], T]) -> T:
    """Run a command's body (genlab-eval, genlab-sample): on a UserError, or an error Hydra
    reports compactly (e.g. a bad eval override), print its message and the hint to stderr and
    exit with status 1, unless HYDRA_FULL_ERROR is set."""
    try:
        return command()
    except (UserError, CompactHydraException) as error:
        if full_error_wanted():
            raise
        sys.stderr.write(f"{error_text(error)}\n\n{FULL_ERROR_HINT}\n")
        raise SystemExit(1) from None
