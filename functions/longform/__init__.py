"""Longform: an ordered list of scene prompts becomes one long video."""

__version__ = "0.1.0"
