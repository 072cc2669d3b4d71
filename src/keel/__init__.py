"""Keel: a self-hosted LLMOps platform that treats the model as a faulty component."""

__version__ = "0.1.0"
