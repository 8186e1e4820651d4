"""Record diffusers runs with LoRAs (and LoHa/LoKr adapters) on the tiny models, for Kiln's LoRA tests.

Rerun from the repository root after the model fixtures (pins in Tests/Fixtures/requirements.txt,
peft included):

    .venv/bin/python Tests/Fixtures/generate_lora_fixtures.py

Nothing is downloaded. Adapters are random PEFT adapters (`init_lora_weights=False`, factors
rounded to float16 and saved as float16) on the tiny Stable Diffusion 1/XL, SD3 and FLUX.1
fixtures, saved with the pipelines' `save_lora_weights` and their `lora_adapter_metadata`, then
rewritten in the other layouts trainers use:

  sd1_a_peft       U-Net (attention, feed-forward, 1x1 and 3x3 convolutions: LoCon) and text
                   encoder; r 2 (4 for to_v by rank_pattern), lora_alpha 3 (5 for conv1 by
                   alpha_pattern); PEFT names, lora_A/lora_B
  sd1_a_kohya      the same through diffusers' convert_state_dict_to_kohya (lora_unet_, lora_te1_),
                   with each module's .alpha set to its PEFT alpha (the converter writes the rank)
  sd1_b_peft       a second adapter with use_rslora (scale alpha / sqrt(r))
  sd1_loha, sd1_lokr  PEFT LoHa and LoKr adapters on the U-Net in LyCORIS's names
                   (lora_unet_*.hada_w1_a ..., .lokr_w1, .lokr_w2_a ...) with .alpha
  sdxl_kohya       U-Net in the original (sgm) names kohya's SDXL trainer writes
                   (lora_unet_input_blocks_4_1_...), both text encoders (lora_te1_, lora_te2_)
  sd3_peft         SD3 transformer (PEFT names)
  flux_peft        FLUX transformer (every linear, norm_out's swapped halves included) and CLIP
  flux_kohya       the same in sd-scripts' FLUX names (lora_unet_double_blocks_0_img_attn_qkv,
                   fused q/k/v and linear1 as block-diagonal ups over stacked downs, alpha scaled)
  flux_bfl         the same in Black Forest Labs' / ComfyUI's names (diffusion_model.double_blocks...)
  flux_xlabs       random XLabs processor LoRAs (double_blocks.0.processor.qkv_lora1.down.weight ...)

Each case runs the pipeline in float32 on the CPU with `torch.Generator("cpu").manual_seed(seed)`
after `load_lora_weights` and `set_adapters(names, weights)` (or `fuse_lora` where the case says
so), LoHa/LoKr with the PEFT adapters injected into the U-Net, and records the final latents
(output_type="latent"). Every layout of one adapter is checked here to give diffusers the same
latents as the PEFT file.

Writes Tests/KilnPipelinesTests/Fixtures/lora/: the adapters, cases.json, latents.safetensors.
"""

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
from safetensors.torch import load_file, save_file  # noqa: E402

import diffusers  # noqa: E402
import peft  # noqa: E402
from diffusers import (  # noqa: E402
    EulerDiscreteScheduler, FluxPipeline, StableDiffusion3Pipeline, StableDiffusionPipeline, StableDiffusionXLPipeline,
)
from diffusers.utils import convert_state_dict_to_kohya  # noqa: E402
from peft import LoHaConfig, LoKrConfig, LoraConfig, inject_adapter_in_model  # noqa: E402
from peft.utils import get_peft_model_state_dict  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Tests" / "Fixtures"))
from generate_sd_fixtures import MERGES_CANDIDATES, map_by_prefix, unet_prefix_map, write_clip_vocab  # noqa: E402

MODELS = REPO / "Tests" / "KilnModelsTests" / "Fixtures"
PIPELINE_FIXTURES = REPO / "Tests" / "KilnPipelinesTests" / "Fixtures"
OUT_DIR = PIPELINE_FIXTURES / "lora"
T5_TOKENIZER = MODELS / "t5_tokenizer" / "tokenizer"
PROMPT = "a photo of an astronaut riding a horse"
NEGATIVE = "blurry, low quality"


def rounded_half(module):
    """Every LoRA factor rounded to a float16 value, so the saved float16 file holds the same numbers."""
    for name, parameter in module.named_parameters():
        if any(part in name for part in ("lora_", "hada_", "lokr_")):
            parameter.data = parameter.data.half().float()
    return module


def half(state):
    return {k: v.detach().to(torch.float16).contiguous() for k, v in state.items()}


def add_lora(model, seed, **config):
    torch.manual_seed(seed)
    lora = LoraConfig(init_lora_weights=False, **config)
    model.add_adapter(lora)
    rounded_half(model)
    state = get_peft_model_state_dict(model)
    model.delete_adapters("default") if hasattr(model, "delete_adapters") else model.delete_adapter("default")
    return state, lora.to_dict()


# MARK: folders


def complete(source, tmp, name):
    folder = Path(tmp) / name
    shutil.copytree(source, folder, symlinks=False)
    merges = next(p for p in MERGES_CANDIDATES if p.exists())
    for tokenizer in sorted(folder.glob("tokenizer*")):
        if (tokenizer / "tokenizer_config.json").exists() and "T5" not in (tokenizer / "tokenizer_config.json").read_text():
            write_clip_vocab(merges, tokenizer)
    return folder


def sd3_folder(tmp):
    folder = complete(PIPELINE_FIXTURES / "sd3" / "model", tmp, "sd3")
    shutil.copytree(MODELS / "sd" / "sdxl" / "diffusers" / "text_encoder_2", folder / "text_encoder_2")
    shutil.copytree(T5_TOKENIZER, folder / "tokenizer_3")
    return folder


def flux_folder(tmp):
    folder = Path(tmp) / "flux"
    shutil.copytree(PIPELINE_FIXTURES / "flux" / "full", folder)
    shutil.copytree(MODELS / "sd" / "sd1" / "diffusers" / "text_encoder", folder / "text_encoder")
    shutil.copytree(MODELS / "sd" / "sd1" / "diffusers" / "tokenizer", folder / "tokenizer")
    write_clip_vocab(next(p for p in MERGES_CANDIDATES if p.exists()), folder / "tokenizer")
    shutil.copytree(T5_TOKENIZER, folder / "tokenizer_2")
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


# MARK: layouts


def peft_alpha(metadata, prefix, module):
    """The alpha PEFT gives `module` (its path inside the component) under `metadata`."""
    import re
    for pattern in sorted(metadata.get("alpha_pattern") or {}):
        if re.match(rf"(.*\.)?({pattern})$", module):
            return metadata["alpha_pattern"][pattern]
    return metadata["lora_alpha"]


def to_kohya(state, metadatas):
    """diffusers' converter, then each module's alpha set to the one PEFT uses."""
    kohya = convert_state_dict_to_kohya(state)
    for key in list(kohya):
        if not key.endswith(".alpha"):
            continue
        module = key[: -len(".alpha")]
        for prefix, kohya_prefix in (("text_encoder_2", "lora_te2_"), ("text_encoder", "lora_te1_"), ("unet", "lora_unet_")):
            if module.startswith(kohya_prefix):
                down = next(k for k in state if k.startswith(prefix + ".") and k.endswith(".lora_A.weight")
                            and k[len(prefix) + 1: -len(".lora_A.weight")].replace(".", "_") == module[len(kohya_prefix):])
                path = down[len(prefix) + 1: -len(".lora_A.weight")]
                kohya[key] = torch.tensor(float(peft_alpha(metadatas[prefix], prefix, path)))
                break
    return kohya


def unet_to_sgm(state, metadatas, config):
    """A kohya SDXL file: the U-Net's modules in the original (sgm) names, text encoders as kohya writes them."""
    kohya = to_kohya(state, metadatas)
    prefixes = unet_prefix_map(config)
    out = {}
    for key, value in kohya.items():
        module, _, suffix = key.partition(".")
        if not module.startswith("lora_unet_"):
            out[key] = value
            continue
        peft_key = next(k for k in state if k.startswith("unet.") and k.endswith(".lora_A.weight")
                        and k[5: -len(".lora_A.weight")].replace(".", "_") == module[len("lora_unet_"):])
        path = peft_key[5: -len(".lora_A.weight")]
        original = next(iter(map_by_prefix({path + ".weight": None}, prefixes, "unet")))
        out["lora_unet_" + original[: -len(".weight")].replace(".", "_") + "." + suffix] = value
    return out


FLUX_DOUBLE = {"img_attn.qkv": ["attn.to_q", "attn.to_k", "attn.to_v"],
               "txt_attn.qkv": ["attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"],
               "img_attn.proj": ["attn.to_out.0"], "txt_attn.proj": ["attn.to_add_out"],
               "img_mlp.0": ["ff.net.0.proj"], "img_mlp.2": ["ff.net.2"],
               "txt_mlp.0": ["ff_context.net.0.proj"], "txt_mlp.2": ["ff_context.net.2"],
               "img_mod.lin": ["norm1.linear"], "txt_mod.lin": ["norm1_context.linear"]}
FLUX_SINGLE = {"linear1": ["attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"], "linear2": ["proj_out"],
               "modulation.lin": ["norm.linear"]}


def flux_to_bfl(state, alpha):
    """FLUX PEFT modules as BFL modules: a fused weight's LoRA stacks the downs and puts the ups
    on the block diagonal (rank x parts, alpha x parts, so alpha / rank is unchanged)."""
    def factors(path):
        return state[f"transformer.{path}.lora_A.weight"], state[f"transformer.{path}.lora_B.weight"]

    out = {}
    blocks = sorted({int(k.split(".")[2]) for k in state if k.startswith("transformer.transformer_blocks.")})
    singles = sorted({int(k.split(".")[2]) for k in state if k.startswith("transformer.single_transformer_blocks.")})
    groups = [(f"double_blocks.{i}.{bfl}", [f"transformer_blocks.{i}.{p}" for p in parts])
              for i in blocks for bfl, parts in FLUX_DOUBLE.items()]
    groups += [(f"single_blocks.{i}.{bfl}", [f"single_transformer_blocks.{i}.{p}" for p in parts])
               for i in singles for bfl, parts in FLUX_SINGLE.items()]
    groups.append(("final_layer.linear", ["proj_out"]))
    groups.append(("final_layer.adaLN_modulation.1", ["norm_out.linear"]))
    for bfl, parts in groups:
        if not all(f"transformer.{p}.lora_A.weight" in state for p in parts):
            assert not any(f"transformer.{p}.lora_A.weight" in state for p in parts), bfl
            continue
        downs, ups = zip(*(factors(p) for p in parts))
        down = torch.cat(downs, 0)
        up = torch.block_diag(*ups)
        # The fused change is the parts' changes stacked: up · down / parts = [B_i A_i] (alpha / r each).
        stacked = torch.cat([b @ a for a, b in zip(downs, ups)], 0)
        assert torch.allclose(up @ down, stacked), bfl
        if bfl == "final_layer.adaLN_modulation.1":
            shift, scale = up.chunk(2, dim=0)   # diffusers (scale, shift) -> BFL (shift, scale)
            up = torch.cat([scale, shift], 0)
        out[bfl] = (down, up, torch.tensor(float(alpha * len(parts))))
    return out


def flux_kohya(bfl):
    out = {}
    for module, (down, up, alpha) in bfl.items():
        name = "lora_unet_" + module.replace(".", "_")
        out.update({name + ".lora_down.weight": down, name + ".lora_up.weight": up, name + ".alpha": alpha})
    return out


def flux_comfy(bfl):
    out = {}
    for module, (down, up, alpha) in bfl.items():
        name = "diffusion_model." + module
        out.update({name + ".lora_A.weight": down, name + ".lora_B.weight": up, name + ".alpha": alpha})
    return out


def xlabs_lora(transformer, seed, rank=2):
    """Random XLabs processor LoRAs on every double block's attention and the single block's."""
    generator = torch.Generator().manual_seed(seed)
    width = transformer.config.num_attention_heads * transformer.config.attention_head_dim
    out = {}
    def pair(name, outputs):
        out[name + ".down.weight"] = (torch.randn(rank, width, generator=generator) * 0.3).half()
        out[name + ".up.weight"] = (torch.randn(outputs, rank, generator=generator) * 0.3).half()
    for i in range(len(transformer.transformer_blocks)):
        for stream in ("1", "2"):
            pair(f"double_blocks.{i}.processor.qkv_lora{stream}", 3 * width)
            pair(f"double_blocks.{i}.processor.proj_lora{stream}", width)
    return out


def lycoris_from_peft(model, kind):
    """A PEFT LoHa / LoKr adapter's factors in LyCORIS's names, with each module's alpha."""
    out = {}
    for name, module in model.named_modules():
        if not hasattr(module, "scaling") or "default" not in getattr(module, "scaling", {}):
            continue
        prefix = "lora_unet_" + name.replace(".", "_")
        parameters = [p for p in ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "lokr_w1", "lokr_w1_a", "lokr_w1_b",
                                  "lokr_w2", "lokr_w2_a", "lokr_w2_b") if hasattr(module, p) and "default" in getattr(module, p)]
        for parameter in parameters:
            value = getattr(module, parameter)["default"].detach()
            out[f"{prefix}.{parameter}"] = value.reshape(value.shape[0], -1) if kind == "loha" and value.dim() > 2 else value
        out[f"{prefix}.alpha"] = torch.tensor(float(module.alpha["default"]))
    return half(out)


# MARK: runs


def sd_pipeline(cls, folder):
    pipe = cls.from_pretrained(folder, torch_dtype=torch.float32, **({"safety_checker": None, "feature_extractor": None,
                                                                       "requires_safety_checker": False}
                                                                      if cls is StableDiffusionPipeline else {"add_watermarker": False}))
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def latents(pipe, settings):
    arguments = dict(prompt=settings["prompt"], width=settings["width"], height=settings["height"],
                     num_inference_steps=settings["steps"], guidance_scale=settings["cfg_scale"],
                     generator=torch.Generator("cpu").manual_seed(settings["seed"]), output_type="latent")
    if settings.get("negative_prompt") is not None:
        arguments["negative_prompt"] = settings["negative_prompt"]
    if settings["family"] in ("sd3", "flux"):
        arguments["max_sequence_length"] = settings["max_sequence_length"]
    with torch.no_grad():
        result = pipe(**arguments).images
    if settings["family"] == "flux":
        result = pipe._unpack_latents(result, settings["height"], settings["width"], pipe.vae_scale_factor)
    return result.float().contiguous()


def with_adapters(pipe, settings, fuse=False):
    """Loads the case's files as adapters, sets their weights, runs, and takes them out again."""
    names = []
    for index, (file, weight) in enumerate(zip(settings["loras"], settings["weights"])):
        name = f"adapter{index}"
        pipe.load_lora_weights(str(OUT_DIR), weight_name=file, adapter_name=name)
        names.append(name)
    pipe.set_adapters(names, settings["weights"])
    if fuse:
        pipe.fuse_lora(adapter_names=names, lora_scale=1.0)
    result = latents(pipe, settings)
    if fuse:
        pipe.unfuse_lora()
    pipe.unload_lora_weights()
    return result


def fused_state(pipe, component, file):
    """`component`'s weights with `file` fused at scale 1, the model restored afterwards."""
    model = getattr(pipe, component)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    pipe.load_lora_weights(str(OUT_DIR), weight_name=file, adapter_name="check")
    pipe.fuse_lora(components=[component], lora_scale=1.0)
    pipe.unload_lora_weights()
    fused = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(base)
    return fused


def check_same_denoiser(pipe, component, file, reference_file):
    """`file` changes the denoiser exactly as `reference_file` does when diffusers loads both.
    (diffusers 0.39's kohya loader drops text-encoder self_attn modules without a word, so
    kohya text encoders are checked against the PEFT run in Kiln's tests, not here.)"""
    a, b = fused_state(pipe, component, file), fused_state(pipe, component, reference_file)
    for key in a:
        error = (a[key] - b[key]).abs().max().item()
        assert error < 1e-5, f"{file}: {component} {key} differs from {reference_file} by {error}"


def case(name, family, loras, weights, **settings):
    base = dict(name=name, family=family, loras=loras, weights=weights, prompt=PROMPT, negative_prompt=NEGATIVE,
                width=64, height=48, steps=4, cfg_scale=7.5, seed=42, sampler="euler")
    base.update(settings)
    return base


def main():
    torch.set_grad_enabled(False)
    torch.use_deterministic_algorithms(True)
    if OUT_DIR.exists():
        shutil.rmtree(OUT_DIR)
    OUT_DIR.mkdir(parents=True)
    records, cases = {}, []

    def record(settings, result, reference=None):
        result = result.clone()
        if reference is not None:
            error = ((result - reference).abs().max() / reference.abs().max()).item()
            assert error < 1e-5, f"{settings['name']}: differs from its PEFT layout by {error}"
        records[settings["name"] + ".latents"] = result
        cases.append(dict(settings, latent_shape=list(result.shape)))
        print(f"{settings['name']}: latents {list(result.shape)}, max |x| {result.abs().max():.4f}")

    with tempfile.TemporaryDirectory() as tmp:
        # Stable Diffusion 1.x: PEFT, kohya, rank-stabilised, stacked, fused, LoHa, LoKr.
        folder = complete(MODELS / "sd" / "sd1" / "diffusers", tmp, "sd1")
        pipe = sd_pipeline(StableDiffusionPipeline, folder)
        unet_a, unet_a_meta = add_lora(pipe.unet, 1, r=2, lora_alpha=3, rank_pattern={"to_v": 4}, alpha_pattern={"conv1": 5},
                                       target_modules=["to_q", "to_k", "to_v", "to_out.0", "proj_in", "ff.net.2", "conv1", "conv_shortcut"])
        text_a, text_a_meta = add_lora(pipe.text_encoder, 2, r=2, lora_alpha=1.5, target_modules=["q_proj", "v_proj", "fc1"])
        StableDiffusionPipeline.save_lora_weights(
            OUT_DIR, unet_lora_layers=half(unet_a), text_encoder_lora_layers=half(text_a), weight_name="sd1_a_peft.safetensors",
            unet_lora_adapter_metadata=unet_a_meta, text_encoder_lora_adapter_metadata=text_a_meta)
        peft_state = {**{"unet." + k: v for k, v in unet_a.items()}, **{"text_encoder." + k: v for k, v in text_a.items()}}
        save_file(half(to_kohya(peft_state, {"unet": unet_a_meta, "text_encoder": text_a_meta})), str(OUT_DIR / "sd1_a_kohya.safetensors"))
        unet_b, unet_b_meta = add_lora(pipe.unet, 3, r=3, lora_alpha=2, use_rslora=True,
                                       target_modules=["to_k", "to_out.0", "ff.net.0.proj", "conv2", "proj_out"])
        StableDiffusionPipeline.save_lora_weights(OUT_DIR, unet_lora_layers=half(unet_b), weight_name="sd1_b_peft.safetensors",
                                                  unet_lora_adapter_metadata=unet_b_meta)
        base = case("sd1_base", "sd1", [], [])
        record(base, latents(pipe, base))
        for weight in (1.0, 0.8, -0.6):
            settings = case(f"sd1_a_peft_{weight}", "sd1", ["sd1_a_peft.safetensors"], [weight])
            peft_result = with_adapters(pipe, settings)
            record(settings, peft_result)
            if weight == 0.8:
                check_same_denoiser(pipe, "unet", "sd1_a_kohya.safetensors", "sd1_a_peft.safetensors")
                record(case("sd1_a_kohya_0.8", "sd1", ["sd1_a_kohya.safetensors"], [weight]), peft_result)
        stacked = case("sd1_a_b_stacked", "sd1", ["sd1_a_peft.safetensors", "sd1_b_peft.safetensors"], [0.8, 0.5])
        stacked_result = with_adapters(pipe, stacked)
        record(stacked, stacked_result)
        fused = case("sd1_a_b_fused", "sd1", ["sd1_a_peft.safetensors", "sd1_b_peft.safetensors"], [0.8, 0.5])
        record(fused, with_adapters(pipe, fused, fuse=True), stacked_result)
        for kind, config in (("loha", LoHaConfig(r=2, alpha=3, init_weights=False, target_modules=["to_q", "to_v", "ff.net.2", "conv1"])),
                             ("lokr", LoKrConfig(r=1, alpha=2, init_weights=False, target_modules=["to_k", "to_out.0", "ff.net.2"]))):
            torch.manual_seed(4 if kind == "loha" else 5)
            original_unet = pipe.unet
            unet = pipe.unet = copy.deepcopy(original_unet)
            inject_adapter_in_model(config, unet)
            rounded_half(unet)
            save_file(lycoris_from_peft(unet, kind), str(OUT_DIR / f"sd1_{kind}.safetensors"))
            settings = case(f"sd1_{kind}_0.7", "sd1", [f"sd1_{kind}.safetensors"], [0.7])
            for module in unet.modules():
                if hasattr(module, "set_scale") and hasattr(module, "scaling") and "default" in module.scaling:
                    module.set_scale("default", 0.7)
            record(settings, latents(pipe, settings))
            pipe.unet = original_unet
        again = case("sd1_base_again", "sd1", [], [])
        record(again, latents(pipe, again), records["sd1_base.latents"])

        # SDXL: a kohya file in the original U-Net names, both text encoders.
        folder = complete(MODELS / "sd" / "sdxl" / "diffusers", tmp, "sdxl")
        pipe = sd_pipeline(StableDiffusionXLPipeline, folder)
        unet_x, unet_x_meta = add_lora(pipe.unet, 6, r=2, lora_alpha=4,
                                       target_modules=["to_q", "to_k", "to_v", "to_out.0", "ff.net.2", "conv1", "proj_in", "time_emb_proj"])
        te1, te1_meta = add_lora(pipe.text_encoder, 7, r=2, lora_alpha=2, target_modules=["q_proj", "k_proj", "out_proj"])
        te2, te2_meta = add_lora(pipe.text_encoder_2, 8, r=2, lora_alpha=1, target_modules=["v_proj", "fc2"])
        StableDiffusionXLPipeline.save_lora_weights(
            OUT_DIR, unet_lora_layers=half(unet_x), text_encoder_lora_layers=half(te1), text_encoder_2_lora_layers=half(te2),
            weight_name="sdxl_peft.safetensors", unet_lora_adapter_metadata=unet_x_meta, text_encoder_lora_adapter_metadata=te1_meta,
            text_encoder_2_lora_adapter_metadata=te2_meta)
        state = {**{"unet." + k: v for k, v in unet_x.items()}, **{"text_encoder." + k: v for k, v in te1.items()},
                 **{"text_encoder_2." + k: v for k, v in te2.items()}}
        sgm = unet_to_sgm(state, {"unet": unet_x_meta, "text_encoder": te1_meta, "text_encoder_2": te2_meta}, dict(pipe.unet.config))
        save_file(half(sgm), str(OUT_DIR / "sdxl_kohya.safetensors"))
        peft_xl = case("sdxl_peft_0.7", "sdxl", ["sdxl_peft.safetensors"], [0.7], width=64, height=64, seed=43)
        xl_result = with_adapters(pipe, peft_xl)
        record(peft_xl, xl_result)
        check_same_denoiser(pipe, "unet", "sdxl_kohya.safetensors", "sdxl_peft.safetensors")
        record(case("sdxl_kohya_0.7", "sdxl", ["sdxl_kohya.safetensors"], [0.7], width=64, height=64, seed=43), xl_result)

        # SD3: the transformer.
        folder = sd3_folder(tmp)
        pipe = StableDiffusion3Pipeline.from_pretrained(folder, torch_dtype=torch.float32, text_encoder_3=None, tokenizer_3=None)
        pipe.set_progress_bar_config(disable=True)
        sd3, sd3_meta = add_lora(pipe.transformer, 9, r=2, lora_alpha=3,
                                 target_modules=["to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj",
                                                 "to_add_out", "ff.net.2", "ff_context.net.0.proj"])
        StableDiffusion3Pipeline.save_lora_weights(OUT_DIR, transformer_lora_layers=half(sd3), weight_name="sd3_peft.safetensors",
                                                   transformer_lora_adapter_metadata=sd3_meta)
        settings = case("sd3_peft_0.9", "sd3", ["sd3_peft.safetensors"], [0.9], width=32, height=24, steps=3, cfg_scale=5.0,
                        seed=7, max_sequence_length=256, sampler=None)
        record(settings, with_adapters(pipe, settings))

        # FLUX.1: PEFT, then the same as kohya's, BFL's and ComfyUI's names; XLabs.
        folder = flux_folder(tmp)
        pipe = FluxPipeline.from_pretrained(folder, torch_dtype=torch.float32)
        pipe.set_progress_bar_config(disable=True)
        flux, flux_meta = add_lora(pipe.transformer, 10, r=2, lora_alpha=3,
                                   target_modules=["to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj",
                                                   "to_add_out", "proj_mlp", "proj_out", "ff.net.0.proj", "ff.net.2",
                                                   "ff_context.net.0.proj", "ff_context.net.2", "norm1.linear", "norm1_context.linear",
                                                   "norm.linear", "norm_out.linear"])
        clip, clip_meta = add_lora(pipe.text_encoder, 11, r=2, lora_alpha=2, target_modules=["q_proj", "fc2"])
        FluxPipeline.save_lora_weights(OUT_DIR, transformer_lora_layers=half(flux), text_encoder_lora_layers=half(clip),
                                       weight_name="flux_peft.safetensors", transformer_lora_adapter_metadata=flux_meta,
                                       text_encoder_lora_adapter_metadata=clip_meta)
        bfl = flux_to_bfl({"transformer." + k: v for k, v in flux.items()}, alpha=3)
        save_file(half(flux_kohya(bfl)), str(OUT_DIR / "flux_kohya.safetensors"))
        save_file(half(flux_comfy(bfl)), str(OUT_DIR / "flux_bfl.safetensors"))
        save_file(xlabs_lora(pipe.transformer, 12), str(OUT_DIR / "flux_xlabs.safetensors"))
        flux_case = dict(width=64, height=48, steps=3, cfg_scale=4.0, seed=9, max_sequence_length=16, negative_prompt=None,
                         prompt="a red fox in the snow", sampler=None)
        settings = case("flux_peft_0.8", "flux", ["flux_peft.safetensors"], [0.8], **flux_case)
        flux_result = with_adapters(pipe, settings)
        record(settings, flux_result)
        # The transformer alone, as the kohya and BFL files carry it.
        transformer_only = case("flux_peft_transformer_0.8", "flux", ["flux_peft_transformer.safetensors"], [0.8], **flux_case)
        FluxPipeline.save_lora_weights(OUT_DIR, transformer_lora_layers=half(flux), weight_name="flux_peft_transformer.safetensors",
                                       transformer_lora_adapter_metadata=flux_meta)
        transformer_result = with_adapters(pipe, transformer_only)
        record(transformer_only, transformer_result)
        # diffusers 0.39 reads sd-scripts' and BFL's fused FLUX LoRAs with FLUX.1's full-size widths
        # (3072) written in, so it cannot load them for the tiny model: their reference is the
        # PEFT run of the same changes (flux_to_bfl checks that they are the same changes).
        for layout in ("kohya", "bfl"):
            record(case(f"flux_{layout}_0.8", "flux", [f"flux_{layout}.safetensors"], [0.8], **flux_case), transformer_result)
        settings = case("flux_xlabs_0.6", "flux", ["flux_xlabs.safetensors"], [0.6], **flux_case)
        record(settings, with_adapters(pipe, settings))
        (OUT_DIR / "flux_peft_transformer.safetensors").unlink()
        cases = [c for c in cases if c["name"] != "flux_peft_transformer_0.8"]
        records.pop("flux_peft_transformer_0.8.latents")

    save_file(dict(sorted(records.items())), str(OUT_DIR / "latents.safetensors"), metadata={"format": "pt"})
    versions = {"torch": torch.__version__, "diffusers": diffusers.__version__, "peft": peft.__version__}
    (OUT_DIR / "cases.json").write_text(json.dumps({"versions": versions, "cases": cases}, indent=1) + "\n")
    size = sum(p.stat().st_size for p in OUT_DIR.rglob("*") if p.is_file())
    print(f"wrote {OUT_DIR.relative_to(REPO)}: {len(cases)} cases, {size} bytes")


if __name__ == "__main__":
    main()
