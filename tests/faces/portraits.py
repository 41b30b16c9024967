"""Real portraits from installed packages (test requirements only), and the transformations
the engine is tested on: scikit-image's astronaut (Eileen Collins) and matplotlib's sample
photo of Grace Hopper."""

from __future__ import annotations

import io
from functools import cache

from PIL import Image, ImageFilter


@cache
def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())  # 512 x 512, face about 90 px


@cache
def grace_hopper() -> Image.Image:
    from matplotlib.cbook import get_sample_data

    with get_sample_data("grace_hopper.jpg") as file:
        return Image.open(file).convert("RGB")  # 512 x 600, face about 187 px


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def recompressed(image: Image.Image, quality: int) -> Image.Image:
    return Image.open(io.BytesIO(jpeg(image, quality))).convert("RGB")


def rescaled(image: Image.Image, factor: float) -> Image.Image:
    return image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.BICUBIC)


def flipped(image: Image.Image) -> Image.Image:
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def greyscale(image: Image.Image) -> Image.Image:
    return image.convert("L").convert("RGB")


def rotated(image: Image.Image, degrees: float) -> Image.Image:
    return image.rotate(degrees, expand=True, fillcolor="white", resample=Image.Resampling.BICUBIC)


def blurred(image: Image.Image, radius: float = 4) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius))


def side_by_side() -> Image.Image:
    """Both people in one picture, their faces about the same size (about 90 px)."""
    left = astronaut()
    right = rescaled(grace_hopper(), 0.5)
    canvas = Image.new("RGB", (left.width + right.width, left.height), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 100))
    return canvas


def landscape() -> Image.Image:
    """A corner of the astronaut photo without a face: sky, flag and spacecraft."""
    return astronaut().crop((300, 0, 512, 200))


def tiny_face() -> Image.Image:
    """The astronaut at a quarter of the pixels: her face is about 45 px."""
    return rescaled(astronaut(), 0.5)


def turned_head() -> Image.Image:
    """Grace Hopper with the right of her face squeezed to a quarter: the nose moves off the
    middle of the eyes as when the head turns (yaw about 0.2)."""
    image = grace_hopper()
    nose_x = 272
    left = image.crop((0, 0, nose_x, image.height))
    right = image.crop((nose_x, 0, image.width, image.height))
    right = right.resize((right.width // 4, image.height))
    canvas = Image.new("RGB", (left.width + right.width, image.height))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    return canvas
