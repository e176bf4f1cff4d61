"""Error types that decide how a run ends.

A ``UserError`` is something the user can fix (bad recipe, unknown plugin, missing files):
the CLI prints its one-line message and exits with code 2, no traceback. A
``DivergenceError`` is a numerical failure (NaN/inf) that names the step and the
checkpoint that was kept.
"""

from __future__ import annotations


class CondenseryError(Exception):
    """Base of every error condensery raises on purpose."""

    exit_code = 1


class UserError(CondenseryError):
    """A mistake the user can fix; the message names the problem and the fix."""

    exit_code = 2


class DivergenceError(CondenseryError):
    """A loss became NaN or infinite; the message names the step and the kept checkpoint."""

    exit_code = 3
