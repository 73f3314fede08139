"""The load generator's Python face and what it drives: settings, SUT adapters, the worker
pool, the sample library and progress. Below the passes; above workloads and backends."""
