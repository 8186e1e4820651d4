"""Write a tiny random-weight DiT (Peebles & Xie) and diffusers DiTPipeline runs on it, for Kiln's tests.

Rerun from the repository root (same pins as the other generators, Tests/Fixtures/requirements.txt;
nothing is downloaded):

    .venv/bin/python Tests/Fixtures/generate_dit_fixtures.py

The model: a DiTTransformer2DModel (2 blocks, 2 heads of 16, patch 2 on an 8x8 latent, learned
sigma: 8 output channels for 4 input channels, 1000 classes plus the null class), the VAE of the
tiny sd1 fixture (Tests/KilnModelsTests/Fixtures/sd/sd1/diffusers/vae) and a DDIMScheduler with
DiT's own settings (linear betas 1e-4..2e-2, no clipping). Every weight is rounded to a
float16-representable value and the weights are stored as float16, so float16 and float32
copies hold the same numbers and the float32 records apply to both. diffusers repeats DiT's
timestep and class embedders inside every block (`transformer_blocks.N.norm1.emb`); the blocks
here share one set, as every checkpoint converted from the original does.

Writes Tests/KilnModelsTests/Fixtures/dit/:
  diffusers/                 `DiTPipeline.save_pretrained()`: model_index.json, transformer/,
                             vae/, scheduler/
  original.safetensors       the transformer under facebookresearch/DiT's names (x_embedder.proj,
                             t_embedder.mlp.0/2, y_embedder.embedding_table, pos_embed,
                             blocks.N.{adaLN_modulation.1, attn.qkv, attn.proj, mlp.fc1, mlp.fc2},
                             final_layer.{adaLN_modulation.1, linear}), float16; checked here by
                             converting it back the way diffusers' convert_dit_to_diffusers.py
                             does and comparing the outputs
  transformer.safetensors    `inputs.sample` [2, 4, 8, 8], `inputs.timesteps` [2],
                             `inputs.class_labels` [2] (int32; one is the null class 1000) and
                             `outputs.sample` [2, 8, 8, 8], DiTTransformer2DModel's output in
                             float32
  variant/                   another DiTTransformer2DModel (config.json and float16 weights): no
                             learned sigma, exact GELU, affine LayerNorm, 10 classes; its
                             `records.safetensors` holds inputs at 12x12 (larger than its
                             sample_size 8) and the output [3, 4, 12, 12]

Writes Tests/KilnPipelinesTests/Fixtures/dit/:
  cases.json                 every case: its settings exactly as `kiln generate` takes them
  latents.safetensors        `<case>.latents` [B, 4, 8, 8]: the pipeline's final latents before
                             1/scaling_factor and the VAE. DiTPipeline has no output_type="latent",
                             so they are taken from its own loop: the last `scheduler.step`'s
                             prev_sample, its first half under guidance (as the pipeline chunks it)
  <case>_<i>.png             image i, DiTPipeline's PIL output saved by Pillow

Output is byte-for-byte reproducible.
"""

import json
import os
import shutil
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["DIFFUSERS_VERBOSITY"] = "error"

import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402

import diffusers  # noqa: E402
from diffusers import AutoencoderKL, DDIMScheduler, DiTPipeline, DiTTransformer2DModel  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Tests" / "Fixtures"))
from generate_sd_fixtures import build, normalise_safetensors_tree, write_safetensors  # noqa: E402
from generate_pipeline_fixtures import SAMPLERS, SPACINGS  # noqa: E402

MODEL_DIR = REPO / "Tests" / "KilnModelsTests" / "Fixtures" / "dit"
PIPELINE_DIR = REPO / "Tests" / "KilnPipelinesTests" / "Fixtures" / "dit"
SD1_VAE = REPO / "Tests" / "KilnModelsTests" / "Fixtures" / "sd" / "sd1" / "diffusers" / "vae"

TRANSFORMER = dict(
    num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=2,
    sample_size=8, patch_size=2, activation_fn="gelu-approximate", num_embeds_ada_norm=1000,
    norm_type="ada_norm_zero", norm_elementwise_affine=False,
)
# The other branches: no learned sigma (out_channels = in_channels), exact GELU, an affine
# LayerNorm before the MLP, few classes; run at 12x12, larger than its sample_size, so the
# position table is stretched to the trained 4x4 grid.
VARIANT = dict(
    num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=None, num_layers=1,
    sample_size=8, patch_size=2, activation_fn="gelu", num_embeds_ada_norm=10,
    norm_type="ada_norm_zero", norm_elementwise_affine=True,
)
VARIANT_SAMPLE = (3, 4, 12, 12)
# facebook/DiT-XL-2-256's scheduler settings.
SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                 clip_sample=False)
SEED = 5000


def case(name, **settings):
    base = {"name": name, "sampler": None, "scheduler": "default", "class_labels": [207, 360],
            "steps": 4, "cfg_scale": 4.0, "seed": 42}
    unknown = set(settings) - set(base)
    assert not unknown, unknown
    base.update(settings)
    return base


CASES = [
    case("dit_ddim_cfg", steps=5),                                        # the folder's own DDIM
    case("dit_ddim_no_cfg", cfg_scale=1.0, class_labels=[5], seed=7),
    case("dit_dpmpp2m_cfg", sampler="dpm++2m", class_labels=[0, 999], steps=6, seed=11),
    case("dit_euler_no_cfg", sampler="euler", cfg_scale=1.0, class_labels=[12, 34], seed=3),
    # Ancestral noise is drawn for the doubled guidance batch, as DiTPipeline steps it whole.
    case("dit_euler_a_cfg", sampler="euler_a", class_labels=[1, 2], cfg_scale=2.5, seed=2024),
    case("dit_euler_karras_cfg", sampler="euler", scheduler="karras", class_labels=[88], steps=5, seed=8),
]


# ---------------------------------------------------------------------------------------
# The model, in diffusers' layout and in the original one
# ---------------------------------------------------------------------------------------

def make_transformer():
    model = build(DiTTransformer2DModel, TRANSFORMER, seed=SEED)
    # One timestep/class embedder shared by all blocks, as in a converted original checkpoint.
    with torch.no_grad():
        first = dict(model.transformer_blocks[0].norm1.emb.named_parameters())
        for block in model.transformer_blocks[1:]:
            for name, parameter in block.norm1.emb.named_parameters():
                parameter.copy_(first[name])
    return model


def to_original(model):
    """diffusers' DiTTransformer2DModel state -> facebookresearch/DiT's names."""
    state = model.state_dict()
    emb = "transformer_blocks.0.norm1.emb."
    original = {
        "x_embedder.proj.weight": state["pos_embed.proj.weight"],
        "x_embedder.proj.bias": state["pos_embed.proj.bias"],
        "t_embedder.mlp.0.weight": state[emb + "timestep_embedder.linear_1.weight"],
        "t_embedder.mlp.0.bias": state[emb + "timestep_embedder.linear_1.bias"],
        "t_embedder.mlp.2.weight": state[emb + "timestep_embedder.linear_2.weight"],
        "t_embedder.mlp.2.bias": state[emb + "timestep_embedder.linear_2.bias"],
        "y_embedder.embedding_table.weight": state[emb + "class_embedder.embedding_table.weight"],
        "pos_embed": model.pos_embed.pos_embed,
        "final_layer.adaLN_modulation.1.weight": state["proj_out_1.weight"],
        "final_layer.adaLN_modulation.1.bias": state["proj_out_1.bias"],
        "final_layer.linear.weight": state["proj_out_2.weight"],
        "final_layer.linear.bias": state["proj_out_2.bias"],
    }
    for depth in range(TRANSFORMER["num_layers"]):
        block = f"transformer_blocks.{depth}."
        out = f"blocks.{depth}."
        for kind in ("weight", "bias"):
            original[out + "adaLN_modulation.1." + kind] = state[block + "norm1.linear." + kind]
            original[out + "attn.qkv." + kind] = torch.cat(
                [state[block + f"attn1.to_{x}." + kind] for x in "qkv"], dim=0)
            original[out + "attn.proj." + kind] = state[block + "attn1.to_out.0." + kind]
            original[out + "mlp.fc1." + kind] = state[block + "ff.net.0.proj." + kind]
            original[out + "mlp.fc2." + kind] = state[block + "ff.net.2." + kind]
    return {name: tensor.detach().to(torch.float16).contiguous() for name, tensor in original.items()}


def from_original(original):
    """The original names -> diffusers', as scripts/convert_dit_to_diffusers.py maps them."""
    state = {
        "pos_embed.proj.weight": original["x_embedder.proj.weight"],
        "pos_embed.proj.bias": original["x_embedder.proj.bias"],
        "proj_out_1.weight": original["final_layer.adaLN_modulation.1.weight"],
        "proj_out_1.bias": original["final_layer.adaLN_modulation.1.bias"],
        "proj_out_2.weight": original["final_layer.linear.weight"],
        "proj_out_2.bias": original["final_layer.linear.bias"],
    }
    for depth in range(TRANSFORMER["num_layers"]):
        block = f"transformer_blocks.{depth}."
        emb = block + "norm1.emb."
        for kind in ("weight", "bias"):
            state[emb + "timestep_embedder.linear_1." + kind] = original["t_embedder.mlp.0." + kind]
            state[emb + "timestep_embedder.linear_2." + kind] = original["t_embedder.mlp.2." + kind]
            state[block + "norm1.linear." + kind] = original[f"blocks.{depth}.adaLN_modulation.1." + kind]
            q, k, v = torch.chunk(original[f"blocks.{depth}.attn.qkv." + kind], 3, dim=0)
            state[block + "attn1.to_q." + kind] = q
            state[block + "attn1.to_k." + kind] = k
            state[block + "attn1.to_v." + kind] = v
            state[block + "attn1.to_out.0." + kind] = original[f"blocks.{depth}.attn.proj." + kind]
            state[block + "ff.net.0.proj." + kind] = original[f"blocks.{depth}.mlp.fc1." + kind]
            state[block + "ff.net.2." + kind] = original[f"blocks.{depth}.mlp.fc2." + kind]
        state[emb + "class_embedder.embedding_table.weight"] = original["y_embedder.embedding_table.weight"]
    return {name: tensor.float() for name, tensor in state.items()}


def transformer_inputs():
    generator = torch.Generator().manual_seed(SEED + 1)
    return {
        "inputs.sample": torch.randn(2, 4, 8, 8, generator=generator),
        "inputs.timesteps": torch.tensor([981.0, 37.0]),
        "inputs.class_labels": torch.tensor([207, 1000], dtype=torch.int32),
    }


def write_model(pipe):
    transformer = pipe.transformer
    pipe.save_pretrained(MODEL_DIR / "diffusers", safe_serialization=True)
    # Store the transformer as float16 (the values are float16-representable already).
    half = {k: v.half() for k, v in transformer.state_dict().items()}
    write_safetensors(MODEL_DIR / "diffusers" / "transformer" / "diffusion_pytorch_model.safetensors", half,
                      {"format": "pt"})
    normalise_safetensors_tree(MODEL_DIR / "diffusers")

    original = to_original(transformer)
    write_safetensors(MODEL_DIR / "original.safetensors", original, {"format": "pt"})

    inputs = transformer_inputs()
    arguments = dict(timestep=inputs["inputs.timesteps"], class_labels=inputs["inputs.class_labels"].long())
    output = transformer(inputs["inputs.sample"], **arguments).sample

    # The original file, converted back as diffusers' script converts it, gives the same output.
    with safe_open(str(MODEL_DIR / "original.safetensors"), "pt") as f:
        reloaded = {k: f.get_tensor(k) for k in f.keys()}
    converted = DiTTransformer2DModel(**TRANSFORMER).eval()
    missing, unexpected = converted.load_state_dict(from_original(reloaded), strict=True)
    assert not missing and not unexpected
    difference = (converted(inputs["inputs.sample"], **arguments).sample - output).abs().max().item()
    assert difference == 0, f"original layout differs from diffusers' by {difference}"

    records = dict(inputs)
    records["outputs.sample"] = output.float().contiguous()
    write_safetensors(MODEL_DIR / "transformer.safetensors", records, {"format": "pt"})
    print(f"transformer: output {list(output.shape)}, max |x| {output.abs().max():.4f}")


def write_variant():
    model = build(DiTTransformer2DModel, VARIANT, seed=SEED + 10)
    folder = MODEL_DIR / "variant"
    model.half().save_pretrained(folder, safe_serialization=True)
    model.float()
    normalise_safetensors_tree(folder)
    generator = torch.Generator().manual_seed(SEED + 11)
    inputs = {
        "inputs.sample": torch.randn(*VARIANT_SAMPLE, generator=generator),
        "inputs.timesteps": torch.tensor([999.0, 500.0, 1.0]),
        "inputs.class_labels": torch.tensor([0, 9, 10], dtype=torch.int32),
    }
    output = model(inputs["inputs.sample"], timestep=inputs["inputs.timesteps"],
                   class_labels=inputs["inputs.class_labels"].long()).sample
    inputs["outputs.sample"] = output.float().contiguous()
    write_safetensors(folder / "records.safetensors", inputs, {"format": "pt"})
    print(f"variant: output {list(output.shape)}, max |x| {output.abs().max():.4f}")


# ---------------------------------------------------------------------------------------
# Pipeline runs
# ---------------------------------------------------------------------------------------

def run_case(pipe, settings):
    """Runs DiTPipeline for `settings`; returns (final latents, PIL images).

    The generator is torch's global one, seeded (`torch.manual_seed(seed)`, as DiTPipeline's own
    example does): DiTPipeline passes no generator to `scheduler.step`, so an ancestral
    sampler's noise comes from the global generator, which is then the same stream that drew
    the latents; `kiln generate --seed` draws both from one generator in that order.
    """
    forced = dict(SPACINGS[settings["scheduler"]])
    if settings["sampler"] is not None:
        class_name, sampler_forced = SAMPLERS[settings["sampler"]]
        forced.update(sampler_forced)
        scheduler_class = getattr(diffusers, class_name)
    else:
        scheduler_class = type(pipe.scheduler)
    base = pipe.scheduler
    pipe.scheduler = scheduler_class.from_config(base.config, **forced)
    last = {}
    original_step = pipe.scheduler.step

    def recording_step(*arguments, **keywords):
        result = original_step(*arguments, **keywords)
        last["sample"] = result.prev_sample if hasattr(result, "prev_sample") else result[0]
        return result

    pipe.scheduler.step = recording_step
    images = pipe(class_labels=settings["class_labels"], guidance_scale=settings["cfg_scale"],
                  generator=torch.manual_seed(settings["seed"]),
                  num_inference_steps=settings["steps"], output_type="pil").images
    pipe.scheduler = base
    latents = last["sample"]
    if settings["cfg_scale"] > 1:
        latents = latents.chunk(2, dim=0)[0]
    return latents.float().contiguous(), images


def main():
    torch.set_grad_enabled(False)
    torch.use_deterministic_algorithms(True)
    for folder in (MODEL_DIR, PIPELINE_DIR):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)

    transformer = make_transformer()
    vae = AutoencoderKL.from_pretrained(SD1_VAE, torch_dtype=torch.float32).eval()
    pipe = DiTPipeline(transformer=transformer, vae=vae, scheduler=DDIMScheduler(**SCHEDULER))
    pipe.set_progress_bar_config(disable=True)
    write_model(pipe)
    write_variant()
    # Run from the saved folder, as a user would: a scheduler built in memory keeps a list of
    # settings left at their defaults, which `from_config` then drops for the swapped sampler.
    pipe = DiTPipeline.from_pretrained(MODEL_DIR / "diffusers", torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)

    latents = {}
    records = []
    for settings in CASES:
        result, images = run_case(pipe, settings)
        latents[f"{settings['name']}.latents"] = result
        files = []
        for index, image in enumerate(images):
            file = f"{settings['name']}_{index}.png"
            image.save(PIPELINE_DIR / file)
            files.append(file)
        records.append(dict(settings, images=files, latent_shape=list(result.shape)))
        print(f"{settings['name']}: latents {list(result.shape)}, max |x| {result.abs().max():.4f}")
    write_safetensors(PIPELINE_DIR / "latents.safetensors", latents, {"format": "pt"})
    versions = {"torch": torch.__version__, "diffusers": diffusers.__version__}
    (PIPELINE_DIR / "cases.json").write_text(json.dumps({"versions": versions, "cases": records}, indent=1) + "\n")
    for folder in (MODEL_DIR, PIPELINE_DIR):
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        print(f"wrote {folder.relative_to(REPO)}: {size} bytes")


if __name__ == "__main__":
    main()
