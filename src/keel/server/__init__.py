"""HTTP server: ``create_app`` builds a FastAPI app around one injected ``Runtime``."""

from keel.server.app import create_app

__all__ = ["create_app"]
