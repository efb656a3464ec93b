"""The ``nasface`` command line (typer), a thin layer over the Python API: ``app`` holds the commands."""

from nasface.cli.app import app, main

__all__ = ["app", "main"]
