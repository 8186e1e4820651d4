"""Cross-check `kiln generate` on FLUX against diffusers' FluxPipeline on freshly drawn tiny models.

The FLUX parity tests compare Kiln with recorded runs of a few fixed tiny models. This tool draws
new ones every run (dev- or schnell-style transformers of random widths, heads, rotary axes and
block counts; a tiny CLIP, T5 and 16-channel VAE; static or dynamic shifting), prompts, sizes,
steps, guidance, batch counts, T5 lengths, seeds and, for some trials, an init image and strength
(FluxImg2ImgPipeline) and a mask (FluxInpaintPipeline) from `--seed`, saves each as a FluxPipeline
folder, runs diffusers with output_type="latent" (unpacked to [B, 16, h, w]) and
`kiln generate --save-latents` on the same settings, and compares the final latents relative to
diffusers' largest magnitude. A development tool, not part of `swift test` (it needs torch).

    swift build && .venv/bin/python Tests/CrossCheck/crosscheck_flux.py --trials 6 --seed 1
    .venv/bin/python Tests/CrossCheck/crosscheck_flux.py --backend vulkan

Exit code 1 when any trial is over the tolerance (1e-3 on the CPU backend, 2e-2 on Vulkan).
"""

import argparse
import random
import shutil
import sys
import tempfile
from pathlib import Path

from crosscheck_common import REPO, kiln_latents, seeded

import torch  # noqa: E402

from diffusers import (  # noqa: E402
    AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxImg2ImgPipeline, FluxInpaintPipeline, FluxPipeline, FluxTransformer2DModel,
)
from PIL import Image  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel, T5TokenizerFast  # noqa: E402

from generate_sd_fixtures import MERGES_CANDIDATES, write_clip_vocab  # noqa: E402

T5_TOKENIZER = REPO / "Tests" / "KilnModelsTests" / "Fixtures" / "t5_tokenizer" / "tokenizer"
PROMPTS = [
    "a watercolor fox in a snowy forest", "portrait of an old sailor, dramatic light",
    "isometric city at night, neon", "a bowl of ramen, studio photo, 35mm", "",
    "an astronaut riding a horse on mars, highly detailed, 8k, intricate, trending, golden hour, wide angle",
]


def rotary_axes(rng, head_dim):
    """Three even, positive rotary widths summing to the head width."""
    while True:
        first = 2 * rng.randint(1, head_dim // 2 - 2)
        second = 2 * rng.randint(1, (head_dim - first) // 2 - 1)
        third = head_dim - first - second
        if third > 0:
            return [first, second, third]


def build_folder(rng, seed, folder):
    dev = rng.random() < 0.5
    head_dim = rng.choice([8, 12, 16])
    joint, pooled = rng.choice([16, 24]), rng.choice([8, 16])
    transformer = seeded(FluxTransformer2DModel, dict(
        in_channels=64, num_layers=rng.randint(1, 2), num_single_layers=rng.randint(1, 3), attention_head_dim=head_dim,
        num_attention_heads=rng.randint(1, 3), joint_attention_dim=joint, pooled_projection_dim=pooled,
        guidance_embeds=dev, axes_dims_rope=rotary_axes(rng, head_dim)), seed)
    text_encoder = seeded(CLIPTextModel, CLIPTextConfig(
        vocab_size=49408, hidden_size=pooled, intermediate_size=pooled * 2, num_hidden_layers=rng.choice([1, 2]),
        num_attention_heads=2, hidden_act="quick_gelu", max_position_embeddings=77), seed + 1)
    t5 = seeded(T5EncoderModel, T5Config(
        vocab_size=3100, d_model=joint, d_kv=8, d_ff=joint * 2, num_layers=rng.choice([1, 2]), num_heads=rng.choice([2, 3]),
        feed_forward_proj="gated-gelu", dense_act_fn="gelu_new", is_gated_act=True, dropout_rate=0.0,
        is_encoder_decoder=False, use_cache=False), seed + 2)
    vae = seeded(AutoencoderKL, dict(
        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[8] * 4,
        layers_per_block=1, latent_channels=16, norm_num_groups=4, scaling_factor=0.3611, shift_factor=0.1159,
        use_quant_conv=False, use_post_quant_conv=False), seed + 3)
    dynamic = dev if rng.random() < 0.8 else not dev
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000, shift=3.0 if dynamic else rng.choice([1.0, 3.0]), use_dynamic_shifting=dynamic,
        base_image_seq_len=256, max_image_seq_len=4096, base_shift=0.5, max_shift=1.15)
    vocab_dir = folder / "vocab"
    vocab_dir.mkdir()
    vocab, merges = write_clip_vocab(next(p for p in MERGES_CANDIDATES if p.exists()), vocab_dir)
    pipe = FluxPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder,
                        tokenizer=CLIPTokenizer(str(vocab), str(merges), model_max_length=77),
                        text_encoder_2=t5, tokenizer_2=T5TokenizerFast.from_pretrained(T5_TOKENIZER), transformer=transformer)
    pipe.save_pretrained(folder / "model", safe_serialization=True)
    shutil.rmtree(vocab_dir)
    return folder / "model", pipe


def diffusers_latents(pipe, settings):
    extra = {}
    if settings["mask"]:
        pipe = FluxInpaintPipeline(**pipe.components)
        extra = dict(image=Image.open(settings["init_image"]), mask_image=Image.open(settings["mask"]), strength=settings["strength"])
    elif settings["init_image"]:
        pipe = FluxImg2ImgPipeline(**pipe.components)
        extra = dict(image=Image.open(settings["init_image"]), strength=settings["strength"])
    pipe.set_progress_bar_config(disable=True)
    packed = pipe(prompt=settings["prompt"], width=settings["width"], height=settings["height"],
                  num_inference_steps=settings["steps"], guidance_scale=settings["guidance"],
                  num_images_per_prompt=settings["batch"], max_sequence_length=settings["max_sequence_length"],
                  output_type="latent", generator=torch.Generator("cpu").manual_seed(settings["seed"]), **extra).images
    return FluxPipeline._unpack_latents(packed, settings["height"], settings["width"], pipe.vae_scale_factor)


def kiln_options(settings):
    options = ["--prompt", settings["prompt"], "--width", str(settings["width"]), "--height", str(settings["height"]),
               "--steps", str(settings["steps"]), "--cfg-scale", str(settings["guidance"]), "--seed", str(settings["seed"]),
               "--batch-count", str(settings["batch"]), "--max-sequence-length", str(settings["max_sequence_length"])]
    if settings["init_image"]:
        options += ["--init-image", settings["init_image"], "--strength", str(settings["strength"])]
    if settings["mask"]:
        options += ["--mask", settings["mask"]]
    return options


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0, help="draws the models and settings")
    parser.add_argument("--backend", choices=["cpu", "vulkan"], default="cpu")
    args = parser.parse_args()
    tolerance = 1e-3 if args.backend == "cpu" else 2e-2
    failures = 0
    for trial in range(args.trials):
        rng = random.Random(args.seed * 1000 + trial)
        settings = dict(prompt=rng.choice(PROMPTS), steps=rng.randint(1, 5), guidance=rng.choice([1.0, 3.5, 5.0]),
                        seed=rng.randint(0, 2**32 - 1), batch=rng.choice([1, 1, 2]), width=16 * rng.randint(2, 6),
                        height=16 * rng.randint(2, 6), max_sequence_length=rng.choice([8, 16, 32, 77]),
                        init_image=None, strength=None, mask=None)
        with tempfile.TemporaryDirectory() as temporary:
            folder = Path(temporary)
            if rng.random() < 0.4:  # image-to-image from a random picture of the asked size
                settings["steps"] = rng.randint(2, 6)
                settings["strength"] = rng.choice([0.5, 0.6, 0.8, 1.0])
                pixels = torch.randint(0, 256, (settings["height"], settings["width"], 3), generator=torch.Generator().manual_seed(trial))
                settings["init_image"] = str(folder / "init.png")
                Image.fromarray(pixels.to(torch.uint8).numpy()).save(settings["init_image"])
                if rng.random() < 0.5:  # inpainting: a random rectangle is repainted
                    mask = torch.zeros(settings["height"], settings["width"], dtype=torch.uint8)
                    top, left = rng.randint(0, settings["height"] // 2), rng.randint(0, settings["width"] // 2)
                    mask[top : top + rng.randint(8, settings["height"]), left : left + rng.randint(8, settings["width"])] = 255
                    settings["mask"] = str(folder / "mask.png")
                    Image.fromarray(mask.numpy()).save(settings["mask"])
            model, pipe = build_folder(rng, rng.randint(0, 10**6), folder)
            config = pipe.transformer.config
            try:
                with torch.no_grad():
                    expected = diffusers_latents(pipe, settings)
                actual = kiln_latents(model, kiln_options(settings), args.backend, folder)
                error = ((actual - expected).abs().max() / expected.abs().max()).item()
                verdict = "ok" if error <= tolerance else "FAIL"
            except Exception as problem:  # noqa: BLE001 - report and go on to the next trial
                error, verdict = float("nan"), f"ERROR {problem}"
            failures += verdict != "ok"
            print(f"trial {trial} {'dev' if config.guidance_embeds else 'schnell'}: {verdict} error {error:.2e} | {settings} | "
                  f"blocks {config.num_layers}+{config.num_single_layers} heads {config.num_attention_heads}x{config.attention_head_dim} "
                  f"axes {list(config.axes_dims_rope)} | dynamic shift {pipe.scheduler.config.use_dynamic_shifting}", flush=True)
    print(f"{args.trials - failures}/{args.trials} within {tolerance}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
