"""For tools that still run setup.py: the metadata is in pyproject.toml."""

import setuptools

setuptools.setup()
