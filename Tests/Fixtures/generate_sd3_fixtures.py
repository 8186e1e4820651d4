"""Write tiny random-weight SD3 / SD3.5 MMDiT transformer fixtures for Kiln's model tests.

Rerun from the repository root (nothing is downloaded; no model hub is contacted):

    python3 -m venv .venv
    .venv/bin/pip install -r Tests/Fixtures/requirements.txt
    .venv/bin/python Tests/Fixtures/generate_sd3_fixtures.py          # writes the fixtures
    .venv/bin/python Tests/Fixtures/generate_sd3_fixtures.py --check  # compares with the tree

Pins: those of Tests/Fixtures/requirements.txt (torch 2.13.0, diffusers 0.39.0, ...).

Output: Tests/KilnModelsTests/Fixtures/sd3/, per variant
  `sd3`  (SD3 medium's shape: no QK norm, no dual attention) and
  `sd35` (SD3.5 medium's shape: RMS QK norm, dual attention in the first blocks):

  <variant>/transformer/            config.json + diffusion_pytorch_model.safetensors (float16),
                                    as `SD3Transformer2DModel.save_pretrained()` writes them
  <variant>/single_file.safetensors the same weights under the original Stability key names
                                    (`model.diffusion_model.joint_blocks.N...`), float16
  <variant>/components.safetensors  recorded inputs and outputs of the transformer (float32)
  <variant>/manifest.json           what each record is and its shape
  architectures.json                the full-size SD3 medium, SD3.5 medium and SD3.5 large transformer
                                    configs with the number of values in diffusers' state_dict for
                                    each (built on the meta device: no weights, nothing downloaded)

Every weight is rounded to a float16-representable value before anything is saved or run,
so the float16 and float32 copies hold the same numbers and every record applies to both.

The original key names are written by inverting diffusers'
`convert_sd3_transformer_checkpoint_to_diffusers`; the script then runs that converter over
the single file and checks that it gives back every weight exactly.

Deterministic: fixed seeds, tensors and metadata in sorted order; `--check` regenerates into a
temporary folder and compares bytes with the committed tree.
"""

import argparse
import copy
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["DIFFUSERS_VERBOSITY"] = "error"

import torch  # noqa: E402

from diffusers import SD3Transformer2DModel  # noqa: E402
from diffusers.loaders.single_file_utils import convert_sd3_transformer_checkpoint_to_diffusers  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_sd_fixtures import build, normalise_safetensors_tree, write_safetensors  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "Tests/KilnModelsTests/Fixtures/sd3"

# Shared by both variants: 2 heads of 8 (width 16), a non-square 8x12 latent (4x6 patches)
# cropped from a 10x10 position grid, off-centre in both directions.
COMMON = dict(
    sample_size=16, patch_size=2, in_channels=16, attention_head_dim=8, num_attention_heads=2,
    joint_attention_dim=24, caption_projection_dim=16, pooled_projection_dim=12, out_channels=16,
    pos_embed_max_size=10,
)
VARIANTS = {
    "sd3": dict(COMMON, num_layers=2, dual_attention_layers=(), qk_norm=None),
    "sd35": dict(COMMON, num_layers=3, dual_attention_layers=(0, 1), qk_norm="rms_norm"),
}
SEEDS = {"sd3": 3000, "sd35": 3500}
BATCH, LATENT_HW, CONTEXT_LENGTH = 2, (8, 12), 7
# Flow-matching timesteps are sigma * 1000: fractional values.
TIMESTEPS = [1000.0, 437.25]

SINGLE_FILE_PREFIX = "model.diffusion_model."


def swap_halves(tensor):
    """The final adaLN layers store (shift, scale) originally and (scale, shift) in diffusers."""
    first, second = tensor.chunk(2, dim=0)
    return torch.cat([second, first], dim=0)


def to_original(state, config):
    """diffusers keys -> original Stability keys (the inverse of diffusers' converter)."""
    out = {}

    def put(original, tensor):
        out[SINGLE_FILE_PREFIX + original] = tensor

    put("pos_embed", state["pos_embed.pos_embed"])
    for part, name in (("weight", "weight"), ("bias", "bias")):
        put(f"x_embedder.proj.{part}", state[f"pos_embed.proj.{name}"])
        put(f"t_embedder.mlp.0.{part}", state[f"time_text_embed.timestep_embedder.linear_1.{name}"])
        put(f"t_embedder.mlp.2.{part}", state[f"time_text_embed.timestep_embedder.linear_2.{name}"])
        put(f"y_embedder.mlp.0.{part}", state[f"time_text_embed.text_embedder.linear_1.{name}"])
        put(f"y_embedder.mlp.2.{part}", state[f"time_text_embed.text_embedder.linear_2.{name}"])
        put(f"context_embedder.{part}", state[f"context_embedder.{name}"])
        put(f"final_layer.linear.{part}", state[f"proj_out.{name}"])
        put(f"final_layer.adaLN_modulation.1.{part}", swap_halves(state[f"norm_out.linear.{name}"]))
    layers = config["num_layers"]
    for i in range(layers):
        d, o = f"transformer_blocks.{i}.", f"joint_blocks.{i}."
        last = i == layers - 1
        for part in ("weight", "bias"):
            put(f"{o}x_block.attn.qkv.{part}",
                torch.cat([state[f"{d}attn.to_{n}.{part}"] for n in "qkv"]))
            put(f"{o}context_block.attn.qkv.{part}",
                torch.cat([state[f"{d}attn.add_{n}_proj.{part}"] for n in "qkv"]))
            put(f"{o}x_block.attn.proj.{part}", state[f"{d}attn.to_out.0.{part}"])
            put(f"{o}x_block.adaLN_modulation.1.{part}", state[f"{d}norm1.linear.{part}"])
            context_modulation = state[f"{d}norm1_context.linear.{part}"]
            put(f"{o}context_block.adaLN_modulation.1.{part}",
                swap_halves(context_modulation) if last else context_modulation)
            put(f"{o}x_block.mlp.fc1.{part}", state[f"{d}ff.net.0.proj.{part}"])
            put(f"{o}x_block.mlp.fc2.{part}", state[f"{d}ff.net.2.{part}"])
            if not last:
                put(f"{o}context_block.attn.proj.{part}", state[f"{d}attn.to_add_out.{part}"])
                put(f"{o}context_block.mlp.fc1.{part}", state[f"{d}ff_context.net.0.proj.{part}"])
                put(f"{o}context_block.mlp.fc2.{part}", state[f"{d}ff_context.net.2.{part}"])
            if i in config["dual_attention_layers"]:
                put(f"{o}x_block.attn2.qkv.{part}",
                    torch.cat([state[f"{d}attn2.to_{n}.{part}"] for n in "qkv"]))
                put(f"{o}x_block.attn2.proj.{part}", state[f"{d}attn2.to_out.0.{part}"])
        if config["qk_norm"] is not None:
            put(f"{o}x_block.attn.ln_q.weight", state[f"{d}attn.norm_q.weight"])
            put(f"{o}x_block.attn.ln_k.weight", state[f"{d}attn.norm_k.weight"])
            put(f"{o}context_block.attn.ln_q.weight", state[f"{d}attn.norm_added_q.weight"])
            put(f"{o}context_block.attn.ln_k.weight", state[f"{d}attn.norm_added_k.weight"])
            if i in config["dual_attention_layers"]:
                put(f"{o}x_block.attn2.ln_q.weight", state[f"{d}attn2.norm_q.weight"])
                put(f"{o}x_block.attn2.ln_k.weight", state[f"{d}attn2.norm_k.weight"])
    return out


def verify_single_file(variant, single, state):
    """diffusers' own converter must give back every weight, and use every original key."""
    converted = convert_sd3_transformer_checkpoint_to_diffusers({k: v.float() for k, v in single.items()})
    if set(converted) != set(state):
        sys.exit(f"{variant}: converter keys differ: {sorted(set(converted) ^ set(state))[:8]}")
    for key, value in state.items():
        if not torch.equal(converted[key], value):
            sys.exit(f"{variant}: converter gives a different '{key}'")


class Recorder:
    def __init__(self):
        self.tensors, self.entries = {}, []

    def add(self, name, tensor, description, inputs=()):
        t = tensor.detach().to(torch.float32).contiguous()
        self.tensors[name] = t
        self.entries.append(dict(name=name, shape=list(t.shape), dtype="F32", inputs=list(inputs),
                                 description=description))


def generate_variant(variant, out_root):
    config = VARIANTS[variant]
    torch.manual_seed(SEEDS[variant])
    model = build(SD3Transformer2DModel, config, SEEDS[variant])
    exact_positions = model.pos_embed.pos_embed.detach().clone()
    with torch.no_grad():
        # The position table is a buffer, not a parameter: round it too (see the module doc).
        model.pos_embed.pos_embed.copy_(model.pos_embed.pos_embed.half().float())
    folder = out_root / variant
    # float16 on disk keeps the fixture small; the values are the float32 model's (rounded above).
    copy.deepcopy(model).half().save_pretrained(folder / "transformer", safe_serialization=True)

    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    single = {k: v.to(torch.float16) for k, v in to_original(state, config).items()}
    verify_single_file(variant, single, state)
    write_safetensors(folder / "single_file.safetensors", single)

    gen = torch.Generator().manual_seed(SEEDS[variant] + 1)
    h, w = LATENT_HW
    hidden = torch.randn(BATCH, config["in_channels"], h, w, generator=gen)
    context = torch.randn(BATCH, CONTEXT_LENGTH, config["joint_attention_dim"], generator=gen)
    pooled = torch.randn(BATCH, config["pooled_projection_dim"], generator=gen)
    timestep = torch.tensor(TIMESTEPS)
    with torch.no_grad():
        out = model(hidden_states=hidden, encoder_hidden_states=context, pooled_projections=pooled,
                    timestep=timestep).sample
    rec = Recorder()
    rec.add("transformer.hidden_states", hidden, "noisy latents [B, 16, H, W], non-square")
    rec.add("transformer.encoder_hidden_states", context, "text states [B, L, joint_attention_dim]")
    rec.add("transformer.pooled_projections", pooled, "pooled text [B, pooled_projection_dim]")
    rec.add("transformer.timestep", timestep, "one flow-matching timestep (sigma * 1000) per row")
    rec.add("transformer.pos_embed_exact", exact_positions,
            "PatchEmbed's pos_embed buffer as diffusers computes it, before the float16 rounding")
    rec.add("transformer.sample", out, "SD3Transformer2DModel(...).sample",
            ["transformer.hidden_states", "transformer.encoder_hidden_states",
             "transformer.pooled_projections", "transformer.timestep"])
    write_safetensors(folder / "components.safetensors", rec.tensors)
    manifest = dict(variant=variant, config={k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items()},
                    records=rec.entries)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


# The published models' transformer configs (transformer/config.json of each diffusers repository).
FULL_SIZE_COMMON = dict(sample_size=128, patch_size=2, in_channels=16, attention_head_dim=64, joint_attention_dim=4096,
                        pooled_projection_dim=2048, out_channels=16)
FULL_SIZE = {
    "sd3_medium": dict(FULL_SIZE_COMMON, num_layers=24, num_attention_heads=24, caption_projection_dim=1536,
                       pos_embed_max_size=192, dual_attention_layers=[], qk_norm=None),
    "sd35_medium": dict(FULL_SIZE_COMMON, num_layers=24, num_attention_heads=24, caption_projection_dim=1536,
                        pos_embed_max_size=384, dual_attention_layers=list(range(13)), qk_norm="rms_norm"),
    "sd35_large": dict(FULL_SIZE_COMMON, num_layers=38, num_attention_heads=38, caption_projection_dim=2432,
                       pos_embed_max_size=192, dual_attention_layers=[], qk_norm="rms_norm"),
}


def write_architectures(out_root):
    records = {}
    for name, config in FULL_SIZE.items():
        with torch.device("meta"):
            model = SD3Transformer2DModel(**config)
        records[name] = dict(config=config, state_dict_values=sum(t.numel() for t in model.state_dict().values()))
    (out_root / "architectures.json").write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")


def generate(out_root):
    for variant in VARIANTS:
        generate_variant(variant, out_root)
    write_architectures(out_root)
    normalise_safetensors_tree(out_root)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="generate into a temporary folder and compare with the committed tree")
    args = parser.parse_args()
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
