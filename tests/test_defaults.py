"""One source of defaults: RunConfig's. `hwbench run` with no options asks for exactly
RunConfig(), and the index's hashes and the telemetry roots use the same values."""
from __future__ import annotations

from hwbench.cli import build_parser
from hwbench.cli.run import config_from_args
from hwbench.config import RunConfig, default
from hwbench.results.identity import LATER_DEFAULTS
from hwbench.telemetry import jetson, rapl


def test_the_cli_with_no_options_is_runconfig_defaults():
    assert config_from_args(build_parser().parse_args(["run"])) == RunConfig()


def test_the_hashes_and_the_telemetry_roots_read_the_same_defaults():
    cfg = RunConfig()
    assert LATER_DEFAULTS == {"precision": cfg.precision, "instances": cfg.instances,
                              "batch_timeout_us": cfg.batch_timeout_us, "spin_us": cfg.spin_us}
    assert (rapl.DEFAULT_ROOT, jetson.DEFAULT_ROOT) == (cfg.rapl_root, cfg.jetson_root)
    assert default("backend_options") == ()
