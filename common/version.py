"""The service's version: pyproject.toml's, as the installed package carries it. One place, read by every
console script's --version and by the OpenAPI document."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def service_version() -> str:
    try:
        return version("imgresize")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"
