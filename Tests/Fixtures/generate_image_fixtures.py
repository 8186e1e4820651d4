"""Write PNG fixtures for KilnImage and record what Pillow and diffusers make of them.

Rerun from the repository root:

    python3 -m venv .venv && .venv/bin/pip install -r Tests/Fixtures/requirements.txt
    .venv/bin/python Tests/Fixtures/generate_image_fixtures.py

(only pillow, numpy, torch and diffusers are used; their pins are in Tests/Fixtures/requirements.txt).

Writes Tests/KilnImageTests/Fixtures/:
- flavours/*.png: small PNGs of every colour type and bit depth PNG allows (gray 1/2/4/8/16, RGB 8/16,
  palette 1/2/4/8, gray+alpha 8/16, RGBA 8/16), with tRNS, Adam7-interlaced, every row filter, and
  text chunks (tEXt, zTXt, iTXt plain and compressed, one after IDAT). They are encoded here by hand,
  not by Pillow, because Pillow cannot write most of these flavours; Pillow only *reads* them.
- pillow_parameters.png: written by Pillow with PngInfo.add_text (an A1111-style `parameters` tEXt
  and a non-Latin-1 text that Pillow turns into iTXt) and a compressed iTXt `kiln` JSON chunk.
- huge_dimensions.png: a valid header claiming 200000 x 200000 RGB, then a stub IDAT.
- expected.json: for every PNG above except the huge one, Pillow's mode after Image.open, the bytes of
  Image.open(p).convert("RGB") and of that RGB image's convert("L") (hex), and Pillow's `text` dict;
  plus diffusers VaeImageProcessor reference values: preprocess of an RGB image (float32 bits), the
  inpainting mask processor on a 256-level gray ramp, and postprocess(output_type="pil") of float32
  inputs chosen to land exactly on .5 after scaling, so half-to-even rounding is pinned down.

The script also checks that Pillow's RGB -> L conversion equals (19595 R + 38470 G + 7471 B + 32768) >> 16
for all 2^24 colours, the formula KilnImage uses. Output is byte-for-byte reproducible.
"""

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import PIL
import torch
from PIL import Image, PngImagePlugin
from diffusers.image_processor import VaeImageProcessor

OUT_DIR = Path(__file__).resolve().parents[1] / "KilnImageTests" / "Fixtures"
FLAVOUR_DIR = OUT_DIR / "flavours"

GRAY, RGB, PALETTE, GRAY_ALPHA, RGBA = 0, 2, 3, 4, 6
CHANNELS = {GRAY: 1, RGB: 3, PALETTE: 1, GRAY_ALPHA: 2, RGBA: 4}

# (x start, y start, x step, y step) of the seven Adam7 passes.
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def chunk(kind, payload):
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_row(samples, bit_depth):
    """One scanline's samples (already flattened across channels) as bytes."""
    if bit_depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    if bit_depth == 8:
        return bytes(samples)
    per_byte = 8 // bit_depth
    out = bytearray()
    for start in range(0, len(samples), per_byte):
        group = samples[start:start + per_byte]
        value = 0
        for index in range(per_byte):
            value = (value << bit_depth) | (group[index] if index < len(group) else 0)
        out.append(value)
    return bytes(out)


def paeth(left, up, upper_left):
    estimate = left + up - upper_left
    distances = (abs(estimate - left), abs(estimate - up), abs(estimate - upper_left))
    if distances[0] <= distances[1] and distances[0] <= distances[2]:
        return left
    return up if distances[1] <= distances[2] else upper_left


def filter_rows(rows, bytes_per_pixel):
    """Filters each row with type (row index % 5), so every PNG filter is exercised."""
    out = bytearray()
    previous = bytes(len(rows[0])) if rows else b""
    for index, row in enumerate(rows):
        kind = index % 5
        filtered = bytearray()
        for i, value in enumerate(row):
            left = row[i - bytes_per_pixel] if i >= bytes_per_pixel else 0
            up = previous[i]
            upper_left = previous[i - bytes_per_pixel] if i >= bytes_per_pixel else 0
            predictor = [0, left, up, (left + up) // 2, paeth(left, up, upper_left)][kind]
            filtered.append((value - predictor) & 0xFF)
        out.append(kind)
        out += filtered
        previous = row
    return bytes(out)


def encode_png(pixels, color_type, bit_depth, *, palette=None, transparency=None, interlaced=False,
               text_before=(), text_after=()):
    """pixels: [H][W][channels] samples at bit_depth. text_*: ready-made chunks (kind, payload)."""
    height, width = len(pixels), len(pixels[0])
    channels = CHANNELS[color_type]
    bytes_per_pixel = max(1, channels * bit_depth // 8)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 1 if interlaced else 0)
    passes = ADAM7 if interlaced else [(0, 0, 1, 1)]
    raw = b""
    for x0, y0, dx, dy in passes:
        rows = []
        for y in range(y0, height, dy):
            samples = [s for x in range(x0, width, dx) for s in pixels[y][x]]
            if samples:
                rows.append(pack_row(samples, bit_depth))
        if rows:
            raw += filter_rows(rows, bytes_per_pixel)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    if palette is not None:
        data += chunk(b"PLTE", bytes(v for entry in palette for v in entry))
    if transparency is not None:
        data += chunk(b"tRNS", transparency)
    for kind, payload in text_before:
        data += chunk(kind, payload)
    compressed = zlib.compress(raw, 9)
    # Two IDAT chunks: readers must concatenate them.
    middle = len(compressed) // 2
    data += chunk(b"IDAT", compressed[:middle]) + chunk(b"IDAT", compressed[middle:])
    for kind, payload in text_after:
        data += chunk(kind, payload)
    return data + chunk(b"IEND", b"")


def samples(width, height, channels, maximum, seed):
    """Deterministic samples that include 0 and the maximum."""
    generator = np.random.default_rng(seed)
    values = generator.integers(0, maximum + 1, size=(height, width, channels), dtype=np.int64)
    values[0, 0, :] = 0
    values[0, 1, :] = maximum
    return values.tolist()


def gray16_samples(width, height):
    # Pillow clamps 16-bit gray to 255 rather than taking the high byte: include values around 255.
    special = [0, 1, 128, 254, 255, 256, 257, 511, 4096, 32768, 65534, 65535]
    generator = np.random.default_rng(16)
    flat = special + generator.integers(0, 65536, size=width * height - len(special)).tolist()
    return [[[flat[y * width + x]] for x in range(width)] for y in range(height)]


def text_chunk(keyword, text):
    return (b"tEXt", keyword.encode("latin-1") + b"\0" + text.encode("latin-1"))


def ztxt_chunk(keyword, text):
    return (b"zTXt", keyword.encode("latin-1") + b"\0\0" + zlib.compress(text.encode("latin-1"), 9))


def itxt_chunk(keyword, text, *, compressed=False, language="", translated=""):
    body = text.encode("utf-8")
    if compressed:
        body = zlib.compress(body, 9)
    header = keyword.encode("latin-1") + b"\0" + bytes([1 if compressed else 0, 0])
    return (b"iTXt", header + language.encode("ascii") + b"\0" + translated.encode("utf-8") + b"\0" + body)


def palette_of(size, seed):
    generator = np.random.default_rng(seed)
    return [tuple(int(v) for v in generator.integers(0, 256, size=3)) for _ in range(size)]


def flavours():
    """name -> PNG bytes."""
    w, h = 7, 5          # odd sizes, so packed rows end mid-byte
    iw, ih = 11, 9       # interlaced: big enough that all seven passes hold pixels
    out = {}
    for depth in (1, 2, 4, 8):
        out[f"gray{depth}"] = encode_png(samples(w, h, 1, 2**depth - 1, depth), GRAY, depth)
    out["gray16"] = encode_png(gray16_samples(w, h), GRAY, 16)
    out["gray8_trns"] = encode_png(samples(w, h, 1, 255, 80), GRAY, 8, transparency=struct.pack(">H", 255))
    out["gray16_trns"] = encode_png(gray16_samples(w, h), GRAY, 16, transparency=struct.pack(">H", 65535))
    out["rgb8"] = encode_png(samples(w, h, 3, 255, 28), RGB, 8)
    out["rgb16"] = encode_png(samples(w, h, 3, 65535, 216), RGB, 16)
    out["rgb8_trns"] = encode_png(samples(w, h, 3, 255, 29), RGB, 8, transparency=struct.pack(">HHH", 0, 0, 0))
    out["rgb16_trns"] = encode_png(samples(w, h, 3, 65535, 217), RGB, 16,
                                   transparency=struct.pack(">HHH", 65535, 65535, 65535))
    for depth in (1, 2, 4, 8):
        size = min(2**depth, 200)
        out[f"palette{depth}"] = encode_png(samples(w, h, 1, size - 1, 30 + depth), PALETTE, depth,
                                            palette=palette_of(size, depth))
    out["palette8_trns"] = encode_png(samples(w, h, 1, 15, 38), PALETTE, 8, palette=palette_of(16, 8),
                                      transparency=bytes([0, 64, 128, 255, 7]))
    out["gray_alpha8"] = encode_png(samples(w, h, 2, 255, 48), GRAY_ALPHA, 8)
    out["gray_alpha16"] = encode_png(samples(w, h, 2, 65535, 416), GRAY_ALPHA, 16)
    out["rgba8"] = encode_png(samples(w, h, 4, 255, 68), RGBA, 8)
    out["rgba16"] = encode_png(samples(w, h, 4, 65535, 616), RGBA, 16)
    out["gray2_interlaced"] = encode_png(samples(iw, ih, 1, 3, 102), GRAY, 2, interlaced=True)
    out["gray16_interlaced"] = encode_png(gray16_samples(iw, ih), GRAY, 16, interlaced=True)
    out["rgb8_interlaced"] = encode_png(samples(iw, ih, 3, 255, 128), RGB, 8, interlaced=True)
    out["palette4_interlaced"] = encode_png(samples(iw, ih, 1, 15, 134), PALETTE, 4, interlaced=True,
                                            palette=palette_of(16, 4))
    out["rgba16_interlaced"] = encode_png(samples(iw, ih, 4, 65535, 1616), RGBA, 16, interlaced=True)
    out["text_chunks"] = encode_png(
        samples(3, 2, 3, 255, 7), RGB, 8,
        text_before=[
            text_chunk("Title", "Caf\u00e9 at night"),
            ztxt_chunk("Description", "A zTXt chunk, compressed.\nSecond line."),
            itxt_chunk("Author", "\u5c71\u7530 \u82b1\u5b50"),
            itxt_chunk("Comment", "\u2713 compressed iTXt " * 4, compressed=True, language="en",
                       translated="Kommentar"),
        ],
        text_after=[text_chunk("Software", "after IDAT")])
    return out


def pillow_parameters_png():
    image = Image.fromarray(np.array(samples(8, 6, 3, 255, 99), dtype=np.uint8), "RGB")
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat wearing a hat, masterpiece\nNegative prompt: blurry, lowres\n"
                                "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x512, "
                                "Model: v1-5-pruned-emaonly")
    info.add_text("note", "\u00e9t\u00e9 \u2014 \u6771\u4eac")  # not Latin-1: Pillow writes iTXt
    info.add_itxt("kiln", json.dumps({"seed": 1234, "steps": 20, "prompt": "a cat"}, sort_keys=True), zip=True)
    path = OUT_DIR / "pillow_parameters.png"
    image.save(path, pnginfo=info)
    return path


def huge_dimensions_png():
    ihdr = struct.pack(">IIBBBBB", 200000, 200000, 8, RGB, 0, 0, 0)
    stub = zlib.compress(b"\0" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", stub) + chunk(b"IEND", b"")


def check_luma_formula():
    values = np.arange(2**24, dtype=np.uint32)
    rgb = np.stack([(values >> 16) & 255, (values >> 8) & 255, values & 255], axis=-1).astype(np.uint8)
    image = Image.fromarray(rgb.reshape(4096, 4096, 3), "RGB")
    pillow = np.asarray(image.convert("L")).reshape(-1).astype(np.uint32)
    r, g, b = (rgb[:, i].astype(np.uint32) for i in range(3))
    formula = (19595 * r + 38470 * g + 7471 * b + 32768) >> 16
    assert np.array_equal(pillow, formula), "Pillow's RGB -> L is not the integer formula KilnImage uses"


def pillow_record(path):
    with Image.open(path) as image:
        image.load()
        mode = image.mode
        text = dict(image.text)
        rgb = image.convert("RGB")
    return {
        "width": rgb.width,
        "height": rgb.height,
        "pillow_mode": mode,
        "rgb": rgb.tobytes().hex(),
        "l": rgb.convert("L").tobytes().hex(),
        "text": text,
    }


def float_bits(array):
    return [int(v) for v in np.asarray(array, dtype=np.float32).reshape(-1).view(np.uint32)]


def half_way_inputs():
    """float32 x whose (x * 0.5 + 0.5) * 255 is exactly k + 0.5 in float32, for as many k as exist."""
    found = []
    for k in range(255):
        target = np.float32(k + 0.5)
        guess = np.float32((k + 0.5) / 255)
        for step in range(-4, 5):
            y = np.float32(guess)
            for _ in range(abs(step)):
                y = np.nextafter(y, np.float32(np.inf if step > 0 else -np.inf), dtype=np.float32)
            if np.float32(y * np.float32(255)) != target:
                continue
            x = np.float32((y - np.float32(0.5)) * np.float32(2))
            if np.float32(x * np.float32(0.5) + np.float32(0.5)) == y:
                found.append(float(x))
                break
    return found


def diffusers_records():
    processor = VaeImageProcessor(vae_scale_factor=8)
    mask_processor = VaeImageProcessor(vae_scale_factor=8, do_normalize=False, do_binarize=True,
                                       do_convert_grayscale=True)

    rgb = Image.fromarray(np.array(samples(8, 8, 3, 255, 5), dtype=np.uint8), "RGB")
    image_tensor = processor.preprocess(rgb)

    ramp = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16), "L")
    mask_tensor = mask_processor.preprocess(ramp)

    halves = half_way_inputs()
    extras = [-1.0, 1.0, 0.0, -1.5, 2.0, -0.0, 1e-8, -0.999, 0.999, float(np.float32(1 / 255))]
    generator = torch.Generator().manual_seed(0)
    noise = (torch.randn(64, generator=generator) * 1.2).tolist()
    values = np.array(halves + extras + noise, dtype=np.float32)
    columns = 4
    padded = np.concatenate([values, np.zeros((-len(values)) % (3 * columns), dtype=np.float32)])
    decoded = torch.from_numpy(padded.reshape(1, 3, -1, columns).copy())
    images = processor.postprocess(decoded, output_type="pil")
    return {
        "preprocess": {
            "rgb": rgb.tobytes().hex(), "width": 8, "height": 8,
            "shape": list(image_tensor.shape), "bits": float_bits(image_tensor.numpy()),
        },
        "mask": {
            "l": ramp.tobytes().hex(), "width": 16, "height": 16,
            "shape": list(mask_tensor.shape), "bits": float_bits(mask_tensor.numpy()),
        },
        "postprocess": {
            "shape": list(decoded.shape), "bits": float_bits(decoded.numpy()),
            "half_way_count": len(halves),
            "rgb": images[0].tobytes().hex(),
        },
    }


def main():
    check_luma_formula()
    FLAVOUR_DIR.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, data in flavours().items():
        path = FLAVOUR_DIR / f"{name}.png"
        path.write_bytes(data)
        files[f"flavours/{name}.png"] = pillow_record(path)
    files["pillow_parameters.png"] = pillow_record(pillow_parameters_png())
    (OUT_DIR / "huge_dimensions.png").write_bytes(huge_dimensions_png())
    expected = {
        "pillow": PIL.__version__,
        "files": files,
        "diffusers": diffusers_records(),
    }
    (OUT_DIR / "expected.json").write_text(json.dumps(expected, sort_keys=True, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
