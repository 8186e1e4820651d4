"""Generates kiln-shapes pictures with diffusers and judges them from their pixels.

The judge reads only scene_grammar.json and the picture:
  background  median of the border pixels -> nearest named colour
  foreground  pixels far from the background colour; their median -> nearest named colour
              (other than the background's); the mask is then every pixel nearer the
              foreground colour than the background colour along the line between the two,
              keeping the largest 4-connected component
  position    the mask's centroid -> nearest position centre
  shape       nearest prototype in (fill of the bounding box, convex-hull solidity, fraction
              of the mask inside the bounding box's central plus-shaped band), the prototypes
              measured by the same code on rendered ground-truth scenes (the judge is checked
              on every grammar scene, on jittered ones and on Gaussian-blurred ones)

Usage:
  python scripts/default-model/evaluate.py [--folder F] [--out /work/default-model-runs]
      [--steps N] [--guidance G] [--sampler dpm|euler|pndm|ddim] [--ground-truth-only]
"""

import argparse
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
SEEDS = (0, 1000)


# ---------------------------------------------------------------------------- judge

def _nearest(colour, palette, exclude=None):
    best, best_distance = None, None
    for name, rgb in palette.items():
        if name == exclude:
            continue
        distance = float(np.sum((np.asarray(rgb, dtype=np.float64) - colour) ** 2))
        if best_distance is None or distance < best_distance:
            best, best_distance = name, distance
    return best


def _largest_component(mask):
    """Largest 4-connected component of a boolean mask (iterative flood fill)."""
    h, w = mask.shape
    labels = np.zeros((h, w), dtype=np.int32)
    best_label, best_size, current = 0, 0, 0
    for y0, x0 in zip(*np.nonzero(mask)):
        if labels[y0, x0]:
            continue
        current += 1
        labels[y0, x0] = current
        stack = [(y0, x0)]
        size = 0
        while stack:
            y, x = stack.pop()
            size += 1
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = current
                    stack.append((ny, nx))
        if size > best_size:
            best_label, best_size = current, size
    return labels == best_label if best_size else mask


def _hull_area(points):
    """Area of the convex hull of (x, y) points (Andrew's monotone chain)."""
    points = sorted(set(map(tuple, points)))
    if len(points) < 3:
        return 0.0

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in points:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(points):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    area = 0.0
    for i in range(len(hull)):
        x0, y0 = hull[i]
        x1, y1 = hull[(i + 1) % len(hull)]
        area += x0 * y1 - x1 * y0
    return abs(area) / 2.0


def shape_features(mask):
    """(fill, solidity, band) of a boolean mask.

    fill: area / bounding-box area; solidity: area / convex-hull area, the hull being that of
    the mask pixels' corners (so a filled axis-aligned square measures 1 on both); band: the
    fraction of mask pixels within 0.4 half-widths of the bounding box's middle row or column
    (a plus sign lies entirely in that band, a star's lower points do not).
    """
    ys, xs = np.nonzero(mask)
    if len(xs) < 3:
        return 0.0, 0.0, 0.0
    area = float(len(xs))
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    box = float((x1 - x0) * (y1 - y0))
    u = (xs + 0.5 - (x0 + x1) / 2) / ((x1 - x0) / 2)
    v = (ys + 0.5 - (y0 + y1) / 2) / ((y1 - y0) / 2)
    band = float(np.mean((np.abs(u) < 0.4) | (np.abs(v) < 0.4)))
    # Only boundary pixels can contribute hull corners.
    padded = np.pad(mask, 1)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    by, bx = np.nonzero(mask & ~interior)
    corners = np.concatenate([
        np.stack([bx, by], 1), np.stack([bx + 1, by], 1), np.stack([bx, by + 1], 1), np.stack([bx + 1, by + 1], 1)])
    hull = _hull_area(corners)
    return area / box, (area / hull if hull > 0 else 0.0), band


def blur(image, sigma):
    """Separable Gaussian blur of an (H, W, 3) image, edges clamped; uint8 out."""
    if sigma <= 0:
        return image
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = image.astype(np.float64)
    for axis in (0, 1):
        padded = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in range(3)], mode="edge")
        out = sum(w * np.take(padded, np.arange(i, i + image.shape[axis]), axis=axis) for i, w in enumerate(taps))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


class Judge:
    def __init__(self, grammar):
        self.grammar = grammar
        self.palette = grammar["colours"]
        self.prototypes = self._prototypes()

    def _prototypes(self):
        """[(shape, mean features)]: each shape's features averaged over both sizes and every position."""
        prototypes = []
        for shape in self.grammar["shapes"]:
            values = []
            for size in self.grammar["sizes"]:
                for position in self.grammar["positions"]:
                    image = scenes.render((size, "white", shape, "black", position), self.grammar)
                    values.append(self.segment(image)[3])
            prototypes.append((shape, np.mean(values, axis=0)))
        return prototypes

    def segment(self, image):
        """-> (background name, foreground name, mask, features, centroid (x, y) in fractions)."""
        pixels = image.astype(np.float64)
        h, w, _ = pixels.shape
        border = np.concatenate([pixels[:2].reshape(-1, 3), pixels[-2:].reshape(-1, 3),
                                 pixels[:, :2].reshape(-1, 3), pixels[:, -2:].reshape(-1, 3)])
        background = _nearest(np.median(border, axis=0), self.palette)
        bg = np.asarray(self.palette[background], dtype=np.float64)
        distance = np.sqrt(np.sum((pixels - bg) ** 2, axis=-1))
        candidates = distance > 40.0
        if candidates.sum() < 4:
            return background, None, np.zeros((h, w), bool), (0.0, 0.0, 0.0), None
        foreground = _nearest(np.median(pixels[candidates], axis=0), self.palette, exclude=background)
        fg = np.asarray(self.palette[foreground], dtype=np.float64)
        direction = fg - bg
        alpha = np.sum((pixels - bg) * direction, axis=-1) / np.sum(direction ** 2)
        mask = _largest_component(alpha > 0.5)
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            return background, foreground, mask, (0.0, 0.0, 0.0), None
        centroid = ((xs.mean() + 0.5) / w, (ys.mean() + 0.5) / h)
        return background, foreground, mask, shape_features(mask), centroid

    def judge(self, image):
        background, foreground, mask, features, centroid = self.segment(image)
        result = {"background": background, "colour": foreground, "shape": None, "position": None,
                  "features": [round(float(v), 3) for v in features]}
        if centroid is None:
            return result
        result["position"] = min(
            self.grammar["positions"],
            key=lambda name: (self.grammar["positions"][name][0] - centroid[0]) ** 2
            + (self.grammar["positions"][name][1] - centroid[1]) ** 2)
        result["shape"] = min(
            self.prototypes, key=lambda item: float(np.sum((item[1] - np.asarray(features)) ** 2)))[0]
        result["centroid"] = [round(float(v), 3) for v in centroid]
        return result


def score(judged, scene):
    size, colour, shape, background, position = scene
    return {"colour": judged["colour"] == colour, "background": judged["background"] == background,
            "shape": judged["shape"] == shape, "position": judged["position"] == position}


def judge_ground_truth(judge, jittered=0, seed=0, blur_sigma=0.0):
    """Accuracy of the judge on every grammar scene, and on jittered renders of random scenes."""
    totals = {}
    cases = [(scene, None) for scene in scenes.all_scenes()]
    rng = np.random.default_rng(seed)
    all_scenes = scenes.all_scenes()
    for _ in range(jittered):
        scene = all_scenes[rng.integers(len(all_scenes))]
        cases.append((scene, (rng.uniform(-0.04, 0.04), rng.uniform(-0.04, 0.04), rng.uniform(0.9, 1.1))))
    failures = []
    for scene, jitter in cases:
        result = score(judge.judge(blur(scenes.render(scene, judge.grammar, jitter=jitter), blur_sigma)), scene)
        for key, ok in result.items():
            totals[key] = totals.get(key, 0) + int(ok)
        if not all(result.values()):
            failures.append((scene, jitter, result))
    return {key: value / len(cases) for key, value in totals.items()}, len(cases), failures


# ---------------------------------------------------------------------------- prompts

def evaluation_table():
    """40 prompts: every (colour, shape) pair once, every background and position, with and
    without the position clause. Returns [(prompt, scene)]."""
    colours = scenes.COLOURS
    table = []
    for i in range(40):
        colour = colours[i % 8]
        shape = scenes.SHAPES[i % 5]
        background = colours[(i % 8 + 1 + i // 8) % 8]
        position = scenes.POSITIONS[(i + i // 5) % 5]
        size = scenes.SIZES[(i // 3) % 2]
        scene = (size, colour, shape, background, position)
        with_position = not (position == "center" and i % 2 == 0)
        table.append((scenes.prompt(scene, with_position), scene))
    return table


# ---------------------------------------------------------------------------- generation

def load_pipeline(folder, dtype="float32", sampler=None):
    import torch
    from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler,
                           PNDMScheduler, StableDiffusionPipeline)

    pipe = StableDiffusionPipeline.from_pretrained(folder, torch_dtype=getattr(torch, dtype))
    if sampler == "euler":
        pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    elif sampler == "pndm":
        pipe.scheduler = PNDMScheduler.from_config(pipe.scheduler.config, skip_prk_steps=True)
    elif sampler == "ddim":
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    elif sampler == "dpm":
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe, prompts, steps, guidance, seed, batch=20):
    import torch

    images = []
    for start in range(0, len(prompts), batch):
        chunk = prompts[start:start + batch]
        generators = [torch.Generator().manual_seed(seed + start + i) for i in range(len(chunk))]
        out = pipe(chunk, num_inference_steps=steps, guidance_scale=guidance, generator=generators,
                   output_type="np").images
        images.extend((np.clip(out, 0, 1) * 255).round().astype(np.uint8))
    return images


def contact_sheet(images, labels, path, columns=8, scale=2):
    from PIL import Image, ImageDraw

    n = images[0].shape[0] * scale
    rows = (len(images) + columns - 1) // columns
    label_height = 24
    sheet = Image.new("RGB", (columns * n, rows * (n + label_height)), (128, 128, 128))
    draw = ImageDraw.Draw(sheet)
    for i, (image, label) in enumerate(zip(images, labels)):
        x, y = (i % columns) * n, (i // columns) * (n + label_height)
        sheet.paste(Image.fromarray(image).resize((n, n), Image.NEAREST), (x, y))
        for line, text in enumerate(label):
            draw.text((x + 2, y + n + 1 + 11 * line), text, fill=(0, 0, 0))
    sheet.save(path)


def evaluate(folder, out_dir, steps=None, guidance=None, sampler=None, dtype="float32", seeds=SEEDS,
             sheet_name="evaluation_sheet.png", quiet=False, threads=2, ground_truth=True):
    """Judges the ground truth, then the pictures generated for the evaluation table."""
    import torch

    torch.set_num_threads(threads)
    with open(os.path.join(folder, "scene_grammar.json")) as f:
        grammar = json.load(f)
    judge = Judge(grammar)
    if steps is None or guidance is None:
        import train

        steps = steps or train.RECOMMENDED["steps"]
        guidance = guidance or train.RECOMMENDED["guidance"]
    ground, ground_count = (judge_ground_truth(judge, jittered=500)[:2]) if ground_truth else (None, 0)
    table = evaluation_table()
    pipe = load_pipeline(folder, dtype, sampler)
    totals, records = {}, []
    started = time.time()
    for seed in seeds:
        images = generate(pipe, [text for text, _ in table], steps, guidance, seed)
        labels = []
        for (text, scene), image in zip(table, images):
            judged = judge.judge(image)
            result = score(judged, scene)
            for key, ok in result.items():
                totals[key] = totals.get(key, 0) + int(ok)
            records.append({"prompt": text, "seed": seed, "judged": judged, "correct": result})
            marks = "".join(k[0].upper() if ok else "-" for k, ok in result.items())
            labels.append([f"{scene[0][0]} {scene[1]} {scene[2]}", f"/{scene[3]} {marks}"])
        if out_dir and seed == seeds[0]:
            os.makedirs(out_dir, exist_ok=True)
            contact_sheet(images, labels, os.path.join(out_dir, sheet_name))
    seconds = time.time() - started
    count = len(table) * len(seeds)
    generated = {key: value / count for key, value in totals.items()}
    generated["all_four"] = sum(all(r["correct"].values()) for r in records) / count
    results = {
        "ground_truth": ground, "ground_truth_scenes": ground_count,
        "generated": generated, "prompts": len(table), "seeds": list(seeds),
        "sampler": type(pipe.scheduler).__name__, "steps": steps, "guidance": guidance, "dtype": dtype,
        "seconds_per_image": seconds / count, "records": records,
    }
    if not quiet:
        print(json.dumps({k: v for k, v in results.items() if k != "records"}, indent=2))
        for r in records:
            if not all(r["correct"].values()):
                print("  miss:", r["prompt"], "->", r["judged"])
    return results


SWEEP = [(sampler, steps, guidance)
         for sampler in ("dpm", "euler")
         for steps in (4, 6, 8, 12, 20)
         for guidance in (2.0, 3.0, 4.0, 6.0)]


def sweep(folder, seeds, threads, configs=SWEEP):
    """Accuracy of each (sampler, steps, guidance) on the evaluation table: to choose the fewest
    steps that still give good pictures."""
    rows = []
    for sampler, steps, guidance in configs:
        r = evaluate(folder, None, steps, guidance, sampler, seeds=seeds, quiet=True, threads=threads,
                     ground_truth=False)
        g = r["generated"]
        rows.append((sampler, steps, guidance, g))
        print(f"{sampler:6s} {steps:3d} steps guidance {guidance:4.1f}: colour {g['colour']:.3f} "
              f"background {g['background']:.3f} shape {g['shape']:.3f} position {g['position']:.3f} "
              f"all {g['all_four']:.3f}", flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", default=DEFAULT_FOLDER)
    parser.add_argument("--out", default="/work/default-model-runs")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--guidance", type=float)
    parser.add_argument("--sampler", choices=["dpm", "euler", "pndm", "ddim"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--sheet", default="evaluation_sheet.png")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ground-truth-only", action="store_true")
    parser.add_argument("--sweep", action="store_true", help="compare samplers, step counts and guidance scales")
    parser.add_argument("--jittered", type=int, default=500, help="extra jittered ground-truth renders")
    args = parser.parse_args()
    if args.ground_truth_only:
        grammar = scenes.GRAMMAR
        if os.path.exists(os.path.join(args.folder, "scene_grammar.json")):
            with open(os.path.join(args.folder, "scene_grammar.json")) as f:
                grammar = json.load(f)
        judge = Judge(grammar)
        for shape, features in judge.prototypes:
            print("prototype", shape, [round(float(x), 3) for x in features])
        accuracy, count, failures = judge_ground_truth(judge, jittered=args.jittered)
        print(count, "ground-truth renders:", accuracy)
        for failure in failures[:20]:
            print("  miss:", failure)
        for sigma in (0.7, 1.0):
            accuracy, count, failures = judge_ground_truth(judge, blur_sigma=sigma)
            print(count, f"ground-truth renders blurred by sigma {sigma} px:", accuracy)
        return
    if args.sweep:
        sweep(args.folder, tuple(args.seeds), args.threads)
        return
    evaluate(args.folder, args.out, args.steps, args.guidance, args.sampler, args.dtype, tuple(args.seeds), args.sheet,
             threads=args.threads)


if __name__ == "__main__":
    main()
