"""Small image helpers shared by the tests: reading an output, and a hostile GIF made here."""

from __future__ import annotations

import io
import struct

from PIL import Image

from bench.corpus import encode


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def growing_gif(side: int) -> bytes:
    """A GIF whose header says 1x1 and whose second frame is side x side (Pillow grows the canvas on seek)."""
    frames = [Image.new("RGB", (1, 1), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    data = bytearray(encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100))
    descriptors = [i for i in range(len(data) - 9) if data[i] == 0x2C and data[i + 5 : i + 9] == b"\x01\x00\x01\x00"]
    struct.pack_into("<HH", data, descriptors[-1] + 5, side, side)
    return bytes(data)
