"""Typed errors. The CLI turns each into one line and an exit status; nothing else prints them."""
from __future__ import annotations


class HwbenchError(Exception):
    """An internal failure (exit status 1)."""

    exit_code = 1


class UsageError(HwbenchError):
    """Bad input from the user: the message names the fix (exit status 2)."""

    exit_code = 2


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
