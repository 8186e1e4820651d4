"""Finding and loading libkiln, and declaring the C functions' types.

The library is looked for, in order: the path in the ``KILN_LIBRARY`` environment variable; a
``libkiln`` in this package's folder; the system's search path (``LD_LIBRARY_PATH``, the
``ldconfig`` cache, ``ctypes.util.find_library("kiln")``). It is loaded on first use, so
``import kiln`` works without it.
"""

import ctypes
import ctypes.util
import os
import sys
import threading

from ._errors import KilnError
from ._structs import API_VERSION, Image, OpenOptions, ProgressFunction, Request

_NAMES = {"darwin": ["libkiln.dylib"], "win32": ["kiln.dll"]}.get(sys.platform, ["libkiln.so"])

_lock = threading.Lock()
_loaded = None


def _candidates():
    """Where to look, in order, as (description, path or name) pairs."""
    configured = os.environ.get("KILN_LIBRARY")
    if configured:
        yield "KILN_LIBRARY", configured
        return
    here = os.path.dirname(os.path.abspath(__file__))
    for name in _NAMES:
        path = os.path.join(here, name)
        if os.path.exists(path):
            yield "the package folder", path
    for name in _NAMES:
        yield "the system search path", name
    found = ctypes.util.find_library("kiln")
    if found:
        yield "ctypes.util.find_library", found


def _declare(library):
    """Sets argtypes and restype of every function in kiln.h."""
    c = ctypes
    status = c.c_int
    context = c.c_void_p
    signatures = {
        "kiln_open_options_init_sized": (None, [c.POINTER(OpenOptions), c.c_size_t]),
        "kiln_request_init_sized": (None, [c.POINTER(Request), c.c_size_t]),
        "kiln_open_options_init": (None, [c.POINTER(OpenOptions)]),
        "kiln_request_init": (None, [c.POINTER(Request)]),
        "kiln_open": (status, [c.c_char_p, c.POINTER(OpenOptions), c.POINTER(context)]),
        "kiln_generate": (status, [context, c.POINTER(Request), ProgressFunction, c.c_void_p,
                                   c.POINTER(c.POINTER(Image)), c.POINTER(c.c_size_t)]),
        "kiln_cancel": (None, [context]),
        "kiln_last_error": (c.c_char_p, [context]),
        "kiln_free_images": (None, [c.POINTER(Image), c.c_size_t]),
        "kiln_close": (None, [context]),
        "kiln_version": (c.c_char_p, []),
        "kiln_api_version": (c.c_int, []),
        "kiln_status_name": (c.c_char_p, [status]),
        # Strings Kiln allocates come back as raw pointers, so they can be freed after reading.
        "kiln_devices_json": (c.c_void_p, []),
        "kiln_model_info_json": (c.c_void_p, [context]),
        "kiln_free_string": (None, [c.c_void_p]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(library, name)
        function.restype = restype
        function.argtypes = argtypes


def load():
    """The loaded library (a ``ctypes.CDLL``), loading it on first use."""
    global _loaded
    with _lock:
        if _loaded is not None:
            return _loaded
        failures = []
        for where, path in _candidates():
            try:
                library = ctypes.CDLL(path)
            except OSError as error:
                failures.append(f"{where}: {error}")
                continue
            try:
                _declare(library)
            except AttributeError as error:
                failures.append(f"{where}: {path} is not libkiln ({error})")
                continue
            version = library.kiln_api_version()
            if version != API_VERSION:
                failures.append(f"{where}: {path} implements Kiln C API {version}; this package needs {API_VERSION}")
                continue
            _loaded = library
            return library
        raise KilnError("libkiln could not be loaded (set KILN_LIBRARY to its path): " + "; ".join(failures))


def take_string(pointer):
    """The text of a ``char *`` Kiln allocated, freeing it; None for NULL."""
    if not pointer:
        return None
    try:
        return ctypes.string_at(pointer).decode("utf-8")
    finally:
        load().kiln_free_string(pointer)
