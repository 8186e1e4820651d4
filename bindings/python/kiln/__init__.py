"""Kiln: latent-diffusion image models (Stable Diffusion 1.x/2.x/XL, SD3, FLUX.1, DiT) on Vulkan
GPUs or the CPU, from Python, over Kiln's C interface (include/kiln.h) with ctypes.

    import kiln
    with kiln.Pipeline("path/to/model", backend="vulkan") as pipe:
        pngs = pipe.generate_png(prompt="a lighthouse at dusk", steps=20, seed=42)

The library is found through ``KILN_LIBRARY`` (a path), then this package's folder, then the
system's search path.
"""

from ._errors import BadInput, Cancelled, KilnError
from ._library import load as _load
from ._pipeline import Pipeline, devices

__all__ = ["Pipeline", "devices", "version", "api_version", "library_path", "KilnError", "BadInput", "Cancelled"]


def version():
    """Kiln's version, as image metadata records it ("0.4.0")."""
    return _load().kiln_version().decode("utf-8")


def api_version():
    """The C API version the loaded library implements."""
    return _load().kiln_api_version()


def library_path():
    """The file the library was loaded from."""
    return _load()._name
