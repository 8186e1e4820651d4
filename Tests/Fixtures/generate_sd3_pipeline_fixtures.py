"""Record diffusers' StableDiffusion3Pipeline on a tiny SD3 model, for Kiln's pipeline tests.

Rerun from the repository root after generate_sd_fixtures.py (same pins, Tests/Fixtures/requirements.txt):

    .venv/bin/python Tests/Fixtures/generate_sd3_pipeline_fixtures.py          # writes the fixtures
    .venv/bin/python Tests/Fixtures/generate_sd3_pipeline_fixtures.py --check  # compares with the tree

Nothing is downloaded. The model is SD3's layout at toy size. Cases marked `"t5": false` run with
T5 absent (`text_encoder_3=None, tokenizer_3=None`: diffusers then uses zeros of
`[B, max_sequence_length, joint_attention_dim]` for T5's states), the others with it:

  text_encoder    CLIP-L style CLIPTextModelWithProjection (hidden 4, quick_gelu), new here
  text_encoder_2  CLIP-G style CLIPTextModelWithProjection: the SDXL fixture's text_encoder_2
                  (Tests/KilnModelsTests/Fixtures/sd/sdxl/diffusers/text_encoder_2), not copied
                  to save space; tests and this script assemble the folder from both places
  tokenizer(_2)   CLIP BPE configs (vocab.json/merges.txt left out as for the SD fixtures;
                  they follow from the committed CLIP merges); tokenizer_2 pads with "!"
  text_encoder_3  T5 v1.1 style T5EncoderModel (gated-gelu, d_model 16 = joint_attention_dim,
                  the tokenizer's 3100-token vocabulary), float16, new here
  tokenizer_3     T5TokenizerFast: Tests/KilnModelsTests/Fixtures/t5_tokenizer/tokenizer (a trained
                  SentencePiece Unigram model), not copied; assembled like text_encoder_2
  transformer     SD3Transformer2DModel, SD3.5-medium style (RMS QK norm, dual attention in
                  block 0), joint_attention_dim 16 >= 4 + 8 (the CLIP widths, zero-padded)
  vae             AutoencoderKL with 16 latent channels, no quant convs, SD3's scaling and
                  shift factors, downscale factor 2
  scheduler       FlowMatchEulerDiscreteScheduler with shift 3.0, as SD3's config

Each case runs the pipeline in float32 on the CPU with `torch.Generator("cpu").manual_seed(seed)`,
output_type="latent". Writes Tests/KilnPipelinesTests/Fixtures/sd3/:

  model/                 the folder above minus text_encoder_2 and tokenizer_3's files; weights
                         stored as float16 (float16-representable values, so nothing changes)
  cases.json             every case with its settings as `kiln generate` takes them
  single_file.safetensors  the transformer and the VAE under Stability's original names
                         (`model.diffusion_model.joint_blocks.N...`, `first_stage_model.*`), float16;
                         diffusers' `StableDiffusion3Pipeline.from_single_file(..., config=model)`
                         loads exactly the folder's weights from it (checked), so the cases'
                         records apply to it too; the CLIP encoders come from the config folder
  latents.safetensors    `<case>.latents` [B, 16, h, w]: the final latents (before
                         1/scaling_factor + shift_factor and the VAE); `<case>.decoded`
                         [B, 3, H, W]: vae.decode(latents / scaling_factor + shift_factor),
                         the image in [-1, 1] before postprocessing

Byte-for-byte reproducible (`--check`).
"""

import argparse
import copy
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

import torch  # noqa: E402
from diffusers import (  # noqa: E402
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
)
from transformers import (  # noqa: E402
    CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer, T5Config, T5EncoderModel, T5TokenizerFast,
)

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Tests" / "Fixtures"))
from generate_sd_fixtures import (  # noqa: E402
    MAX_LENGTH, MERGES_CANDIDATES, VOCAB_SIZE, build, normalise_safetensors_tree, perturb_trivial_parameters, round_to_half,
    vae_to_original, write_clip_vocab, write_safetensors,
)
from generate_sd3_fixtures import to_original as transformer_to_original  # noqa: E402

SDXL_FOLDER = REPO / "Tests" / "KilnModelsTests" / "Fixtures" / "sd" / "sdxl" / "diffusers"
T5_TOKENIZER = REPO / "Tests" / "KilnModelsTests" / "Fixtures" / "t5_tokenizer" / "tokenizer"
OUT_DIR = REPO / "Tests" / "KilnPipelinesTests" / "Fixtures" / "sd3"

CLIP_L = dict(
    vocab_size=VOCAB_SIZE, hidden_size=4, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
    max_position_embeddings=MAX_LENGTH, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=6,
    bos_token_id=0, eos_token_id=2, pad_token_id=1,
)
T5 = dict(
    vocab_size=3100, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2, relative_attention_num_buckets=8,
    relative_attention_max_distance=16, feed_forward_proj="gated-gelu", dense_act_fn="gelu_new", is_gated_act=True,
    layer_norm_epsilon=1e-6, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, use_cache=False,
)
TRANSFORMER = dict(
    sample_size=16, patch_size=2, in_channels=16, num_layers=2, attention_head_dim=8, num_attention_heads=2,
    joint_attention_dim=16, caption_projection_dim=16,
    pooled_projection_dim=6 + 12,  # CLIP-L projection_dim + the SDXL fixture's CLIP-G projection_dim
    out_channels=16, pos_embed_max_size=12, dual_attention_layers=(0,), qk_norm="rms_norm",
)
VAE = dict(
    sample_size=32, in_channels=3, out_channels=3, latent_channels=16, layers_per_block=1,
    block_out_channels=(8, 16), norm_num_groups=4,
    down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
    scaling_factor=1.5305, shift_factor=0.0609, use_quant_conv=False, use_post_quant_conv=False,
)
SCHEDULER = dict(num_train_timesteps=1000, shift=3.0)
SEED = 3300

PROMPT = "a photo of an astronaut riding a horse"
NEGATIVE = "blurry, low quality"


def case(name, **settings):
    base = dict(name=name, prompt=PROMPT, negative_prompt=None, width=32, height=24, steps=3, cfg_scale=5.0,
                seed=7, batch_count=1, max_sequence_length=256, t5=False)
    base.update(settings)
    return base


CASES = [
    case("sd3_negative", negative_prompt=NEGATIVE),
    case("sd3_batch2_short_sequence", steps=2, cfg_scale=4.0, seed=11, batch_count=2, max_sequence_length=16),
    case("sd3_no_cfg_odd_latent", cfg_scale=1.0, seed=5, width=36, height=20, max_sequence_length=8),
    case("sd3_t5_negative", negative_prompt=NEGATIVE, max_sequence_length=32, t5=True),
    # T5 truncates the prompt to 7 tokens + </s>; batch of two under guidance.
    case("sd3_t5_truncated_batch2", steps=2, seed=13, batch_count=2, max_sequence_length=8, t5=True),
]


def write_model(folder):
    """The tiny SD3 folder (without text_encoder_2), float32 weights rounded to float16 values."""
    merges = next(p for p in MERGES_CANDIDATES if p.exists())
    with tempfile.TemporaryDirectory() as tmp:
        vocab, merges_copy = write_clip_vocab(merges, Path(tmp))
        tokenizer = CLIPTokenizer(str(vocab), str(merges_copy), model_max_length=MAX_LENGTH)
        tokenizer_2 = CLIPTokenizer(str(vocab), str(merges_copy), model_max_length=MAX_LENGTH, pad_token="!")
        text_encoder = build(CLIPTextModelWithProjection, CLIPTextConfig(**CLIP_L), SEED)
        text_encoder_2 = CLIPTextModelWithProjection.from_pretrained(SDXL_FOLDER / "text_encoder_2", torch_dtype=torch.float32)
        transformer = build(SD3Transformer2DModel, TRANSFORMER, SEED + 1)
        with torch.no_grad():
            transformer.pos_embed.pos_embed.copy_(transformer.pos_embed.pos_embed.half().float())
        vae = build(AutoencoderKL, VAE, SEED + 2)
        torch.manual_seed(SEED + 3)
        text_encoder_3 = T5EncoderModel(T5Config(**T5))
        perturb_trivial_parameters(text_encoder_3, torch.Generator().manual_seed(SEED + 103))
        text_encoder_3 = round_to_half(text_encoder_3).eval()
        pipe = StableDiffusion3Pipeline(
            transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER), vae=vae,
            text_encoder=text_encoder, tokenizer=tokenizer, text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2,
            text_encoder_3=text_encoder_3, tokenizer_3=T5TokenizerFast.from_pretrained(T5_TOKENIZER))
        pipe.save_pretrained(folder, safe_serialization=True)
        # diffusers writes a reloaded model's path into its config: save the in-memory copies instead.
        for name, model in (("transformer", transformer), ("vae", vae)):
            copy.deepcopy(model).half().save_pretrained(folder / name, safe_serialization=True)
    # Stored as float16 to keep the fixtures small; the values are the same (rounded before saving).
    for name, cls in (("text_encoder", CLIPTextModelWithProjection), ("text_encoder_3", T5EncoderModel)):
        cls.from_pretrained(folder / name, torch_dtype=torch.float32).to(torch.float16).save_pretrained(
            folder / name, safe_serialization=True)
    shutil.rmtree(folder / "text_encoder_2")
    shutil.rmtree(folder / "tokenizer_3")
    for name in ("tokenizer", "tokenizer_2"):
        for extra in ("vocab.json", "merges.txt"):
            (folder / name / extra).unlink()


def assembled(model, tmp):
    """A complete, loadable copy: tokenizer vocabularies restored, the SDXL CLIP-G linked in."""
    folder = Path(tmp) / "sd3"
    shutil.copytree(model, folder)
    shutil.copytree(SDXL_FOLDER / "text_encoder_2", folder / "text_encoder_2")
    shutil.copytree(T5_TOKENIZER, folder / "tokenizer_3")
    merges = next(p for p in MERGES_CANDIDATES if p.exists())
    for name in ("tokenizer", "tokenizer_2"):
        write_clip_vocab(merges, folder / name)
    return folder


def write_single_file(folder, path):
    """The transformer and VAE of `folder` under original names; checked by loading it back."""
    transformer = SD3Transformer2DModel.from_pretrained(folder / "transformer", torch_dtype=torch.float32)
    vae = AutoencoderKL.from_pretrained(folder / "vae", torch_dtype=torch.float32)
    state = {k: v.detach().clone() for k, v in transformer.state_dict().items()}
    single = dict(transformer_to_original(state, dict(transformer.config)))
    single.update(vae_to_original(vae))
    write_safetensors(path, {k: v.to(torch.float16).contiguous() for k, v in single.items()})
    # The file carries no text encoders: diffusers takes them as loaded components.
    encoders = {name: CLIPTextModelWithProjection.from_pretrained(folder / name, torch_dtype=torch.float32)
                for name in ("text_encoder", "text_encoder_2")}
    loaded = StableDiffusion3Pipeline.from_single_file(
        str(path), config=str(folder), local_files_only=True, torch_dtype=torch.float32,
        text_encoder_3=None, tokenizer_3=None, **encoders)
    for part, model in (("transformer", transformer), ("vae", vae)):
        reference = model.state_dict()
        for key, value in getattr(loaded, part).state_dict().items():
            if not torch.equal(value, reference[key]):
                sys.exit(f"single file: {part} '{key}' differs after from_single_file")


def run_case(pipe, settings):
    with torch.no_grad():
        latents = pipe(
            prompt=settings["prompt"], negative_prompt=settings["negative_prompt"], width=settings["width"],
            height=settings["height"], num_inference_steps=settings["steps"], guidance_scale=settings["cfg_scale"],
            num_images_per_prompt=settings["batch_count"], max_sequence_length=settings["max_sequence_length"],
            generator=torch.Generator("cpu").manual_seed(settings["seed"]), output_type="latent").images
        vae = pipe.vae
        decoded = vae.decode(latents / vae.config.scaling_factor + vae.config.shift_factor).sample
    return latents, decoded


def generate(out_dir):
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    write_model(out_dir / "model")
    records = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = assembled(out_dir / "model", tmp)
        write_single_file(folder, out_dir / "single_file.safetensors")
        without_t5 = StableDiffusion3Pipeline.from_pretrained(
            folder, torch_dtype=torch.float32, text_encoder_3=None, tokenizer_3=None)
        with_t5 = StableDiffusion3Pipeline.from_pretrained(folder, torch_dtype=torch.float32)
        assert without_t5.text_encoder_3 is None and with_t5.text_encoder_3 is not None
        for pipe in (without_t5, with_t5):
            pipe.set_progress_bar_config(disable=True)
        for settings in CASES:
            latents, decoded = run_case(with_t5 if settings["t5"] else without_t5, settings)
            records[f"{settings['name']}.latents"] = latents.float().contiguous()
            records[f"{settings['name']}.decoded"] = decoded.float().contiguous()
            settings["latent_shape"] = list(latents.shape)
    write_safetensors(out_dir / "latents.safetensors", records)
    (out_dir / "cases.json").write_text(json.dumps({"cases": CASES}, indent=2, sort_keys=True) + "\n")
    normalise_safetensors_tree(out_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="generate into a temporary folder and compare with the committed tree")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    if not args.check:
        generate(OUT_DIR)
        size = sum(p.stat().st_size for p in OUT_DIR.rglob("*") if p.is_file())
        print(f"wrote {OUT_DIR} ({size / 1024:.0f} KiB)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sd3"
        generate(out)
        produced = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
        committed = {p.relative_to(OUT_DIR) for p in OUT_DIR.rglob("*") if p.is_file()}
        diffs = sorted(str(p) for p in produced ^ committed)
        diffs += sorted(str(p) for p in produced & committed if (out / p).read_bytes() != (OUT_DIR / p).read_bytes())
        if diffs:
            sys.exit("differs from the committed fixtures: " + ", ".join(diffs))
        print("fixtures match")


if __name__ == "__main__":
    main()
