"""Renders the ground-truth scenes that Tests/KilnSceneAnalysisTests checks the Swift scene
analyser on: exact renders of scenes.py (no model involved), as PNG, and scenes.json with each
file's prompt, size and the jitter applied.

The set covers every (shape, position, size) triple at 64x64 with the (colour, background) pairs
cycled through, more seeded scenes at 96x96 and 128x128, and seeded scenes at 64x64 whose
bounding square is shifted by up to 4% of the side and scaled by 0.9-1.1 (as a model's pictures
stray from the grammar), and seeded jittered scenes at 64x64 blurred by a Gaussian of 1 or 1.5
pixels (a model's softer edges).

Usage (from the repository root):
  python scripts/default-model/analyser_fixtures.py [--out Tests/KilnSceneAnalysisTests/Fixtures/ground-truth]
"""

import argparse
import copy
import itertools
import json
import os
import shutil
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import evaluate  # noqa: E402
import scenes  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DEFAULT_OUT = os.path.join(REPO, "Tests", "KilnSceneAnalysisTests", "Fixtures", "ground-truth")


def colour_pairs():
    """The 56 ordered (colour, background) pairs, in an order that changes both every step."""
    pairs = [(c, b) for c, b in itertools.product(scenes.COLOURS, scenes.COLOURS) if c != b]
    rng = np.random.default_rng(7)
    return [pairs[i] for i in rng.permutation(len(pairs))]


def cases(seed=0):
    """[(scene, image_size, jitter, blur sigma)]."""
    pairs = colour_pairs()
    result = []
    for i, (shape, position, size) in enumerate(itertools.product(scenes.SHAPES, scenes.POSITIONS, scenes.SIZES)):
        colour, background = pairs[i % len(pairs)]
        result.append(((size, colour, shape, background, position), 64, None, 0.0))
    rng = np.random.default_rng(seed)
    every = scenes.all_scenes()
    for image_size, count in ((96, 15), (128, 15)):
        for _ in range(count):
            result.append((every[rng.integers(len(every))], image_size, None, 0.0))
    for _ in range(20):
        jitter = (float(rng.uniform(-0.04, 0.04)), float(rng.uniform(-0.04, 0.04)), float(rng.uniform(0.9, 1.1)))
        result.append((every[rng.integers(len(every))], 64, jitter, 0.0))
    for k in range(20):
        jitter = (float(rng.uniform(-0.04, 0.04)), float(rng.uniform(-0.04, 0.04)), float(rng.uniform(0.9, 1.1)))
        result.append((every[rng.integers(len(every))], 64, jitter, 1.0 if k % 2 == 0 else 1.5))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args()
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    records = []
    for index, (scene, image_size, jitter, sigma) in enumerate(cases()):
        grammar = copy.deepcopy(scenes.GRAMMAR)
        grammar["image_size"] = image_size
        image = evaluate.blur(scenes.render(scene, grammar, jitter=jitter), sigma)
        name = f"{index:03d}.png"
        Image.fromarray(image).save(os.path.join(args.out, name), optimize=True)
        # Centred scenes alternate between the prompt with and without ", center".
        with_position = scene[4] != scenes.GRAMMAR["default_position"] or index % 2 == 0
        records.append({"file": name, "prompt": scenes.prompt(scene, with_position), "size": image_size,
                        "jitter": None if jitter is None else [round(v, 4) for v in jitter], "blur": sigma})
    with open(os.path.join(args.out, "scenes.json"), "w") as f:
        json.dump({"generator": "scripts/default-model/analyser_fixtures.py", "scenes": records}, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    print(f"{len(records)} scenes, {total} bytes in {args.out}")


if __name__ == "__main__":
    main()
