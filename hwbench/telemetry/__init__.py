"""Power, energy and system telemetry beside the load generator, cut to the measured window.

Built-in sources are listed here and imported only when a run uses them; each opens or says why
it cannot. A run's `Session` opens them, samples around each performance pass, and turns the
readings into the `power` and `telemetry` sections of result.json and a timeline file.
"""
from __future__ import annotations

from hwbench.errors import SourceUnavailable
from hwbench.telemetry.base import Source
from hwbench.telemetry.registry import names, source_class, system_source_class

# The session (hwbench.telemetry.session) needs the compiled load generator's clock: import it
# from its module where a run is measured, so that reading a result (the summary rows) does not.
__all__ = ["names", "source_class", "system_source_class", "Source", "SourceUnavailable"]
