"""``kiln.Pipeline``: one loaded model on one device, over a ``kiln_context``."""

import ctypes
import os
import random
import threading

from . import _images
from ._errors import KILN_OK, BadInput, Cancelled, error_for
from ._library import load, take_string
from ._structs import Image, OpenOptions, ProgressFunction, Request

import json


def _text(value, name):
    """``value`` as UTF-8 bytes for a ``const char *`` field (None stays NULL)."""
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise BadInput(f"{name} must be a string, got {type(value).__name__}")
    return value.encode("utf-8")


def _number(value, name, kind):
    """``value`` for an int or float field; None is 0 (the model's default)."""
    if value is None:
        return 0
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise BadInput(f"{name} must be a number, got {value!r}") from None


class Pipeline:
    """A model opened on a device, ready to generate as often as wanted.

    ``model`` is a diffusers folder or a single ``.safetensors`` file (None: the default model,
    when the library has one). ``backend`` is ``"vulkan"`` or ``"cpu"``; ``device`` a Vulkan
    device's index, UUID or name substring (None: ``KILN_DEVICE``, else the most capable);
    ``dtype`` ``"f16"`` or ``"f32"``; ``config`` a diffusers folder for a single-file checkpoint.

    Settings left as None take the model's defaults, exactly as ``kiln generate`` does for an
    option left out, so ``generate_png`` returns the bytes ``kiln generate`` writes.

    Threads: generations on one Pipeline are serialised; use one Pipeline per thread (or per
    device) for parallel work. ``cancel`` may be called from any thread. Ctrl-C during a
    generation on the main thread cancels it at the next step and raises KeyboardInterrupt.
    """

    def __init__(self, model, backend="vulkan", device=None, dtype="f16", config=None, vae=None, inpainting_unet=None):
        self._library = load()
        self._condition = threading.Condition()
        self._active = 0
        self._handle = None
        options = OpenOptions()
        self._library.kiln_open_options_init_sized(ctypes.byref(options), ctypes.sizeof(options))
        options.backend = _text(backend, "backend")
        options.device = _text(None if device is None else str(device), "device")
        options.dtype = _text(dtype, "dtype")
        options.config = _text(config, "config")
        options.vae = _text(vae, "vae")
        options.inpainting_unet = _text(inpainting_unet, "inpainting_unet")
        handle = ctypes.c_void_p()
        status = self._library.kiln_open(_text(model, "model"), ctypes.byref(options), ctypes.byref(handle))
        if status != KILN_OK:
            raise error_for(status, self._library.kiln_last_error(None).decode("utf-8", "replace"))
        self._handle = handle.value

    # Life

    def close(self):
        """Cancels a running generation, waits for it, and frees the model. Idempotent."""
        with self._condition:
            handle, self._handle = self._handle, None
            if handle is None:
                return
            # A call that got its handle just before this one may enter kiln_generate after the
            # first cancel (which reaches only generations already begun): cancel until all end.
            while self._active:
                self._library.kiln_cancel(handle)
                self._condition.wait(0.05)
        self._library.kiln_close(handle)

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.close()

    def __del__(self):
        if getattr(self, "_handle", None) is not None:
            try:
                self.close()
            except Exception:
                pass

    @property
    def closed(self):
        return self._handle is None

    def cancel(self):
        """Stops the generations running or waiting on this Pipeline at their next step; they
        raise ``kiln.Cancelled``. Later generations are not affected. Thread-safe."""
        with self._condition:
            if self._handle is not None:
                self._library.kiln_cancel(self._handle)

    @property
    def info(self):
        """The model, family, backend, device, dtype and defaults, as a dict."""
        with self._using() as handle:
            text = take_string(self._library.kiln_model_info_json(handle))
            if text is None:
                raise error_for(2, self._library.kiln_last_error(handle).decode("utf-8", "replace"))
            return json.loads(text)

    # Generating

    def generate_png(self, prompt=None, **settings):
        """Runs one request; returns each image as PNG bytes, exactly what ``kiln generate``
        writes for the same settings (metadata included). See ``generate`` for the settings."""
        return [image.png for image in self._run(prompt, settings)]

    def generate(self, prompt=None, **settings):
        """Runs one request; returns PIL images (RGB) when Pillow is installed, else numpy
        arrays ``[H, W, 3]`` of uint8.

        Settings (None or left out: the model's default): ``negative_prompt``, ``width``,
        ``height``, ``steps``, ``cfg_scale``, ``sampler`` (ddpm ddim pndm euler euler_a heun
        dpm++2m lcm flow_euler), ``scheduler`` (default karras exponential), ``seed`` (None:
        random, as ``kiln generate``), ``batch_count``, ``class_labels`` (DiT), ``init_image`` and
        ``mask_image`` (PIL images, numpy arrays or PNG bytes), ``strength``,
        ``guidance_rescale``, ``max_sequence_length``, ``without_t5``, and ``progress``: called
        as ``progress(step, steps, seconds)`` once per sampling step (on a worker thread when
        generating from the main thread); an exception it raises cancels the run and is raised.
        """
        return [_images.as_python_image(image) for image in self._run(prompt, settings)]

    def _request(self, prompt, settings):
        """The ``kiln_request`` for the keyword settings (their buffers kept alive on it)."""
        known = {"negative_prompt", "width", "height", "steps", "cfg_scale", "sampler", "scheduler", "seed", "batch_count",
                 "class_labels", "init_image", "mask_image", "strength", "guidance_rescale", "max_sequence_length",
                 "without_t5"}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise TypeError(f"unexpected setting(s): {', '.join(unknown)}")
        request = Request()
        self._library.kiln_request_init_sized(ctypes.byref(request), ctypes.sizeof(request))
        request.prompt = _text(prompt, "prompt")
        request.negative_prompt = _text(settings.get("negative_prompt"), "negative_prompt")
        for name in ("width", "height", "steps", "batch_count", "max_sequence_length"):
            setattr(request, name, _number(settings.get(name), name, int))
        for name in ("cfg_scale", "strength", "guidance_rescale"):
            setattr(request, name, _number(settings.get(name), name, float))
        request.sampler = _text(settings.get("sampler"), "sampler")
        request.scheduler = _text(settings.get("scheduler"), "scheduler")
        seed = settings.get("seed")
        request.seed = random.randrange(2**32) if seed is None else _number(seed, "seed", int) % 2**64
        request.without_t5 = 1 if settings.get("without_t5") else 0
        keep = []
        labels = settings.get("class_labels")
        if labels is not None:
            labels = [int(label) for label in labels]
            array = (ctypes.c_int * max(len(labels), 1))(*labels)
            keep.append(array)
            request.class_labels = ctypes.cast(array, ctypes.POINTER(ctypes.c_int))
            request.class_label_count = len(labels)
        for name in ("init_image", "mask_image"):
            if settings.get(name) is not None:
                image = _images.as_kiln_image(settings[name], name)
                keep.append(image)
                setattr(request, name, ctypes.pointer(image))
        request._keep = keep
        return request

    def _run(self, prompt, settings):
        """Generates, returning the images as ``Generated`` copies; Ctrl-C on the main thread
        cancels the run and is raised once it has stopped."""
        progress = settings.pop("progress", None)
        request = self._request(prompt, settings)
        if threading.current_thread() is not threading.main_thread():
            return self._generate(request, progress)
        outcome = {}
        # Waiting on an Event, not Thread.join: a join interrupted by Ctrl-C can leave the thread
        # looking finished while it still runs (CPython before 3.13), and the caller must never
        # get control back while the generation is still going.
        finished = threading.Event()

        def work():
            try:
                outcome["images"] = self._generate(request, progress)
            except BaseException as error:  # handed to the calling thread below
                outcome["error"] = error
            finally:
                finished.set()

        worker = threading.Thread(target=work, name="kiln-generate", daemon=True)
        worker.start()
        try:
            while not finished.wait(0.05):
                pass
        except KeyboardInterrupt:
            self.cancel()
            while True:
                try:
                    if finished.wait(0.05):
                        break
                except KeyboardInterrupt:
                    self.cancel()
            raise
        worker.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["images"]

    def _generate(self, request, progress):
        """One ``kiln_generate`` call on the calling thread, its images copied and freed."""
        with self._using() as handle:
            failures = []

            def report(_user_data, step, steps, seconds):
                if progress is None or failures:
                    return
                try:
                    progress(step, steps, seconds)
                except BaseException as error:  # raised after kiln_generate returns
                    failures.append(error)
                    self._library.kiln_cancel(handle)

            callback = ProgressFunction(report) if progress is not None else ctypes.cast(None, ProgressFunction)
            images = ctypes.POINTER(Image)()
            count = ctypes.c_size_t()
            status = self._library.kiln_generate(handle, ctypes.byref(request), callback, None, ctypes.byref(images),
                                                 ctypes.byref(count))
            if status != KILN_OK:
                message = self._library.kiln_last_error(handle).decode("utf-8", "replace")
                if failures:
                    raise failures[0]
                raise error_for(status, message)
            try:
                return [_images.copy_out(images[index]) for index in range(count.value)]
            finally:
                self._library.kiln_free_images(images, count)

    def _using(self):
        return _Use(self)


class _Use:
    """Holds a Pipeline's handle open for one call, so ``close`` waits for the call to end."""

    def __init__(self, pipeline):
        self._pipeline = pipeline

    def __enter__(self):
        pipeline = self._pipeline
        with pipeline._condition:
            if pipeline._handle is None:
                raise BadInput("this Pipeline is closed")
            pipeline._active += 1
            return pipeline._handle

    def __exit__(self, *exception):
        pipeline = self._pipeline
        with pipeline._condition:
            pipeline._active -= 1
            pipeline._condition.notify_all()


def devices():
    """The Vulkan devices, as ``kiln devices --json`` lists them: one dict per device."""
    library = load()
    text = take_string(library.kiln_devices_json())
    if text is None:
        raise error_for(1, library.kiln_last_error(None).decode("utf-8", "replace"))
    return json.loads(text)
