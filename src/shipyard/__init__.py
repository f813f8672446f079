"""Shipyard: the whole MLOps loop in one install."""

from shipyard._version import __version__

__all__ = ["__version__"]
