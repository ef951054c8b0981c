"""The package version, kept in one place (read by pyproject.toml and the User-Agent)."""

__version__ = "1.0.0"
