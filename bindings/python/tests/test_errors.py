"""Bad input raises kiln.BadInput with Kiln's message, before any work; the C boundary checks
struct sizes and NULL pointers."""

import ctypes
import struct

import pytest

import kiln
from conftest import SMALL
from kiln import _structs


@pytest.mark.parametrize("settings, message", [
    (dict(sampler="warp"), "sampler 'warp'"),
    (dict(scheduler="cubic"), "scheduler 'cubic'"),
    (dict(width=60, height=64), "multiples of 8"),
    (dict(steps=-3), "steps -3"),
    (dict(strength=0.5), "strength needs init_image"),
    (dict(class_labels=[3]), "class_labels"),
])
def test_bad_requests_raise_bad_input_with_kilns_message(pipeline, settings, message):
    arguments = dict(prompt="a red car", seed=1, **SMALL)
    arguments.update(settings)
    with pytest.raises(kiln.BadInput) as raised:
        pipeline.generate_png(**arguments)
    assert message in str(raised.value)
    assert isinstance(raised.value, kiln.KilnError) and isinstance(raised.value, ValueError)
    assert raised.value.status == 2


def test_a_prompt_is_required(pipeline):
    with pytest.raises(kiln.BadInput, match="prompt is required"):
        pipeline.generate_png(seed=1, **SMALL)


def test_unknown_settings_are_a_type_error(pipeline):
    with pytest.raises(TypeError, match="guidance"):
        pipeline.generate_png(prompt="a red car", guidance=3)


def test_a_missing_model_is_bad_input(tmp_path):
    with pytest.raises(kiln.BadInput) as raised:
        kiln.Pipeline(tmp_path / "nothing-here", backend="cpu")
    assert str(tmp_path / "nothing-here") in str(raised.value)


def test_no_model_is_the_built_in_model():
    """Pipeline(None) opens kiln-shapes, which build-libkiln.sh installs beside the library, and
    generates at its recommended settings (64x64)."""
    with kiln.Pipeline(None, backend="cpu") as pipeline:
        png = pipeline.generate_png(prompt="a large red circle on a blue background", seed=4, steps=2)[0]
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", png[16:24]) == (64, 64)


@pytest.mark.parametrize("options, message", [
    (dict(backend="metal"), "backend must be vulkan or cpu"),
    (dict(dtype="f8"), "dtype must be f16 or f32"),
])
def test_bad_open_options_are_bad_input(tiny_model, options, message):
    with pytest.raises(kiln.BadInput, match=message):
        kiln.Pipeline(tiny_model, **{"backend": "cpu", **options})


def test_a_closed_pipeline_refuses_work(tiny_model):
    pipe = kiln.Pipeline(tiny_model, backend="cpu")
    pipe.close()
    pipe.close()
    with pytest.raises(kiln.BadInput, match="closed"):
        pipe.generate_png(prompt="a red car")


# The C boundary, through ctypes directly.

def raw_request(library, prompt=b"a red car"):
    request = _structs.Request()
    library.kiln_request_init_sized(ctypes.byref(request), ctypes.sizeof(request))
    request.prompt = prompt
    request.width, request.height, request.steps = 64, 64, 1
    return request


def raw_generate(library, handle, request_pointer):
    images = ctypes.POINTER(_structs.Image)()
    count = ctypes.c_size_t()
    status = library.kiln_generate(handle, request_pointer, ctypes.cast(None, _structs.ProgressFunction), None,
                                   ctypes.byref(images), ctypes.byref(count))
    if status == 0:
        library.kiln_free_images(images, count)
    return status, library.kiln_last_error(handle).decode(), count.value


def test_struct_size_zero_is_refused(pipeline):
    library = pipeline._library
    request = raw_request(library)
    request.struct_size = 0
    status, message, count = raw_generate(library, pipeline._handle, ctypes.byref(request))
    assert (status, count) == (2, 0)
    assert "struct_size is 0" in message


def test_a_newer_larger_request_is_read_while_its_unknown_tail_is_zero(pipeline):
    library = pipeline._library

    class Newer(ctypes.Structure):
        _fields_ = [("known", _structs.Request), ("future", ctypes.c_uint64 * 4)]

    newer = Newer()
    library.kiln_request_init_sized(ctypes.cast(ctypes.byref(newer), ctypes.POINTER(_structs.Request)), ctypes.sizeof(newer))
    assert newer.known.struct_size == ctypes.sizeof(Newer)
    newer.known.prompt = b"a red car"
    newer.known.width, newer.known.height, newer.known.steps = 64, 64, 1
    pointer = ctypes.cast(ctypes.byref(newer), ctypes.POINTER(_structs.Request))
    assert raw_generate(library, pipeline._handle, pointer)[:2] == (0, "")
    newer.future[2] = 1
    status, message, _ = raw_generate(library, pipeline._handle, pointer)
    assert status == 2 and "newer kiln.h" in message


def test_an_older_smaller_request_is_read_as_far_as_it_goes(pipeline):
    library = pipeline._library
    request = raw_request(library)
    request.struct_size = _structs.Request.class_labels.offset   # the fields up to batch_count
    request.strength = 0.5                                        # past the old end: never read
    assert raw_generate(library, pipeline._handle, ctypes.byref(request))[:2] == (0, "")
    request.struct_size = _structs.Request.class_labels.offset + 4
    status, message, _ = raw_generate(library, pipeline._handle, ctypes.byref(request))
    assert status == 2 and "struct_size" in message


def test_null_arguments_are_bad_input(pipeline):
    library = pipeline._library
    images = ctypes.POINTER(_structs.Image)()
    count = ctypes.c_size_t(7)
    status = library.kiln_generate(pipeline._handle, None, ctypes.cast(None, _structs.ProgressFunction), None,
                                   ctypes.byref(images), ctypes.byref(count))
    assert (status, count.value, bool(images)) == (2, 0, False)
    assert "request is NULL" in library.kiln_last_error(pipeline._handle).decode()
    status = library.kiln_generate(None, ctypes.byref(raw_request(library)), ctypes.cast(None, _structs.ProgressFunction),
                                   None, ctypes.byref(images), ctypes.byref(count))
    assert status == 2 and "ctx is NULL" in library.kiln_last_error(None).decode()
    out = ctypes.c_void_p()
    assert library.kiln_open(None, None, None) == 2
    assert "out is NULL" in library.kiln_last_error(None).decode()
    library.kiln_close(None)
    library.kiln_cancel(None)
    library.kiln_free_images(None, 3)
    library.kiln_free_string(None)
    assert out.value is None


def test_last_error_is_cleared_by_a_success_and_kept_per_thread(pipeline):
    import threading
    library = pipeline._library
    request = raw_request(library, prompt=None)
    status, message, _ = raw_generate(library, pipeline._handle, ctypes.byref(request))
    assert status == 2 and "prompt is required" in message
    seen = []
    thread = threading.Thread(target=lambda: seen.append(library.kiln_last_error(pipeline._handle)))
    thread.start()
    thread.join()
    assert seen == [b""]                      # another thread has no error of its own
    assert b"prompt is required" in library.kiln_last_error(pipeline._handle)
    request = raw_request(library)
    assert raw_generate(library, pipeline._handle, ctypes.byref(request))[:2] == (0, "")


def test_status_names_and_versions():
    library = kiln._load()
    assert [library.kiln_status_name(status) for status in range(5)] == [
        b"KILN_OK", b"KILN_FAILED", b"KILN_BAD_INPUT", b"KILN_CANCELLED", b"KILN_UNKNOWN"]
    assert kiln.api_version() == 1
    assert kiln.version().count(".") == 2


def test_the_ctypes_structs_have_the_headers_sizes():
    library = kiln._load()
    for struct, initialise in ((_structs.Request, library.kiln_request_init), (_structs.OpenOptions, library.kiln_open_options_init)):
        buffer = (ctypes.c_uint8 * 512)()
        initialise(ctypes.cast(buffer, ctypes.POINTER(struct)))   # the library's own sizeof
        assert ctypes.c_size_t.from_buffer(buffer).value == ctypes.sizeof(struct), struct.__name__
