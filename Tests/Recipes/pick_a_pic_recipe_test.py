"""Runs README.md's Pick-a-Pic recipe as a new user would, on tiny models it builds itself.

In an empty folder it lays out what the README's download step leaves there, with no download:
`pickapic_v2/data/test-00000-of-00001.parquet` shaped like Pick-a-Pic's (yuvalkirstain/pickapic_v2:
`caption`, `jpg_0` and `jpg_1` as JPEG bytes, `label_0` in {0, 0.5, 1}, and columns the recipe
ignores), written with pyarrow; the tiny SD1 test model as `stable-diffusion-v1-5/`
(scripts/tiny-model.py); and a copy of its U-Net with every weight moved by seeded noise as
`dpo-sd15/unet/`, the layout DPO checkpoints are published in. It saves the README's Python block
verbatim as `pick_a_pic_pairs.py` and runs the README's run block (the `sh` block after
`<!-- pick-a-pic-run -->`) verbatim with bash, with `python3` and `kiln` on PATH, then checks:

- ties were dropped, winners put first, prompts kept in file order, and every PNG holds exactly the
  pixels Pillow decodes from the JPEG;
- the table kiln printed covers every pair with the asked draws;
- the same command with `--json` gives the table's numbers, and those numbers are consistent:
  each draw's inside term and DPO loss follow from its four losses, each pair's from its draws, the
  summary from the pairs, and the tuned model's losses differ from the reference's.

    swift build && python3 Tests/Recipes/pick_a_pic_recipe_test.py [--kiln .build/debug/kiln] [--backend cpu|vulkan]

Needs pyarrow, Pillow, numpy and safetensors (Tests/Recipes/requirements.txt). Exit code 0 when everything holds.
"""
import argparse
import io
import json
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from safetensors.numpy import load_file, save_file

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def block_after(marker, language):
    """The first ```language block after `marker` in README.md, as printed there."""
    text = README.read_text(encoding="utf-8")
    if marker not in text:
        raise SystemExit(f"README.md has no {marker}")
    after = text.split(marker, 1)[1]
    return after.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def jpeg(width, height, seed):
    """A JPEG of gradients and noise, so that decoding and resizing both matter."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x * y) % 256], axis=-1)
    pixels = np.clip(pixels + rng.randint(-40, 40, size=pixels.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def tuned_unet(reference, target, seed=20, strength=0.1):
    """`reference`'s U-Net with every tensor moved by `strength` x its spread of seeded noise."""
    rng = np.random.RandomState(seed)
    weights = load_file(str(reference / "unet" / "diffusion_pytorch_model.safetensors"))
    moved = {}
    for name in sorted(weights):
        tensor = weights[name].astype(np.float64)
        scale = tensor.std() if tensor.size > 1 else abs(tensor).mean() + 1e-3
        moved[name] = (tensor + strength * scale * rng.standard_normal(tensor.shape)).astype(weights[name].dtype)
    target.mkdir(parents=True)
    save_file(moved, str(target / "diffusion_pytorch_model.safetensors"))
    (target / "config.json").write_text((reference / "unet" / "config.json").read_text(encoding="utf-8"), encoding="utf-8")


def command_path(folder, kiln):
    """A folder holding `python3` (this interpreter) and `kiln`, put first on PATH."""
    bin_dir = folder / ".bin"
    bin_dir.mkdir()
    python = bin_dir / "python3"  # a wrapper, not a link: a link to a virtual environment's python leaves the environment
    python.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} \"$@\"\n", encoding="utf-8")
    python.chmod(0o755)
    (bin_dir / "kiln").symlink_to(Path(kiln).resolve())
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def check_consistent(report, draws):
    """Every number of `kiln preference score --json` follows from the four losses of its draw."""
    beta, convention = report["summary"]["beta"], report["summary"]["convention"]
    pair_accuracies, pair_losses = [], []
    for pair in report["pairs"]:
        assert len(pair["draws"]) == draws, pair
        for draw in pair["draws"]:
            assert 0 <= draw["t"] < 1000, draw
            model_diff = draw["model_loss_w"] - draw["model_loss_l"]
            ref_diff = draw["ref_loss_w"] - draw["ref_loss_l"]
            inside = beta * (ref_diff - model_diff) if convention == "sd" else -0.5 * beta * (model_diff - ref_diff)
            scale = beta * max(abs(draw[key]) for key in ("model_loss_w", "model_loss_l", "ref_loss_w", "ref_loss_l"))
            assert abs(draw["inside_term"] - inside) <= 1e-6 * scale, (draw, inside)
            given = draw["inside_term"]
            expected_loss = math.log1p(math.exp(-given)) if given > -30 else -given  # -log(sigmoid(inside_term))
            assert abs(draw["loss"] - expected_loss) <= 1e-9 * max(1.0, expected_loss), (draw, expected_loss)
            assert draw["implicit_acc"] == (1.0 if draw["inside_term"] > 0 else 0.5 if draw["inside_term"] == 0 else 0.0), draw
            assert draw["model_loss_w"] != draw["ref_loss_w"] and draw["model_loss_l"] != draw["ref_loss_l"], \
                f"the tuned U-Net scores like the reference: {draw}"
        for key in ("inside_term", "loss", "implicit_acc"):
            mean = sum(draw[key] for draw in pair["draws"]) / draws
            assert abs(pair[key] - mean) <= 1e-9 * max(1.0, abs(mean)), (key, pair[key], mean)
        pair_accuracies.append(pair["implicit_acc"])
        pair_losses.append(pair["loss"])
    summary = report["summary"]
    assert abs(summary["implicit_acc"] - sum(pair_accuracies) / len(pair_accuracies)) <= 1e-12, summary
    assert abs(summary["loss"] - sum(pair_losses) / len(pair_losses)) <= 1e-9 * max(1.0, summary["loss"]), summary
    low, high = summary["implicit_acc_ci95"]
    assert 0 <= low <= summary["implicit_acc"] <= high <= 1, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kiln", default=str(ROOT / ".build" / "debug" / "kiln"))
    parser.add_argument("--backend", help="cpu or vulkan, appended to the README's kiln command (default: the command as printed)")
    args = parser.parse_args()
    rows = [
        ("a red fox in the snow", (64, 64), (64, 64), 1.0),
        ("a lighthouse at dusk", (80, 96), (96, 80), 0.0),
        ("a tie between two bowls of ramen", (64, 64), (64, 64), 0.5),
        ("an astronaut riding a horse", (120, 72), (64, 64), 1.0),
        ("a watercolor of a cat", (50, 70), (70, 50), 0.0),
        ("isometric city at night", (64, 128), (128, 64), 1.0),
    ]
    images = [(jpeg(*row[1], seed=2 * i), jpeg(*row[2], seed=2 * i + 1)) for i, row in enumerate(rows)]
    parquet_table = pa.table({
        "are_different": pa.array([True] * len(rows)),
        "best_image_uid": pa.array([f"uid-{i}" for i in range(len(rows))]),
        "caption": pa.array([row[0] for row in rows]),
        "jpg_0": pa.array([first for first, _ in images], pa.binary()),
        "jpg_1": pa.array([second for _, second in images], pa.binary()),
        "label_0": pa.array([row[3] for row in rows], pa.float64()),
        "label_1": pa.array([1 - row[3] for row in rows], pa.float64()),
    })
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        # What the README's download step leaves in the folder.
        (folder / "pickapic_v2" / "data").mkdir(parents=True)
        pq.write_table(parquet_table, folder / "pickapic_v2" / "data" / "test-00000-of-00001.parquet", row_group_size=4)
        subprocess.run([sys.executable, str(ROOT / "scripts" / "tiny-model.py"), str(folder / "stable-diffusion-v1-5"), "--family", "sd1"],
                       check=True, stdout=subprocess.DEVNULL)
        tuned_unet(folder / "stable-diffusion-v1-5", folder / "dpo-sd15" / "unet")
        (folder / "pick_a_pic_pairs.py").write_text(block_after("<!-- pick-a-pic-recipe -->", "python"), encoding="utf-8")

        run_block = block_after("<!-- pick-a-pic-run -->", "sh")
        kiln_lines = [line for line in run_block.splitlines() if line.startswith("kiln preference score")]
        assert len(kiln_lines) == 1, f"the run block should score once: {run_block!r}"
        backend = ["--backend", args.backend] if args.backend else []
        script = run_block.replace(kiln_lines[0], shlex.join(shlex.split(kiln_lines[0]) + backend)) if backend else run_block
        environment = dict(os.environ, PATH=command_path(folder, args.kiln))
        completed = subprocess.run(["bash", "-e", "-c", script], cwd=folder, env=environment, capture_output=True, text=True)
        assert completed.returncode == 0, f"the README's run block exited {completed.returncode}:\n{completed.stderr}"
        printed = completed.stdout

        out = folder / "pickapic-test"
        pairs = [json.loads(line) for line in (out / "pairs.jsonl").read_text(encoding="utf-8").splitlines()]
        kept = [(i, row) for i, row in enumerate(rows) if row[3] != 0.5]
        assert len(pairs) == len(kept), f"{len(pairs)} pairs, expected {len(kept)} (the tie dropped)"
        for pair, (index, row) in zip(pairs, kept):
            assert pair["prompt"] == row[0], pair
            first, second = images[index]
            winner, loser = (first, second) if row[3] == 1 else (second, first)
            for field, data in (("winner", winner), ("loser", loser)):
                decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
                written = Image.open(out / pair[field])
                assert written.format == "PNG" and written.mode == "RGB", (pair[field], written.format, written.mode)
                assert np.array_equal(np.asarray(written), decoded), f"{pair[field]}: pixels differ from the JPEG's"
        print(f"recipe: {len(pairs)} pairs of {len(rows)} rows, the tie dropped, winners first, "
              "PNG pixels as Pillow decodes the JPEGs")

        draws = int(re.search(r"--draws (\d+)", kiln_lines[0]).group(1))
        heading = re.search(r"^(\d+) pairs x (\d+) draws? \((\w+), beta ([\d.e+]+),", printed, re.MULTILINE)
        assert heading, f"no summary in kiln's table:\n{printed}"
        assert (int(heading.group(1)), int(heading.group(2))) == (len(pairs), draws), heading.group(0)
        table_rows = [line for line in printed.splitlines() if re.match(r"^\s*\d+\s+[\d.]+\s+[-+]", line)]
        assert [row.split(None, 4)[4] for row in table_rows] == [pair["prompt"] for pair in pairs], printed

        # The README's "add --json" variant: the same draws, so the table's numbers.
        command = shlex.split(kiln_lines[0]) + backend + ["--json", "--quiet"]
        completed = subprocess.run(command, cwd=folder, env=environment, capture_output=True, text=True)
        assert completed.returncode == 0, completed.stderr
        report = json.loads(completed.stdout)
        assert [pair["prompt"] for pair in report["pairs"]] == [pair["prompt"] for pair in pairs]
        assert [(pair["winner"], pair["loser"]) for pair in report["pairs"]] == [(pair["winner"], pair["loser"]) for pair in pairs]
        summary = report["summary"]
        assert summary["pairs"] == len(pairs) and summary["draws"] == draws, summary
        check_consistent(report, draws)
        accuracy = float(re.search(r"^implicit accuracy\s+([\d.]+)", printed, re.MULTILINE).group(1))
        dpo_loss = float(re.search(r"^DPO loss\s+([\d.e+-]+)", printed, re.MULTILINE).group(1))
        assert abs(accuracy - summary["implicit_acc"]) <= 5e-5 and abs(dpo_loss - summary["loss"]) <= 1e-5 * max(1.0, dpo_loss), \
            (printed, summary)
        print(f"kiln preference score on {summary['device']}: {summary['pairs']} pairs x {draws} draws, implicit accuracy "
              f"{summary['implicit_acc']:.4f} (95% CI {summary['implicit_acc_ci95'][0]:.3f}-{summary['implicit_acc_ci95'][1]:.3f}), "
              f"DPO loss {summary['loss']:.4f}, model loss {summary['model_loss']:.4f}, reference loss {summary['ref_loss']:.4f}; "
              "the table and --json agree and every number follows from the losses")
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
