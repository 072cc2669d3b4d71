"""Drift detection: two-sample tests over windows of stored traffic, and the monitors that
turn them into alerts (see docs/monitoring.md)."""
