"""CLI commands, one module each. Every module exposes ``register(app)``."""
