"""Write tiny random-weight Stable Diffusion fixtures (SD 1.x, SD 2.x, SDXL) for Kiln's model tests.

Rerun from the repository root (nothing is downloaded; no model hub is contacted):

    python3 -m venv .venv
    .venv/bin/pip install -r Tests/Fixtures/requirements.txt
    .venv/bin/pip uninstall -y ftfy      # must NOT be installed (CLIPTokenizer would use it)
    .venv/bin/python Tests/Fixtures/generate_sd_fixtures.py

Pins (also in Tests/Fixtures/requirements.txt): torch==2.13.0 (the +cpu wheel is fine),
numpy==2.4.6, safetensors==0.8.0, diffusers==0.39.0, transformers==4.57.6,
accelerate==1.15.0, huggingface_hub==0.36.2, tokenizers==0.22.2. diffusers 0.39.0 is the
newest release whose huggingface_hub range (<1.0) still admits transformers 4.57.6, the
last transformers with the slow (pure Python) CLIPTokenizer that Kiln reproduces.

Output: Tests/KilnModelsTests/Fixtures/sd/ (see the README.md written there), per family
`sd1`, `sd2`, `sdxl`:

  <family>/diffusers/              what `pipe.save_pretrained()` writes, minus the tokenizers'
                                   vocab.json and merges.txt (size budget; see README.md)
  <family>/single_file.safetensors the same weights under the original CompVis / Stability
                                   key names, all tensors float16
  <family>/components.safetensors  recorded inputs and outputs of each component
  <family>/manifest.json           what each record is, its shape and where it came from
  sd1/inpaint_unet/                a 9-input-channel U-Net (config.json + weights)

Every weight is rounded to a float16-representable value before anything is saved or run,
so the float16 and float32 copies of a weight hold the very same numbers and every record
(computed in float32) applies to every copy.

The single-file key mapping below is written out here, then checked by loading each single
file back with diffusers' `from_single_file(..., config=<diffusers folder>)` offline and
comparing every weight with the original.

Deterministic: fixed seeds, and every .safetensors file this script writes has its tensors
and metadata in sorted order; rerunning rewrites identical bytes (checked by `--check`,
which generates into a temporary folder and compares with the committed tree).
"""

import argparse
import copy
import filecmp
import importlib.util
import json
import math
import os
import shutil
import struct
import sys
import tempfile
from pathlib import Path

# No hub access at all, also not for from_single_file's config look-ups.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["DIFFUSERS_VERBOSITY"] = "error"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"

if importlib.util.find_spec("ftfy") is not None:
    sys.exit("ftfy is installed: uninstall it, the fixtures describe CLIPTokenizer without ftfy")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import diffusers  # noqa: E402
import transformers  # noqa: E402
import diffusers.utils.logging  # noqa: E402
from diffusers import (  # noqa: E402
    AutoencoderKL,
    DDIMScheduler,
    EulerDiscreteScheduler,
    PNDMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import (  # noqa: E402
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
)

diffusers.utils.logging.disable_progress_bar()

PINS = {
    "torch": "2.13.0",
    "diffusers": "0.39.0",
    "transformers": "4.57.6",
    "safetensors": "0.8.0",
    "numpy": "2.4.6",
}

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "Tests" / "KilnModelsTests" / "Fixtures" / "sd"
MERGES_CANDIDATES = [
    REPO / "Tests" / "KilnModelsTests" / "Fixtures" / "clip" / "merges.txt",
    REPO.parent / "shared" / "data" / "clip_merges.txt",
]
SIZE_BUDGET = 9 * 1000 * 1000
MAX_LENGTH = 77
VOCAB_SIZE = 49408

# Prompts recorded through every tokenizer / text encoder: an ordinary prompt, the empty
# prompt (classifier-free guidance's unconditional side) and one longer than 77 tokens
# (truncation). The U-Net's batch of 2 uses the text encodings of the first two.
PROMPTS = [
    "a photo of an astronaut riding a horse on mars",
    "",
    "a breathtaking ultra detailed matte painting of an ancient floating city above the clouds "
    "at golden hour, intricate gothic architecture, waterfalls cascading into the void, flocks "
    "of birds, volumetric god rays, cinematic composition, dramatic lighting, octane render, "
    "8k resolution, highly detailed, sharp focus, vibrant colors, masterpiece, award winning, "
    "by Greg Rutkowski and Alphonse Mucha, trending on ArtStation, Unreal Engine 5, 4K UHD!!",
]

# Tiled VAE (sd1 only): 32-pixel tiles (4 latent pixels) so small inputs need several rows and
# columns of tiles, with smaller edge tiles. Decode: latent [1, 4, 11, 9] -> tiles start every
# 3 latent pixels, blend 8 image rows/columns. Encode: image [1, 3, 72, 56] -> tiles start
# every 24 pixels, blend 1 latent row/column.
TILED_VAE_TILE = 32
TILED_VAE_LATENT_HW = (11, 9)
TILED_VAE_IMAGE_HW = (72, 56)
# VAE image [1, 3, 48, 40] (non-square, 8x down to a [1, 4, 6, 5] latent); U-Net latent
# [2, C, 8, 6] (non-square, one 2x downsample inside).
IMAGE_HW = (48, 40)
LATENT_HW = (8, 6)
# Different timesteps per batch row, so a broadcast bug shows.
UNET_TIMESTEPS = [999.0, 261.0]

# ---------------------------------------------------------------------------------------
# Family configurations. Sizes are chosen for the 9 MB budget of the whole tree: the
# 49408 x hidden token embedding of each text encoder is stored twice (diffusers folder +
# single file), so text encoders have hidden size 8 and are stored in float16.
# ---------------------------------------------------------------------------------------

SD_SCHEDULER_BETAS = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
)

SD1 = dict(
    name="sd1",
    # CLIP ViT-L/14 style: quick_gelu; ids follow openai's config (eos_token_id 2 makes
    # transformers pool at argmax(input_ids), the legacy rule real SD1 configs rely on).
    text_encoder=dict(
        vocab_size=VOCAB_SIZE, hidden_size=8, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=MAX_LENGTH, hidden_act="quick_gelu",
        layer_norm_eps=1e-5, projection_dim=8, bos_token_id=0, eos_token_id=2, pad_token_id=1,
    ),
    tokenizer=dict(),  # pad token = <|endoftext|>
    unet=dict(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(8, 16), norm_num_groups=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=8,
        # SD1 style single int. diffusers reads it as the number of HEADS (a historical
        # misnomer): 2 heads of 4 channels at 8 channels, 2 heads of 8 at 16 channels.
        attention_head_dim=2,
    ),
    vae=dict(
        sample_size=48, in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        block_out_channels=(8, 8, 16, 16), norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        scaling_factor=0.18215,
    ),
    scheduler=(PNDMScheduler, dict(
        **SD_SCHEDULER_BETAS, skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1,
        prediction_type="epsilon",
    )),
    # The diffusers folder keeps U-Net and VAE in float32 (the F32 load path); text
    # encoder float16. The other families store everything in float16.
    diffusers_dtypes=dict(unet=torch.float32, vae=torch.float32, text_encoder=torch.float16),
    inpaint_unet=True,
)

SD2 = dict(
    name="sd2",
    # OpenCLIP ViT-H style: gelu. diffusers' SD2 text encoder has one layer less than the
    # OpenCLIP tower in the single file (SD2 conditions on the penultimate layer).
    text_encoder=dict(
        vocab_size=VOCAB_SIZE, hidden_size=8, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=MAX_LENGTH, hidden_act="gelu",
        layer_norm_eps=1e-5, projection_dim=8, bos_token_id=0, eos_token_id=2, pad_token_id=1,
    ),
    tokenizer=dict(pad_token="!"),
    unet=dict(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(8, 16), norm_num_groups=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=8,
        attention_head_dim=(2, 4),  # per block, again head COUNTS: head size 4 everywhere
        use_linear_projection=True,
        upcast_attention=True,
    ),
    vae=dict(
        sample_size=48, in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        block_out_channels=(8, 8, 16, 16), norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        scaling_factor=0.18215,
    ),
    scheduler=(DDIMScheduler, dict(
        **SD_SCHEDULER_BETAS, clip_sample=False, set_alpha_to_one=False, steps_offset=1,
        prediction_type="v_prediction",
    )),
    diffusers_dtypes=dict(unet=torch.float16, vae=torch.float16, text_encoder=torch.float16),
    # extra OpenCLIP resblocks present in the single file only (never used by SD2)
    single_file_extra_layers=1,
    inpaint_unet=False,
)

SDXL_TIME_EMBED_DIM = 8
SDXL_PROJECTION_DIM = 12

SDXL = dict(
    name="sdxl",
    # CLIP ViT-L style first encoder (quick_gelu, no projection) ... Its width must differ
    # from text_encoder_2's: diffusers' from_single_file tells the two towers apart by the
    # width of `conditioner.embedders.0...position_embedding` (as 768 vs 1280 do for real).
    text_encoder=dict(
        vocab_size=VOCAB_SIZE, hidden_size=4, intermediate_size=16, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=MAX_LENGTH, hidden_act="quick_gelu",
        layer_norm_eps=1e-5, projection_dim=8, bos_token_id=0, eos_token_id=2, pad_token_id=1,
    ),
    # ... and OpenCLIP bigG style second encoder with a text projection (gelu).
    text_encoder_2=dict(
        vocab_size=VOCAB_SIZE, hidden_size=8, intermediate_size=32, num_hidden_layers=3,
        num_attention_heads=2, max_position_embeddings=MAX_LENGTH, hidden_act="gelu",
        layer_norm_eps=1e-5, projection_dim=SDXL_PROJECTION_DIM,
        bos_token_id=0, eos_token_id=2, pad_token_id=1,
    ),
    tokenizer=dict(),
    tokenizer_2=dict(pad_token="!"),
    unet=dict(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(8, 16), norm_num_groups=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=12,  # 4 (text_encoder) + 8 (text_encoder_2), concatenated
        attention_head_dim=(2, 4),
        transformer_layers_per_block=(1, 2),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=SDXL_TIME_EMBED_DIM,
        # 6 micro-conditioning numbers, each embedded to SDXL_TIME_EMBED_DIM, + pooled text
        projection_class_embeddings_input_dim=6 * SDXL_TIME_EMBED_DIM + SDXL_PROJECTION_DIM,
    ),
    vae=dict(
        sample_size=48, in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        block_out_channels=(8, 8, 16, 16), norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        scaling_factor=0.13025, force_upcast=True,
    ),
    scheduler=(EulerDiscreteScheduler, dict(
        **SD_SCHEDULER_BETAS, steps_offset=1, timestep_spacing="leading",
        interpolation_type="linear", use_karras_sigmas=False, prediction_type="epsilon",
    )),
    diffusers_dtypes=dict(
        unet=torch.float16, vae=torch.float16, text_encoder=torch.float16,
        text_encoder_2=torch.float16,
    ),
    inpaint_unet=False,
)

FAMILIES = [SD1, SD2, SDXL]

# One seed per (family, component) so components never share random streams.
SEEDS = {"sd1": 1000, "sd2": 2000, "sdxl": 3000}
SEED_OFFSET = {
    "text_encoder": 1, "text_encoder_2": 2, "unet": 3, "vae": 4, "inpaint_unet": 5,
    "inputs": 6, "openclip_extra": 7, "tiled_vae": 8,
}


def seed_for(family, part):
    return SEEDS[family] + SEED_OFFSET[part]


# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------


def byte_symbols():
    """The 256 stand-in characters for bytes, in GPT-2 / CLIP bytes_to_unicode order."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("\u00a1"), ord("\u00ac") + 1))
        + list(range(ord("\u00ae"), ord("\u00ff") + 1))
    )
    symbols = [chr(b) for b in printable]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            symbols.append(chr(256 + extra))
            extra += 1
    return symbols


def write_clip_vocab(merges_path, folder):
    """vocab.json + merges.txt of CLIP's BPE into `folder`; returns their paths."""
    lines = merges_path.read_text(encoding="utf-8").strip().split("\n")
    merge_count = VOCAB_SIZE - 2 * 256 - 2
    merges = [line.split() for line in lines[1 : merge_count + 1]]
    assert len(merges) == merge_count and all(len(m) == 2 for m in merges)
    tokens = byte_symbols()
    tokens = tokens + [t + "</w>" for t in tokens]
    tokens += ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == VOCAB_SIZE
    vocab_path = folder / "vocab.json"
    merges_out = folder / "merges.txt"
    vocab_path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    shutil.copyfile(merges_path, merges_out)
    return vocab_path, merges_out


def perturb_trivial_parameters(model, generator):
    """Give init-constant parameters (norm gains = 1, zero biases) random values.

    Freshly initialised norms and CLIP's zeroed biases would let a Kiln bug that drops
    or swaps them go unseen.
    """
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            if torch.all(p == 1):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=generator))
            elif torch.all(p == 0):
                p.copy_(0.05 * torch.randn(p.shape, generator=generator))


def round_to_half(model):
    """Make every weight float16-representable (float32 storage), see the module doc."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    return model


def build(cls, config, seed):
    torch.manual_seed(seed)
    model = cls(config) if isinstance(config, CLIPTextConfig) else cls(**config)
    generator = torch.Generator().manual_seed(seed + 100)
    perturb_trivial_parameters(model, generator)
    return round_to_half(model).eval()


_ST_DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.int32: "I32", torch.int64: "I64",
}


def write_safetensors(path, tensors, metadata=None):
    """A safetensors file with tensors and metadata in sorted order (stable bytes).

    The safetensors package itself writes `__metadata__` entries in no fixed order.
    """
    header = {}
    if metadata:
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata)}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        data = t.numpy().tobytes() if t.numel() else b""
        header[name] = {
            "dtype": _ST_DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def normalise_safetensors_tree(root):
    """Rewrite every .safetensors under `root` through `write_safetensors`.

    save_pretrained's files carry only {"format": "pt"} as metadata, but rewriting makes
    the byte layout independent of the safetensors package version as well.
    """
    from safetensors import safe_open

    for path in sorted(root.rglob("*.safetensors")):
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        write_safetensors(path, tensors, metadata)


def to_dtype_state(model, dtype):
    return {k: v.to(dtype) for k, v in model.state_dict().items()}


# ---------------------------------------------------------------------------------------
# Diffusers -> original (CompVis / Stability) key names
# ---------------------------------------------------------------------------------------

# Inside a U-Net ResnetBlock2D: diffusers name -> original name
UNET_RESNET_NAMES = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
UNET_TOP_LEVEL = {
    "conv_in": "input_blocks.0.0",
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}


def _rename_resnet(rest):
    layer, _, param = rest.partition(".")
    return UNET_RESNET_NAMES[layer] + "." + param


def unet_prefix_map(config):
    """diffusers module prefix -> original module prefix for a UNet2DConditionModel.

    The original U-Net is a flat list: input_blocks (conv_in, then per level
    `layers_per_block` [resnet, transformer] pairs and a downsampler), middle_block
    [resnet, transformer, resnet], output_blocks (per level `layers_per_block + 1`
    [resnet, transformer, upsampler] triples).
    """
    lpb = config["layers_per_block"]
    levels = len(config["block_out_channels"])
    down_has_attn = ["CrossAttn" in t for t in config["down_block_types"]]
    up_has_attn = ["CrossAttn" in t for t in config["up_block_types"]]
    prefixes = {}
    index = 1
    for level in range(levels):
        for j in range(lpb):
            prefixes[f"down_blocks.{level}.resnets.{j}"] = ("resnet", f"input_blocks.{index}.0")
            if down_has_attn[level]:
                prefixes[f"down_blocks.{level}.attentions.{j}"] = ("same", f"input_blocks.{index}.1")
            index += 1
        if level < levels - 1:
            prefixes[f"down_blocks.{level}.downsamplers.0.conv"] = ("same", f"input_blocks.{index}.0.op")
            index += 1
    prefixes["mid_block.resnets.0"] = ("resnet", "middle_block.0")
    prefixes["mid_block.attentions.0"] = ("same", "middle_block.1")
    prefixes["mid_block.resnets.1"] = ("resnet", "middle_block.2")
    index = 0
    for level in range(levels):
        for j in range(lpb + 1):
            prefixes[f"up_blocks.{level}.resnets.{j}"] = ("resnet", f"output_blocks.{index}.0")
            if up_has_attn[level]:
                prefixes[f"up_blocks.{level}.attentions.{j}"] = ("same", f"output_blocks.{index}.1")
            if j == lpb and level < levels - 1:
                slot = 2 if up_has_attn[level] else 1
                prefixes[f"up_blocks.{level}.upsamplers.0.conv"] = (
                    "same", f"output_blocks.{index}.{slot}.conv")
            index += 1
    for k, v in UNET_TOP_LEVEL.items():
        prefixes[k] = ("same", v)
    return prefixes


def map_by_prefix(state, prefixes, what):
    """Rename each key by the longest matching module prefix; every key must match."""
    out = {}
    ordered = sorted(prefixes, key=len, reverse=True)
    for key, value in state.items():
        for p in ordered:
            if key.startswith(p + "."):
                kind, new = prefixes[p]
                rest = key[len(p) + 1 :]
                out[new + "." + (_rename_resnet(rest) if kind == "resnet" else rest)] = value
                break
        else:
            raise KeyError(f"[{what}] no original name for {key}")
    return out


def unet_to_original(unet):
    state = unet.state_dict()
    mapped = map_by_prefix(state, unet_prefix_map(unet.config), "unet")
    return {"model.diffusion_model." + k: v for k, v in mapped.items()}


VAE_ATTENTION_NAMES = {
    "group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out",
}


def vae_to_original(vae):
    """AutoencoderKL -> `first_stage_model.*` names.

    Differences: resnet `conv_shortcut` is `nin_shortcut`; the decoder's up blocks are
    numbered from the lowest resolution in diffusers but from the highest originally; the
    mid-block attention uses 1x1 convolutions ([C, C, 1, 1]) where diffusers has Linear.
    """
    cfg = vae.config
    levels = len(cfg["block_out_channels"])
    prefixes = {}
    for side in ("encoder", "decoder"):
        for j in range(2):
            prefixes[f"{side}.mid_block.resnets.{j}"] = ("vae_resnet", f"{side}.mid.block_{j + 1}")
        for d, o in VAE_ATTENTION_NAMES.items():
            prefixes[f"{side}.mid_block.attentions.0.{d}"] = ("attn", f"{side}.mid.attn_1.{o}")
        prefixes[f"{side}.conv_in"] = ("same", f"{side}.conv_in")
        prefixes[f"{side}.conv_out"] = ("same", f"{side}.conv_out")
        prefixes[f"{side}.conv_norm_out"] = ("same", f"{side}.norm_out")
    for level in range(levels):
        for j in range(cfg["layers_per_block"]):
            prefixes[f"encoder.down_blocks.{level}.resnets.{j}"] = (
                "vae_resnet", f"encoder.down.{level}.block.{j}")
        prefixes[f"encoder.down_blocks.{level}.downsamplers.0.conv"] = (
            "same", f"encoder.down.{level}.downsample.conv")
        original_level = levels - 1 - level
        for j in range(cfg["layers_per_block"] + 1):
            prefixes[f"decoder.up_blocks.{level}.resnets.{j}"] = (
                "vae_resnet", f"decoder.up.{original_level}.block.{j}")
        prefixes[f"decoder.up_blocks.{level}.upsamplers.0.conv"] = (
            "same", f"decoder.up.{original_level}.upsample.conv")
    prefixes["quant_conv"] = ("same", "quant_conv")
    prefixes["post_quant_conv"] = ("same", "post_quant_conv")

    out = {}
    ordered = sorted(prefixes, key=len, reverse=True)
    for key, value in vae.state_dict().items():
        for p in ordered:
            if key.startswith(p + "."):
                kind, new = prefixes[p]
                rest = key[len(p) + 1 :]
                if kind == "vae_resnet":
                    rest = rest.replace("conv_shortcut", "nin_shortcut")
                if kind == "attn" and value.dim() == 2:
                    value = value[:, :, None, None]
                out["first_stage_model." + new + "." + rest] = value
                break
        else:
            raise KeyError(f"[vae] no original name for {key}")
    return out


def clip_to_original(text_encoder, prefix):
    """OpenAI CLIP in the original checkpoints keeps transformers' own names."""
    return {prefix + k: v for k, v in text_encoder.state_dict().items()}


OPENCLIP_LAYER_NAMES = {
    "layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
    "self_attn.out_proj": "attn.out_proj",
}


def openclip_to_original(text_encoder, prefix, extra_layers=0, extra_seed=0):
    """transformers CLIP text model -> OpenCLIP names (SD2 `cond_stage_model.model.`,
    SDXL `conditioner.embedders.1.model.`).

    OpenCLIP fuses q/k/v into `attn.in_proj_weight` [3*D, D] (rows q, k, v) and
    `in_proj_bias`; the position table is a bare parameter `positional_embedding`;
    `text_projection` is [D, P] applied as x @ P (transformers stores the Linear weight
    [P, D]); `logit_scale` is a 0-dimensional tensor that no text pipeline uses.
    `extra_layers` appends resblocks that diffusers drops (SD2's last layer).
    """
    state = text_encoder.state_dict()
    out = {}
    tm = "text_model."
    out["token_embedding.weight"] = state.pop(tm + "embeddings.token_embedding.weight")
    out["positional_embedding"] = state.pop(tm + "embeddings.position_embedding.weight")
    out["ln_final.weight"] = state.pop(tm + "final_layer_norm.weight")
    out["ln_final.bias"] = state.pop(tm + "final_layer_norm.bias")
    hidden = text_encoder.config.hidden_size
    if "text_projection.weight" in state:
        out["text_projection"] = state.pop("text_projection.weight").t().contiguous()
    else:
        # SD2's tower has a projection too; diffusers ignores it (CLIPTextModel has none).
        g = torch.Generator().manual_seed(extra_seed)
        out["text_projection"] = (hidden**-0.5 * torch.randn(hidden, hidden, generator=g)).half().float()
    out["logit_scale"] = torch.tensor(math.log(1 / 0.07)).half().float()
    layers = text_encoder.config.num_hidden_layers
    for i in range(layers):
        src = f"{tm}encoder.layers.{i}."
        dst = f"transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[dst + f"attn.in_proj_{kind}"] = torch.cat(
                [state.pop(src + f"self_attn.{n}_proj.{kind}") for n in ("q", "k", "v")], dim=0)
            for d, o in OPENCLIP_LAYER_NAMES.items():
                out[dst + f"{o}.{kind}"] = state.pop(src + f"{d}.{kind}")
    assert not state, f"[openclip] unmapped keys {sorted(state)}"
    if extra_layers:
        g = torch.Generator().manual_seed(extra_seed + 1)
        template = {k[len("transformer.resblocks.0."):]: v for k, v in out.items()
                    if k.startswith("transformer.resblocks.0.")}
        for i in range(layers, layers + extra_layers):
            for name, v in template.items():
                out[f"transformer.resblocks.{i}.{name}"] = (
                    v.std() * torch.randn(v.shape, generator=g) + v.mean()).half().float()
    return {prefix + k: v for k, v in out.items()}


# ---------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------


class Recorder:
    def __init__(self):
        self.tensors = {}
        self.entries = []

    def add(self, name, tensor, component, description, inputs=()):
        t = tensor.detach()
        t = t.to(torch.int32) if not t.is_floating_point() else t.to(torch.float32)
        self.tensors[name] = t.contiguous()
        self.entries.append(dict(
            name=name, shape=list(t.shape), dtype=_ST_DTYPES[t.dtype], component=component,
            inputs=list(inputs), description=description))


def tokenize(tokenizer):
    return tokenizer(PROMPTS, padding="max_length", max_length=MAX_LENGTH, truncation=True,
                     return_tensors="pt").input_ids


def record_text_encoder(rec, part, tokenizer_part, encoder, ids):
    """Records for one text encoder; returns (last, penultimate, pooled/text_embeds)."""
    with torch.no_grad():
        out = encoder(ids, output_hidden_states=True)
    ids_name = f"{tokenizer_part}.input_ids"
    rec.add(f"{part}.last_hidden_state", out.last_hidden_state, part,
            "last_hidden_state: final layer, then final_layer_norm", [ids_name])
    rec.add(f"{part}.penultimate_hidden_state", out.hidden_states[-2], part,
            "hidden_states[-2]: output of the second-to-last layer, no final_layer_norm",
            [ids_name])
    if isinstance(encoder, CLIPTextModelWithProjection):
        with torch.no_grad():
            pooled = encoder.text_model(ids).pooler_output
        rec.add(f"{part}.pooler_output", pooled, part,
                "final_layer_norm output at the first eos position (argmax of ids), before "
                "text_projection", [ids_name])
        rec.add(f"{part}.text_embeds", out.text_embeds, part,
                "text_projection(pooler_output), no bias", [ids_name])
        return out.last_hidden_state, out.hidden_states[-2], out.text_embeds
    rec.add(f"{part}.pooler_output", out.pooler_output, part,
            "final_layer_norm output at the first eos position (argmax of ids)", [ids_name])
    return out.last_hidden_state, out.hidden_states[-2], out.pooler_output


def record_vae(rec, vae, gen):
    h, w = IMAGE_HW
    image = (torch.rand(1, 3, h, w, generator=gen) * 2 - 1)
    with torch.no_grad():
        dist = vae.encode(image).latent_dist
        noise = torch.randn(dist.mean.shape, generator=gen)
        sample = dist.mean + dist.std * noise
        latents = torch.randn(dist.mean.shape, generator=gen)
        decoded = vae.decode(latents).sample
    rec.add("vae.image", image, "vae", "encoder input in [-1, 1]")
    rec.add("vae.latent_mean", dist.mean, "vae",
            "encode(image).latent_dist.mean (after quant_conv)", ["vae.image"])
    rec.add("vae.latent_logvar", dist.logvar, "vae",
            "encode(image).latent_dist.logvar, clamped to [-30, 20]", ["vae.image"])
    rec.add("vae.sample_noise", noise, "vae", "standard normal noise for the latent sample")
    rec.add("vae.latent_sample", sample, "vae",
            "mean + exp(0.5 * logvar) * noise (latent_dist.sample with that noise); not scaled "
            "by scaling_factor", ["vae.latent_mean", "vae.latent_logvar", "vae.sample_noise"])
    rec.add("vae.decoder_latents", latents, "vae",
            "decoder input, already divided by scaling_factor (vae.decode's own input)")
    rec.add("vae.decoded", decoded, "vae", "decode(decoder_latents).sample (post_quant_conv "
            "then decoder), not clamped", ["vae.decoder_latents"])


def record_tiled_vae(rec, vae, seed):
    tiled = copy.deepcopy(vae)
    tiled.enable_tiling()
    tiled.tile_sample_min_size = TILED_VAE_TILE
    tiled.tile_latent_min_size = TILED_VAE_TILE // 2 ** (len(tiled.config.block_out_channels) - 1)
    gen = torch.Generator().manual_seed(seed)
    latents = torch.randn(1, 4, *TILED_VAE_LATENT_HW, generator=gen)
    image = torch.rand(1, 3, *TILED_VAE_IMAGE_HW, generator=gen) * 2 - 1
    with torch.no_grad():
        decoded = tiled.decode(latents).sample
        dist = tiled.encode(image).latent_dist
    note = f"enable_tiling() with tile_sample_min_size {TILED_VAE_TILE}, overlap factor 0.25"
    rec.add("vae_tiled.latents", latents, "vae", "tiled decoder input")
    rec.add("vae_tiled.decoded", decoded, "vae", f"decode(latents).sample with {note}",
            ["vae_tiled.latents"])
    rec.add("vae_tiled.image", image, "vae", "tiled encoder input in [-1, 1]")
    rec.add("vae_tiled.latent_mean", dist.mean, "vae",
            f"encode(image).latent_dist.mean with {note}", ["vae_tiled.image"])
    rec.add("vae_tiled.latent_logvar", dist.logvar, "vae",
            f"encode(image).latent_dist.logvar (blended, then clamped) with {note}",
            ["vae_tiled.image"])


def record_unet(rec, part, unet, gen, encoder_hidden_states, added=None):
    h, w = LATENT_HW
    sample = torch.randn(2, unet.config.in_channels, h, w, generator=gen)
    timestep = torch.tensor(UNET_TIMESTEPS)
    kwargs = {}
    if added is not None:
        kwargs["added_cond_kwargs"] = added
    with torch.no_grad():
        out = unet(sample, timestep, encoder_hidden_states, **kwargs).sample
    inputs = [f"{part}.sample", f"{part}.timestep", f"{part}.encoder_hidden_states"]
    rec.add(f"{part}.sample", sample, part, "noisy latent batch (non-square)")
    rec.add(f"{part}.timestep", timestep, part, "one timestep per batch row")
    rec.add(f"{part}.encoder_hidden_states", encoder_hidden_states, part,
            "cross-attention context (see the text encoder records it was taken from)")
    if added is not None:
        rec.add(f"{part}.text_embeds", added["text_embeds"], part,
                "added_cond_kwargs['text_embeds'] (text_encoder_2.text_embeds)")
        rec.add(f"{part}.time_ids", added["time_ids"], part,
                "added_cond_kwargs['time_ids']: original h, w, crop top, left, target h, w")
        inputs += [f"{part}.text_embeds", f"{part}.time_ids"]
    rec.add(f"{part}.noise_pred", out, part, "U-Net output .sample", inputs)


# ---------------------------------------------------------------------------------------
# One family
# ---------------------------------------------------------------------------------------


def make_tokenizer(vocab_path, merges_path, extra):
    return CLIPTokenizer(str(vocab_path), str(merges_path), model_max_length=MAX_LENGTH, **extra)


def generate_family(fam, out_root, vocab_path, merges_path):
    name = fam["name"]
    fam_dir = out_root / name
    fam_dir.mkdir(parents=True)
    xl = name == "sdxl"

    text_encoder = build(CLIPTextModel, CLIPTextConfig(**fam["text_encoder"]),
                         seed_for(name, "text_encoder"))
    tokenizer = make_tokenizer(vocab_path, merges_path, fam["tokenizer"])
    unet = build(UNet2DConditionModel, fam["unet"], seed_for(name, "unet"))
    vae = build(AutoencoderKL, fam["vae"], seed_for(name, "vae"))
    sched_cls, sched_cfg = fam["scheduler"]
    scheduler = sched_cls(**sched_cfg)
    if xl:
        text_encoder_2 = build(CLIPTextModelWithProjection,
                               CLIPTextConfig(**fam["text_encoder_2"]),
                               seed_for(name, "text_encoder_2"))
        tokenizer_2 = make_tokenizer(vocab_path, merges_path, fam["tokenizer_2"])

    # ---- records (float32 models) ----
    rec = Recorder()
    gen = torch.Generator().manual_seed(seed_for(name, "inputs"))
    ids = tokenize(tokenizer)
    rec.add("tokenizer.input_ids", ids, "tokenizer",
            "tokenizer(PROMPTS, padding='max_length', max_length=77, truncation=True)")
    last, penult, pooled = record_text_encoder(rec, "text_encoder", "tokenizer", text_encoder, ids)
    if xl:
        ids_2 = tokenize(tokenizer_2)
        rec.add("tokenizer_2.input_ids", ids_2, "tokenizer_2",
                "tokenizer_2(PROMPTS, padding='max_length', max_length=77, truncation=True); "
                "pads with '!'")
        last_2, penult_2, text_embeds = record_text_encoder(
            rec, "text_encoder_2", "tokenizer_2", text_encoder_2, ids_2)
    record_vae(rec, vae, gen)
    if name == "sd1":
        record_tiled_vae(rec, vae, seed_for(name, "tiled_vae"))
    if xl:
        # SDXL conditions on both penultimate layers, concatenated on the channel axis.
        context = torch.cat([penult[:2], penult_2[:2]], dim=-1)
        h, w = LATENT_HW
        time_ids = torch.tensor([[h * 8.0, w * 8.0, 0.0, 0.0, h * 8.0, w * 8.0],
                                 [1024.0, 768.0, 16.0, 8.0, h * 8.0, w * 8.0]])
        added = {"text_embeds": text_embeds[:2], "time_ids": time_ids}
        record_unet(rec, "unet", unet, gen, context, added)
    else:
        # SD1 and SD2 condition on last_hidden_state (SD2's diffusers text encoder already
        # ends one layer early).
        record_unet(rec, "unet", unet, gen, last[:2])
    if fam["inpaint_unet"]:
        inpaint = build(UNet2DConditionModel, dict(fam["unet"], in_channels=9),
                        seed_for(name, "inpaint_unet"))
        record_unet(rec, "inpaint_unet", inpaint, gen, last[:2])

    write_safetensors(fam_dir / "components.safetensors", rec.tensors,
                      {"family": name, "format": "kiln-sd-components"})

    # ---- single file (original names, float16) ----
    single = {}
    single.update(unet_to_original(unet))
    single.update(vae_to_original(vae))
    if name == "sd1":
        single.update(clip_to_original(text_encoder, "cond_stage_model.transformer."))
    elif name == "sd2":
        single.update(openclip_to_original(
            text_encoder, "cond_stage_model.model.", fam["single_file_extra_layers"],
            seed_for(name, "openclip_extra")))
    else:
        single.update(clip_to_original(text_encoder, "conditioner.embedders.0.transformer."))
        single.update(openclip_to_original(text_encoder_2, "conditioner.embedders.1.model.",
                                           0, seed_for(name, "openclip_extra")))
    single = {k: v.to(torch.float16) for k, v in single.items()}
    write_safetensors(fam_dir / "single_file.safetensors", single)

    # ---- diffusers folder ----
    dtypes = fam["diffusers_dtypes"]
    components = dict(
        vae=copy.deepcopy(vae).to(dtypes["vae"]),
        text_encoder=copy.deepcopy(text_encoder).to(dtypes["text_encoder"]),
        tokenizer=tokenizer,
        unet=copy.deepcopy(unet).to(dtypes["unet"]),
        scheduler=scheduler,
    )
    if xl:
        components.update(text_encoder_2=copy.deepcopy(text_encoder_2).to(
            dtypes["text_encoder_2"]), tokenizer_2=tokenizer_2, force_zeros_for_empty_prompt=True)
        pipe = StableDiffusionXLPipeline(**components, add_watermarker=False)
    else:
        pipe = StableDiffusionPipeline(**components, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    diffusers_dir = fam_dir / "diffusers"
    pipe.save_pretrained(str(diffusers_dir), safe_serialization=True)
    if fam["inpaint_unet"]:
        inpaint.to(dtypes["unet"]).save_pretrained(str(fam_dir / "inpaint_unet"),
                                                   safe_serialization=True)

    originals = {"unet": unet, "vae": vae, "text_encoder": text_encoder}
    if xl:
        originals["text_encoder_2"] = text_encoder_2
    verify_diffusers_folder(fam, diffusers_dir, originals)
    verify_single_file(fam, fam_dir / "single_file.safetensors", diffusers_dir, originals)

    manifest = dict(
        family=name,
        # torch's local tag (+cpu, +cu12x) is left out: any build gives the same numbers here
        versions={"torch": torch.__version__.split("+")[0], "diffusers": diffusers.__version__,
                  "transformers": transformers.__version__},
        prompts=PROMPTS,
        components_file="components.safetensors",
        single_file="single_file.safetensors",
        notes=family_notes(fam),
        records=rec.entries,
    )
    (fam_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")

    # Tokenizer vocab.json / merges.txt are rebuilt by the tests (size budget).
    for tok in ("tokenizer", "tokenizer_2"):
        for f in ("vocab.json", "merges.txt"):
            p = diffusers_dir / tok / f
            if p.exists():
                p.unlink()


def family_notes(fam):
    notes = [
        "Every weight is float16-representable; float16 and float32 copies are equal.",
        "Records were computed in float32 with eval-mode models and diffusers' default "
        "attention processor (AttnProcessor2_0, scaled_dot_product_attention).",
        "tokenizer folders lack vocab.json and merges.txt; see ../README.md.",
    ]
    if fam["name"] == "sd2":
        notes.append("single_file holds one more OpenCLIP resblock than the diffusers text "
                     "encoder (the layer SD2 skips), plus text_projection and logit_scale that "
                     "no pipeline uses.")
    if fam["name"] == "sdxl":
        notes.append("unet.encoder_hidden_states = cat(text_encoder.penultimate_hidden_state, "
                     "text_encoder_2.penultimate_hidden_state, dim=-1) of prompts 0 and 1; "
                     "unet.text_embeds = text_encoder_2.text_embeds of prompts 0 and 1.")
    else:
        notes.append("unet.encoder_hidden_states = text_encoder.last_hidden_state of prompts "
                     "0 and 1.")
    return notes


# ---------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------


def assert_same_weights(what, loaded, original):
    got = {k: v.float() for k, v in loaded.state_dict().items()}
    want = {k: v.float() for k, v in original.state_dict().items()}
    if set(got) != set(want):
        raise AssertionError(f"[{what}] key sets differ: {sorted(set(got) ^ set(want))[:8]}")
    for k in sorted(want):
        if not torch.equal(got[k], want[k]):
            raise AssertionError(f"[{what}] weight {k} differs after reload")


def verify_diffusers_folder(fam, folder, originals):
    cls = StableDiffusionXLPipeline if fam["name"] == "sdxl" else StableDiffusionPipeline
    pipe = cls.from_pretrained(str(folder), torch_dtype=torch.float32, local_files_only=True)
    for part, model in originals.items():
        assert_same_weights(f"{fam['name']} diffusers {part}", getattr(pipe, part), model)


def verify_single_file(fam, path, config_folder, originals):
    cls = StableDiffusionXLPipeline if fam["name"] == "sdxl" else StableDiffusionPipeline
    kwargs = dict(config=str(config_folder), local_files_only=True, torch_dtype=torch.float32)
    if fam["name"] != "sdxl":
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    pipe = cls.from_single_file(str(path), **kwargs)
    for part, model in originals.items():
        assert_same_weights(f"{fam['name']} single file {part}", getattr(pipe, part), model)


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------

README = """# Tiny Stable Diffusion fixtures

Written by `Tests/Fixtures/generate_sd_fixtures.py` (the script's docstring says how to rerun
it and which versions are pinned). Random weights, real on-disk layouts, no downloads.

| path | what |
|---|---|
| `<family>/diffusers/` | `pipe.save_pretrained()` output (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/, and for sdxl text_encoder_2/ and tokenizer_2/) |
| `<family>/single_file.safetensors` | the same weights under the original CompVis / Stability key names, float16 |
| `<family>/components.safetensors` | recorded inputs and outputs (float32; token ids int32) |
| `<family>/manifest.json` | every record: name, shape, dtype, component, inputs, description |
| `sd1/inpaint_unet/` | a 9-input-channel SD1 U-Net: config.json + diffusion_pytorch_model.safetensors |

## Tokenizer files are not committed

Every CLIP tokenizer here uses the real 49,408-token CLIP BPE. Its vocab.json (1.06 MB as
transformers writes it) and merges.txt (0.52 MB) would take 6.3 MB for the four tokenizer
folders, and 1.6 MB even stored once, beyond this tree's 9 MB budget: the text encoders'
49,408-row token embeddings alone take 5.5 MB (each stored twice, diffusers + single file).
So the generator deletes `vocab.json` and `merges.txt` from every `tokenizer*/` folder after
saving; `tokenizer_config.json` and `special_tokens_map.json` stay. Tests that need a
complete folder rebuild them:

- `merges.txt` is `Tests/KilnModelsTests/Fixtures/clip/merges.txt` (the real CLIP merges);
- `vocab.json` follows from it: the 256 byte symbols in GPT-2 bytes_to_unicode order, the
  same 256 with `</w>` appended, one entry per merge (the pair concatenated), then
  `<|startoftext|>` and `<|endoftext|>` (ids 49406 and 49407).

The generator built the tokenizers from exactly those two files.

## Size choices

Text encoders have hidden size 8 (2 heads of 4; sdxl's first encoder 4, 2 heads of 2, so
that its width differs from text_encoder_2's, as from_single_file needs) and are stored in
float16 everywhere; the U-Nets and VAEs use 8/16 channels with GroupNorm groups of 4. The sd1
diffusers folder keeps its U-Net, inpainting U-Net and VAE in float32; sd2 and sdxl store
everything in float16; single files are all float16. Every weight was rounded to a float16
value first, so all copies hold equal numbers. Norm gains and zero-initialised biases were
randomised, so dropping or swapping them changes the outputs.

## What a loader meets here

- transformers 4.57.6 saves CLIP weights WITH the `text_model.` prefix
  (`text_model.embeddings.token_embedding.weight`, ...; `text_projection.weight` [P, D] at top
  level for the projection model) and writes `"dtype"` (not `"torch_dtype"`) in config.json.
- The text encoder configs carry `eos_token_id: 2` like the real ones, so transformers pools
  at `argmax(input_ids)` (the first `<|endoftext|>`), not at a search for id 2.
- diffusers' `attention_head_dim` in the U-Net configs is a head COUNT (sd1: 2 heads per
  block; sd2/sdxl per-block lists), `num_attention_heads` is null.
- VAE mid-block attention: diffusers `{encoder,decoder}.mid_block.attentions.0.{group_norm,
  to_q,to_k,to_v,to_out.0}` (Linear [C, C]); original `{encoder,decoder}.mid.attn_1.{norm,q,k,v,
  proj_out}` (1x1 conv [C, C, 1, 1]). Resnet shortcut: `conv_shortcut` vs `nin_shortcut`. The
  decoder's `up_blocks.i` is original `up.(n-1-i)`.
- Original U-Net names: `input_blocks.N.{0,1}` / `input_blocks.N.0.op` (downsampler),
  `middle_block.{0,1,2}`, `output_blocks.N.{0,1,2}` (upsampler `.1.conv` after a plain level,
  `.2.conv` after an attention level), `time_embed.{0,2}`, `label_emb.0.{0,2}` (sdxl
  add_embedding), `out.{0,2}`; resnets `in_layers.{0,2}`, `emb_layers.1`, `out_layers.{0,3}`,
  `skip_connection`. Transformer blocks keep diffusers' names.
- OpenCLIP (sd2 `cond_stage_model.model.`, sdxl `conditioner.embedders.1.model.`):
  `attn.in_proj_weight` [3D, D] (rows q, k, v) + `in_proj_bias`, `attn.out_proj`, `ln_1`,
  `ln_2`, `mlp.c_fc`, `mlp.c_proj`, `positional_embedding`, `token_embedding.weight`,
  `ln_final`, `text_projection` [D, P] (x @ P: the transpose of transformers' weight) and a
  0-dimensional `logit_scale`. The sd2 file has one resblock more than the diffusers text
  encoder (SD2 stops one layer early), plus an unused `text_projection`.
- `components.safetensors` is float32 except token ids (int32).
"""


def generate(out_root):
    merges_path = next((p for p in MERGES_CANDIDATES if p.exists()), None)
    if merges_path is None:
        sys.exit("CLIP merges not found: " + ", ".join(map(str, MERGES_CANDIDATES)))
    torch.set_grad_enabled(False)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_path, merges_copy = write_clip_vocab(merges_path, Path(tmp))
        for fam in FAMILIES:
            generate_family(fam, out_root, vocab_path, merges_copy)
    normalise_safetensors_tree(out_root)
    (out_root / "README.md").write_text(README)


def tree_size(root):
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="generate into a temporary folder and compare with the committed tree")
    args = parser.parse_args()
    for module, version in (("torch", torch.__version__), ("diffusers", diffusers.__version__),
                            ("transformers", transformers.__version__),
                            ("numpy", np.__version__)):
        if version.split("+")[0] != PINS[module]:
            print(f"warning: {module} {version} is not the pinned {PINS[module]}", file=sys.stderr)

    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "sd"
            generate(out)
            cmp = filecmp.dircmp(out, OUT_DIR)
            diffs = []

            def walk(c, rel):
                diffs.extend(f"{rel}{n}" for n in c.left_only + c.right_only + c.diff_files)
                for sub, sc in c.subdirs.items():
                    walk(sc, f"{rel}{sub}/")

            # dircmp compares shallowly by default; compare contents explicitly
            for p in sorted(out.rglob("*")):
                if p.is_file():
                    q = OUT_DIR / p.relative_to(out)
                    if not q.exists() or p.read_bytes() != q.read_bytes():
                        diffs.append(str(p.relative_to(out)))
            walk(cmp, "")
            if diffs:
                sys.exit("differs from the committed fixtures: " + ", ".join(sorted(set(diffs))))
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
