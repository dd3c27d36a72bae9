"""Pillow's own test images (Tests/images of its sdist on PyPI), fetched once into .cache/ like the Kafka jars."""

from __future__ import annotations

from pathlib import Path

from bench.photos import images_dir, tests_dir

__all__ = ["files", "icc_profile", "images_dir", "tests_dir"]


def icc_profile(name: str) -> bytes:
    """One of the ICC profiles of Pillow's tests (Tests/icc), e.g. sGrey-v2-nano.icc."""
    return (tests_dir() / "icc" / name).read_bytes()


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())
