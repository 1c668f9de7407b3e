"""The package version, in a module of its own so provenance (infra) never imports the package's API."""

__version__ = "0.1.0"
