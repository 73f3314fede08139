"""Typed errors. The CLI turns each into one line and an exit status; nothing else prints them.

Exit status of every command, one table (README "Exit status"): each decision has its own code,
so CI can tell a failed qualification from a crash. Codes 6-8 are reserved for decisions other
commands add; a code is never reused for another meaning.
"""
from __future__ import annotations

EXIT_OK = 0              # success: a valid run, every requirement passed, no regression
EXIT_INTERNAL = 1        # internal error (a bug); what was measured is still written
EXIT_USAGE = 2           # bad input: one line naming the fix, nothing run
EXIT_INVALID = 3         # run: completed, but invalid (the reasons are in the summary)
EXIT_QUALIFY_FAIL = 4    # qualify: at least one requirement failed
EXIT_REGRESSION = 5      # history: the newest run regressed
EXIT_AUDIT_FAIL = 6      # reserved: audit, a check failed
EXIT_FLEET_PARTIAL = 7   # reserved: fleet, some of its runs did not complete
EXIT_COMPARE_REFUSED = 8  # reserved: compare, runs that are not comparable (without --force)
EXIT_INTERRUPTED = 130   # interrupted by Ctrl-C (what ran is written, marked invalid)


class HwbenchError(Exception):
    """An internal failure (exit status 1)."""

    exit_code = EXIT_INTERNAL


class UsageError(HwbenchError):
    """Bad input from the user: the message names the fix (exit status 2)."""

    exit_code = EXIT_USAGE


class BackendUnavailable(UsageError):
    """A backend whose SDK or device is missing here; the message says how to install it."""


class ModelError(UsageError):
    """A model artifact that is missing, corrupt or does not match the workload."""


class DatasetError(UsageError):
    """A reference set that is missing or malformed."""
