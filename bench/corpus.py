"""Benchmark and test images, made here: photo-like content, not flat colour."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw, ImageFilter


def photo_like(width: int, height: int, seed: int = 1) -> Image.Image:
    """Smooth gradients, shapes with soft edges and fine grain: compresses like a photo."""
    rng = random.Random(seed)
    base = Image.effect_mandelbrot((width, height), (-2.2, -1.3, 1.0, 1.3), 60).convert("L")
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", (base, gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(max(2, width // 40), max(3, width // 6))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randrange(256) for _ in range(3)))
    image = image.filter(ImageFilter.GaussianBlur(max(1, width // 800)))
    noise = Image.effect_noise((width, height), 24).convert("RGB")
    return Image.blend(image, noise, 0.08)


def photo(width: int = 1920, height: int = 1080, seed: int = 7, grain: float = 0.14) -> bytes:
    """A JPEG (quality 90) with a camera photo's entropy: ~700 KB at 1920x1080, where the smooth one is ~250 KB.

    Seeded per-pixel colour grain over the shapes: costs grow with bytes (hashing,
    copying, storing), and a smooth image hides them.
    """
    rng = random.Random(seed)
    grain_layer = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    return encode(Image.blend(photo_like(width, height, seed), grain_layer, grain), "JPEG", quality=90)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def jpeg(width: int, height: int, quality: int = 90) -> bytes:
    return encode(photo_like(width, height), "JPEG", quality=quality)


def rgba_png(width: int, height: int) -> bytes:
    image = photo_like(width, height).convert("RGBA")
    alpha = Image.radial_gradient("L").resize((width, height))
    image.putalpha(alpha)
    return encode(image, "PNG")


def animated_gif(width: int = 480, height: int = 270, frames: int = 24) -> bytes:
    base = photo_like(width * 2, height, seed=3)
    shots = [base.crop((i * width // frames, 0, i * width // frames + width, height)) for i in range(frames)]
    palette = [shot.convert("P", palette=Image.Palette.ADAPTIVE) for shot in shots]
    return encode(palette[0], "GIF", save_all=True, append_images=palette[1:], duration=60, loop=0)
