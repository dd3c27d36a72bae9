"""Variants: several outputs from one upload, parsed from the form and made from one decode."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image, ImageChops, JpegImagePlugin

from producer_api.errors import ApiError
from producer_api.validation import NamedOrder, parse_order
from resize_worker.attempt import outputs_of, result_key
from resize_worker.engine import Target, resize, resize_many
from schemas import ObjectRef, ResizeRequested, VariantSpec
from schemas.client import resize_request
from vocabulary.errors import InvalidRequest
from vocabulary.options import ResizeOptions


def _jpeg(width: int = 1600, height: int = 1200) -> bytes:
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def test_sizes_become_named_variants_sharing_the_top_level_options() -> None:
    order = parse_order({"sizes": "100x100, 400x,x50", "format": "webp", "mode": "fit"}, 10_000)
    assert [v.name for v in order.variants] == ["100x100", "400x", "x50"]
    assert order.variants[0].options == ResizeOptions(100, 100, "fit", "webp")
    assert order.variants[1].options == ResizeOptions(400, None, "fit", "webp")
    assert order.variants[2].options == ResizeOptions(None, 50, "fit", "webp")
    # The top level describes the first variant, for readers that know no variants.
    assert order.options == order.variants[0].options


def test_json_variants_override_the_shared_options() -> None:
    spec = [
        {"name": "thumb", "width": 64, "height": 64, "format": "png"},
        {"name": "hero", "width": 1200, "upscale": False, "quality": 70},
        {"height": 30},
    ]
    order = parse_order({"variants": json.dumps(spec), "format": "jpeg", "gravity": "north"}, 10_000)
    assert order.variants == (
        NamedOrder("thumb", ResizeOptions(64, 64, "fill", "png", None, "north")),
        NamedOrder("hero", ResizeOptions(1200, None, "fill", "jpeg", 70, "north", False)),
        NamedOrder("x30", ResizeOptions(None, 30, "fill", "jpeg", None, "north")),
    )


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"sizes": "100"}, "invalid_sizes"),
        ({"sizes": "x"}, "invalid_sizes"),
        ({"sizes": "100x100,"}, "invalid_sizes"),
        ({"sizes": "0x10"}, "invalid_dimension"),
        ({"sizes": "10x10", "variants": "[]"}, "invalid_variants"),
        ({"sizes": "10x10", "height": "4"}, "invalid_variants"),
        ({"sizes": ",".join(f"{i}x{i}" for i in range(1, 12))}, "invalid_variants"),
        ({"sizes": "10x10,10x10"}, "invalid_variants"),
        ({"variants": "{}"}, "invalid_variants"),
        ({"variants": "[]"}, "invalid_variants"),
        ({"variants": '[{"name": "Big!", "width": 5}]'}, "invalid_variants"),
        ({"variants": '[{"width": 5, "colour": "red"}]'}, "invalid_variants"),
        ({"variants": '[{"width": [5]}]'}, "invalid_variants"),
        ({"variants": '[{"name": "a"}]'}, "missing_dimension"),
        ({"variants": '[{"name": "a", "width": 5, "quality": 101}]'}, "invalid_quality"),
    ],
)
def test_bad_variant_requests_say_what_is_wrong(form: dict[str, str], code: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_order(form, 10_000)
    assert caught.value.status == 422
    assert caught.value.code == code


def test_many_outputs_come_from_one_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _jpeg()
    loads = []
    original_load = JpegImagePlugin.JpegImageFile.load

    def counting_load(self: JpegImagePlugin.JpegImageFile) -> object:
        if self.tile:  # data still to decode; later calls return the loaded image
            loads.append(self.size)
        return original_load(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", counting_load)
    targets = [Target(100, 100), Target(400, 300, "fit", "png"), Target(None, 50, "fill", "webp")]
    outputs = resize_many(data, targets)
    assert len(loads) == 1, loads
    assert [(o.width, o.height, o.format) for o in outputs] == [(100, 100, "JPEG"), (400, 300, "PNG"), (67, 50, "WEBP")]
    # The same outputs one request at a time decode three times: the count above means something.
    loads.clear()
    for t in targets:
        resize(data, t.width, t.height, t.mode, t.format)
    assert len(loads) == 3


def test_shared_decode_scales_for_the_largest_output_and_matches_single_resizes() -> None:
    data = _jpeg()
    small, large = resize_many(data, [Target(100, 75), Target(800, 600, format="png")])
    alone = Image.open(io.BytesIO(resize(data, 800, 600, format="png").data)).convert("RGB")
    together = Image.open(io.BytesIO(large.data)).convert("RGB")
    # The large output is not made from the small one's 1/8 draft.
    assert ImageChops.difference(alone, together).getbbox() is None
    assert (small.width, small.height) == (100, 75)


def _request(**fields: object) -> ResizeRequested:
    return ResizeRequested(task_id="0c7c5a8e-3b1c-4d4e-9d7b-1a2b3c4d5e6f", source=ObjectRef("b", "k"), **fields)  # type: ignore[arg-type]


def test_worker_outputs_of_a_request() -> None:
    assert outputs_of(_request(width=10, format="png"), 10) == [(None, Target(10, None, "fill", "png"))]
    named = outputs_of(_request(width=10, variants=(VariantSpec("a", 10), VariantSpec("b", None, 20, "fit"))), 10)
    assert named == [("a", Target(10)), ("b", Target(None, 20, "fit"))]
    assert result_key("t", "a") == "results/t/a" and result_key("t") == "results/t"


@pytest.mark.parametrize("names", [("a", "a"), ("../x",), ("UP",), ("",)])
def test_worker_refuses_variant_names_other_services_got_wrong(names: tuple[str, ...]) -> None:
    with pytest.raises(InvalidRequest):
        outputs_of(_request(variants=tuple(VariantSpec(n, 10) for n in names)), 10)


def test_worker_caps_the_variants_of_events_produced_straight_to_kafka() -> None:
    many = tuple(VariantSpec(f"v{n}", 10) for n in range(11))
    with pytest.raises(InvalidRequest, match="11 variants asked; at most 10"):
        outputs_of(_request(variants=many), 10)
    assert len(outputs_of(_request(variants=many[:10]), 10)) == 10


def test_client_helper_copies_the_first_variant_to_the_top_level_for_older_readers() -> None:
    request = resize_request(
        bucket="b",
        key="k",
        variants=[VariantSpec("thumb", 100, 100, format="webp"), VariantSpec("big", 1600)],
        callback_url="https://hooks.example.com/x",
    )
    assert (request.width, request.height, request.format) == (100, 100, "webp")
    assert [v.name for v in request.variants] == ["thumb", "big"]
    with pytest.raises(ValueError, match="unique"):
        resize_request(bucket="b", key="k", variants=[VariantSpec("a", 1), VariantSpec("a", 2)])
    with pytest.raises(ValueError, match="width or a height"):
        resize_request(bucket="b", key="k", variants=[VariantSpec("a")])
