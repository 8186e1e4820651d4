"""Write tiny FLUX.1 denoising-loop fixtures for Kiln's pipeline tests: diffusers' FluxPipeline
run from given text states (prompt_embeds, pooled_prompt_embeds) to its final latents.

Rerun from the repository root (nothing is downloaded; no model hub is contacted):

    .venv/bin/pip install -r Tests/Fixtures/requirements.txt
    .venv/bin/python Tests/Fixtures/generate_flux_pipeline_fixtures.py          # rewrite
    .venv/bin/python Tests/Fixtures/generate_flux_pipeline_fixtures.py --check  # compare with the committed tree

Pins: see Tests/Fixtures/requirements.txt (torch 2.13.0, diffusers 0.39.0).

Output: Tests/KilnPipelinesTests/Fixtures/flux/<case>/ for `schnell` (no guidance embedding,
FLUX.1-schnell's static scheduler config, shift 1) and `dev` (guidance_embeds, FLUX.1-dev's
dynamic shifting with mu from the image sequence length, shift 3):

  model_index.json                    `_class_name: FluxPipeline` and the two components here
  transformer/                        a tiny FluxTransformer2DModel (bfloat16 weights)
  scheduler/scheduler_config.json     FlowMatchEulerDiscreteScheduler as the FLUX.1 releases set it
  records.safetensors                 inputs (text states, pooled), the initial packed noise,
                                      the schedule (sigmas, timesteps, mu) and the final latents,
                                      unpacked to [B, 16, h, w] as `--save-latents` writes them
  case.json                           seed, size, steps, guidance

and `full/`, a whole FluxPipeline (dev-style, guidance 4, 64x48, two prompts, T5 ids truncated
to --max-sequence-length 16) from prompts to final latents and decoded images:

  full/model_index.json               every FluxPipeline component
  full/transformer/, full/scheduler/  as above (pooled width 8, the CLIP below)
  full/all_in_one.safetensors         ComfyUI's layout: the same transformer (original names
                                      behind `model.diffusion_model.`, bfloat16), VAE (`vae.`,
                                      original names, float16) and T5 (`text_encoders.t5xxl.
                                      transformer.`, bfloat16); CLIP-L comes from the folder
  full/text_encoder_2/                a tiny T5EncoderModel (T5 v1.1's gated-gelu, bfloat16)
                                      for the T5 tokenizer fixture's 3,100 ids
  full/vae/                           a tiny 16-channel AutoencoderKL with 4 levels (factor 8)
                                      and FLUX's scaling_factor and shift_factor (float16)
  full/records.safetensors            CLIP and T5 ids, prompt_embeds, pooled_prompt_embeds,
                                      final latents [B, 16, h, w] and images [B, 3, H, W] in [0, 1];
                                      final latents of the first prompt alone, 2 images; and
                                      FluxImg2ImgPipeline's from Fixtures/pipelines/init.png
                                      (strength 0.6, 4 steps); FluxInpaintPipeline's with
                                      Fixtures/pipelines/mask.png (strength 0.8, 4 steps)
                                      (images float16)
  full/case.json                      prompts, seed, size, steps, guidance, max sequence length

  `text_encoder`/`tokenizer` are SD1's tiny CLIP fixture (Tests/KilnModelsTests/Fixtures/sd/sd1,
  real CLIP vocabulary, hidden 8) and `tokenizer_2` the T5 tokenizer fixture
  (Tests/KilnModelsTests/Fixtures/t5_tokenizer/tokenizer, or --t5-tokenizer DIR); tests link
  them into a complete folder rather than storing copies.

In the schnell and dev cases the text encoders are left out: the pipeline takes the recorded text states, exactly what
FluxPipeline does with `prompt_embeds` and `pooled_prompt_embeds`, so these cases test packing,
latent ids, the schedule and the loop on their own. The size (80x48) is not square, and a
multiple of 16 as FluxPipeline requires (VAE factor 8 times the 2x2 packing).

Deterministic: fixed seeds, sorted tensors and metadata; `--check` regenerates into a
temporary folder and compares bytes.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["DIFFUSERS_VERBOSITY"] = "error"

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_flux_fixtures import build, check_inverse, normalise_safetensors_tree, original_state, write_safetensors  # noqa: E402

import diffusers  # noqa: E402
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxImg2ImgPipeline, FluxInpaintPipeline, FluxPipeline  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel, T5TokenizerFast  # noqa: E402

from generate_sd_fixtures import MERGES_CANDIDATES, perturb_trivial_parameters, vae_to_original, write_clip_vocab  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "Tests/KilnPipelinesTests/Fixtures/flux"
SIZE_BUDGET = 1_000_000
SD1 = REPO / "Tests/KilnModelsTests/Fixtures/sd/sd1/diffusers"
INIT_IMAGE = REPO / "Tests/KilnPipelinesTests/Fixtures/pipelines/init.png"
MASK = REPO / "Tests/KilnPipelinesTests/Fixtures/pipelines/mask.png"
IMG2IMG = dict(steps=4, strength=0.6)
INPAINT = dict(steps=4, strength=0.8)
T5_TOKENIZER = REPO / "Tests/KilnModelsTests/Fixtures/t5_tokenizer/tokenizer"

FULL = dict(prompts=["a red fox in the snow",
                     "a lighthouse at dusk on a rocky coast, oil painting with heavy brush strokes and warm light"],
            seed=9, width=64, height=48, steps=3, guidance=4.0, max_sequence_length=16, weights_seed=33)
T5_CONFIG = dict(vocab_size=3100, d_model=20, d_kv=8, d_ff=32, num_layers=2, num_heads=2,
                 relative_attention_num_buckets=32, relative_attention_max_distance=128,
                 feed_forward_proj="gated-gelu", dense_act_fn="gelu_new", is_gated_act=True,
                 layer_norm_epsilon=1e-6, dropout_rate=0.0, pad_token_id=0, eos_token_id=1,
                 is_encoder_decoder=False, use_cache=False)
VAE_CONFIG = dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
                  up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[8, 8, 8, 8], layers_per_block=1,
                  latent_channels=16, norm_num_groups=4, sample_size=64,
                  scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False)

TRANSFORMER = dict(
    patch_size=1, in_channels=64, out_channels=None, num_layers=1, num_single_layers=1,
    attention_head_dim=12, num_attention_heads=2, joint_attention_dim=20, pooled_projection_dim=16,
    axes_dims_rope=[2, 4, 6],
)

# The FLUX.1 releases' scheduler settings.
SCHEDULER = dict(num_train_timesteps=1000, base_image_seq_len=256, max_image_seq_len=4096,
                 base_shift=0.5, max_shift=1.15)
CASES = {
    "schnell": dict(guidance_embeds=False, scheduler=dict(shift=1.0, use_dynamic_shifting=False),
                    steps=3, guidance=None, seed=7, weights_seed=31),
    "dev": dict(guidance_embeds=True, scheduler=dict(shift=3.0, use_dynamic_shifting=True),
                steps=4, guidance=3.5, seed=8, weights_seed=32),
}
BATCH, TEXT_LENGTH, WIDTH, HEIGHT = 2, 5, 80, 48


def generate(out_root):
    for name, case in CASES.items():
        folder = out_root / name
        transformer = build(dict(TRANSFORMER, guidance_embeds=case["guidance_embeds"]), case["weights_seed"], torch.bfloat16)
        transformer.to(torch.bfloat16).save_pretrained(folder / "transformer", safe_serialization=True)
        transformer.float()
        scheduler = FlowMatchEulerDiscreteScheduler(**SCHEDULER, **case["scheduler"])
        scheduler.save_pretrained(folder / "scheduler")
        (folder / "model_index.json").write_text(json.dumps({
            "_class_name": "FluxPipeline", "_diffusers_version": diffusers.__version__,
            "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
            "transformer": ["diffusers", "FluxTransformer2DModel"],
        }, indent=2, sort_keys=True) + "\n")

        pipe = FluxPipeline(scheduler=scheduler, vae=None, text_encoder=None, tokenizer=None,
                            text_encoder_2=None, tokenizer_2=None, transformer=transformer)
        pipe.set_progress_bar_config(disable=True)
        g = torch.Generator().manual_seed(case["seed"] + 500)
        prompt_embeds = torch.randn(BATCH, TEXT_LENGTH, TRANSFORMER["joint_attention_dim"], generator=g)
        pooled = torch.randn(BATCH, TRANSFORMER["pooled_projection_dim"], generator=g)

        # The noise FluxPipeline.prepare_latents draws: randn [B, 16, h, w], then packed.
        latent_height, latent_width = HEIGHT // 8, WIDTH // 8
        noise = torch.randn(BATCH, 16, latent_height, latent_width, generator=torch.Generator().manual_seed(case["seed"]))
        packed_noise = FluxPipeline._pack_latents(noise, BATCH, 16, latent_height, latent_width)

        kwargs = dict(prompt_embeds=prompt_embeds, pooled_prompt_embeds=pooled, width=WIDTH, height=HEIGHT,
                      num_inference_steps=case["steps"], generator=torch.Generator().manual_seed(case["seed"]),
                      output_type="latent", return_dict=False)
        if case["guidance"] is not None:
            kwargs["guidance_scale"] = case["guidance"]
        with torch.no_grad():
            packed = pipe(**kwargs)[0]
        final = FluxPipeline._unpack_latents(packed, HEIGHT, WIDTH, pipe.vae_scale_factor)
        image_ids = FluxPipeline._prepare_latent_image_ids(BATCH, latent_height // 2, latent_width // 2, "cpu", torch.float32)
        sequence_length = packed.shape[1]
        mu = np.float64(diffusers.pipelines.flux.pipeline_flux.calculate_shift(
            sequence_length, SCHEDULER["base_image_seq_len"], SCHEDULER["max_image_seq_len"],
            SCHEDULER["base_shift"], SCHEDULER["max_shift"]))
        records = {
            "prompt_embeds": prompt_embeds,
            "pooled_prompt_embeds": pooled,
            "noise": noise,
            "packed_noise": packed_noise,
            "latent_image_ids": image_ids,
            "sigmas": pipe.scheduler.sigmas.float(),
            "timesteps": pipe.scheduler.timesteps.float(),
            "mu": torch.tensor([mu], dtype=torch.float64).float(),
            "final_packed_latents": packed.float(),
            "final_latents": final.float(),
        }
        write_safetensors(folder / "records.safetensors", records,
                          {"generator": "Tests/Fixtures/generate_flux_pipeline_fixtures.py",
                           "torch": torch.__version__, "diffusers": diffusers.__version__})
        (folder / "case.json").write_text(json.dumps({
            "seed": case["seed"], "width": WIDTH, "height": HEIGHT, "steps": case["steps"],
            "guidance": case["guidance"], "mu": float(mu),
        }, indent=2, sort_keys=True) + "\n")
    generate_full(out_root / "full")
    normalise_safetensors_tree(out_root)


def rounded(model, dtype):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).float())
    return model.eval()


def generate_full(folder):
    case = FULL
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_dir = Path(tmp) / "tokenizer"
        shutil.copytree(SD1 / "tokenizer", tokenizer_dir)
        write_clip_vocab(next(p for p in MERGES_CANDIDATES if p.exists()), tokenizer_dir)
        tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    text_encoder = CLIPTextModel.from_pretrained(SD1 / "text_encoder", torch_dtype=torch.float32).eval()
    tokenizer_2 = T5TokenizerFast.from_pretrained(T5_TOKENIZER)

    torch.manual_seed(case["weights_seed"])
    t5 = T5EncoderModel(T5Config(**T5_CONFIG))
    perturb_trivial_parameters(t5, torch.Generator().manual_seed(case["weights_seed"] + 100))
    t5 = rounded(t5, torch.bfloat16)
    t5.to(torch.bfloat16).save_pretrained(folder / "text_encoder_2", safe_serialization=True)
    t5.float()

    torch.manual_seed(case["weights_seed"] + 1)
    vae = AutoencoderKL(**VAE_CONFIG)
    perturb_trivial_parameters(vae, torch.Generator().manual_seed(case["weights_seed"] + 101))
    vae = rounded(vae, torch.float16)
    vae.half().save_pretrained(folder / "vae", safe_serialization=True)
    vae.float()

    transformer = build(dict(TRANSFORMER, guidance_embeds=True, pooled_projection_dim=text_encoder.config.hidden_size),
                        case["weights_seed"] + 2, torch.bfloat16)
    transformer.to(torch.bfloat16).save_pretrained(folder / "transformer", safe_serialization=True)
    transformer.float()
    # The same transformer, VAE and T5 as a ComfyUI-style all-in-one single file: the
    # transformer in the original key names behind `model.diffusion_model.`, the VAE in the
    # original (CompVis) names behind `vae.`, T5 in transformers' names behind
    # `text_encoders.t5xxl.transformer.` (CLIP-L, 0.8 MB with its real vocabulary, left out:
    # the folder supplies it), for `kiln generate --model FILE --config FOLDER`.
    transformer_config = dict(TRANSFORMER, guidance_embeds=True, pooled_projection_dim=text_encoder.config.hidden_size)
    original = original_state(transformer, transformer_config)
    check_inverse(transformer, original, transformer_config)
    single = {"model.diffusion_model." + k: v.to(torch.bfloat16) for k, v in original.items()}
    single.update({"vae." + k[len("first_stage_model."):]: v.half() for k, v in vae_to_original(vae).items()})
    single.update({"text_encoders.t5xxl.transformer." + k: v.to(torch.bfloat16) for k, v in t5.state_dict().items()
                   if k != "encoder.embed_tokens.weight"})
    write_safetensors(folder / "all_in_one.safetensors", single)
    scheduler = FlowMatchEulerDiscreteScheduler(**SCHEDULER, **CASES["dev"]["scheduler"])
    scheduler.save_pretrained(folder / "scheduler")
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": "FluxPipeline", "_diffusers_version": diffusers.__version__,
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "text_encoder_2": ["transformers", "T5EncoderModel"], "tokenizer_2": ["transformers", "T5TokenizerFast"],
        "transformer": ["diffusers", "FluxTransformer2DModel"], "vae": ["diffusers", "AutoencoderKL"],
    }, indent=2, sort_keys=True) + "\n")

    pipe = FluxPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                        text_encoder_2=t5, tokenizer_2=tokenizer_2, transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.vae_scale_factor == 8
    prompts, length = case["prompts"], case["max_sequence_length"]
    clip_ids = tokenizer(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    t5_ids = tokenizer_2(prompts, padding="max_length", max_length=length, truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        prompt_embeds, pooled, _ = pipe.encode_prompt(prompt=prompts, prompt_2=None, max_sequence_length=length)
        outputs = {}
        for kind in ("latent", "pt"):
            outputs[kind] = pipe(prompt=prompts, width=case["width"], height=case["height"], num_inference_steps=case["steps"],
                                 guidance_scale=case["guidance"], max_sequence_length=length,
                                 generator=torch.Generator().manual_seed(case["seed"]), output_type=kind, return_dict=False)[0]
        # The first prompt alone, two images from one seed (num_images_per_prompt), as
        # `kiln generate --batch-count 2` asks for it.
        single = pipe(prompt=prompts[0], num_images_per_prompt=2, width=case["width"], height=case["height"],
                      num_inference_steps=case["steps"], guidance_scale=case["guidance"], max_sequence_length=length,
                      generator=torch.Generator().manual_seed(case["seed"]), output_type="latent", return_dict=False)[0]
        # FluxImg2ImgPipeline from the SD pipelines' 64x48 init image, the first prompt, 2 images.
        img2img = FluxImg2ImgPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                      text_encoder_2=t5, tokenizer_2=tokenizer_2, transformer=transformer)
        img2img.set_progress_bar_config(disable=True)
        init_image = Image.open(INIT_IMAGE).convert("RGB")
        # Its preprocessed pixels equal the SD pipeline fixtures' `inputs.init_image` (same size,
        # a multiple of 16, so neither processor resizes); tests read them from there.
        init_pixels = img2img.image_processor.preprocess(init_image, height=case["height"], width=case["width"])
        assert init_pixels.shape == (1, 3, case["height"], case["width"])
        edited = img2img(prompt=prompts[0], image=init_image, strength=IMG2IMG["strength"], num_images_per_prompt=2,
                         width=case["width"], height=case["height"], num_inference_steps=IMG2IMG["steps"],
                         guidance_scale=case["guidance"], max_sequence_length=length,
                         generator=torch.Generator().manual_seed(case["seed"]), output_type="latent", return_dict=False)[0]
        # FluxInpaintPipeline: the same image, the SD pipelines' 64x48 mask (white is repainted).
        inpaint = FluxInpaintPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                      text_encoder_2=t5, tokenizer_2=tokenizer_2, transformer=transformer)
        inpaint.set_progress_bar_config(disable=True)
        inpainted = inpaint(prompt=prompts[0], image=init_image, mask_image=Image.open(MASK), strength=INPAINT["strength"],
                            num_images_per_prompt=2, width=case["width"], height=case["height"],
                            num_inference_steps=INPAINT["steps"], guidance_scale=case["guidance"], max_sequence_length=length,
                            generator=torch.Generator().manual_seed(case["seed"]), output_type="latent", return_dict=False)[0]
    inpainted = FluxPipeline._unpack_latents(inpainted, case["height"], case["width"], pipe.vae_scale_factor)
    final = FluxPipeline._unpack_latents(outputs["latent"], case["height"], case["width"], pipe.vae_scale_factor)
    single = FluxPipeline._unpack_latents(single, case["height"], case["width"], pipe.vae_scale_factor)
    edited = FluxPipeline._unpack_latents(edited, case["height"], case["width"], pipe.vae_scale_factor)
    records = {
        "clip_ids": clip_ids.to(torch.int32), "t5_ids": t5_ids.to(torch.int32),
        "prompt_embeds": prompt_embeds.float(), "pooled_prompt_embeds": pooled.float(),
        "final_latents": final.float(), "single_prompt_final_latents": single.float(),
        "img2img_final_latents": edited.float(), "inpaint_final_latents": inpainted.float(),
        # Stored float16 to save space: images lie in [0, 1], so rounding moves them < 2.5e-4.
        "images": outputs["pt"].half(),
    }
    write_safetensors(folder / "records.safetensors", records,
                      {"generator": "Tests/Fixtures/generate_flux_pipeline_fixtures.py",
                       "torch": torch.__version__, "diffusers": diffusers.__version__})
    (folder / "case.json").write_text(json.dumps({
        "prompts": prompts, "seed": case["seed"], "width": case["width"], "height": case["height"],
        "steps": case["steps"], "guidance": case["guidance"], "max_sequence_length": length,
        "img2img_steps": IMG2IMG["steps"], "img2img_strength": IMG2IMG["strength"],
        "inpaint_steps": INPAINT["steps"], "inpaint_strength": INPAINT["strength"],
    }, indent=2, sort_keys=True) + "\n")


def tree_size(root):
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main():
    global T5_TOKENIZER
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed fixtures")
    parser.add_argument("--t5-tokenizer", type=Path, help=f"T5 tokenizer folder (default {T5_TOKENIZER.relative_to(REPO)})")
    args = parser.parse_args()
    if args.t5_tokenizer:
        T5_TOKENIZER = args.t5_tokenizer
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "flux"
            generate(out)
            diffs = [str(p.relative_to(out)) for p in sorted(out.rglob("*")) if p.is_file()
                     and (not (OUT_DIR / p.relative_to(out)).exists()
                          or p.read_bytes() != (OUT_DIR / p.relative_to(out)).read_bytes())]
            if diffs:
                sys.exit("differs from the committed fixtures: " + ", ".join(diffs))
            print("fixtures are up to date")
        return
    if OUT_DIR.exists():
        shutil.rmtree(OUT_DIR)
    generate(OUT_DIR)
    size = tree_size(OUT_DIR)
    print(f"wrote {OUT_DIR.relative_to(REPO)}: {size} bytes")
    if size > SIZE_BUDGET:
        sys.exit(f"fixture tree is {size} bytes, over the {SIZE_BUDGET}-byte budget")


if __name__ == "__main__":
    main()
