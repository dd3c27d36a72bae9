"""Colour: pixels brought into a mode the resize works in, ICC profiles kept only where they describe the pixels.

A profile is the meaning of the pixel values. CMYK pixels are converted to
sRGB through their profile with LittleCMS (the naive formula gives wrong
colours); a grey profile stays on grey pixels and is applied when grey pixels
must become RGB; a profile whose colour space is not the pixels' is dropped,
since any colour-managed viewer would misread the image with it.
"""

from __future__ import annotations

import functools
import io

from PIL import Image, ImageCms, ImageMath

_SRGB = ImageCms.createProfile("sRGB")
# The ICC colour space each working mode's pixels are in.
_SPACE_OF_MODE = {"RGB": "RGB", "RGBA": "RGB", "P": "RGB", "L": "GRAY", "LA": "GRAY", "CMYK": "CMYK"}
# Modes with an obvious working mode of their own; the rest become RGB or RGBA.
_MODE_FOR = {"La": "LA", "PA": "RGBA", "RGBa": "RGBA"}
_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


@functools.lru_cache(maxsize=16)
def profile_space(icc: bytes | None) -> str | None:
    """The profile's colour space ('RGB', 'GRAY', 'CMYK', ...), or None when there is none or it cannot be read.

    Cached: the same profile is asked about for every frame and every output of a source.
    """
    if not icc:
        return None
    try:
        return str(ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile.xcolor_space).strip()
    except (OSError, ImageCms.PyCMSError):
        return None


def fitting_profile(icc: bytes | None, mode: str) -> bytes | None:
    """The profile if it describes pixels of `mode`, else None."""
    space = profile_space(icc)
    return icc if space is not None and space == _SPACE_OF_MODE.get(mode) else None


def _transform(image: Image.Image, icc: bytes, mode: str) -> Image.Image | None:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(image, source, _SRGB, outputMode=mode)
    except (OSError, ImageCms.PyCMSError):
        return None


def _sixteen_to_eight(image: Image.Image) -> Image.Image:
    """16-bit greyscale to 8 bits by scaling, not clipping; a tRNS grey value becomes alpha."""
    wide = image.convert("I")
    grey = wide.point(lambda v: v / 256).convert("L")
    key = image.info.get("transparency")
    if not isinstance(key, int):
        return grey
    alpha = ImageMath.lambda_eval(lambda a: (a["x"] != key) * 255, x=wide)
    assert isinstance(alpha, Image.Image)
    grey.putalpha(alpha.convert("L"))
    return grey


def working_mode(image: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """The image in RGB, RGBA, L or LA (alpha kept wherever there is any) and the profile that still fits it."""
    if image.mode == "CMYK":
        converted = _transform(image, icc, "RGB") if profile_space(icc) == "CMYK" and icc else None
        return (converted or image.convert("RGB")), None
    if image.mode in _SIXTEEN_BIT:
        image = _sixteen_to_eight(image)
    elif image.mode in {"1", "F"}:
        image = image.convert("L")
    if image.mode in {"L", "RGB"} and "transparency" in image.info:
        image = image.convert("LA" if image.mode == "L" else "RGBA")
    elif image.mode not in {"RGB", "RGBA", "L", "LA"}:
        has_alpha = image.mode in {"PA", "RGBa"} or "transparency" in image.info
        image = image.convert(_MODE_FOR.get(image.mode, "RGBA" if has_alpha else "RGB"))
    return image, fitting_profile(icc, image.mode)


def grey_to_rgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """L or LA pixels as RGB or RGBA, through their grey profile when they have one."""
    alpha = image.getchannel("A") if image.mode == "LA" else None
    grey = image.convert("L") if alpha is not None else image
    rgb = (_transform(grey, icc, "RGB") if icc and profile_space(icc) == "GRAY" else None) or grey.convert("RGB")
    if alpha is not None:
        rgb.putalpha(alpha)
    return rgb
