"""Pipeline execution: load and compile specs, run their layers, emit one span per layer."""
