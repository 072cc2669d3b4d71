"""Service-level objectives and multi-window, multi-burn-rate alerting on stored runs."""
