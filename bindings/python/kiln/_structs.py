"""ctypes mirrors of the structs and callback type in include/kiln.h (API version 1)."""

import ctypes

API_VERSION = 1


class OpenOptions(ctypes.Structure):
    """kiln_open_options."""

    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("backend", ctypes.c_char_p),
        ("device", ctypes.c_char_p),
        ("dtype", ctypes.c_char_p),
        ("config", ctypes.c_char_p),
        ("vae", ctypes.c_char_p),
        ("inpainting_unet", ctypes.c_char_p),
    ]


class Image(ctypes.Structure):
    """kiln_image."""

    _fields_ = [
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("channels", ctypes.c_int),
        ("pixels", ctypes.POINTER(ctypes.c_uint8)),
        ("png", ctypes.POINTER(ctypes.c_uint8)),
        ("png_size", ctypes.c_size_t),
    ]


class Request(ctypes.Structure):
    """kiln_request."""

    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("prompt", ctypes.c_char_p),
        ("negative_prompt", ctypes.c_char_p),
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("steps", ctypes.c_int),
        ("cfg_scale", ctypes.c_float),
        ("sampler", ctypes.c_char_p),
        ("scheduler", ctypes.c_char_p),
        ("seed", ctypes.c_uint64),
        ("batch_count", ctypes.c_int),
        ("class_labels", ctypes.POINTER(ctypes.c_int)),
        ("class_label_count", ctypes.c_size_t),
        ("init_image", ctypes.POINTER(Image)),
        ("mask_image", ctypes.POINTER(Image)),
        ("strength", ctypes.c_float),
        ("guidance_rescale", ctypes.c_float),
        ("max_sequence_length", ctypes.c_int),
        ("without_t5", ctypes.c_int),
    ]


# void (*kiln_progress_fn)(void *user_data, int step, int steps, double seconds)
ProgressFunction = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_double)
