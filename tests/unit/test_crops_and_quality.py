"""gravity=face and smart, focus=X,Y and quality=auto in the engine, on real photographs."""

from __future__ import annotations

import io
from collections.abc import Callable

import cv2
import pytest
from PIL import Image

from bench.photos import jpeg, matplotlib_photo, pillow_photo, place
from resize_worker import engine, subjects
from resize_worker.auto_quality import AutoQuality, ssim
from resize_worker.engine import Target, resize, resize_many
from schemas.events import FocalPoint
from tests.images import opened
from vocabulary.errors import InvalidRequest


@pytest.fixture(scope="module")
def portrait_on_the_right() -> bytes:
    """Grace Hopper's portrait at the right of a 1920x1080 photo of a field."""
    placed = place(matplotlib_photo(), pillow_photo("junk_jpeg_header.jpg"), (1920, 1080), 0.85, 0.6)
    return jpeg(placed.frame)


@pytest.fixture(scope="module")
def flower_on_the_left() -> tuple[bytes, tuple[int, int, int, int]]:
    """A flower photo at the left of a wide frame of grey pavement: the subject and where it is."""
    placed = place(
        pillow_photo("flower.jpg"), pillow_photo("xmp_test.jpg").convert("L").convert("RGB"), (1800, 600), 0.12, 0.5
    )
    return jpeg(placed.frame), placed.box


def test_a_face_crop_keeps_the_face_a_centre_crop_loses(portrait_on_the_right: bytes) -> None:
    face = resize(portrait_on_the_right, 400, 400, gravity="face")
    assert face.subject is not None and face.subject.gravity == "face" and face.subject.fallback is None
    (box,) = face.subject.boxes
    assert 0.7 < box.x + box.width / 2 < 1.0  # where the portrait was pasted
    # The face is in the output itself, found again by the detector; the centre crop has none.
    assert subjects.find_faces(opened(face.data))
    assert not subjects.find_faces(opened(resize(portrait_on_the_right, 400, 400).data))


def test_smart_finds_the_subject_off_centre(flower_on_the_left: tuple[bytes, tuple[int, int, int, int]]) -> None:
    data, (left, top, right, bottom) = flower_on_the_left
    made = resize(data, 300, 300, gravity="smart")
    assert made.subject is not None and made.subject.gravity == "smart"
    focus = made.subject.focus
    assert left / 1800 <= focus.x <= right / 1800 and top / 600 <= focus.y <= bottom / 600


def test_no_face_falls_back_to_smart_and_says_so(flower_on_the_left: tuple[bytes, tuple[int, int, int, int]]) -> None:
    data, _ = flower_on_the_left
    made = resize(data, 300, 300, gravity="face")
    assert made.subject is not None
    assert (made.subject.gravity, made.subject.fallback, made.subject.boxes) == ("smart", "no_face", ())
    assert made.data == resize(data, 300, 300, gravity="smart").data


def test_a_failing_detector_falls_back_to_smart(monkeypatch: pytest.MonkeyPatch, portrait_on_the_right: bytes) -> None:
    def broken(_: Image.Image) -> list[object]:
        raise cv2.error("the cascade failed")

    monkeypatch.setattr(subjects, "find_faces", broken)
    made = resize(portrait_on_the_right, 200, 200, gravity="face")
    assert made.subject is not None and (made.subject.gravity, made.subject.fallback) == ("smart", "detector_failed")


def test_detection_runs_once_per_original_whatever_the_number_of_outputs(
    monkeypatch: pytest.MonkeyPatch, portrait_on_the_right: bytes
) -> None:
    calls: list[int] = []
    real: Callable[[Image.Image], list[object]] = subjects.find_faces  # type: ignore[assignment]

    def counted(image: Image.Image) -> list[object]:
        calls.append(1)
        return real(image)

    monkeypatch.setattr(subjects, "find_faces", counted)
    made = resize_many(
        portrait_on_the_right,
        [Target(400, 400, gravity="face"), Target(100, 300, gravity="face"), Target(800, 200, gravity="face")],
    )
    assert len(calls) == 1
    assert len({m.subject for m in made}) == 1


@pytest.mark.parametrize(
    ("focus", "gravity"), [((0.0, 0.5), "west"), ((1.0, 0.0), "northeast"), ((0.5, 0.5), "centre")]
)
def test_a_focus_at_an_edge_is_the_compass_gravity(
    portrait_on_the_right: bytes, focus: tuple[float, float], gravity: str
) -> None:
    focused = resize(portrait_on_the_right, 300, 300, focus=FocalPoint(*focus))
    assert focused.data == resize(portrait_on_the_right, 300, 300, gravity=gravity).data


def test_focus_centres_the_window_on_the_point_as_far_as_the_frame_allows() -> None:
    # A 2:1 source cropped square: the window is half as wide; centred on x=0.6 it starts at 0.35 of the width.
    assert subjects.anchor_on(FocalPoint(0.6, 0.2), (2000, 1000), 1.0) == pytest.approx((0.7, 0.5))
    assert subjects.anchor_on(FocalPoint(0.1, 0.2), (2000, 1000), 1.0) == (0.0, 0.5)
    # Focus wins over gravity.
    assert subjects.anchor_on(FocalPoint(0.5, 0.9), (1000, 2000), 1.0) == pytest.approx((0.5, 1.0))


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_auto_quality_meets_the_target_within_its_bounds(fmt: str) -> None:
    photo = jpeg(pillow_photo("exif_typeerror.jpg"), 95)
    policy = AutoQuality(target=0.97, lowest=30, highest=95, max_encodes=4)
    made = resize(photo, 640, format=fmt, auto_quality=True, auto=policy)
    assert made.score is not None and made.score >= 0.97
    assert made.quality is not None and 30 <= made.quality <= 95
    # The score is what the decoded file really scores against the unencoded resize.
    reference = resize(photo, 640, format="png")
    again = ssim(_luma(reference.data), _luma(made.data))
    assert again == pytest.approx(made.score, abs=0.003)


def test_auto_quality_goes_below_85_where_a_photo_allows_and_above_where_it_needs() -> None:
    smooth = jpeg(pillow_photo("flower.jpg"), 95)
    auto = resize(smooth, 640, format="jpeg", auto_quality=True, upscale=True)
    fixed = resize(smooth, 640, format="jpeg", quality=85, upscale=True)
    assert auto.quality is not None and auto.quality < 85 and len(auto.data) < len(fixed.data)
    # Fine texture (pavement): 85 scores under the target, so auto spends more bytes to meet it.
    textured = jpeg(pillow_photo("xmp_test.jpg"), 95)
    assert resize(textured, 640, format="jpeg", quality=85, auto=None).quality == 85
    auto = resize(textured, 640, format="jpeg", auto_quality=True)
    assert auto.quality is not None and auto.quality > 85 and auto.score is not None and auto.score >= 0.97


def _luma(data: bytes) -> object:
    import numpy as np

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB").convert("L"), dtype=np.float32)


@pytest.mark.parametrize("fmt", ["gif", "png"])
def test_auto_quality_on_a_lossless_or_gif_output_is_refused(fmt: str) -> None:
    with pytest.raises(InvalidRequest, match="quality=auto"):
        resize(jpeg(pillow_photo("flower.jpg")), 100, format=fmt, auto_quality=True)


@pytest.mark.parametrize(
    "options",
    [{"gravity": "up"}, {"focus": FocalPoint(1.5, 0.5)}, {"focus": FocalPoint(float("nan"), 0.5)}],
)
def test_options_from_an_event_are_checked_like_the_form(options: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        resize(jpeg(pillow_photo("flower.jpg")), 100, 100, **options)


def test_the_engine_reports_the_quality_it_used() -> None:
    data = jpeg(pillow_photo("flower.jpg"))
    assert resize(data, 100).quality == 85
    assert resize(data, 100, format="webp", quality=61).quality == 61
    assert resize(data, 100, format="png").quality is None
    assert engine.resize(data, 100, gravity="smart", mode="fit").subject is None  # no crop, nothing to find
