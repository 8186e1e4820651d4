"""webuiapi (from PyPI, written for AUTOMATIC1111) against `kiln serve`, unchanged: the images it
receives are byte-identical to `kiln generate` with the same settings (and A1111's prompt syntax, as
the A1111 routes read prompts)."""
import base64
import io
import os
import threading
import time

import pytest
import webuiapi
from PIL import Image

from conftest import PASSWORD, USER, kiln_generate, wait_idle


@pytest.fixture
def api(server):
    client = webuiapi.WebUIApi(host="127.0.0.1", port=server.port, sampler="Euler a", steps=4)
    client.set_auth(USER, PASSWORD)
    return client


def png_bytes(result, index=0):
    return base64.b64decode(result.json["images"][index])


def test_txt2img_is_kiln_generate(api, server, workdir, models):
    result = api.txt2img(prompt="a red lighthouse", negative_prompt="blurry", seed=1234, width=64, height=64, cfg_scale=7.5)
    assert len(result.images) == 1 and result.image.size == (64, 64)
    assert result.info["seed"] == 1234 and result.info["all_seeds"] == [1234]
    assert result.info["sampler_name"] == "Euler a"
    assert "Steps: 4, Sampler: Euler a" in result.info["infotexts"][0]
    assert result.parameters["sampler_name"] == "Euler a" and result.parameters["steps"] == 4
    expected = kiln_generate(workdir, models["sd1"], os.path.join(workdir, "txt2img.png"), "--prompt-syntax", "a1111", "--prompt", "a red lighthouse",
                             "--negative-prompt", "blurry", "--seed", "1234", "--width", "64", "--height", "64", "--steps", "4",
                             "--cfg-scale", "7.5", "--sampler", "euler_a")
    assert png_bytes(result) == expected


def test_legacy_sampler_name_and_batches(api, workdir, models):
    result = api.txt2img(prompt="a cat", seed=5, width=64, height=64, sampler_name="DPM++ 2M Karras", batch_size=2, n_iter=2, steps=3)
    assert len(result.images) == 4
    assert result.info["sampler_name"] == "DPM++ 2M" and result.info["extra_generation_params"]["Schedule type"] == "Karras"
    # Each run of batch_size images starts batch_size seeds on, as A1111 numbers them.
    assert result.info["all_seeds"] == [5, 5, 7, 7]
    expected = kiln_generate(workdir, models["sd1"], os.path.join(workdir, "batch-%d.png"), "--prompt-syntax", "a1111", "--prompt", "a cat", "--seed", "7",
                             "--width", "64", "--height", "64", "--steps", "3", "--cfg-scale", "7", "--sampler", "dpm++2m",
                             "--scheduler", "karras", "--batch-count", "2")
    assert png_bytes(result, 2) == expected
    with open(os.path.join(workdir, "batch-1.png"), "rb") as file:
        assert png_bytes(result, 3) == file.read()


def test_img2img_with_mask_is_kiln_generate(api, workdir, models):
    init_path = os.path.join(workdir, "init.png")
    kiln_generate(workdir, models["sd1"], init_path, "--prompt", "a house", "--seed", "3", "--width", "64", "--height", "64", "--steps", "2")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    mask_path = os.path.join(workdir, "mask.png")
    mask.save(mask_path)
    init = Image.open(init_path)
    result = api.img2img(images=[init], mask_image=mask, prompt="a red door", seed=99, width=64, height=64, denoising_strength=0.6,
                         sampler_name="Euler", cfg_scale=7)
    assert result.image.size == (64, 64)
    assert result.info["denoising_strength"] == pytest.approx(0.6)
    assert result.info["is_using_inpainting_conditioning"] is True
    # webuiapi's defaults for A1111's own mask handling are accepted and reported as ignored.
    assert "mask_blur" in result.info["extra_generation_params"]["Kiln ignored"]
    expected = kiln_generate(workdir, models["sd1"], os.path.join(workdir, "inpaint.png"), "--prompt-syntax", "a1111", "--prompt", "a red door", "--seed", "99",
                             "--init-image", init_path, "--mask", mask_path, "--strength", "0.6", "--steps", "4", "--cfg-scale", "7",
                             "--sampler", "euler")
    assert png_bytes(result) == expected


def test_img2img_without_mask(api, workdir, models):
    init = Image.open(os.path.join(workdir, "init.png")) if os.path.exists(os.path.join(workdir, "init.png")) else Image.new("RGB", (64, 64), (200, 30, 30))
    result = api.img2img(images=[init], prompt="a barn", seed=11, width=64, height=64, denoising_strength=0.5, steps=4)
    assert result.image.size == (64, 64) and result.info["denoising_strength"] == pytest.approx(0.5)


def test_progress_preview_and_interrupt(api, server):
    wait_idle(api.session, f"http://127.0.0.1:{server.port}")
    outcome = {}

    def long_run():
        started = time.time()
        outcome["result"] = api.txt2img(prompt="a slow one", seed=1, width=64, height=64, steps=400)
        outcome["seconds"] = time.time() - started

    thread = threading.Thread(target=long_run)
    thread.start()
    seen = None
    deadline = time.time() + 60
    while time.time() < deadline:
        progress = api.get_progress()
        if progress["state"]["sampling_step"] >= 2 and progress["current_image"]:
            seen = progress
            break
        time.sleep(0.05)
    assert seen is not None, "progress never showed a step with a preview"
    assert 0 < seen["progress"] < 1 and seen["state"]["job_count"] == 1 and seen["state"]["sampling_steps"] == 400
    assert seen["eta_relative"] > 0
    preview = Image.open(io.BytesIO(base64.b64decode(seen["current_image"])))
    assert preview.size == (64, 64)
    api.interrupt()
    thread.join(timeout=30)
    assert not thread.is_alive(), "interrupt did not stop the running job"
    assert outcome["result"].images == []
    after = api.get_progress()
    assert after["progress"] == 0 and after["state"]["job_count"] == 0


def test_skip_stops_the_current_run_only(api, server):
    wait_idle(api.session, f"http://127.0.0.1:{server.port}")
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("result", api.txt2img(
        prompt="two runs", seed=4, width=64, height=64, steps=12, n_iter=2, sampler_name="Euler")))
    thread.start()
    deadline = time.time() + 60
    while time.time() < deadline and api.get_progress()["state"]["sampling_step"] < 1:
        time.sleep(0.01)
    assert api.get_progress()["state"]["job_no"] == 0
    api.skip()
    thread.join(timeout=120)
    assert not thread.is_alive()
    result = outcome["result"]
    # The first run (seed 4) was skipped; the second (seed 5) ran to the end.
    assert len(result.images) == 1 and result.info["all_seeds"] == [5]


def test_samplers_schedulers_models(api, server, models):
    names = api.util_get_sampler_names()
    for name in ["Euler a", "Euler", "DDIM", "DPM++ 2M", "Heun", "PLMS", "LCM", "DDPM"]:
        assert name in names
    assert {"automatic", "karras", "exponential"} <= set(api.util_get_scheduler_names())
    titles = api.util_get_model_names()
    assert any(title.startswith("tiny-sd1") for title in titles) and any(title.startswith("tiny-sd2") for title in titles)
    assert api.get_memory()["ram"]["total"] > 0


def test_util_set_model_switches_and_back(api):
    assert api.util_get_current_model().startswith("tiny-sd1")
    api.util_set_model("tiny-sd2")
    assert api.util_get_current_model().startswith("tiny-sd2")
    result = api.txt2img(prompt="on the other model", seed=2, width=64, height=64)
    assert result.info["sd_model_name"] == "tiny-sd2"
    api.util_set_model("tiny-sd1")
    assert api.util_get_current_model().startswith("tiny-sd1")


def test_png_info(api):
    result = api.txt2img(prompt="read me back", seed=8, width=64, height=64)
    info = api.png_info(result.image)
    assert info.info.startswith("read me back\nSteps: 4, Sampler: Euler a")
    assert info.json["parameters"]["Seed"] == "8" and info.json["parameters"]["Size-1"] == "64"


def test_set_auth_is_needed(server):
    anonymous = webuiapi.WebUIApi(host="127.0.0.1", port=server.port)
    with pytest.raises(RuntimeError) as refused:
        anonymous.txt2img(prompt="no credentials", width=64, height=64, steps=1)
    assert refused.value.args[0] == 401
    anonymous.set_auth("bob", "hunter2")
    assert anonymous.txt2img(prompt="now with credentials", width=64, height=64, steps=1, seed=1).image.size == (64, 64)
    wrong = webuiapi.WebUIApi(host="127.0.0.1", port=server.port, username="bob", password="hunter3")
    with pytest.raises(RuntimeError) as refused:
        wrong.txt2img(prompt="wrong password", width=64, height=64, steps=1)
    assert refused.value.args[0] == 401


def test_unknown_sampler_is_refused_not_substituted(api):
    with pytest.raises(RuntimeError) as refused:
        api.txt2img(prompt="x", width=64, height=64, sampler_name="Euler Zeta")
    status, text = refused.value.args
    assert status == 422 and "sampler_name" in text and "Euler a" in text and "DPM++ 2M" in text


@pytest.mark.parametrize("field,value", [("enable_hr", True), ("restore_faces", True), ("tiling", True), ("subseed_strength", 0.5)])
def test_features_kiln_lacks_are_refused_by_name(api, field, value):
    with pytest.raises(RuntimeError) as refused:
        api.txt2img(prompt="x", width=64, height=64, **{field: value})
    status, text = refused.value.args
    assert status == 422 and field in text


def test_eta_honoured_where_the_sampler_has_one(api):
    # webuiapi sends eta=1.0: Euler a's own eta, and meaningless for DPM++ 2M.
    assert api.txt2img(prompt="x", width=64, height=64, steps=2, sampler_name="DPM++ 2M", seed=1).image.size == (64, 64)
    with pytest.raises(RuntimeError) as refused:
        api.txt2img(prompt="x", width=64, height=64, steps=2, sampler_name="DDIM")
    assert refused.value.args[0] == 422 and "eta" in refused.value.args[1]
    assert api.txt2img(prompt="x", width=64, height=64, steps=2, sampler_name="DDIM", eta=0, seed=1).image.size == (64, 64)
