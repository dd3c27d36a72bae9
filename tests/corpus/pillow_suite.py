"""Pillow's own test images (Tests/images of its sdist on PyPI), fetched once into .cache/ like the Kafka jars."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import PIL

ROOT = Path(__file__).resolve().parents[2]
VERSION = PIL.__version__


def tests_dir(cache: Path = ROOT / ".cache") -> Path:
    """Tests/images and Tests/icc of the installed Pillow's sdist, downloaded with pip on first use."""
    target = cache / f"pillow-{VERSION}-tests"
    if (target / ".complete").exists():
        return target
    with tempfile.TemporaryDirectory(prefix="pillow-sdist.") as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps"]
            + [f"pillow=={VERSION}", "-d", tmp],
            check=True,
        )
        (archive,) = Path(tmp).glob("pillow-*.tar.gz")
        prefix = f"pillow-{VERSION}/Tests/"
        with tarfile.open(archive) as sdist:
            members = [m for m in sdist.getmembers() if m.name.startswith(_folders(prefix)) and m.isfile()]
            for member in members:
                member.name = member.name[len(prefix) :]
            sdist.extractall(target, members=members, filter="data")
    (target / ".complete").touch()
    return target


def _folders(prefix: str) -> tuple[str, ...]:
    return (prefix + "images/", prefix + "icc/")


def images_dir() -> Path:
    return tests_dir() / "images"


def icc_profile(name: str) -> bytes:
    """One of the ICC profiles of Pillow's tests (Tests/icc), e.g. sGrey-v2-nano.icc."""
    return (tests_dir() / "icc" / name).read_bytes()


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())
