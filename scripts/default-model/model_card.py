"""Writes README.md, the model card of the kiln-shapes folder, from the training run's records."""

import json
import os


def _folder_bytes(folder):
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total


def _minutes(seconds):
    return f"{seconds / 60:.1f} min"


def _percent(value):
    return f"{100 * value:.1f}%"


def write(folder, state, configs):
    with open(os.path.join(folder, "scene_grammar.json")) as f:
        grammar = json.load(f)
    counts = state["parameters"]
    seconds = state["seconds"]
    evaluation = state.get("evaluation")
    unet, vae, text, sampler = configs["unet"], configs["vae"], configs["text"], configs["sampler"]
    size = grammar["image_size"]
    total_params = counts["text_encoder"] + counts["unet"] + counts["vae"]
    colour_rows = "\n".join(f"| {name} | {rgb[0]}, {rgb[1]}, {rgb[2]} |" for name, rgb in grammar["colours"].items())
    size_rows = "\n".join(
        f"| {name} | {value:.2f} ({value * size:.0f} px) |" for name, value in grammar["sizes"].items())
    position_rows = "\n".join(
        f"| {name} | {xy[0]:.2f}, {xy[1]:.2f} |" for name, xy in grammar["positions"].items())
    shape_rows = "\n".join(f"| {name} | {text_} |" for name, text_ in grammar["shapes"].items())
    steps = configs["recommended"]["steps"]
    guidance = configs["recommended"]["guidance"]
    train_total = sum(seconds.get(k, 0.0) for k in ("vae", "latents", "unet", "decoder", "export"))

    if evaluation:
        g, gt = evaluation["generated"], evaluation["ground_truth"]
        f16_row = ""
        if state.get("evaluation_f16"):
            h = state["evaluation_f16"]["generated"]
            f16_row = (f"| generated pictures, float16 | {_percent(h['colour'])} | {_percent(h['background'])} | "
                       f"{_percent(h['shape'])} | {_percent(h['position'])} | {_percent(h['all_four'])} |\n")
        accuracy = f"""Measured by `scripts/default-model/evaluate.py`: {evaluation['prompts']} prompts covering every
colour, background, shape, size and position, with and without the position clause, generated
with diffusers' `StableDiffusionPipeline` from this folder ({evaluation['sampler']},
{evaluation['steps']} steps, guidance {evaluation['guidance']}, {evaluation['dtype']}, seed
{', '.join(str(s) for s in evaluation['seeds'])} + prompt index). A judge reads each picture's pixels: background = border
median → nearest named colour; foreground = pixels far from the background, median → nearest
named colour; position = the foreground mask's centroid → nearest position centre; shape =
nearest prototype in (bounding-box fill, convex-hull solidity, central-band fraction).

| | colour | background | shape | position | all four |
| --- | --- | --- | --- | --- | --- |
| judge on ground truth ({evaluation['ground_truth_scenes']} rendered scenes) | {_percent(gt['colour'])} | {_percent(gt['background'])} | {_percent(gt['shape'])} | {_percent(gt['position'])} | |
| generated pictures, float32 | {_percent(g['colour'])} | {_percent(g['background'])} | {_percent(g['shape'])} | {_percent(g['position'])} | {_percent(g['all_four'])} |
{f16_row}
The ground-truth row covers every grammar scene plus 500 with the shape moved by up to ±4% and
resized by up to ±10%. Generation takes {evaluation['seconds_per_image']:.2f} s per picture on the
training machine's CPU (diffusers, float32, {state['arguments']['threads']} thread(s), batches of 20)."""
    else:
        accuracy = "Not measured in this run (evaluation skipped)."

    card = f"""---
license: mit
library_name: diffusers
pipeline_tag: text-to-image
tags:
- stable-diffusion
- synthetic-data
- kiln
---

# kiln-shapes

A tiny text-to-image latent diffusion model, Kiln's built-in default model. It draws one flat
coloured shape on a flat background at {size}×{size} pixels from prompts such as

    a large red circle on a blue background
    a small yellow star on a black background, top left

It was trained from scratch, on the CPU, on scenes that its training script renders itself
(`scripts/default-model/train.py` in the Kiln repository): no downloaded weights and no
downloaded data. Licence: MIT.

## Use

The folder is a diffusers `StableDiffusionPipeline` (no safety checker, no feature extractor):

```python
import torch
from diffusers import StableDiffusionPipeline

pipe = StableDiffusionPipeline.from_pretrained("kiln-shapes", torch_dtype=torch.float32)
image = pipe("a large red circle on a blue background", num_inference_steps={steps},
             guidance_scale={guidance}, generator=torch.Generator().manual_seed(0)).images[0]
```

Recommended: the folder's own scheduler, **DPMSolverMultistepScheduler (DPM-Solver++ 2M,
`timestep_spacing: trailing`), {steps} steps, guidance scale {guidance}**, {size}×{size}
pixels (the default size of the folder). Weights are float16; load them with
`torch_dtype=torch.float16` or `torch.float32`.

## Architecture

| component | class | parameters | configuration |
| --- | --- | --- | --- |
| text encoder | `CLIPTextModel` | {counts['text_encoder']:,} | {text['num_hidden_layers']} layers, width {text['hidden_size']}, {text['num_attention_heads']} heads, MLP {text['intermediate_size']}, {text['hidden_act']}, {text['max_position_embeddings']} positions |
| tokenizer | `CLIPTokenizer` | — | CLIP byte-level BPE, {state.get('vocabulary_size', 'small')} tokens (the 256 byte symbols, the same with `</w>`, {state.get('merge_count', '')} merges learnt on the grammar's words so each word is one token, `<|startoftext|>`, `<|endoftext|>`); `model_max_length` {text['max_position_embeddings']} |
| U-Net | `UNet2DConditionModel` | {counts['unet']:,} | {size // 8}×{size // 8}×4 latents, blocks {', '.join(unet['down_block_types'])} / {', '.join(unet['up_block_types'])}, channels {unet['block_out_channels']}, {unet['layers_per_block']} layer per block, {unet['attention_head_dim']} heads, cross-attention width {unet['cross_attention_dim']} |
| VAE | `AutoencoderKL` | {counts['vae']:,} (encoder {counts['vae_encoder']:,}, decoder {counts['vae_decoder']:,}) | downsampling 8, 4 latent channels, channels {vae['block_out_channels']}, {vae['layers_per_block']} layer per block, {vae['norm_num_groups']} norm groups, scaling factor {state['scaling_factor']:.5f} |
| scheduler | `DPMSolverMultistepScheduler` | — | {sampler['num_train_timesteps']} training steps, `scaled_linear` betas {sampler['beta_start']}–{sampler['beta_end']} rescaled to zero terminal SNR, {sampler['prediction_type']} |

{total_params:,} parameters in all, stored as float16 safetensors; the folder is
{_folder_bytes(folder) / 1e6:.1f} MB.

## Data

Every picture is rendered by `scripts/default-model/scenes.py` from the grammar below, which is
also in this folder as `scene_grammar.json` (tests render ground truth from it). Prompts:

    a {{size}} {{colour}} {{shape}} on a {{background}} background[, {{position}}]

(position omitted = `center`). The shape's colour is never the background's, which makes
{2 * 8 * 7 * 5 * 5} scenes. Colours are flat; edges are anti-aliased by {grammar['supersampling']}×{grammar['supersampling']} supersampled coverage.

| colour | sRGB |
| --- | --- |
{colour_rows}

| size | side of the shape's bounding square (fraction of the image) |
| --- | --- |
{size_rows}

| position | centre of the bounding square (x, y as fractions, y down) |
| --- | --- |
{position_rows}

| shape | geometry, inside the bounding square |
| --- | --- |
{shape_rows}

Star inner radius ratio {grammar['star_inner_ratio']}, cross arm width {grammar['cross_arm_ratio']:.3f} of the side.

## Training

CPU only (torch {state.get('torch_version', '')}, {state['arguments']['threads']} thread(s)), seeded (seed {state['arguments']['seed']}), in stages; times are measured wall-clock on a
shared 2-core machine:

| stage | what | steps | time |
| --- | --- | --- | --- |
| VAE | L1 + MSE reconstruction (shape pixels weighted 5×) + KL × {state['arguments']['vae_kl']} on rendered scenes (half of them with the shape moved by up to ±8% and resized by up to ±20%), AdamW {state['arguments']['vae_lr']}, cosine | {state.get('vae_steps')} × batch {state.get('vae_batch')} | {_minutes(seconds.get('vae', 0))} |
| latents | encoder mean of all {2 * 8 * 7 * 5 * 5} scenes; scaling factor = 1 / their standard deviation; VAE reconstruction error {state.get('vae_reconstruction_mae', 0):.2f}/255 | — | {_minutes(seconds.get('latents', 0))} |
| U-Net + text encoder | v-prediction on the zero-terminal-SNR rescaled schedule, plain MSE, {int(100 * state['arguments']['uncond'])}% empty prompts, AdamW {state['arguments']['unet_lr']}, cosine, EMA {state['arguments']['ema']} (exported) | {state.get('unet_steps')} × batch {state.get('unet_batch')} | {_minutes(seconds.get('unet', 0))} |
| decoder | VAE decoder fine-tuned, encoder frozen (latents unchanged): the same loss plus an L1 loss on image gradients, latents jittered by {state['arguments'].get('decoder_noise', 0)} σ; ran in a second process beside the U-Net stage; reconstruction error after: {state.get('decoder_reconstruction_mae', 0):.2f}/255 | {state.get('decoder_steps')} × batch {state.get('vae_batch')} | {_minutes(seconds.get('decoder', 0))} |
| export | float16 diffusers folder | — | {_minutes(seconds.get('export', 0))} |

Training total: {_minutes(train_total)}.

## Accuracy

{accuracy}

## Limitations

It knows only its grammar: one shape, eight colours, two sizes, five positions, {size}×{size}
pixels. Other words are tokenized (byte by byte) but mean nothing to it.
"""
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write(card)
