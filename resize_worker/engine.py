"""The resize engine: bytes and a target in, bytes and metadata out. No I/O.

Where the time goes, and what is done about it:
- JPEG sources are decoded in the DCT domain (`draft`) straight to the smallest
  power-of-two scale still at least the output size: a fraction of the pixels to
  decode, and LANCZOS from there matches a full decode to within ~50 dB.
- Reductions under 3x of RGB and L pictures go through OpenCV (resample.py: a
  Lanczos low-pass and cubic interpolation, vectorised; a third to a half of
  Pillow's time for the same PSNR). Others: LANCZOS with `reducing_gap=3`, which
  box-reduces first for big factors; BICUBIC under 3x (see _filter).
- Resizing happens in RGB, RGBA, L or LA (colour.working_mode); writing is encode's.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps, ImageSequence

from common.settings import Settings
from resize_worker import auto_quality, resample, subjects
from resize_worker.auto_quality import AutoQuality
from resize_worker.colour import working_mode
from resize_worker.encode import ALPHA_FORMATS, ANIMATED_FORMATS, Animation, encode, quality_for
from resize_worker.geometry import Plan, box_within, plan
from resize_worker.gravity import entropy_anchor
from schemas.events import CropSubject
from vocabulary.errors import CorruptImage, InvalidRequest, TooManyPixels
from vocabulary.options import GRAVITIES, OUTPUT_FORMATS, ResizeOptions, auto_quality_problem
from vocabulary.probe import CONTENT_TYPES, probe


def _setting(name: str) -> int:
    default = Settings.model_fields[name].default
    assert isinstance(default, int)
    return default


# The service's own limits (MAX_PIXELS, ...) are the engine's defaults.
DEFAULT_MAX_PIXELS = _setting("max_pixels")
DEFAULT_MAX_FRAMES = _setting("max_frames")
DEFAULT_MAX_OUTPUT_PIXELS = _setting("max_output_pixels")
DEFAULT_MAX_DIMENSION = _setting("max_dimension")
# Gravities that look at the decoded picture: once per source, whatever the number of outputs.
_SUBJECT_GRAVITIES = {"face": subjects.face_subject, "smart": subjects.smart_subject}
# Sources whose own format is not an output format are written as PNG (lossless, keeps alpha).
_FALLBACK_OUTPUT = "PNG"
# Padding: white, transparent where the format holds alpha.
_BACKGROUND: dict[str, int | tuple[int, ...]] = {
    "L": 255,
    "LA": (255, 0),
    "RGB": (255, 255, 255),
    "RGBA": (255, 255, 255, 0),
}
# Source formats whose Pillow reader applies the EXIF orientation itself.
_READERS_THAT_TURN = {"TIFF"}
# EXIF orientations that swap width and height.
_TRANSPOSING = {5, 6, 7, 8}


@dataclass(frozen=True)
class ResizedImage:
    data: bytes
    width: int
    height: int
    content_type: str
    format: str
    source_width: int
    source_height: int
    frames: int = 1
    # The encoder quality used (None: lossless), and with quality=auto the score it met.
    quality: int | None = None
    score: float | None = None
    # What a face or smart crop centred on (None: no content-aware crop).
    subject: CropSubject | None = None


def output_format(requested: str | None, source_format: str) -> str:
    """The Pillow format name to write: the one asked for, else the source's own."""
    if requested:
        try:
            return OUTPUT_FORMATS[requested.lower()]
        except KeyError:
            raise InvalidRequest(f"format must be one of {', '.join(sorted(OUTPUT_FORMATS))}") from None
    return source_format if source_format in ALPHA_FORMATS | {"JPEG"} else _FALLBACK_OUTPUT


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except (ValueError, TypeError, SyntaxError):
        return 1


def _resize_frame(image: Image.Image, target: Plan, oriented: tuple[int, int]) -> Image.Image:
    # draft() may have shrunk the decoded image (rounding each side up): map the crop box onto it.
    fx, fy = image.width / oriented[0], image.height / oriented[1]
    left, top, right, bottom = target.crop
    box = (left * fx, top * fy, min(image.width, right * fx), min(image.height, bottom * fy))
    return _resample(image, target.scaled, box, reducing_gap=3.0)


# A smaller output is resized from a larger one's pixels (one made from the source) when those hold at least
# this many times the detail it needs on both axes: two resamplings where the second works on a fraction of
# the pixels. bench/renditions_bench.py measures the cost: five renditions of a 1920x1080 photo in about
# 0.8x the CPU, each JPEG within 0.4 dB PSNR of the one resized from the source.
DERIVE_FACTOR = 2.0
DERIVE_REDUCING_GAP = 1.5


def _derived(target: Plan, resized: list[tuple[Plan, Image.Image]]) -> Image.Image | None:
    """The output resized from the smallest already-resized output that can stand for the source, if any."""
    candidates = [(image, box) for plan, image in resized if (box := box_within(plan, target, DERIVE_FACTOR))]
    if not candidates:
        return None
    image, box = min(candidates, key=lambda c: c[0].width * c[0].height)
    # A box reduction first (Pillow's reduce, a tenth of a convolution's cost) by the whole part of
    # factor / 1.5, then a resample of the rest: a gap of 1 saved more and lost up to 2 dB on textures.
    return _resample(image, target.scaled, box, reducing_gap=DERIVE_REDUCING_GAP)


def _resample(
    image: Image.Image, size: tuple[int, int], box: tuple[float, float, float, float], reducing_gap: float
) -> Image.Image:
    """`box` of `image` at `size`: OpenCV for RGB and L reductions under 3x (resample.py), else Pillow."""
    if resample.handles(image, size, box):
        return resample.reduce(image, size, box)
    return image.resize(size, _filter(box, size), box=box, reducing_gap=reducing_gap)


def _filter(box: tuple[float, float, float, float], size: tuple[int, int]) -> Image.Resampling:
    """Pillow's filter: LANCZOS, except BICUBIC for reductions under 3x (those with alpha; see _resample).

    Under 3x the whole reduction is one convolution, and LANCZOS's kernel is half
    as wide again as BICUBIC's: for 1920x1080 -> 1280 a fifth of the time, for the
    same PSNR after JPEG encoding (41.39 against 41.41 dB). From 3x up,
    `reducing_gap=3` box-reduces first and LANCZOS finishes: a gap of 3 rather
    than 2 keeps 1024x768 -> 100 at 46.6 dB instead of 41.1. Upscales keep
    LANCZOS, whose kernel is then narrow.
    """
    factor = max(resample.factors(box, size))
    return Image.Resampling.BICUBIC if 1.0 < factor < 3.0 else Image.Resampling.LANCZOS


def _place(resized: Image.Image, target: Plan, target_format: str) -> Image.Image:
    if target.canvas == target.scaled:
        return resized
    grey = resized.mode in {"L", "LA"}
    with_alpha = target_format in ALPHA_FORMATS
    mode = {(True, True): "LA", (True, False): "L", (False, True): "RGBA", (False, False): "RGB"}[(grey, with_alpha)]
    canvas = Image.new(mode, target.canvas, _BACKGROUND[mode])
    canvas.paste(resized, target.offset)
    return canvas


def _encode_at(frames: list[Image.Image], fmt: str, icc: bytes | None, quality: int) -> bytes:
    return encode(frames, fmt, quality, icc)


def _crops(target: ResizeOptions) -> bool:
    """Whether the output is a fill crop, the only mode where gravity and focus matter."""
    return target.mode == "fill" and target.width is not None and target.height is not None


def _subject_gravity(target: ResizeOptions) -> str | None:
    """face or smart when the output's crop is placed on what they find in the picture; else None."""
    if target.focus is None and target.gravity in _SUBJECT_GRAVITIES and _crops(target):
        return target.gravity
    return None


# One output to make from a source: the request's options for it.
Target = ResizeOptions


def resize(
    data: bytes,
    width: int | None = None,
    height: int | None = None,
    mode: str = "fill",
    format: str | None = None,  # noqa: A002 - the public name of the option
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_output_pixels: int = DEFAULT_MAX_OUTPUT_PIXELS,
    max_dimension: int = DEFAULT_MAX_DIMENSION,
    auto: AutoQuality | None = None,
    **options: Any,
) -> ResizedImage:
    """Resize an encoded image; `options` are ResizeOptions' other fields (quality, gravity, focus, ...).

    Raises a ResizeError subclass with a stable code on bad input."""
    target = Target(width, height, mode, format, **options)
    budget = {"max_pixels": max_pixels, "max_frames": max_frames, "max_output_pixels": max_output_pixels}
    return resize_many(data, [target], max_dimension=max_dimension, auto=auto, **budget)[0]


def resize_many(
    data: bytes,
    targets: Sequence[Target],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_output_pixels: int = DEFAULT_MAX_OUTPUT_PIXELS,
    max_dimension: int = DEFAULT_MAX_DIMENSION,
    auto: AutoQuality | None = None,
) -> list[ResizedImage]:
    """Several outputs from one decode of the source, in the order of `targets`.

    `auto`: the target and bounds of quality=auto (the AUTO_QUALITY_* settings)."""
    budget = Budget(max_pixels, max_frames, max_output_pixels)
    if not targets:
        raise InvalidRequest("at least one output is required")
    for target in targets:
        target.check(max_dimension)
    info = probe(data, max_pixels)
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check stays an error here; its other warnings (odd EXIF, an APNG
            # read as a still) describe a file the engine copes with, not something to act on.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[info.format]) as source:
                decoded = _Decoded(source, info.format, info.width, info.height, budget, auto or AutoQuality())
                return decoded.render(targets)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise TooManyPixels(str(e)) from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise CorruptImage(f"{info.format} data cannot be decoded: {e}") from e


@dataclass(frozen=True)
class Budget:
    """What one task may cost, checked before each decode.

    max_pixels: any one frame of the source. Animations: at most max_frames frames,
    and frames x frame pixels at most 4 x max_pixels. max_output_pixels: the sum over
    every output and every output frame.
    """

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_frames: int = DEFAULT_MAX_FRAMES
    max_output_pixels: int = DEFAULT_MAX_OUTPUT_PIXELS

    def check_animation(self, frames: int, width: int, height: int) -> None:
        if frames > self.max_frames or frames * width * height > self.max_pixels * 4:
            raise TooManyPixels(f"{frames} frames of {width}x{height} is over the animation budget")

    def check_frame(self, index: int, width: int, height: int) -> None:
        if width * height > self.max_pixels:
            raise TooManyPixels(f"frame {index} is {width}x{height}, over the budget of {self.max_pixels} pixels")


@dataclass(frozen=True)
class _Output:
    """A target worked out against the source: format, plan, whether all frames are kept."""

    format: str
    plan: Plan
    animated: bool
    target: Target


class _Decoded:
    """An opened source, decoded at most once for any number of outputs."""

    def __init__(
        self, source: Image.Image, source_format: str, width: int, height: int, budget: Budget, auto: AutoQuality
    ) -> None:
        self.source = source
        self.budget = budget
        self.auto = auto
        self._subjects: dict[str, CropSubject] = {}
        self.format = source_format
        self.size = (width, height)
        try:
            self.frame_count = getattr(source, "n_frames", 1)
        except TypeError as e:
            # Pillow's TIFF reader meets a later frame without dimensions while counting.
            raise CorruptImage(f"{source_format} frames cannot be read: {e}") from e
        # Pillow's TIFF reader reports the upright size and turns the pixels itself on load.
        self.orientation = 1 if source_format in _READERS_THAT_TURN else _orientation(source)
        self.oriented = (height, width) if self.orientation in _TRANSPOSING else (width, height)

    def _output(self, target: Target) -> _Output:
        fmt = output_format(target.format, self.format)
        animated = self.frame_count > 1 and self.format in ANIMATED_FORMATS and fmt in ANIMATED_FORMATS
        if animated:
            self.budget.check_animation(self.frame_count, *self.size)
        problem = auto_quality_problem(fmt) if target.auto_quality else None
        if problem:
            raise InvalidRequest(problem)
        return _Output(fmt, self._plan(target, self._anchor(target)), animated, target)

    def _plan(self, target: Target, anchor: tuple[float, float]) -> Plan:
        try:
            return plan(*self.oriented, target.width, target.height, target.mode, anchor, target.upscale)
        except ValueError as e:
            raise InvalidRequest(str(e)) from e

    def _anchor(self, target: Target) -> tuple[float, float]:
        """Where the fill window sits, as far as it is known before the decode (face and smart: see _subject)."""
        if not _crops(target):
            return (0.5, 0.5)
        assert target.width is not None and target.height is not None
        aspect = target.width / target.height
        if target.focus is not None:
            return subjects.anchor_on(target.focus, self.oriented, aspect)
        if target.gravity == "entropy":
            return entropy_anchor(self.source, self.oriented, aspect)
        # face and smart: the centre until the subject is found (ResizeOptions.check refused any other name).
        return GRAVITIES.get(target.gravity, (0.5, 0.5))

    def _subject(self, output: _Output, first_frame: Image.Image) -> tuple[_Output, CropSubject | None]:
        """The output re-planned on the picture's subject, for gravity face or smart; found once per source."""
        target = output.target
        gravity = _subject_gravity(target)
        if gravity is None:
            return output, None
        if gravity not in self._subjects:
            self._subjects[gravity] = _SUBJECT_GRAVITIES[gravity](first_frame)
        subject = self._subjects[gravity]
        assert target.width is not None and target.height is not None
        aspect = target.width / target.height
        point = subjects.subject_point(subject, self.oriented, aspect)
        anchor = subjects.anchor_on(point, self.oriented, aspect)
        return dataclasses.replace(output, plan=self._plan(target, anchor)), subject

    def _upright(self, frame: Image.Image) -> Image.Image:
        return frame if self.orientation == 1 else ImageOps.exif_transpose(frame)

    def _frames(self, all_frames: bool) -> tuple[list[Image.Image], Animation, bytes | None]:
        """The upright frames in their working mode (all, or the first only), how they play, and their profile."""
        icc = self.source.info.get("icc_profile")
        if all_frames:
            try:
                frames, durations, profile = self._animation_frames(icc)
                return frames, Animation(durations, int(self.source.info.get("loop", 0))), profile
            except (SyntaxError, OSError, EOFError, ValueError):
                # A broken animation is shown as its first image, as browsers show an invalid APNG.
                self.source.seek(0)
        self.source.load()
        first, icc = working_mode(self._upright(self.source), icc)
        return [first], Animation([]), icc

    def _animation_frames(self, icc: bytes | None) -> tuple[list[Image.Image], list[float], bytes | None]:
        """Every frame in its working mode, each one's duration, and the profile that fits them."""
        frames: list[Image.Image] = []
        durations: list[float] = []
        profile: bytes | None = None
        # An APNG's default image is for viewers without APNG: not a frame of the animation.
        skip = 1 if self.source.info.get("default_image") else 0
        for index, frame in enumerate(ImageSequence.Iterator(self.source)):
            if index >= self.frame_count:
                break  # only the frames the budget was checked for, whatever more the file holds
            if index < skip:
                continue
            # A GIF frame may reach beyond the screen the header declared: Pillow grows the canvas on seek.
            self.budget.check_frame(index, *frame.size)
            self.budget.check_animation(self.frame_count, *frame.size)
            frame.load()
            # The iterator reuses one image object: keep a copy of each frame.
            upright = self._upright(frame)
            converted, fitting = working_mode(upright.copy() if upright is frame else upright, icc)
            if not frames:
                profile = fitting  # the first frame's fit stands for all: they share the source's profile
            frames.append(converted)
            # No duration is a 0 ms frame (GIF's meaning), not a made-up default.
            durations.append(float(frame.info.get("duration", 0)))
        return frames, durations, profile

    def render(self, targets: Sequence[Target]) -> list[ResizedImage]:
        outputs = [self._output(t) for t in targets]
        output_pixels = sum(
            o.plan.canvas[0] * o.plan.canvas[1] * (self.frame_count if o.animated else 1) for o in outputs
        )
        if output_pixels > self.budget.max_output_pixels:
            raise TooManyPixels(
                f"the outputs come to {output_pixels} pixels, over the budget of {self.budget.max_output_pixels}"
            )
        if self.format == "JPEG":
            # The smallest DCT scale (1/2, 1/4, 1/8) still at least what the largest output needs.
            need = min(1.0, max(o.plan.scale for o in outputs))
            src_w, src_h = self.size
            if any(_subject_gravity(o.target) == "face" for o in outputs):
                # Faces are looked for on a copy up to subjects.FACE_SIDE wide: decode at least that much.
                need = min(1.0, max(need, subjects.FACE_SIDE / max(src_w, src_h)))
            self.source.draft(self.source.mode, (max(1, int(src_w * need)), max(1, int(src_h * need))))
        frames, animation, icc = self._frames(any(o.animated for o in outputs))
        results: list[ResizedImage | None] = [None] * len(outputs)
        # Largest first, so a smaller still output can be resized from a larger one's pixels (see _derived).
        resized: list[tuple[Plan, Image.Image]] = []
        for index in sorted(range(len(outputs)), key=lambda i: -outputs[i].plan.scale):
            output, subject = self._subject(outputs[index], frames[0])
            if output.animated:
                scaled = [_resize_frame(f, output.plan, self.oriented) for f in frames]
            else:
                derived = _derived(output.plan, resized)
                scaled = [derived or _resize_frame(frames[0], output.plan, self.oriented)]
                if derived is None:
                    # Only outputs made from the source stand for it: errors of a chain add up.
                    resized.append((output.plan, scaled[0]))
            made = [_place(frame, output.plan, output.format) for frame in scaled]
            quality, score = quality_for(output.format, output.target.quality), None
            if output.target.auto_quality and not output.animated:
                chosen = auto_quality.choose(
                    made[0], functools.partial(_encode_at, made, output.format, icc), self.auto
                )
                encoded, quality, score = chosen.data, chosen.quality, chosen.score
            else:
                encoded = encode(made, output.format, quality, icc, animation if output.animated else None)
            results[index] = ResizedImage(
                data=encoded,
                width=made[0].width,
                height=made[0].height,
                content_type=CONTENT_TYPES[output.format],
                format=output.format,
                source_width=self.size[0],
                source_height=self.size[1],
                frames=len(made),
                quality=quality,
                score=score,
                subject=subject,
            )
        return [r for r in results if r is not None]
