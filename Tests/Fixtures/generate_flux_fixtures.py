"""Write tiny random-weight FLUX.1 transformer fixtures for Kiln's model tests.

Rerun from the repository root (nothing is downloaded; no model hub is contacted):

    .venv/bin/pip install -r Tests/Fixtures/requirements.txt
    .venv/bin/python Tests/Fixtures/generate_flux_fixtures.py          # rewrite
    .venv/bin/python Tests/Fixtures/generate_flux_fixtures.py --check  # compare with the committed tree

Pins: see Tests/Fixtures/requirements.txt (torch 2.13.0, diffusers 0.39.0).

Output: Tests/KilnModelsTests/Fixtures/flux/, one folder per variant:

  schnell/   no guidance embedding (FLUX.1-schnell's layout); diffusers folder in float16,
             single file in float16 with the original Black Forest Labs key names
  dev/       guidance_embeds=True (FLUX.1-dev's layout); diffusers folder in bfloat16,
             single file in bfloat16 with the original key names behind the
             `model.diffusion_model.` prefix that ComfyUI-style files carry

  <variant>/transformer/config.json, diffusion_pytorch_model.safetensors  (save_pretrained)
  <variant>/single_file.safetensors   the same weights under double_blocks.* / single_blocks.*
  <variant>/records.safetensors       inputs, the rotary tables FluxPosEmbed computes, and the
                                      transformer's output (float32)
  float8.safetensors                  all 256 bit patterns as F8_E4M3 and F8_E5M2 with torch's
                                      float32 values (`<format>.values`), for FLUX's fp8 files

Weights are rounded to the storage type of every copy (float16 for schnell, bfloat16 for
dev) before anything is saved or run, so every copy holds the same numbers and the records,
computed in float32, apply to each.

The original key names come from inverting diffusers'
`convert_flux_transformer_checkpoint_to_diffusers` (fused q/k/v, the single blocks' fused
q/k/v/MLP projection, and final_layer.adaLN_modulation stored as [shift; scale] where
diffusers' norm_out holds [scale; shift]). diffusers' converter assumes the full model's
width (3072) when it splits the single blocks, so it cannot load a tiny file back; instead
`check_inverse` re-derives every diffusers tensor from the single file with the converter's
rules at the tiny width and compares.

Deterministic: fixed seeds, sorted tensors and metadata; `--check` regenerates into a
temporary folder and compares bytes.
"""

import argparse
import json
import os
import shutil
import struct
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["DIFFUSERS_VERBOSITY"] = "error"

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_sd_fixtures import perturb_trivial_parameters  # noqa: E402

from diffusers import FluxTransformer2DModel  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "Tests/KilnModelsTests/Fixtures/flux"
SIZE_BUDGET = 1_000_000

# Small but with every structural feature: 2 heads, a rotary split over 3 unequal axes,
# 2 double-stream and 2 single-stream blocks, the real 64 packed input channels.
BASE_CONFIG = dict(
    patch_size=1,
    in_channels=64,
    out_channels=None,
    num_layers=2,
    num_single_layers=2,
    attention_head_dim=12,
    num_attention_heads=2,
    joint_attention_dim=20,
    pooled_projection_dim=16,
    axes_dims_rope=[2, 4, 6],
)

VARIANTS = {
    "schnell": dict(guidance=False, storage=torch.float16, diffusers_dtype=torch.float16, prefix="", seed=11),
    "dev": dict(guidance=True, storage=torch.bfloat16, diffusers_dtype=torch.bfloat16,
                prefix="model.diffusion_model.", seed=12),
}

# Packed latents of a non-square image: 6x10 latent pixels -> 3x5 patches of 2x2.
BATCH, PATCH_ROWS, PATCH_COLUMNS, TEXT_LENGTH = 2, 3, 5, 6


_ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int32: "I32",
              torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2"}


def write_safetensors(path, tensors, metadata=None):
    """A safetensors file with tensors and metadata in sorted order (stable bytes), bfloat16 included."""
    header = {"__metadata__": {k: metadata[k] for k in sorted(metadata)}} if metadata else {}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16)
        elif t.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
            raw = t.view(torch.uint8)
        else:
            raw = t
        data = raw.numpy().tobytes()
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def normalise_safetensors_tree(root):
    """Rewrite every .safetensors under `root` through `write_safetensors` (stable bytes)."""
    from safetensors import safe_open

    for path in sorted(root.rglob("*.safetensors")):
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        write_safetensors(path, tensors, metadata)


def build(config, seed, storage):
    torch.manual_seed(seed)
    model = FluxTransformer2DModel(**config)
    perturb_trivial_parameters(model, torch.Generator().manual_seed(seed + 100))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(storage).float())
    return model.eval()


def latent_image_ids(rows, columns):
    """FluxPipeline's ids: axis 0 zero, axis 1 the patch row, axis 2 the patch column."""
    ids = torch.zeros(rows, columns, 3)
    ids[..., 1] += torch.arange(rows)[:, None]
    ids[..., 2] += torch.arange(columns)[None, :]
    return ids.reshape(rows * columns, 3)


def original_state(model, config):
    """The model's weights under Black Forest Labs' key names (the converter's inverse)."""
    s = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out = {}

    def take(name):
        return s.pop(name)

    for ours, theirs in [("time_text_embed.timestep_embedder", "time_in"),
                         ("time_text_embed.text_embedder", "vector_in"),
                         ("time_text_embed.guidance_embedder", "guidance_in")]:
        if f"{ours}.linear_1.weight" not in s:
            continue
        for kind in ("weight", "bias"):
            out[f"{theirs}.in_layer.{kind}"] = take(f"{ours}.linear_1.{kind}")
            out[f"{theirs}.out_layer.{kind}"] = take(f"{ours}.linear_2.{kind}")
    for kind in ("weight", "bias"):
        out[f"txt_in.{kind}"] = take(f"context_embedder.{kind}")
        out[f"img_in.{kind}"] = take(f"x_embedder.{kind}")
    for i in range(config["num_layers"]):
        b, o = f"transformer_blocks.{i}.", f"double_blocks.{i}."
        for kind in ("weight", "bias"):
            out[f"{o}img_mod.lin.{kind}"] = take(f"{b}norm1.linear.{kind}")
            out[f"{o}txt_mod.lin.{kind}"] = take(f"{b}norm1_context.linear.{kind}")
            out[f"{o}img_attn.qkv.{kind}"] = torch.cat([take(f"{b}attn.to_{x}.{kind}") for x in "qkv"])
            out[f"{o}txt_attn.qkv.{kind}"] = torch.cat([take(f"{b}attn.add_{x}_proj.{kind}") for x in "qkv"])
            out[f"{o}img_mlp.0.{kind}"] = take(f"{b}ff.net.0.proj.{kind}")
            out[f"{o}img_mlp.2.{kind}"] = take(f"{b}ff.net.2.{kind}")
            out[f"{o}txt_mlp.0.{kind}"] = take(f"{b}ff_context.net.0.proj.{kind}")
            out[f"{o}txt_mlp.2.{kind}"] = take(f"{b}ff_context.net.2.{kind}")
            out[f"{o}img_attn.proj.{kind}"] = take(f"{b}attn.to_out.0.{kind}")
            out[f"{o}txt_attn.proj.{kind}"] = take(f"{b}attn.to_add_out.{kind}")
        out[f"{o}img_attn.norm.query_norm.scale"] = take(f"{b}attn.norm_q.weight")
        out[f"{o}img_attn.norm.key_norm.scale"] = take(f"{b}attn.norm_k.weight")
        out[f"{o}txt_attn.norm.query_norm.scale"] = take(f"{b}attn.norm_added_q.weight")
        out[f"{o}txt_attn.norm.key_norm.scale"] = take(f"{b}attn.norm_added_k.weight")
    for i in range(config["num_single_layers"]):
        b, o = f"single_transformer_blocks.{i}.", f"single_blocks.{i}."
        for kind in ("weight", "bias"):
            out[f"{o}modulation.lin.{kind}"] = take(f"{b}norm.linear.{kind}")
            out[f"{o}linear1.{kind}"] = torch.cat([take(f"{b}attn.to_{x}.{kind}") for x in "qkv"]
                                                  + [take(f"{b}proj_mlp.{kind}")])
            out[f"{o}linear2.{kind}"] = take(f"{b}proj_out.{kind}")
        out[f"{o}norm.query_norm.scale"] = take(f"{b}attn.norm_q.weight")
        out[f"{o}norm.key_norm.scale"] = take(f"{b}attn.norm_k.weight")
    for kind in ("weight", "bias"):
        out[f"final_layer.linear.{kind}"] = take(f"proj_out.{kind}")
        scale, shift = take(f"norm_out.linear.{kind}").chunk(2)
        out[f"final_layer.adaLN_modulation.1.{kind}"] = torch.cat([shift, scale])
    assert not s, f"unmapped diffusers keys: {sorted(s)}"
    return out


def check_inverse(model, original, config):
    """Apply diffusers' conversion rules (at this model's width) and compare with the model."""
    inner = config["num_attention_heads"] * config["attention_head_dim"]
    from diffusers.loaders import single_file_utils as sfu

    # The converter's only width-dependent step is the single blocks' split; everything else is
    # run by diffusers' own function on a copy whose single blocks are split here.
    checkpoint = {k: v.clone() for k, v in original.items()}
    singles = {}
    for i in range(config["num_single_layers"]):
        o, b = f"single_blocks.{i}.", f"single_transformer_blocks.{i}."
        sizes = (inner, inner, inner, 4 * inner)
        for kind in ("weight", "bias"):
            q, k, v, mlp = torch.split(checkpoint.pop(f"{o}linear1.{kind}"), sizes)
            singles.update({f"{b}attn.to_q.{kind}": q, f"{b}attn.to_k.{kind}": k, f"{b}attn.to_v.{kind}": v,
                            f"{b}proj_mlp.{kind}": mlp, f"{b}proj_out.{kind}": checkpoint.pop(f"{o}linear2.{kind}"),
                            f"{b}norm.linear.{kind}": checkpoint.pop(f"{o}modulation.lin.{kind}")})
        singles[f"{b}attn.norm_q.weight"] = checkpoint.pop(f"{o}norm.query_norm.scale")
        singles[f"{b}attn.norm_k.weight"] = checkpoint.pop(f"{o}norm.key_norm.scale")
    # One placeholder single block at the full width lets the converter run its own split;
    # its output is dropped and replaced by the blocks split above.
    dummy = {f"single_blocks.0.{n}": torch.zeros(1) for n in
             ["linear2.weight", "linear2.bias", "modulation.lin.weight", "modulation.lin.bias",
              "norm.query_norm.scale", "norm.key_norm.scale"]}
    dummy["single_blocks.0.linear1.weight"] = torch.zeros(7 * 3072)
    dummy["single_blocks.0.linear1.bias"] = torch.zeros(7 * 3072)
    checkpoint.update(dummy)
    converted = sfu.convert_flux_transformer_checkpoint_to_diffusers(checkpoint)
    converted = {k: v for k, v in converted.items() if not k.startswith("single_transformer_blocks.")}
    converted.update(singles)
    state = model.state_dict()
    assert sorted(converted) == sorted(state), "converted key set differs"
    for k, v in state.items():
        assert torch.equal(converted[k], v), f"{k} differs after conversion"


def generate(out_root):
    for name, variant in VARIANTS.items():
        config = dict(BASE_CONFIG, guidance_embeds=variant["guidance"])
        model = build(config, variant["seed"], variant["storage"])
        folder = out_root / name
        model.to(variant["diffusers_dtype"]).save_pretrained(folder / "transformer", safe_serialization=True)
        model.float()

        original = original_state(model, config)
        check_inverse(model, original, config)
        write_safetensors(folder / "single_file.safetensors",
                          {variant["prefix"] + k: v.to(variant["storage"]) for k, v in original.items()})

        g = torch.Generator().manual_seed(variant["seed"] + 1000)
        image_length = PATCH_ROWS * PATCH_COLUMNS
        inputs = {
            "hidden_states": torch.randn(BATCH, image_length, config["in_channels"], generator=g),
            "encoder_hidden_states": torch.randn(BATCH, TEXT_LENGTH, config["joint_attention_dim"], generator=g),
            "pooled_projections": torch.randn(BATCH, config["pooled_projection_dim"], generator=g),
            "timestep": torch.tensor([0.75, 0.3125]),
            "img_ids": latent_image_ids(PATCH_ROWS, PATCH_COLUMNS),
            # FluxPipeline passes zeros; distinct values on every axis also exercise the
            # text positions' rotation.
            "txt_ids": torch.stack([torch.arange(TEXT_LENGTH) % 3, torch.arange(TEXT_LENGTH),
                                    torch.arange(TEXT_LENGTH) * 2], dim=1).float(),
        }
        if variant["guidance"]:
            inputs["guidance"] = torch.tensor([3.5, 5.0])
        with torch.no_grad():
            cos, sin = model.pos_embed(torch.cat([inputs["txt_ids"], inputs["img_ids"]]))
            output = model(**inputs, return_dict=False)[0]
        records = {f"inputs.{k}": v.float() for k, v in inputs.items()}
        records.update({"rope.cos": cos.float(), "rope.sin": sin.float(), "output": output.float()})
        write_safetensors(folder / "records.safetensors", records,
                          {"generator": "Tests/Fixtures/generate_flux_fixtures.py",
                           "torch": torch.__version__, "diffusers": __import__("diffusers").__version__})
    # Every bit pattern of both 8-bit float formats FLUX files are shipped in, with torch's
    # float32 reading of each.
    patterns = torch.arange(256, dtype=torch.int32).to(torch.uint8)
    float8 = {}
    for name, dtype in [("e4m3fn", torch.float8_e4m3fn), ("e5m2", torch.float8_e5m2)]:
        values = patterns.view(dtype)
        float8[name] = values
        float8[f"{name}.values"] = values.float()
    write_safetensors(out_root / "float8.safetensors", float8)
    normalise_safetensors_tree(out_root)


def tree_size(root):
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed fixtures")
    args = parser.parse_args()
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
