"""Publish Python distributions to PyPI or any index, with trusted publishing."""

__version__ = "0.1.0"
