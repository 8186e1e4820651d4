"""Images in and out: Kiln's 8-bit pixels as PIL images or numpy arrays, and back."""

import collections
import ctypes
import io

from ._errors import BadInput
from ._structs import Image

# One finished image, copied out of Kiln's memory before Kiln frees it.
Generated = collections.namedtuple("Generated", ["width", "height", "channels", "pixels", "png"])

_PIL_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def copy_out(image):
    """A ``Generated`` holding copies of a ``kiln_image``'s pixels and PNG bytes."""
    size = image.width * image.height * image.channels
    return Generated(image.width, image.height, image.channels, ctypes.string_at(image.pixels, size),
                     ctypes.string_at(image.png, image.png_size))


def as_python_image(generated):
    """A PIL image when Pillow is installed, else a numpy array ``[H, W, C]`` of uint8."""
    try:
        from PIL import Image as PILImage
    except ImportError:
        PILImage = None
    if PILImage is not None:
        return PILImage.frombytes(_PIL_MODES[generated.channels], (generated.width, generated.height), generated.pixels)
    try:
        import numpy
    except ImportError:
        raise ImportError("Pipeline.generate returns PIL images or numpy arrays: install Pillow or numpy, "
                          "or use Pipeline.generate_png") from None
    return numpy.frombuffer(generated.pixels, dtype=numpy.uint8).reshape(
        generated.height, generated.width, generated.channels).copy()


def as_kiln_image(value, name):
    """A ``kiln_image`` (with the bytes it points to kept alive on it) from a PIL image, a numpy
    array ``[H, W]`` or ``[H, W, C]`` of uint8 (C = 1 to 4), or a PNG file's bytes."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            from PIL import Image as PILImage
        except ImportError:
            raise BadInput(f"{name}: PNG bytes need Pillow to decode them; pass a numpy array instead") from None
        value = PILImage.open(io.BytesIO(bytes(value)))
    if hasattr(value, "mode") and hasattr(value, "tobytes"):
        image = value if value.mode in ("L", "LA", "RGB", "RGBA") else value.convert("RGB")
        channels = len(image.mode)
        width, height = image.size
        pixels = image.tobytes()
    elif hasattr(value, "shape") and hasattr(value, "dtype"):
        import numpy
        array = numpy.asarray(value)
        if array.dtype != numpy.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and not 1 <= array.shape[2] <= 4):
            raise BadInput(f"{name}: a numpy array must be uint8 [H, W] or [H, W, C] with C in 1..4, "
                           f"got {array.dtype} {list(array.shape)}")
        height, width = array.shape[:2]
        channels = 1 if array.ndim == 2 else array.shape[2]
        pixels = numpy.ascontiguousarray(array).tobytes()
    else:
        raise BadInput(f"{name}: expected a PIL image, a numpy array or PNG bytes, got {type(value).__name__}")
    buffer = (ctypes.c_uint8 * len(pixels)).from_buffer_copy(pixels)
    image = Image(width=width, height=height, channels=channels,
                  pixels=ctypes.cast(buffer, ctypes.POINTER(ctypes.c_uint8)), png=None, png_size=0)
    image._pixels_buffer = buffer
    return image
