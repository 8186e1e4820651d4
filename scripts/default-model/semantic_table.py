"""The semantic test table of the default model: prompts of the grammar with fixed seeds that
Tests/KilnSemanticTests generates with Kiln (CPU and Vulkan) and judges with the Swift scene
analyser (colour, background, position and shape read from the pixels).

50 cases: every (shape, position, size) triple once, the (colour, background) pairs drawn from
a seeded permutation of the 56 ordered pairs, centred scenes alternating with and without
", center"; seeds are not the ones evaluate.py or training use.

  python scripts/default-model/semantic_table.py
      writes Tests/KilnSemanticTests/Fixtures/semantic_table.json
  python scripts/default-model/semantic_table.py --render OUT [--folder F] [--dtype float32]
      also generates the table with diffusers' StableDiffusionPipeline (the folder's scheduler,
      torch.Generator().manual_seed(seed) per case, as Kiln seeds it) into OUT/NNN.png and
      OUT/scenes.json (the analyser fixture format), to judge diffusers' pictures the same way;
      Tests/KilnSceneAnalysisTests/Fixtures/kiln-shapes-diffusers is that output for the
      shipped model (rerun with that OUT after retraining)
"""

import argparse
import itertools
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import scenes  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DEFAULT_FOLDER = os.path.join(REPO, "Sources", "KilnDefaultModel", "Resources", "kiln-shapes")
DEFAULT_TABLE = os.path.join(REPO, "Tests", "KilnSemanticTests", "Fixtures", "semantic_table.json")
SEED_BASE = 424242
# The model card's recommendation (train.RECOMMENDED), with the folder's own scheduler.
STEPS, GUIDANCE, SIDE = 12, 4.0, 64


def table():
    pairs = [(c, b) for c, b in itertools.product(scenes.COLOURS, scenes.COLOURS) if c != b]
    order = np.random.default_rng(2026).permutation(len(pairs))
    cases = []
    for i, (shape, position, size) in enumerate(itertools.product(scenes.SHAPES, scenes.POSITIONS, scenes.SIZES)):
        colour, background = pairs[order[i % len(pairs)]]
        scene = (size, colour, shape, background, position)
        with_position = position != scenes.GRAMMAR["default_position"] or i % 2 == 1
        cases.append({"prompt": scenes.prompt(scene, with_position), "seed": SEED_BASE + 97 * i})
    return cases


def document():
    return {"generator": "scripts/default-model/semantic_table.py", "width": SIDE, "height": SIDE,
            "steps": STEPS, "guidance": GUIDANCE,
            "thresholds": {"colour": 0.9, "background": 0.9, "position": 0.9, "shape": 0.8},
            "cases": table()}


def render(folder, out, dtype):
    import torch
    from diffusers import StableDiffusionPipeline
    from PIL import Image

    torch.set_num_threads(2)
    pipe = StableDiffusionPipeline.from_pretrained(folder, torch_dtype=getattr(torch, dtype))
    pipe.set_progress_bar_config(disable=True)
    os.makedirs(out, exist_ok=True)
    records = []
    started = time.time()
    for index, case in enumerate(table()):
        generator = torch.Generator().manual_seed(case["seed"])
        image = pipe(case["prompt"], height=SIDE, width=SIDE, num_inference_steps=STEPS, guidance_scale=GUIDANCE,
                     generator=generator, output_type="np").images[0]
        pixels = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
        name = f"{index:03d}.png"
        Image.fromarray(pixels).save(os.path.join(out, name))
        records.append({"file": name, "prompt": case["prompt"], "seed": case["seed"], "size": SIDE, "jitter": None})
    with open(os.path.join(out, "scenes.json"), "w") as f:
        json.dump({"generator": "scripts/default-model/semantic_table.py --render", "dtype": dtype,
                   "scheduler": type(pipe.scheduler).__name__, "scenes": records}, f, indent=1)
        f.write("\n")
    print(f"{len(records)} images in {time.time() - started:.1f} s -> {out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", default=DEFAULT_TABLE)
    parser.add_argument("--render", metavar="OUT")
    parser.add_argument("--folder", default=DEFAULT_FOLDER)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.table), exist_ok=True)
    with open(args.table, "w") as f:
        json.dump(document(), f, indent=1)
        f.write("\n")
    print(f"{len(table())} cases -> {args.table}")
    if args.render:
        render(args.folder, args.render, args.dtype)


if __name__ == "__main__":
    main()
