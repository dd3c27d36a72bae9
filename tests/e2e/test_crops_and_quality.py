"""Face, smart and focal-point crops and quality=auto through the real pipeline: HTTP, Kafka, S3, SQLite."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image, ImageChops, ImageStat

from bench.photos import jpeg, matplotlib_photo, pillow_photo, place
from common.store import ObjectStore
from tests.pipeline import Pipeline

pytestmark = pytest.mark.e2e


def test_face_smart_and_focus_crops_with_auto_quality_report_what_they_used(pipeline: Pipeline) -> None:
    photo = jpeg(place(matplotlib_photo(), pillow_photo("junk_jpeg_header.jpg"), (1600, 900), 0.85, 0.6).frame)
    variants = [
        {"name": "face", "width": 300, "height": 300, "gravity": "face", "quality": "auto", "format": "jpeg"},
        {"name": "smart", "width": 300, "height": 300, "gravity": "smart", "format": "webp", "quality": 70},
        {"name": "pinned", "width": 300, "height": 300, "focus": "0,0.5", "format": "png"},
    ]
    response = pipeline.submit(photo, variants=json.dumps(variants))
    assert response.status_code == 202, response.text
    done = pipeline.wait_terminal(response.json()["task_id"])
    assert done["status"] == "SUCCESS", done
    by_name = {v["name"]: v for v in done["variants"]}
    assert by_name["face"]["quality"] is not None and by_name["face"]["score"] >= pipeline.settings.auto_quality_target
    assert (by_name["smart"]["quality"], by_name["smart"]["score"]) == (70, None)
    assert (by_name["pinned"]["quality"], by_name["pinned"]["score"]) == (None, None)
    # One finding per gravity, the face boxes where the portrait was pasted, for a client to show or correct.
    subjects = {s["gravity"]: s for s in done["subjects"]}
    assert set(subjects) == {"face", "smart"}
    (face,) = subjects["face"]["boxes"]
    assert 0.7 < face["x"] + face["width"] / 2 < 1.0 and subjects["face"]["fallback"] is None
    # focus=0,0.5 is the left edge of the frame: the same pixels as the west gravity's crop.
    pinned = Image.open(io.BytesIO(pipeline.session.get(pipeline.url(by_name["pinned"]["url"]), timeout=30).content))
    west = Image.open(io.BytesIO(photo)).convert("RGB").crop((0, 0, 900, 900)).resize((300, 300))
    assert pinned.size == (300, 300) and _close(pinned.convert("RGB"), west)
    centre = Image.open(io.BytesIO(photo)).convert("RGB").crop((350, 0, 1250, 900)).resize((300, 300))
    assert not _close(pinned.convert("RGB"), centre)


def _close(a: Image.Image, b: Image.Image) -> bool:
    """Mean absolute difference under 12 of 255 per channel (the same crop, resized by two filters)."""
    mean = ImageStat.Stat(ImageChops.difference(a, b)).mean
    return sum(mean) / len(mean) < 12


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"width": "100", "height": "100", "gravity": "faces"}, "invalid_gravity"),
        ({"width": "100", "height": "100", "focus": "1.2,0.5"}, "invalid_focus"),
        ({"width": "100", "height": "100", "focus": "middle"}, "invalid_focus"),
        ({"width": "100", "quality": "auto", "format": "gif"}, "invalid_quality"),
        ({"width": "100", "quality": "auto", "format": "png"}, "invalid_quality"),
    ],
)
def test_bad_crop_and_quality_options_are_a_422_and_store_nothing(
    pipeline: Pipeline, fields: dict[str, str], code: str
) -> None:
    store = ObjectStore(pipeline.settings)
    before = set(store.keys())
    response = pipeline.submit(jpeg(pillow_photo("flower.jpg")), **fields)
    assert response.status_code == 422 and response.headers["Content-Type"] == "application/json"
    assert response.json()["code"] == code
    assert set(store.keys()) == before
