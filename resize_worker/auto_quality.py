"""quality=auto: the smallest file whose perceptual score against the unencoded resize meets a target.

The score is SSIM (Wang et al. 2004: an 11-tap Gaussian window, sigma 1.5) on
luma, computed with OpenCV's filters: a few milliseconds for a 1280 px output,
where SSIMULACRA2 in Python costs tens, and MS-SSIM's five scales leave
nothing to compare on thumbnails. A score only needs to rank encodes of one
picture against each other here, which SSIM does well; the target is what
says "looks right" (AUTO_QUALITY_TARGET, see docs/engine.md for how it was
chosen).

The search is a safeguarded regula falsi over the quality: the score grows
with it, nearly linearly over the range that matters, so each encode narrows
the bracket around the target by more than bisection would, and never by less
than a quarter. At most `max_encodes`, plus one at the highest quality when
none of them met the target.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from common.settings import Settings
from resize_worker.encode import flatten


def _default(name: str) -> Any:
    return Settings.model_fields[f"auto_quality_{name}"].default


@dataclass(frozen=True)
class AutoQuality:
    """The target and the bounds of the search: the AUTO_QUALITY_* settings, their defaults when not given."""

    target: float = _default("target")
    lowest: int = _default("min")
    highest: int = _default("max")
    max_encodes: int = _default("max_encodes")

    @classmethod
    def of(cls, settings: Settings) -> AutoQuality:
        return cls(
            settings.auto_quality_target,
            settings.auto_quality_min,
            settings.auto_quality_max,
            settings.auto_quality_max_encodes,
        )


@dataclass(frozen=True)
class Choice:
    data: bytes
    quality: int
    score: float
    encodes: int


_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def _luma(image: Image.Image) -> np.ndarray:
    return np.asarray(flatten(image).convert("L"), dtype=np.float32)


def _blur(plane: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(plane, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)


class Reference:
    """The unencoded luma with its local means and variances, worked out once for every encode it is scored against."""

    def __init__(self, luma: np.ndarray) -> None:
        self.luma = luma
        self.mean = _blur(luma)
        self.mean_sq = cv2.multiply(self.mean, self.mean)
        self.variance = _blur(cv2.multiply(luma, luma)) - self.mean_sq

    def ssim(self, other: np.ndarray) -> float:
        """Mean SSIM of `other` (a luma plane of the same size) against this reference."""
        mean = _blur(other)
        mean_sq = cv2.multiply(mean, mean)
        cross = cv2.multiply(self.mean, mean)
        variance = _blur(cv2.multiply(other, other)) - mean_sq
        covariance = _blur(cv2.multiply(self.luma, other)) - cross
        numerator = (2 * cross + _C1) * (2 * covariance + _C2)
        denominator = (self.mean_sq + mean_sq + _C1) * (self.variance + variance + _C2)
        return float(cv2.mean(numerator / denominator)[0])


def ssim(reference: np.ndarray, other: np.ndarray) -> float:
    """Mean SSIM of two luma planes of the same size."""
    return Reference(reference).ssim(other)


def choose(frame: Image.Image, encode_at: Callable[[int], bytes], policy: AutoQuality) -> Choice:
    """The lowest quality in [lowest, highest] whose encode scores at least the target (highest if none does)."""
    reference = Reference(_luma(frame))

    def score_of(data: bytes) -> float:
        with Image.open(io.BytesIO(data)) as decoded:
            decoded.load()
            other = _luma(decoded)
        if other.shape != reference.luma.shape:  # never expected: the encoders keep the size
            return 0.0
        return reference.ssim(other)

    low, high = policy.lowest - 1, policy.highest  # low fails by assumption, high passes by assumption
    low_score: float | None = None  # None: assumed, not measured
    high_score: float | None = None
    best: Choice | None = None
    encodes = 0
    quality = _guess(policy)
    while encodes < policy.max_encodes and high - low > 1:
        data = encode_at(quality)
        encodes += 1
        score = score_of(data)
        if score >= policy.target:
            best, high, high_score = Choice(data, quality, score, encodes), quality, score
        else:
            low, low_score = quality, score
        quality = _between(low, low_score, high, high_score, policy.target)
    if best is None:
        data = encode_at(policy.highest)
        encodes += 1
        best = Choice(data, policy.highest, score_of(data), encodes)
    return Choice(best.data, best.quality, round(best.score, 5), encodes)


def _guess(policy: AutoQuality) -> int:
    # Most photos meet an SSIM target of 0.97 around quality 70-80 in all three encoders.
    return min(max(75, policy.lowest), policy.highest)


def _between(low: int, low_score: float | None, high: int, high_score: float | None, target: float) -> int:
    """The next quality to try: where the line through the bracket's ends meets the target once both are
    measured (halfway before), kept a quarter of the bracket away from either end: a curved score would
    otherwise pull the guesses to one side a point at a time."""
    if high - low <= 1:
        return high
    if low_score is not None and high_score is not None and high_score > low_score:
        estimate = low + (target - low_score) * (high - low) / (high_score - low_score)
    else:
        estimate = (low + high) / 2
    margin = max(1, (high - low) // 4)
    return min(max(round(estimate), low + margin), high - margin)
