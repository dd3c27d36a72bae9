"""quality=auto: the smallest file whose perceptual score against the unencoded resize meets a target.

The score is SSIM (Wang et al. 2004: an 11-tap Gaussian window, sigma 1.5) on
luma, computed with OpenCV's filters: a few milliseconds for a 1280 px output,
where SSIMULACRA2 in Python costs tens, and MS-SSIM's five scales leave
nothing to compare on thumbnails. A score only needs to rank encodes of one
picture against each other here, which SSIM does well; the target is what
says "looks right" (AUTO_QUALITY_TARGET, see docs/engine.md for how it was
chosen).

The search is regula falsi over the quality: the score grows with it, nearly
linearly over the range that matters, so each encode narrows the bracket
around the target by more than bisection would. At most `max_encodes`.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from resize_worker.encode import flatten


@dataclass(frozen=True)
class AutoQuality:
    """The target and the bounds of the search (the AUTO_QUALITY_* settings)."""

    target: float = 0.97
    lowest: int = 30
    highest: int = 95
    max_encodes: int = 4


@dataclass(frozen=True)
class Choice:
    data: bytes
    quality: int
    score: float
    encodes: int


_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def _luma(image: Image.Image) -> np.ndarray:
    return np.asarray(flatten(image).convert("L"), dtype=np.float32)


def ssim(reference: np.ndarray, other: np.ndarray) -> float:
    """Mean SSIM of two luma planes of the same size."""

    def blur(plane: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(plane, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_x, mu_y = blur(reference), blur(other)
    xx, yy, xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    var_x, var_y, cov = blur(reference * reference) - xx, blur(other * other) - yy, blur(reference * other) - xy
    numerator = (2 * xy + _C1) * (2 * cov + _C2)
    denominator = (xx + yy + _C1) * (var_x + var_y + _C2)
    return float(np.mean(numerator / denominator))


def choose(frame: Image.Image, encode_at: Callable[[int], bytes], policy: AutoQuality) -> Choice:
    """The lowest quality in [lowest, highest] whose encode scores at least the target (highest if none does)."""
    reference = _luma(frame)

    def score_of(data: bytes) -> float:
        with Image.open(io.BytesIO(data)) as decoded:
            decoded.load()
            other = _luma(decoded)
        if other.shape != reference.shape:  # never expected: the encoders keep the size
            return 0.0
        return ssim(reference, other)

    low, high = policy.lowest - 1, policy.highest  # low fails by assumption, high passes by assumption
    low_score, high_score = policy.target - 0.05, 1.0
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


def _between(low: int, low_score: float, high: int, high_score: float, target: float) -> int:
    """The next quality to try: where the line through the bracket's ends meets the target, strictly inside it."""
    if high_score > low_score:
        estimate = low + (target - low_score) * (high - low) / (high_score - low_score)
    else:
        estimate = (low + high) / 2
    return min(max(round(estimate), low + 1), high - 1) if high - low > 1 else high
