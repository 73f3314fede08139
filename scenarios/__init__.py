"""Scenario definitions, as data: one TOML file per scenario (read by hwbench.config)."""
