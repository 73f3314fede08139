"""Typed errors: the one error tree. The CLI turns each into one line and an exit status; nothing
else prints them.

    HwbenchError               an internal failure (exit 1)
    ├── UsageError             bad input from the user: the message names the fix (exit 2)
    │   ├── BackendUnavailable
    │   ├── ModelError
    │   └── DatasetError
    ├── CompareRefused         compare --require-audit and a run without a passed audit (exit 8)
    ├── PassStopped            a pass that cannot go on: the run is written invalid
    ├── SourceUnavailable      a telemetry source that cannot measure here
    ├── PtdError               a power analyzer that does not answer as PTDaemon does
    └── MeasurementError       a figure the readings cannot give (also a ValueError)
        └── NotBracketed

Every error a user can cause is a UsageError. The others are caught where they arise and become
a note or an invalid reason in the result; one that escapes is an internal failure.

Exit status of every command, one table (README "Exit status"): each decision has its own code,
so CI can tell a failed qualification from a crash. Code 7 is fleet's: some runs of a sweep were
lost with their node, failed or did not finish. A code is never reused for another meaning.
"""
from __future__ import annotations

EXIT_OK = 0              # success: a valid run, every requirement passed, no regression
EXIT_INTERNAL = 1        # internal error (a bug); what was measured is still written
EXIT_USAGE = 2           # bad input: one line naming the fix, nothing run
EXIT_INVALID = 3         # run: completed, but invalid (the reasons are in the summary); qualify:
#                          a run left a backend call stuck, so there is no verdict
EXIT_QUALIFY_FAIL = 4    # qualify: at least one requirement failed
EXIT_REGRESSION = 5      # history: the newest run regressed, or the runs up to it drift
EXIT_AUDIT_FAIL = 6      # audit: a compliance check failed
EXIT_FLEET_PARTIAL = 7   # fleet: some of its runs were lost, failed or did not finish
EXIT_COMPARE_REFUSED = 8  # compare: refused (--require-audit and a run without a passed audit)
EXIT_INTERRUPTED = 130   # interrupted by Ctrl-C (what ran is written, marked invalid)


class HwbenchError(Exception):
    """An internal failure (exit status 1)."""

    exit_code = EXIT_INTERNAL


class UsageError(HwbenchError):
    """Bad input from the user: the message names the fix (exit status 2)."""

    exit_code = EXIT_USAGE


class CompareRefused(HwbenchError):
    """compare's refusal: runs that do not meet what the comparison was asked to require."""

    exit_code = EXIT_COMPARE_REFUSED


class BackendUnavailable(UsageError):
    """A backend whose SDK or device is missing here; the message says how to install it."""


class ModelError(UsageError):
    """A model artifact that is missing, corrupt or does not match the workload."""


class DatasetError(UsageError):
    """A reference set that is missing or malformed."""


class PassStopped(HwbenchError):
    """A pass of a run that cannot go on (a failed calibration): the run is written invalid with
    these reasons, keeping what was measured."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class SourceUnavailable(HwbenchError):
    """A telemetry source cannot measure here; the message is the reason, in one sentence. A run
    reports it, or stops with a UsageError when the user asked for that source."""


class PtdError(HwbenchError):
    """The analyzer did not answer as PTDaemon does; the message says what happened."""


class MeasurementError(HwbenchError, ValueError):
    """The readings cannot give this figure (too few, or not covering the window); the message
    says how to get one. A ValueError too, as numpy's own complaints about empty windows are."""


class NotBracketed(MeasurementError):
    """The readings do not cover the window at both ends."""
