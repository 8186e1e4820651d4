"""Cross-check `kiln generate` against diffusers on freshly drawn tiny models, prompts and seeds.

The parity tests compare Kiln with recorded diffusers runs of a few fixed tiny models. This tool
draws new ones every run (architectures, schedulers, prompts, sizes, seeds from `--seed`), saves
each as a diffusers folder, runs the diffusers pipeline with output_type="latent" and
`kiln generate --save-latents` on the same settings, and compares the final latents relative to
diffusers' largest magnitude. It is a development tool, not part of `swift test` (it needs torch).

    swift build && .venv/bin/python Tests/CrossCheck/crosscheck_generate.py --trials 6 --seed 1
    .venv/bin/python Tests/CrossCheck/crosscheck_generate.py --family sdxl --backend vulkan

Exit code 1 when any trial is over the tolerance (1e-3 on the CPU backend, 2e-2 on Vulkan).
"""

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

from crosscheck_common import kiln_latents, seeded

import torch  # noqa: E402

import diffusers  # noqa: E402
from diffusers import AutoencoderKL, StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer  # noqa: E402

from generate_sd_fixtures import MERGES_CANDIDATES, write_clip_vocab  # noqa: E402

# `kiln generate --sampler NAME` -> the diffusers class and what the swap forces.
SAMPLERS = {
    "ddim": ("DDIMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "dpm++2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "ddpm": ("DDPMScheduler", {}),
}
PROMPTS = [
    "a watercolor fox in a snowy forest", "portrait of an old sailor, dramatic light",
    "isometric city at night, neon", "a bowl of ramen, studio photo, 35mm", "",
    "an astronaut riding a horse on mars, highly detailed, 8k",
]
NEGATIVES = [None, "blurry", "low quality, jpeg artifacts, watermark"]


def unet_config(rng, family):
    if family == "sdxl":
        levels = rng.choice([[32, 64], [16, 32, 48]])
        down = ["DownBlock2D"] + ["CrossAttnDownBlock2D"] * (len(levels) - 1)
        up = ["CrossAttnUpBlock2D"] * (len(levels) - 1) + ["UpBlock2D"]
        return dict(block_out_channels=levels, down_block_types=down, up_block_types=up,
                    layers_per_block=rng.choice([1, 2]), attention_head_dim=[2] + [rng.choice([2, 4])] * (len(levels) - 1),
                    transformer_layers_per_block=[1] + [rng.choice([1, 2])] * (len(levels) - 1),
                    cross_attention_dim=64, norm_num_groups=8, use_linear_projection=True,
                    addition_embed_type="text_time", addition_time_embed_dim=8,
                    projection_class_embeddings_input_dim=32 + 6 * 8, sample_size=rng.choice([8, 16]))
    levels = rng.choice([[32, 64], [16, 32, 32], [24, 48]])
    down = ["CrossAttnDownBlock2D"] * (len(levels) - 1) + ["DownBlock2D"]
    up = ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * (len(levels) - 1)
    heads = rng.choice([2, [2] * len(levels), [1, 2, 4][: len(levels)] + [4] * (len(levels) - 3)])
    return dict(block_out_channels=levels, down_block_types=down, up_block_types=up,
                layers_per_block=rng.choice([1, 2]), attention_head_dim=heads,
                cross_attention_dim=32 if family == "sd1" else 48, norm_num_groups=8,
                use_linear_projection=family == "sd2", sample_size=rng.choice([8, 16]))


def text_config(rng, hidden, projection=None):
    return CLIPTextConfig(vocab_size=49408, hidden_size=hidden, intermediate_size=hidden * 2,
                          num_hidden_layers=rng.choice([2, 3]), num_attention_heads=rng.choice([2, 4]),
                          hidden_act=rng.choice(["quick_gelu", "gelu"]), projection_dim=projection or hidden,
                          max_position_embeddings=77)


def scheduler_config(rng, family):
    config = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                  beta_schedule=rng.choice(["scaled_linear", "linear"]), steps_offset=1,
                  timestep_spacing=rng.choice(["leading", "trailing", "linspace"]),
                  prediction_type="v_prediction" if family == "sd2" and rng.random() < 0.5 else "epsilon")
    return rng.choice(["PNDMScheduler", "EulerDiscreteScheduler", "DDIMScheduler"]), config


def build_folder(rng, family, seed, folder):
    vocab_dir = folder / "vocab"
    vocab_dir.mkdir()
    merges = next(path for path in MERGES_CANDIDATES if path.exists())
    vocab, merges_path = write_clip_vocab(merges, vocab_dir)
    components = {"unet": seeded(UNet2DConditionModel, unet_config(rng, family), seed),
                  "vae": seeded(AutoencoderKL, dict(block_out_channels=[16, 32], down_block_types=["DownEncoderBlock2D"] * 2,
                                                    up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=4,
                                                    norm_num_groups=8, layers_per_block=1,
                                                    scaling_factor=rng.choice([0.18215, 0.13025])), seed + 1)}
    scheduler_class, scheduler = scheduler_config(rng, family)
    components["scheduler"] = getattr(diffusers, scheduler_class)(**scheduler)
    tokenizer = dict(model_max_length=77)
    if family == "sdxl":
        components["text_encoder"] = seeded(CLIPTextModel, text_config(rng, 32), seed + 2)
        components["text_encoder_2"] = seeded(CLIPTextModelWithProjection, text_config(rng, 32, projection=32), seed + 3)
        components["tokenizer"] = CLIPTokenizer(str(vocab), str(merges_path), **tokenizer)
        components["tokenizer_2"] = CLIPTokenizer(str(vocab), str(merges_path), pad_token="!", **tokenizer)
        pipe = StableDiffusionXLPipeline(**components, force_zeros_for_empty_prompt=rng.random() < 0.5)
    else:
        width = 32 if family == "sd1" else 48
        components["text_encoder"] = seeded(CLIPTextModel, text_config(rng, width), seed + 2)
        components["tokenizer"] = CLIPTokenizer(str(vocab), str(merges_path),
                                                **(tokenizer if family == "sd1" else dict(tokenizer, pad_token="!")))
        pipe = StableDiffusionPipeline(**components, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder / "model", safe_serialization=True)
    return folder / "model"


def diffusers_latents(model, family, settings):
    cls = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    extra = {} if family == "sdxl" else dict(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe = cls.from_pretrained(model, torch_dtype=torch.float32, **extra)
    if settings["sampler"]:
        class_name, forced = SAMPLERS[settings["sampler"]]
        pipe.scheduler = getattr(diffusers, class_name).from_config(pipe.scheduler.config, **forced)
    pipe.set_progress_bar_config(disable=True)
    result = pipe(prompt=settings["prompt"], negative_prompt=settings["negative"], width=settings["width"],
                  height=settings["height"], num_inference_steps=settings["steps"], guidance_scale=settings["cfg"],
                  num_images_per_prompt=settings["batch"], output_type="latent",
                  generator=torch.Generator("cpu").manual_seed(settings["seed"]))
    return result.images


def kiln_options(settings):
    options = ["--prompt", settings["prompt"], "--width", str(settings["width"]), "--height", str(settings["height"]),
               "--steps", str(settings["steps"]), "--cfg-scale", str(settings["cfg"]), "--seed", str(settings["seed"]),
               "--batch-count", str(settings["batch"])]
    if settings["negative"] is not None:
        options += ["--negative-prompt", settings["negative"]]
    if settings["sampler"]:
        options += ["--sampler", settings["sampler"]]
    return options


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0, help="draws the models and settings")
    parser.add_argument("--family", choices=["sd1", "sd2", "sdxl"], action="append")
    parser.add_argument("--backend", choices=["cpu", "vulkan"], default="cpu")
    args = parser.parse_args()
    tolerance = 1e-3 if args.backend == "cpu" else 2e-2
    families = args.family or ["sd1", "sd2", "sdxl"]
    failures = 0
    for trial in range(args.trials):
        rng = random.Random(args.seed * 1000 + trial)
        family = families[trial % len(families)]
        settings = dict(prompt=rng.choice(PROMPTS), negative=rng.choice(NEGATIVES), steps=rng.randint(2, 6),
                        cfg=rng.choice([1.0, 3.5, 7.5]), seed=rng.randint(0, 2**32 - 1), batch=rng.choice([1, 1, 2]),
                        width=8 * rng.randint(4, 10), height=8 * rng.randint(4, 10),
                        sampler=rng.choice([None, None] + list(SAMPLERS)))
        with tempfile.TemporaryDirectory() as temporary:
            folder = Path(temporary)
            model = build_folder(rng, family, rng.randint(0, 10**6), folder)
            error = float("nan")
            try:
                expected = diffusers_latents(model, family, settings)
            except Exception as problem:  # noqa: BLE001 - diffusers itself cannot run these settings
                verdict = f"skipped (diffusers fails: {problem})"
            else:
                try:
                    actual = kiln_latents(model, kiln_options(settings), args.backend, folder)
                    error = ((actual - expected).abs().max() / expected.abs().max()).item()
                    verdict = "ok" if error <= tolerance else "FAIL"
                except Exception as problem:  # noqa: BLE001 - report and go on to the next trial
                    verdict = f"ERROR {problem}"
            failures += verdict.startswith(("FAIL", "ERROR"))
            unet = json.loads((model / "unet" / "config.json").read_text())
            scheduler = json.loads((model / "scheduler" / "scheduler_config.json").read_text())
            print(f"trial {trial} {family}: {verdict} error {error:.2e} | {settings} | unet {unet['block_out_channels']} "
                  f"heads {unet['attention_head_dim']} layers {unet['layers_per_block']} | scheduler "
                  f"{scheduler['_class_name']} {scheduler['beta_schedule']} {scheduler['timestep_spacing']} {scheduler['prediction_type']}",
                  flush=True)
    print(f"{failures} of {args.trials} trials failed (tolerance {tolerance})")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
