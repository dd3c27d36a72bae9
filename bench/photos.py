"""Real photographs from packages' own test data, for the crop and quality benchmarks and tests.

- Pillow's test images (its sdist, tests/corpus/pillow_suite.py): hopper.jpg
  (Grace Hopper), photos of a field, a plane, a flower, pavement;
- scikit-image's bundled images (its wheel, fetched with pip into .cache/ and
  never installed): astronaut, chelsea (a cat), coffee, rocket, motorcycle;
- matplotlib's sample data (installed with the bench extra): grace_hopper.jpg.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import PIL
from PIL import Image, ImageFile

ROOT = Path(__file__).resolve().parents[1]
SKIMAGE_VERSION = "0.26.0"
PILLOW_VERSION = PIL.__version__


def _fetched(target: Path, requirement: str, binary: str, pattern: str, unpack: Callable[[Path, Path], None]) -> Path:
    """`target`, made once: the package's file fetched with pip into a temporary folder and unpacked into it."""
    if (target / ".complete").exists():
        return target
    with tempfile.TemporaryDirectory(prefix="pip-download.") as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", binary, ":all:", requirement, "-d", tmp],
            check=True,
        )
        (archive,) = Path(tmp).glob(pattern)
        target.mkdir(parents=True, exist_ok=True)
        unpack(archive, target)
    (target / ".complete").touch()
    return target


def tests_dir(cache: Path = ROOT / ".cache") -> Path:
    """Tests/images and Tests/icc of the installed Pillow's sdist, downloaded with pip on first use."""
    return _fetched(
        cache / f"pillow-{PILLOW_VERSION}-tests",
        f"pillow=={PILLOW_VERSION}",
        "--no-binary",
        "pillow-*.tar.gz",
        _pillow_tests,
    )


def _pillow_tests(archive: Path, target: Path) -> None:
    prefix = f"pillow-{PILLOW_VERSION}/Tests/"
    with tarfile.open(archive) as sdist:
        members = [m for m in sdist.getmembers() if m.name.startswith(_folders(prefix)) and m.isfile()]
        for member in members:
            member.name = member.name[len(prefix) :]
        sdist.extractall(target, members=members, filter="data")


def _folders(prefix: str) -> tuple[str, ...]:
    return (prefix + "images/", prefix + "icc/")


def images_dir() -> Path:
    return tests_dir() / "images"


def pillow_photo(name: str) -> Image.Image:
    path = images_dir() / name
    # Some of Pillow's photos end early on purpose (junk_jpeg_header.jpg): what decodes is a photo all the same.
    previous, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, True
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def skimage_photo(name: str, cache: Path = ROOT / ".cache") -> Image.Image:
    """One of scikit-image's bundled images (skimage/data/<name>), from its wheel, fetched once."""
    target = _fetched(
        cache / f"skimage-{SKIMAGE_VERSION}-data",
        f"scikit-image=={SKIMAGE_VERSION}",
        "--only-binary",
        "scikit_image-*.whl",
        _skimage_data,
    )
    with Image.open(target / name) as image:
        return image.convert("RGB")


def _skimage_data(wheel: Path, target: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            if member.startswith("skimage/data/") and member.endswith((".png", ".jpg")):
                (target / Path(member).name).write_bytes(archive.read(member))


def matplotlib_photo(name: str = "grace_hopper.jpg") -> Image.Image:
    import matplotlib  # the bench extra

    with Image.open(Path(matplotlib.get_data_path()) / "sample_data" / name) as image:
        return image.convert("RGB")


@dataclass(frozen=True)
class Placed:
    """A photo pasted into a wider frame, and where it went (pixels of the frame)."""

    frame: Image.Image
    box: tuple[int, int, int, int]


def place(subject: Image.Image, background: Image.Image, size: tuple[int, int], where: float, height: float) -> Placed:
    """`subject` scaled to `height` of the frame and pasted with its centre at `where` (0 left .. 1 right)."""
    frame = background.resize(size, Image.Resampling.LANCZOS)
    h = round(size[1] * height)
    w = round(subject.width * h / subject.height)
    left = min(max(0, round(size[0] * where - w / 2)), size[0] - w)
    top = (size[1] - h) // 2
    frame.paste(subject.resize((w, h), Image.Resampling.LANCZOS), (left, top))
    return Placed(frame, (left, top, left + w, top + h))


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()
