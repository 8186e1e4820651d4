"""generate_png gives exactly what `kiln generate` writes; generate gives the same pixels."""

import io

import pytest

import kiln
from conftest import SMALL, generate_with_cli


@pytest.mark.parametrize("settings", [
    dict(prompt="a red car", seed=42, **SMALL),
    dict(prompt="a lighthouse at dusk", negative_prompt="blurry", cfg_scale=5.0, sampler="euler_a", seed=7,
         batch_count=2, **SMALL),
    dict(prompt="a blue boat", negative_prompt="", sampler="dpm++2m", scheduler="karras", seed=123, width=64,
         height=48, steps=3),
], ids=["defaults", "negative-sampler-batch", "karras-size"])
def test_generate_png_is_byte_identical_to_kiln_generate(pipeline, tiny_model, tmp_path, settings):
    pngs = pipeline.generate_png(**settings)
    assert pngs == generate_with_cli(tmp_path, tiny_model, **settings)
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in pngs)


def test_image_to_image_is_byte_identical_to_kiln_generate(pipeline, tiny_model, tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    start = pipeline.generate_png(prompt="a red car", seed=1, **SMALL)[0]
    (tmp_path / "start.png").write_bytes(start)
    settings = dict(prompt="a green car", seed=5, strength=0.5, steps=4)
    pngs = pipeline.generate_png(init_image=PIL.open(io.BytesIO(start)), **settings)
    assert pngs == generate_with_cli(tmp_path, tiny_model, init_image=tmp_path / "start.png", **settings)
    # The same start image as PNG bytes or a numpy array gives the same result.
    assert pipeline.generate_png(init_image=start, **settings) == pngs
    numpy = pytest.importorskip("numpy")
    assert pipeline.generate_png(init_image=numpy.asarray(PIL.open(io.BytesIO(start))), **settings) == pngs


def test_progress_is_called_once_per_step(pipeline):
    calls = []
    pipeline.generate_png(prompt="a red car", sampler="euler", seed=3, width=64, height=64, steps=4,
                          progress=lambda step, steps, seconds: calls.append((step, steps, seconds)))
    assert [(step, steps) for step, steps, _ in calls] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert all(isinstance(seconds, float) and seconds >= 0 for _, _, seconds in calls)


def test_generate_returns_pil_images_with_the_png_pixels(pipeline):
    PIL = pytest.importorskip("PIL.Image")
    settings = dict(prompt="a red car", seed=42, batch_count=2, **SMALL)
    images = pipeline.generate(**settings)
    pngs = pipeline.generate_png(**settings)
    assert [image.size for image in images] == [(64, 64), (64, 64)]
    assert all(image.mode == "RGB" for image in images)
    assert [image.tobytes() for image in images] == [PIL.open(io.BytesIO(png)).convert("RGB").tobytes() for png in pngs]


def test_generate_returns_numpy_arrays_without_pillow(pipeline, monkeypatch):
    numpy = pytest.importorskip("numpy")
    monkeypatch.setitem(__import__("sys").modules, "PIL", None)
    arrays = pipeline.generate(prompt="a red car", seed=42, **SMALL)
    assert len(arrays) == 1
    assert isinstance(arrays[0], numpy.ndarray)
    assert arrays[0].shape == (64, 64, 3) and arrays[0].dtype == numpy.uint8
    assert arrays[0].flags.writeable


def test_every_image_is_freed(pipeline, monkeypatch):
    library = pipeline._library
    freed = []
    original = library.kiln_free_images

    class Counting:
        def __getattr__(self, name):
            return getattr(library, name)

        def kiln_free_images(self, images, count):
            freed.append(count.value)
            return original(images, count)

    monkeypatch.setattr(pipeline, "_library", Counting())
    for _ in range(3):
        pipeline.generate_png(prompt="a red car", seed=1, batch_count=2, **SMALL)
    assert freed == [2, 2, 2]


def test_seed_none_draws_a_seed_and_records_it(pipeline):
    PIL = pytest.importorskip("PIL.Image")
    png = pipeline.generate_png(prompt="a red car", **SMALL)[0]
    parameters = PIL.open(io.BytesIO(png)).text["parameters"]
    seed = int(parameters.split("Seed: ")[1].split(",")[0])
    assert pipeline.generate_png(prompt="a red car", seed=seed, **SMALL)[0] == png


def test_info_reports_the_model_and_its_defaults(pipeline, tiny_model):
    info = pipeline.info
    assert info["family"] == "sd1"
    assert info["backend"] == "cpu" and info["dtype"] == "f32"
    assert info["model"] == str(tiny_model)
    assert info["defaults"]["width"] == 64 and info["defaults"]["steps"] == 50
    assert info["kiln_version"] == kiln.version()


def test_vulkan_png_is_byte_identical_to_kiln_generate(tiny_model, tmp_path):
    if not kiln.devices():
        pytest.skip("no Vulkan device")
    settings = dict(prompt="a red car", seed=42, **SMALL)
    with kiln.Pipeline(tiny_model, backend="vulkan", dtype="f16") as pipe:
        pngs = pipe.generate_png(**settings)
    assert pngs == generate_with_cli(tmp_path, tiny_model, backend="vulkan", **settings)
