"""Deployments: stable and candidate versions per pipeline, routed, judged, changed live."""
