"""Fool the Model: the game server (see README.md)."""

__version__ = "0.1.0"
