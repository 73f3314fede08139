"""Correctness beyond the accuracy score: fidelity against the FP32 reference and robustness
under camera corruptions. Outside any timing; never times anything."""
