"""Cross-check `kiln preference score` against torch on freshly drawn models, images and seeds.

The parity tests compare Kiln with recorded runs on three fixed tiny models. This tool draws new
ones every trial (architectures, noise schedules with epsilon or v-prediction, a tuned copy of the
U-Net moved by seeded noise), images of random sizes and contents, prompts, draws, seeds, beta,
the sd or sdxl convention and sometimes a non-native resolution; computes every draw's losses the
way diffusers' train_diffusion_dpo.py does (Tests/Fixtures/generate_preference_fixtures.py's
`Models`), runs `kiln preference score --json` on the same pairs, and compares every draw, every
pair's means and the summary; then ranks three of the images with `kiln preference rank --json`
against torch's implicit rewards under the same draws. `--model FOLDER`
scores a given diffusers folder instead (for example the SD1.5-shaped one that
Benchmarks/PipelineBenchmarks/make_random_sd15.py writes) against a perturbed copy of its U-Net.
A development tool, not part of `swift test` (it needs torch and torchvision).

    swift build && .venv/bin/python Tests/CrossCheck/crosscheck_preference.py --trials 6 --seed 1
    .venv/bin/python Tests/CrossCheck/crosscheck_preference.py --backend vulkan --family sdxl
    .venv/bin/python Tests/CrossCheck/crosscheck_preference.py --model /tmp/sd15 --resolution 256 --pairs 2 --trials 1

Losses must agree within 1e-4 relative on the CPU backend and 1e-2 on Vulkan, inside terms, DPO
losses and rewards within that share of their scale (beta, or beta / 2, times the largest loss),
and Kiln's inside terms, DPO losses and rewards must follow from its own losses to 1e-9 of that scale;
implicit accuracies must be equal wherever torch's inside term is farther from 0 than that
tolerance (the draws closer than that are counted), and the rank order wherever the rewards are
that far apart. Exit code 1 when a trial fails.
"""

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from crosscheck_common import KILN, seeded  # noqa: F401 - sets the offline environment first

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402
from diffusers import UNet2DConditionModel  # noqa: E402

from crosscheck_generate import PROMPTS, build_folder  # noqa: E402
from generate_preference_fixtures import Models, inside_term, load_images  # noqa: E402
import generate_preference_fixtures  # noqa: E402


def tuned_copy(model, folder, rng):
    """The model's U-Net with every weight moved by seeded noise, as a folder holding only unet/."""
    unet = UNet2DConditionModel.from_pretrained(model / "unet", torch_dtype=torch.float32)
    generator = torch.Generator().manual_seed(rng.randint(0, 10**6))
    strength = rng.choice([0.02, 0.1, 0.3])
    with torch.no_grad():
        for _, parameter in sorted(unet.named_parameters()):
            scale = float(parameter.std()) if parameter.numel() > 1 else float(parameter.abs().mean()) + 1e-3
            parameter.add_(strength * scale * torch.randn(parameter.shape, generator=generator))
    target = folder / "tuned" / "unet"
    unet.save_pretrained(target, safe_serialization=True)
    return target


def draw_images(rng, folder, count, native):
    """`count` PNGs of random sizes around the native one: colour fields, a disc, noise."""
    names = []
    for index in range(count):
        width, height = (rng.randint(native // 2, native * 2) for _ in range(2))
        if rng.random() < 0.3:
            width = height = native
        random_state = np.random.RandomState(rng.randint(0, 2**31 - 1))
        y, x = np.mgrid[0:height, 0:width].astype(np.float64)
        channels = [127.5 + 100 * np.sin(x / width * random_state.uniform(1, 8) + c) * np.cos(y / height * random_state.uniform(1, 8))
                    for c in range(3)]
        pixels = np.stack(channels, axis=-1) + random_state.normal(0, 15, size=(height, width, 3))
        image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")
        if rng.random() < 0.15:
            image = image.convert("L")
        name = f"image_{index}.png"
        image.save(folder / name)
        names.append(name)
    return names


def torch_scores(model, tuned, family, pairs, folder, settings):
    """Per pair, per draw: t and the four losses and the inside term, as the training script computes them."""
    models = Models(model, tuned, family)
    generate_preference_fixtures.OUT_DIR = folder.parent  # load_images reads OUT_DIR / "images" / name
    generator = torch.Generator("cpu").manual_seed(settings["seed"])
    results = []
    for prompt, winner, loser in pairs:
        pixels, time_ids = load_images([Path(winner).stem, Path(loser).stem], settings["resolution"])
        latents = models.latents(pixels)
        draws = []
        for t, model_losses, ref_losses in models.losses(latents, prompt, settings["draws"], generator, time_ids):
            inside = inside_term(settings["convention"], settings["beta"], model_losses, ref_losses).item()
            draws.append(dict(t=t, losses=[model_losses[0].item(), model_losses[1].item(), ref_losses[0].item(), ref_losses[1].item()],
                              inside=inside, loss=-F.logsigmoid(torch.tensor(inside, dtype=torch.float64)).item(),
                              accuracy=1.0 if inside > 0 else (0.5 if inside == 0 else 0.0)))
        results.append(draws)
    return results, models


def torch_rewards(models, names, prompt, settings):
    """rank's implicit rewards: every image under the same draws, from a fresh generator."""
    generator = torch.Generator("cpu").manual_seed(settings["seed"])
    pixels, time_ids = load_images([Path(name).stem for name in names], settings["resolution"])
    latents = models.latents(pixels)
    scale = settings["beta"] * (0.5 if settings["convention"] == "sdxl" else 1.0)
    draws = models.losses(latents, prompt, settings["draws"], generator, time_ids)
    return [dict(t=[t for t, _, _ in draws], model=[m[index].item() for _, m, _ in draws], ref=[r[index].item() for _, _, r in draws],
                 reward=sum(scale * (r[index].item() - m[index].item()) for _, m, r in draws) / len(draws))
            for index in range(len(names))]


def kiln(subcommand, model, tuned, arguments, settings, backend):
    command = [str(KILN), "preference", subcommand, "--model", str(tuned.parent), "--reference", str(model), "--backend", backend,
               "--draws", str(settings["draws"]), "--seed", str(settings["seed"]), "--convention", settings["convention"],
               "--beta", str(settings["beta"]), "--resolution", str(settings["resolution"]), "--json", "--quiet", *arguments]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"kiln preference {subcommand} exited {completed.returncode}: {completed.stderr.strip()}")
    return json.loads(completed.stdout)


def relative(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


class Comparison:
    """The worst errors of one trial; an implicit accuracy may differ only where torch's inside term
    is within the tolerance of 0 (its sign is then rounding), and such draws are counted."""

    def __init__(self, settings, tolerance):
        self.scale = settings["beta"] * (0.5 if settings["convention"] == "sdxl" else 1.0)
        self.tolerance = tolerance
        self.settings = settings
        self.loss = self.inside = self.dpo = self.summary = self.reward = self.formula = 0.0
        self.mismatches = self.close = self.excused = self.draws = 0
        self.order = True

    def decision(self, want, got, magnitude):
        """One draw's implicit accuracy: a mismatch fails unless torch's inside term is within the
        tolerance of 0. Returns the accuracy the pair's mean is expected to count: torch's, or
        Kiln's where a mismatch was excused."""
        self.draws += 1
        close = abs(want["inside"]) <= self.tolerance * magnitude
        self.close += close
        if got["implicit_acc"] != want["accuracy"]:
            if close:
                self.excused += 1
                return got["implicit_acc"]
            self.mismatches += 1
        return want["accuracy"]

    def scores(self, expected, actual):
        if len(actual["pairs"]) != len(expected):
            raise RuntimeError(f"kiln scored {len(actual['pairs'])} pairs of {len(expected)}")
        totals = dict(model=[], ref=[], loss=[], accuracy=[])
        for expected_pair, actual_pair in zip(expected, actual["pairs"]):
            if len(actual_pair["draws"]) != len(expected_pair):
                raise RuntimeError(f"kiln drew {len(actual_pair['draws'])} times, asked {len(expected_pair)}")
            accuracies = []
            for want, got in zip(expected_pair, actual_pair["draws"]):
                if want["t"] != got["t"]:
                    raise RuntimeError(f"timestep {got['t']}, torch drew {want['t']}")
                values = [got["model_loss_w"], got["model_loss_l"], got["ref_loss_w"], got["ref_loss_l"]]
                self.loss = max(self.loss, max(relative(a, b) for a, b in zip(values, want["losses"])))
                magnitude = self.scale * max(abs(v) for v in want["losses"])
                self.inside = max(self.inside, abs(got["inside_term"] - want["inside"]) / magnitude)
                self.dpo = max(self.dpo, abs(got["loss"] - want["loss"]) / max(magnitude, 1.0))
                accuracies.append(self.decision(want, got, magnitude))
                # Kiln's own numbers must follow from its losses by the formula, to double rounding:
                # this catches a wrong beta or convention that the loss tolerance would hide.
                own = inside_term(self.settings["convention"], self.settings["beta"], torch.tensor(values[:2], dtype=torch.float64),
                                  torch.tensor(values[2:], dtype=torch.float64)).item()
                self.formula = max(self.formula, abs(got["inside_term"] - own) / magnitude,
                                   abs(got["loss"] - (-F.logsigmoid(torch.tensor(got["inside_term"], dtype=torch.float64)).item())))
                totals["model"].append(0.5 * (want["losses"][0] + want["losses"][1]))
                totals["ref"].append(0.5 * (want["losses"][2] + want["losses"][3]))
            accuracy = sum(accuracies) / len(accuracies)
            if actual_pair["implicit_acc"] != accuracy:
                self.mismatches += 1
            totals["loss"].append(sum(d["loss"] for d in expected_pair) / len(expected_pair))
            totals["accuracy"].append(accuracy)
        summary = actual["summary"]
        mean = lambda values: sum(values) / len(values)  # noqa: E731
        for key, values in (("model_loss", totals["model"]), ("ref_loss", totals["ref"])):
            self.summary = max(self.summary, relative(summary[key], mean(values)))
        self.summary = max(self.summary, abs(summary["loss"] - mean(totals["loss"])) / max(self.scale * mean(totals["ref"]), 1.0))
        if summary["implicit_acc"] != mean(totals["accuracy"]):
            self.mismatches += 1

    def rank(self, expected, actual, names):
        by_image = {Path(image["image"]).name: image for image in actual["images"]}
        for name, want in zip(names, expected):
            got = by_image[Path(name).name]
            if [d["t"] for d in got["draws"]] != want["t"]:
                raise RuntimeError(f"rank: timesteps {[d['t'] for d in got['draws']]}, torch drew {want['t']}")
            self.loss = max(self.loss, max(relative(a["model_loss"], b) for a, b in zip(got["draws"], want["model"])),
                            max(relative(a["ref_loss"], b) for a, b in zip(got["draws"], want["ref"])))
            magnitude = self.scale * max(max(map(abs, want["model"])), max(map(abs, want["ref"])))
            self.reward = max(self.reward, abs(got["reward"] - want["reward"]) / magnitude)
            own = sum(self.scale * (d["ref_loss"] - d["model_loss"]) for d in got["draws"]) / len(got["draws"])
            self.formula = max(self.formula, abs(got["reward"] - own) / magnitude)
        ordered = sorted(range(len(names)), key=lambda index: -expected[index]["reward"])
        gaps = [expected[a]["reward"] - expected[b]["reward"] for a, b in zip(ordered, ordered[1:])]
        magnitude = self.scale * max(max(map(abs, w["model"] + w["ref"])) for w in expected)
        if all(gap > self.tolerance * magnitude for gap in gaps):
            self.order = [Path(image["image"]).name for image in actual["images"]] == [Path(names[i]).name for i in ordered]

    def ok(self):
        return (max(self.loss, self.inside, self.dpo, self.summary, self.reward) <= self.tolerance
                and self.formula <= 1e-9 and self.mismatches == 0 and self.order)

    def __str__(self):
        return (f"{'ok' if self.ok() else 'FAIL'} losses {self.loss:.2e}, inside terms {self.inside:.2e}, DPO losses {self.dpo:.2e}, "
                f"summary {self.summary:.2e}, rank rewards {self.reward:.2e} of scale, formula {self.formula:.1e}; {self.mismatches} accuracy mismatches "
                f"(of {self.draws} draws {self.close} within the tolerance of 0, {self.excused} of those disagreeing), rank order {'as torch' if self.order else 'DIFFERS'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0, help="draws the models, images and settings")
    parser.add_argument("--family", choices=["sd1", "sd2", "sdxl"], action="append")
    parser.add_argument("--backend", choices=["cpu", "vulkan"], default="cpu")
    parser.add_argument("--model", type=Path, help="a diffusers folder to score instead of fresh tiny models")
    parser.add_argument("--resolution", type=int, help="with --model: the scoring resolution")
    parser.add_argument("--pairs", type=int, default=4)
    args = parser.parse_args()
    tolerance = 1e-4 if args.backend == "cpu" else 1e-2
    families = args.family or ["sd1", "sd2", "sdxl"]
    torch.set_grad_enabled(False)
    failures = 0
    for trial in range(args.trials):
        rng = random.Random(args.seed * 1000 + trial)
        with tempfile.TemporaryDirectory() as temporary:
            folder = Path(temporary)
            if args.model:
                model = args.model
                family = "sdxl" if (model / "text_encoder_2").exists() else "sd1"
            else:
                family = families[trial % len(families)]
                model = build_folder(rng, family, rng.randint(0, 10**6), folder)
            tuned = tuned_copy(model, folder, rng)
            convention = rng.choice(["sd", "sdxl"])
            settings = dict(draws=rng.randint(1, 3), seed=rng.randint(0, 2**32 - 1), convention=convention,
                            beta=rng.choice([50.0, 500.0, 2500.0 if convention == "sd" else 5000.0]))
            images = folder / "set" / "images"
            images.mkdir(parents=True)
            probe = Models(model, tuned, family)
            native = probe.native
            del probe
            factor = native // UNet2DConditionModel.load_config(model / "unet")["sample_size"]
            settings["resolution"] = args.resolution or (native if rng.random() < 0.6 else factor * rng.randint(4, 12))
            names = draw_images(rng, images, 2 * args.pairs, settings["resolution"])
            pairs = [(rng.choice(PROMPTS), names[2 * i], names[2 * i + 1]) for i in range(args.pairs)]
            pairs_file = folder / "set" / "pairs.jsonl"
            pairs_file.write_text("".join(json.dumps({"prompt": p, "winner": f"images/{w}", "loser": f"images/{l}"}) + "\n"
                                          for p, w, l in pairs))
            try:
                comparison = Comparison(settings, tolerance)
                expected, models = torch_scores(model, tuned, family, pairs, images, settings)
                comparison.scores(expected, kiln("score", model, tuned, [str(pairs_file)], settings, args.backend))
                ranked = [str(images / name) for name in names[:3]]
                prompt = pairs[0][0]
                comparison.rank(torch_rewards(models, ranked, prompt, settings),
                                kiln("rank", model, tuned, ["--prompt", prompt, *ranked], settings, args.backend), ranked)
                del models
                ok, verdict = comparison.ok(), str(comparison)
            except Exception as problem:  # noqa: BLE001 - report and go on to the next trial
                ok, verdict = False, f"ERROR {problem}"
            failures += not ok
            scheduler = json.loads((model / "scheduler" / "scheduler_config.json").read_text())
            print(f"trial {trial} {family}: {verdict} | {settings} | {scheduler.get('prediction_type', 'epsilon')}", flush=True)
            shutil.rmtree(folder / "tuned", ignore_errors=True)
    print(f"{failures} of {args.trials} trials failed (tolerance {tolerance})")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
