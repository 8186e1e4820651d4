"""Writes a Stable Diffusion 1.5-shaped diffusers folder with seeded random weights (f16), for
timing whole pipelines without a downloaded checkpoint: the real architecture (CLIP-L text
encoder, the SD1.5 U-Net and VAE configs), the real CLIP vocabulary (from shared/data's merges)
and SD1.5's PNDM scheduler config. The pictures are noise; only the time and memory mean anything.

    python Benchmarks/PipelineBenchmarks/make_random_sd15.py OUT_FOLDER [--merges ../shared/data/clip_merges.txt]

Pinned versions: Tests/Fixtures/requirements.txt.
"""
import argparse
import json
import os

import torch
from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer


def clip_vocabulary(merges_path):
    """CLIP's vocab.json from its merges: byte symbols, the same with </w>, merges, specials."""
    symbols = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = symbols[:]
    extra = 0
    for byte in range(256):
        if byte not in symbols:
            symbols.append(byte)
            codes.append(256 + extra)
            extra += 1
    characters = [chr(code) for code in codes]
    vocabulary = characters + [character + "</w>" for character in characters]
    with open(merges_path, encoding="utf-8") as file:
        lines = file.read().split("\n")[1:]
    vocabulary += ["".join(line.split()) for line in lines if line.strip()]
    vocabulary += ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(vocabulary)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--merges", default=os.path.join(here, "..", "..", "..", "shared", "data", "clip_merges.txt"))
    arguments = parser.parse_args()
    torch.manual_seed(0)
    out = arguments.out
    os.makedirs(out, exist_ok=True)

    # SD1.5's components as their configs define them (diffusers' defaults are SD1.5's U-Net).
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=512, layers_per_block=2,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768))
    for module in (unet, vae, text):
        with torch.no_grad():
            for parameter in module.parameters():
                parameter.mul_(0.5)
    unet.half().save_pretrained(os.path.join(out, "unet"))
    vae.half().save_pretrained(os.path.join(out, "vae"))
    text.half().save_pretrained(os.path.join(out, "text_encoder"))

    tokenizer_folder = os.path.join(out, "tokenizer")
    os.makedirs(tokenizer_folder, exist_ok=True)
    with open(os.path.join(tokenizer_folder, "vocab.json"), "w", encoding="utf-8") as file:
        json.dump(clip_vocabulary(arguments.merges), file, ensure_ascii=False)
    with open(arguments.merges, encoding="utf-8") as source, open(os.path.join(tokenizer_folder, "merges.txt"), "w", encoding="utf-8") as target:
        target.write(source.read())
    CLIPTokenizer(os.path.join(tokenizer_folder, "vocab.json"), os.path.join(tokenizer_folder, "merges.txt")).save_pretrained(tokenizer_folder)

    PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                  set_alpha_to_one=False, steps_offset=1).save_pretrained(os.path.join(out, "scheduler"))
    with open(os.path.join(out, "model_index.json"), "w") as file:
        json.dump({
            "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.39.0",
            "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"], "safety_checker": [None, None], "feature_extractor": [None, None],
            "requires_safety_checker": False,
        }, file, indent=2)


if __name__ == "__main__":
    main()
