"""Scene grammar and renderer for the kiln-shapes model.

A scene is one flat-coloured shape on a flat background, described by
``a {size} {colour} {shape} on a {background} background[, {position}]``.
Rendering is exact and deterministic: each pixel's colour is the shape colour
weighted by the fraction of a regular sub-pixel grid that lies inside the
shape (supersampled coverage), so edges are anti-aliased.

Every number that defines a picture lives in GRAMMAR; it is written next to
the model as scene_grammar.json so tests can render ground truth from it.
"""

import functools
import itertools
import math

import numpy as np

GRAMMAR = {
    "image_size": 64,
    "supersampling": 4,
    "template": "a {size} {colour} {shape} on a {background} background, {position}",
    "template_without_position": "a {size} {colour} {shape} on a {background} background",
    "default_position": "center",
    # sRGB, 0-255.
    "colours": {
        "red": [220, 30, 30],
        "green": [30, 170, 60],
        "blue": [30, 70, 220],
        "yellow": [250, 225, 40],
        "orange": [240, 120, 20],
        "purple": [135, 50, 185],
        "white": [245, 245, 245],
        "black": [20, 20, 20],
    },
    # Side of the shape's bounding square (the circle's diameter), as a fraction of the image side.
    "sizes": {"small": 0.30, "large": 0.50},
    # Centre of the shape's bounding square, (x, y) as fractions of the image side, y down.
    "positions": {
        "top left": [0.27, 0.27],
        "top right": [0.73, 0.27],
        "bottom left": [0.27, 0.73],
        "bottom right": [0.73, 0.73],
        "center": [0.5, 0.5],
    },
    "shapes": {
        "circle": "disc filling the bounding square",
        "square": "axis-aligned square filling the bounding square",
        "triangle": "isosceles triangle, apex at the top middle, base along the bottom edge of the bounding square",
        "star": "five-pointed star, one point straight up, inner radius = star_inner_ratio x outer radius, "
                "scaled and shifted so its bounding box is as tall as the bounding square and centred in it",
        "cross": "plus sign: two bars the length of the bounding square, cross_arm_ratio of it wide",
    },
    "star_inner_ratio": 0.5,
    "cross_arm_ratio": 1.0 / 3.0,
}

SIZES = list(GRAMMAR["sizes"])
COLOURS = list(GRAMMAR["colours"])
SHAPES = list(GRAMMAR["shapes"])
POSITIONS = list(GRAMMAR["positions"])


def all_scenes():
    """Every scene of the grammar as (size, colour, shape, background, position): 2 x 8 x 7 x 5 x 5."""
    scenes = []
    for size, colour, shape, background, position in itertools.product(SIZES, COLOURS, SHAPES, COLOURS, POSITIONS):
        if colour != background:
            scenes.append((size, colour, shape, background, position))
    return scenes


def prompt(scene, with_position=True):
    size, colour, shape, background, position = scene
    fields = dict(size=size, colour=colour, shape=shape, background=background, position=position)
    if with_position:
        return GRAMMAR["template"].format(**fields)
    return GRAMMAR["template_without_position"].format(**fields)


def prompts_for(scene):
    """The prompts that describe a scene: centred scenes may omit the position clause."""
    result = [prompt(scene, True)]
    if scene[4] == GRAMMAR["default_position"]:
        result.append(prompt(scene, False))
    return result


def _star_polygon(inner_ratio):
    """Unit star (outer radius 1, centre at origin, point up), y down."""
    points = []
    for k in range(10):
        radius = 1.0 if k % 2 == 0 else inner_ratio
        angle = -math.pi / 2 + k * math.pi / 5
        points.append((radius * math.cos(angle), radius * math.sin(angle)))
    return np.array(points)


def _inside_polygon(x, y, polygon):
    """Even-odd point-in-polygon test, vectorised over the sample grid."""
    inside = np.zeros(x.shape, dtype=bool)
    count = len(polygon)
    for i in range(count):
        x0, y0 = polygon[i]
        x1, y1 = polygon[(i + 1) % count]
        if y0 == y1:
            continue
        crosses = (y0 > y) != (y1 > y)
        x_at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < x_at)
    return inside


@functools.lru_cache(maxsize=4)
def _sample_grid(n, s):
    """Sample positions in pixel units: the sub-pixel centres of an s x s grid in every pixel."""
    coords = (np.arange(n * s, dtype=np.float64) + 0.5) / s
    x, y = np.meshgrid(coords, coords)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def shape_mask(shape, centre, side, grammar=GRAMMAR, oversample=None, crop=True):
    """Coverage in [0, 1] of one shape, image_size x image_size, float32.

    centre and side are in fractions of the image side (centre of and side of the bounding square).
    crop=False tests every sample of the image instead of those near the shape (same result, slower).
    """
    n = grammar["image_size"]
    s = grammar["supersampling"] if oversample is None else oversample
    x, y = _sample_grid(n, s)
    cx, cy = centre[0] * n, centre[1] * n
    h = side * n / 2.0
    # Only samples near the bounding square can be inside the shape (the star is 5% wider).
    reach = 1.1 * h + 1.0
    lo_x, hi_x = max(0, int((cx - reach) * s)), min(n * s, int((cx + reach) * s) + 1)
    lo_y, hi_y = max(0, int((cy - reach) * s)), min(n * s, int((cy + reach) * s) + 1)
    if not crop:
        lo_x, hi_x, lo_y, hi_y = 0, n * s, 0, n * s
    inside_all = np.zeros((n * s, n * s), dtype=bool)
    if lo_x >= hi_x or lo_y >= hi_y:
        return inside_all.reshape(n, s, n, s).mean(axis=(1, 3)).astype(np.float32)
    x, y = x[lo_y:hi_y, lo_x:hi_x], y[lo_y:hi_y, lo_x:hi_x]
    u, v = (x - cx) / h, (y - cy) / h  # bounding square is [-1, 1]^2
    if shape == "circle":
        inside = u * u + v * v <= 1.0
    elif shape == "square":
        inside = (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)
    elif shape == "triangle":
        inside = _inside_polygon(u, v, np.array([(0.0, -1.0), (1.0, 1.0), (-1.0, 1.0)]))
    elif shape == "star":
        star = _star_polygon(grammar["star_inner_ratio"])
        top, bottom = star[:, 1].min(), star[:, 1].max()
        scale = 2.0 / (bottom - top)
        star = star * scale
        star[:, 1] -= (star[:, 1].min() + star[:, 1].max()) / 2.0
        inside = _inside_polygon(u, v, star)
    elif shape == "cross":
        w = grammar["cross_arm_ratio"]
        bar = (np.abs(u) <= 1.0) & (np.abs(v) <= w)
        inside = bar | ((np.abs(v) <= 1.0) & (np.abs(u) <= w))
    else:
        raise ValueError(f"unknown shape {shape!r}")
    inside_all[lo_y:hi_y, lo_x:hi_x] = inside
    return inside_all.reshape(n, s, n, s).mean(axis=(1, 3)).astype(np.float32)


def render(scene, grammar=GRAMMAR, jitter=None, with_coverage=False):
    """uint8 RGB image (H, W, 3) of a scene (and the shape's coverage, if with_coverage).

    jitter, if given, is (dx, dy, scale) applied to the centre (fractions of the image side) and to
    the side (a factor): the VAE trains on such near-grammar scenes so it decodes imperfect latents.
    """
    size, colour, shape, background, position = scene
    centre = list(grammar["positions"][position])
    side = grammar["sizes"][size]
    if jitter is not None:
        centre = [centre[0] + jitter[0], centre[1] + jitter[1]]
        side = side * jitter[2]
    coverage = shape_mask(shape, centre, side, grammar)[..., None]
    fg = np.array(grammar["colours"][colour], dtype=np.float32)
    bg = np.array(grammar["colours"][background], dtype=np.float32)
    image = np.clip(np.round(bg + coverage * (fg - bg)), 0, 255).astype(np.uint8)
    return (image, coverage[..., 0]) if with_coverage else image


if __name__ == "__main__":
    import sys

    from PIL import Image

    scenes = all_scenes()
    print(len(scenes), "scenes")
    out = sys.argv[1] if len(sys.argv) > 1 else "scenes.png"
    rng = np.random.default_rng(0)
    picks = [scenes[i] for i in rng.choice(len(scenes), 40, replace=False)]
    n = GRAMMAR["image_size"]
    sheet = np.zeros((5 * n, 8 * n, 3), dtype=np.uint8)
    for i, scene in enumerate(picks):
        sheet[(i // 8) * n:(i // 8 + 1) * n, (i % 8) * n:(i % 8 + 1) * n] = render(scene)
    Image.fromarray(sheet).resize((8 * n * 2, 5 * n * 2), Image.NEAREST).save(out)
