"""Alerts: conditions, the firing/resolved lifecycle and webhook notifications."""
