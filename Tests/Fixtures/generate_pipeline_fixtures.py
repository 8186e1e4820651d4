"""Record diffusers pipeline runs on the tiny Stable Diffusion fixtures, for Kiln's pipeline tests.

Rerun from the repository root after generate_sd_fixtures.py (same pins, Tests/Fixtures/requirements.txt,
plus Pillow for the PNGs):

    .venv/bin/python Tests/Fixtures/generate_pipeline_fixtures.py

Nothing is downloaded. Each case runs a diffusers pipeline (StableDiffusionPipeline,
StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline, StableDiffusionXLPipeline, StableDiffusionXLImg2ImgPipeline) built
from a tiny folder in Tests/KilnModelsTests/Fixtures/sd/ (or Kiln's default model, kiln-shapes), in float32 on the CPU with
`torch.Generator("cpu").manual_seed(seed)`, the scheduler swapped with `from_config` the way
`kiln generate --sampler` swaps it. Each case runs twice from the same seed: once with
output_type="latent" (the final latents, before 1/scaling_factor and the VAE) and once with
output_type="np" (the decoded images, saved as PNGs through diffusers' numpy_to_pil).

Writes Tests/KilnPipelinesTests/Fixtures/pipelines/:
  cases.json             every case: its settings exactly as `kiln generate` takes them
  latents.safetensors    `<case>.latents` [B, 4, h, w] float32 (output_type="latent") for every
                         case; `inputs.init_image` [1, 3, 48, 64] and `inputs.mask` [1, 1, 48, 64]
                         as diffusers' image and mask processors prepare init.png and mask.png
  <case>_<i>.png         image i of the case's batch, as diffusers' PIL output saved by Pillow
  init.png, mask.png     the img2img / inpainting inputs (64x48)
  lcm_unet/              an LCM-distilled-style U-Net: sd1's configuration with time_cond_proj_dim 16
                         and random float16 weights

Output is byte-for-byte reproducible.
"""

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["DIFFUSERS_VERBOSITY"] = "error"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import diffusers  # noqa: E402
from diffusers import (  # noqa: E402
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Tests" / "Fixtures"))
from generate_sd_fixtures import MERGES_CANDIDATES, build, write_clip_vocab  # noqa: E402

MODELS = REPO / "Tests" / "KilnModelsTests" / "Fixtures" / "sd"
OUT_DIR = REPO / "Tests" / "KilnPipelinesTests" / "Fixtures" / "pipelines"
DEFAULT_MODEL = REPO / "Sources" / "KilnDefaultModel" / "Resources" / "kiln-shapes"

# `kiln generate --sampler NAME`: the diffusers class, and settings forced on top of the model's config.
SAMPLERS = {
    "ddpm": ("DDPMScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "dpm++2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "lcm": ("LCMScheduler", {}),
}
# `kiln generate --scheduler NAME`.
SPACINGS = {"default": {}, "karras": {"use_karras_sigmas": True}}

PROMPT = "a photo of an astronaut riding a horse"
NEGATIVE = "blurry, low quality"


def case(name, **settings):
    base = {"name": name, "family": "sd1", "mode": "txt2img", "unet": "unet", "sampler": None,
            "scheduler": "default", "prompt": PROMPT, "negative_prompt": NEGATIVE, "width": 64,
            "height": 48, "steps": 4, "cfg_scale": 7.5, "guidance_rescale": 0.0, "seed": 42,
            "batch_count": 1, "strength": None, "init_image": None, "mask": None}
    unknown = set(settings) - set(base)
    assert not unknown, unknown
    base.update(settings)
    return base


CASES = (
    # txt2img, every SD sampler, non-square, negative prompt.
    [case(f"sd1_{sampler.replace('+', 'p')}", sampler=sampler, seed=100 + index)
     for index, sampler in enumerate(SAMPLERS)]
    + [
        case("sd1_default_sampler", sampler=None, width=48, height=64, steps=5),
        case("sd1_dpmpp2m_karras", sampler="dpm++2m", scheduler="karras", steps=6),
        case("sd1_euler_karras", sampler="euler", scheduler="karras", seed=7),
        case("sd1_heun_karras", sampler="heun", scheduler="karras", steps=3),
        case("sd1_euler_a_batch2", sampler="euler_a", batch_count=2, negative_prompt=None, seed=2024),
        case("sd1_ddim_no_cfg", sampler="ddim", cfg_scale=1.0, width=64, height=64),
        case("sd1_euler_rescale", sampler="euler", guidance_rescale=0.7, seed=5),
        case("sd1_dpmpp2m_long", sampler="dpm++2m", steps=10, prompt="a watercolor of a lighthouse at dusk"),
        # Latents of odd size (9x5): diffusers' U-Net matches upsampled sizes to the skips.
        case("sd1_euler_odd_latent", sampler="euler", width=72, height=40, seed=11),
        # An LCM-distilled U-Net (time_cond_proj_dim): guidance as an embedding, no unconditional pass.
        case("sd1_lcm_distilled", sampler="lcm", unet="lcm_unet", cfg_scale=8.0, steps=4, seed=21),
        case("sd1_lcm_unet_euler_a", sampler="euler_a", unet="lcm_unet", cfg_scale=3.5, steps=3, seed=22, batch_count=2),
        # img2img: timesteps cut by strength, init latents from the VAE's sampled posterior.
        case("sd1_img2img_ddim", mode="img2img", sampler="ddim", strength=0.6, steps=5, init_image="init.png"),
        case("sd1_img2img_euler_a_batch2", mode="img2img", sampler="euler_a", strength=0.75, steps=4,
             batch_count=2, init_image="init.png"),
        case("sd1_img2img_heun", mode="img2img", sampler="heun", strength=0.5, steps=4, init_image="init.png"),
        case("sd1_img2img_dpmpp2m", mode="img2img", sampler="dpm++2m", strength=0.8, steps=5, init_image="init.png"),
        # inpainting: a 9-channel inpainting U-Net, and latent blending with the ordinary U-Net.
        case("sd1_inpaint9_euler", mode="inpaint", unet="inpaint_unet", sampler="euler", strength=1.0,
             init_image="init.png", mask="mask.png"),
        case("sd1_inpaint9_ddim_strength", mode="inpaint", unet="inpaint_unet", sampler="ddim", strength=0.7,
             steps=5, init_image="init.png", mask="mask.png"),
        case("sd1_inpaint4_euler_a", mode="inpaint", sampler="euler_a", strength=1.0, init_image="init.png",
             mask="mask.png", batch_count=2),
        case("sd1_inpaint4_dpmpp2m_strength", mode="inpaint", sampler="dpm++2m", strength=0.8, steps=5,
             init_image="init.png", mask="mask.png"),
        # SD2: v-prediction.
        case("sd2_ddim", family="sd2", sampler=None, width=64, height=64),
        case("sd2_euler_rescale", family="sd2", sampler="euler", guidance_rescale=0.7),
        # SDXL: two text encoders, pooled embeddings, micro-conditioning, zeroed empty negative.
        case("sdxl_euler", family="sdxl", sampler=None, width=64, height=64),
        case("sdxl_euler_a_no_negative", family="sdxl", sampler="euler_a", negative_prompt=None, batch_count=2),
        case("sdxl_dpmpp2m_karras", family="sdxl", sampler="dpm++2m", scheduler="karras", steps=5),
        case("sdxl_img2img_euler", family="sdxl", mode="img2img", sampler="euler", strength=0.6, steps=5,
             init_image="init.png", negative_prompt=None),
        # Kiln's shipped default model (v-prediction, zero terminal SNR, trailing DPM++ 2M) at the
        # settings its generation_defaults.json recommends, and with Euler at other settings.
        case("kiln_shapes_default", family="kiln-shapes", sampler=None, prompt="a large red circle on a blue background",
             negative_prompt=None, width=64, height=64, steps=12, cfg_scale=4.0, seed=1),
        case("kiln_shapes_euler_corner", family="kiln-shapes", sampler="euler",
             prompt="a small yellow star on a purple background, top left", negative_prompt=None, width=64, height=64,
             steps=8, cfg_scale=5.0, seed=7, batch_count=2),
    ]
)


def write_images():
    """A 64x48 init image (smooth colour ramps plus a checker) and a mask with grey edges."""
    height, width = 48, 64
    y, x = np.mgrid[0:height, 0:width]
    red = (x * 255 // (width - 1)).astype(np.uint8)
    green = (y * 255 // (height - 1)).astype(np.uint8)
    blue = np.where(((x // 8) + (y // 8)) % 2 == 0, 200, 40).astype(np.uint8)
    Image.fromarray(np.stack([red, green, blue], axis=-1), "RGB").save(OUT_DIR / "init.png")
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[12:36, 20:52] = 255
    mask[12:36, 18:20] = 140   # grey above 0.5: binarised to repaint
    mask[12:36, 52:54] = 110   # grey below 0.5: binarised to keep
    Image.fromarray(mask, "L").save(OUT_DIR / "mask.png")


def preprocessed_inputs():
    """init.png and mask.png as the img2img/inpainting pipelines' processors hand them to the VAE."""
    from diffusers.image_processor import VaeImageProcessor
    image_processor = VaeImageProcessor(vae_scale_factor=8)
    mask_processor = VaeImageProcessor(vae_scale_factor=8, do_normalize=False, do_binarize=True,
                                       do_convert_grayscale=True)
    return {
        "inputs.init_image": image_processor.preprocess(Image.open(OUT_DIR / "init.png")).float().contiguous(),
        "inputs.mask": mask_processor.preprocess(Image.open(OUT_DIR / "mask.png")).float().contiguous(),
    }


def complete_folder(family, tmp):
    """A copy of the family's diffusers folder with vocab.json/merges.txt restored."""
    merges = next(p for p in MERGES_CANDIDATES if p.exists())
    folder = Path(tmp) / family
    shutil.copytree(MODELS / family / "diffusers", folder)
    for tokenizer in sorted(folder.glob("tokenizer*")):
        write_clip_vocab(merges, tokenizer)
    return folder


def write_lcm_unet():
    """The sd1 U-Net's configuration with time_cond_proj_dim, random float16 weights."""
    config = json.loads((MODELS / "sd1" / "diffusers" / "unet" / "config.json").read_text())
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    config["time_cond_proj_dim"] = 16
    unet = build(UNet2DConditionModel, config, seed=4242)
    unet.half().save_pretrained(OUT_DIR / "lcm_unet", safe_serialization=True)
    return OUT_DIR / "lcm_unet"


def unet_folder(family, name):
    return OUT_DIR / name if name == "lcm_unet" else MODELS / family / name


def pipeline_for(settings, folder):
    family, mode = settings["family"], settings["mode"]
    if family == "sdxl":
        cls = {"txt2img": StableDiffusionXLPipeline, "img2img": StableDiffusionXLImg2ImgPipeline}[mode]
        pipe = cls.from_pretrained(folder, torch_dtype=torch.float32, add_watermarker=False)
    else:
        cls = {"txt2img": StableDiffusionPipeline, "img2img": StableDiffusionImg2ImgPipeline,
               "inpaint": StableDiffusionInpaintPipeline}[mode]
        extra = {}
        if settings["unet"] != "unet":
            extra["unet"] = UNet2DConditionModel.from_pretrained(unet_folder(family, settings["unet"]),
                                                                 torch_dtype=torch.float32)
        pipe = cls.from_pretrained(folder, torch_dtype=torch.float32, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False, **extra)
    forced = dict(SPACINGS[settings["scheduler"]])
    if settings["sampler"] is not None:
        class_name, sampler_forced = SAMPLERS[settings["sampler"]]
        forced.update(sampler_forced)
        scheduler_class = getattr(diffusers, class_name)
    else:
        scheduler_class = type(pipe.scheduler)
    pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config, **forced)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run(settings, folder, output_type):
    pipe = pipeline_for(settings, folder)
    arguments = dict(prompt=settings["prompt"], negative_prompt=settings["negative_prompt"],
                     num_inference_steps=settings["steps"], guidance_scale=settings["cfg_scale"],
                     num_images_per_prompt=settings["batch_count"],
                     generator=torch.Generator("cpu").manual_seed(settings["seed"]),
                     output_type=output_type)
    if settings["guidance_rescale"]:
        arguments["guidance_rescale"] = settings["guidance_rescale"]
    if settings["mode"] == "txt2img":
        arguments.update(width=settings["width"], height=settings["height"])
    else:
        arguments["image"] = Image.open(OUT_DIR / settings["init_image"])
        arguments["strength"] = settings["strength"]
    if settings["mode"] == "inpaint":
        arguments["mask_image"] = Image.open(OUT_DIR / settings["mask"])
        arguments.update(width=settings["width"], height=settings["height"])
    return pipe(**arguments)


def main():
    torch.set_grad_enabled(False)
    torch.use_deterministic_algorithms(True)
    if OUT_DIR.exists():
        shutil.rmtree(OUT_DIR)
    OUT_DIR.mkdir(parents=True)
    write_images()
    write_lcm_unet()
    latents = {}
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = {family: complete_folder(family, tmp) for family in ("sd1", "sd2", "sdxl")}
        folders["kiln-shapes"] = DEFAULT_MODEL
        for settings in CASES:
            folder = folders[settings["family"]]
            result = run(settings, folder, "latent").images
            latents[f"{settings['name']}.latents"] = result.float().contiguous()
            decoded = run(settings, folder, "np").images
            files = []
            for index, image in enumerate(StableDiffusionPipeline.numpy_to_pil(decoded)):
                file = f"{settings['name']}_{index}.png"
                image.save(OUT_DIR / file)
                files.append(file)
            records.append(dict(settings, images=files, latent_shape=list(result.shape)))
            print(f"{settings['name']}: latents {list(result.shape)}, max |x| {result.abs().max():.4f}")
    latents.update(preprocessed_inputs())
    save_file(dict(sorted(latents.items())), str(OUT_DIR / "latents.safetensors"), metadata={"format": "pt"})
    versions = {"torch": torch.__version__, "diffusers": diffusers.__version__}
    (OUT_DIR / "cases.json").write_text(json.dumps({"versions": versions, "cases": records}, indent=1) + "\n")
    size = sum(p.stat().st_size for p in OUT_DIR.rglob("*") if p.is_file())
    print(f"wrote {OUT_DIR.relative_to(REPO)}: {len(records)} cases, {size} bytes")


if __name__ == "__main__":
    main()
