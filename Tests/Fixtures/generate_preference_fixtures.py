"""Record Diffusion-DPO scores of tiny models with diffusers and torch, for `kiln preference`'s tests.

Rerun from the repository root (pins in Tests/Fixtures/requirements.txt, torchvision included):

    .venv/bin/python Tests/Fixtures/generate_preference_fixtures.py

Nothing is downloaded. The reference models are the tiny sd1 (epsilon), sd2 (v_prediction) and
sdxl folders of Tests/KilnModelsTests/Fixtures/sd/ (generate_sd_fixtures.py); each gets a "tuned"
copy of its U-Net with every weight moved by seeded noise, saved as a folder holding only unet/,
the layout DPO checkpoints are published in. The scores follow diffusers'
examples/research_projects/diffusion_dpo/train_diffusion_dpo.py (and _sdxl.py for SDXL's added
conditioning and the sdxl convention), evaluated rather than trained:

- images: Image.open().convert("RGB"), torchvision Resize(R, BILINEAR), CenterCrop(R), ToTensor(),
  Normalize([0.5], [0.5]); latents = vae.encode(x).latent_dist.mean * scaling_factor;
- one torch.Generator("cpu").manual_seed(seed) for the run; per pair, per draw: the timestep
  torch.randint(0, num_train_timesteps, (1,)), then the noise torch.randn([1, C, h, w]), shared by
  winner and loser; DDPMScheduler.from_pretrained(folder, subfolder="scheduler").add_noise;
- both U-Nets on the prompt's embeddings (no classifier-free guidance); SDXL: pooled text embeds
  and time ids (original size, crop top-left, (R, R)) of each image;
- F.mse_loss(pred.float(), target.float(), reduction="none").mean over C, h, w against the noise
  (epsilon) or get_velocity (v_prediction); model_diff, ref_diff, inside_term, -logsigmoid,
  implicit accuracy exactly as the scripts' sd / sdxl forms.

Also records torch.randint draws interleaved with torch.randn (KilnSamplingTests) and torchvision
Resize + CenterCrop, and Pillow's bilinear resize, on PIL images (KilnImageTests).

Writes:
  Tests/KilnPipelinesTests/Fixtures/preference/
    <family>/tuned/unet/          the perturbed U-Net (config.json, diffusion_pytorch_model.safetensors)
    <family>/pairs.jsonl          the pairs, image paths relative to the file
    images/*.png                  the pair images (several sizes, one gray, one RGBA)
    records.json                  every case: settings, per pair and draw t and the four losses,
                                  inside_term, loss, implicit_acc; per pair and overall means;
                                  the rank case's rewards
    latents.safetensors           `<family>.<image>` the VAE posterior mean x scaling_factor [1, 4, h, w]
  Tests/KilnSamplingTests/Fixtures/randint.json
  Tests/KilnImageTests/Fixtures/resize/  sources, expected outputs, cases.json

Output is byte-for-byte reproducible.
"""

import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["DIFFUSERS_VERBOSITY"] = "error"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torchvision import transforms  # noqa: E402
from transformers import AutoTokenizer, CLIPTextModel, CLIPTextModelWithProjection  # noqa: E402

from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Tests" / "Fixtures"))
from generate_sd_fixtures import MERGES_CANDIDATES, write_clip_vocab  # noqa: E402

MODELS = REPO / "Tests" / "KilnModelsTests" / "Fixtures" / "sd"
OUT_DIR = REPO / "Tests" / "KilnPipelinesTests" / "Fixtures" / "preference"
RANDINT_FILE = REPO / "Tests" / "KilnSamplingTests" / "Fixtures" / "randint.json"
RESIZE_DIR = REPO / "Tests" / "KilnImageTests" / "Fixtures" / "resize"

PROMPTS = [
    "a red fox in the snow, golden hour",
    "a lighthouse on a cliff, oil painting",
    "a bowl of ramen, studio photo",
    "an astronaut riding a horse on mars",
]

# name: (width, height, mode)
IMAGES = {
    "fox_a": (64, 64, "RGB"), "fox_b": (64, 64, "RGB"),
    "lighthouse_a": (80, 64, "RGB"), "lighthouse_b": (64, 96, "RGB"),
    "ramen_a": (50, 70, "RGB"), "ramen_b": (128, 128, "RGB"),
    "astronaut_a": (64, 64, "L"), "astronaut_b": (73, 72, "RGBA"),
}
PAIRS = [
    (PROMPTS[0], "fox_a", "fox_b"),
    (PROMPTS[1], "lighthouse_b", "lighthouse_a"),
    (PROMPTS[2], "ramen_a", "ramen_b"),
    (PROMPTS[3], "astronaut_b", "astronaut_a"),
]

# family: settings of its recorded run (resolution None: the model's native size).
CASES = {
    "sd1": dict(draws=3, seed=7, convention="sd", beta=2500.0, resolution=None, perturbation=0.3),
    "sd2": dict(draws=2, seed=123, convention="sd", beta=500.0, resolution=48, perturbation=0.5),
    "sdxl": dict(draws=2, seed=2024, convention="sdxl", beta=5000.0, resolution=None, perturbation=0.3),
}
RANK = dict(family="sd1", prompt=PROMPTS[0], images=["fox_a", "fox_b", "ramen_b", "lighthouse_a"], draws=2, seed=11,
            convention="sd", beta=2500.0)


def complete_folder(family, tmp):
    """A copy of the family's diffusers folder with vocab.json/merges.txt restored."""
    merges = next(p for p in MERGES_CANDIDATES if p.exists())
    folder = Path(tmp) / family
    shutil.copytree(MODELS / family / "diffusers", folder)
    for tokenizer in sorted(folder.glob("tokenizer*")):
        write_clip_vocab(merges, tokenizer)
    return folder


def write_images():
    """Smooth colour fields with a few shapes and seeded noise, one per name, so images differ."""
    folder = OUT_DIR / "images"
    folder.mkdir(parents=True)
    for index, (name, (width, height, mode)) in enumerate(sorted(IMAGES.items())):
        rng = np.random.RandomState(1000 + index)
        y, x = np.mgrid[0:height, 0:width].astype(np.float64)
        phase = rng.uniform(0, 2 * np.pi, size=3)
        channels = []
        for c in range(3):
            wave = np.sin(x / width * rng.uniform(2, 7) + phase[c]) * np.cos(y / height * rng.uniform(2, 7) - phase[c])
            channels.append(127.5 + 90 * wave)
        rgb = np.stack(channels, axis=-1)
        cx, cy, radius = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height, rng.uniform(0.15, 0.3) * min(width, height)
        disc = (x - cx) ** 2 + (y - cy) ** 2 < radius ** 2
        rgb[disc] = rng.uniform(0, 255, size=3)
        rgb += rng.normal(0, 12, size=rgb.shape)
        pixels = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels, "RGB")
        if mode == "L":
            image = image.convert("L")
        elif mode == "RGBA":
            alpha = np.clip(np.rint(255 * (x / width)), 0, 255).astype(np.uint8)
            image = Image.fromarray(np.dstack([pixels, alpha]), "RGBA")
        image.save(folder / f"{name}.png")


def write_tuned_unet(family, perturbation, seed):
    """The reference U-Net with every tensor moved by seeded noise of `perturbation` x its std."""
    source = MODELS / family / "diffusers" / "unet"
    unet = UNet2DConditionModel.from_pretrained(source, torch_dtype=torch.float32)
    with safe_open(source / "diffusion_pytorch_model.safetensors", framework="pt") as stored:
        stored_dtype = stored.get_tensor(next(iter(stored.keys()))).dtype
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, parameter in sorted(unet.named_parameters()):
            scale = parameter.std() if parameter.numel() > 1 else parameter.abs().mean() + 1e-3
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.add_(perturbation * float(scale) * noise)
            # Stored as the reference is: float16 values round-trip exactly.
            parameter.copy_(parameter.to(stored_dtype).float())
    target = OUT_DIR / family / "tuned" / "unet"
    unet.to(stored_dtype).save_pretrained(target, safe_serialization=True)
    return target


def training_transforms(resolution):
    return transforms.Compose([
        transforms.Resize(resolution, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(resolution),
        transforms.ToTensor(),
        transforms.Normalize([0.5], [0.5]),
    ])


def crop_top_left(image, resolution):
    """The SDXL script's (y1, x1) for the non-random crop, from the resized size."""
    resized = transforms.Resize(resolution, interpolation=transforms.InterpolationMode.BILINEAR)(image)
    return (max(0, int(round((resized.height - resolution) / 2.0))), max(0, int(round((resized.width - resolution) / 2.0))))


class Models:
    """The reference's text encoders, VAE, scheduler and U-Net, and the tuned U-Net, in float32."""

    def __init__(self, folder, tuned, family):
        self.sdxl = family == "sdxl"
        self.tokenizers = [AutoTokenizer.from_pretrained(folder, subfolder="tokenizer", use_fast=False)]
        self.encoders = [CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", torch_dtype=torch.float32)]
        if self.sdxl:
            self.tokenizers.append(AutoTokenizer.from_pretrained(folder, subfolder="tokenizer_2", use_fast=False))
            self.encoders.append(CLIPTextModelWithProjection.from_pretrained(folder, subfolder="text_encoder_2", torch_dtype=torch.float32))
        self.vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=torch.float32)
        self.scheduler = DDPMScheduler.from_pretrained(folder, subfolder="scheduler")
        self.reference = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=torch.float32)
        self.tuned = UNet2DConditionModel.from_pretrained(tuned, torch_dtype=torch.float32)
        self.native = self.reference.config.sample_size * 2 ** (len(self.vae.config.block_out_channels) - 1)

    def tokens(self, tokenizer, prompt):
        return tokenizer([prompt], truncation=True, padding="max_length", max_length=tokenizer.model_max_length,
                         return_tensors="pt").input_ids

    def encode_prompt(self, prompt):
        """train_diffusion_dpo.py's last hidden state; the SDXL script's penultimate states and pooled embeds."""
        if not self.sdxl:
            return self.encoders[0](self.tokens(self.tokenizers[0], prompt))[0], None
        states = []
        for tokenizer, encoder in zip(self.tokenizers, self.encoders):
            output = encoder(self.tokens(tokenizer, prompt), output_hidden_states=True)
            pooled = output[0]
            states.append(output.hidden_states[-2])
        return torch.concat(states, dim=-1), pooled.view(1, -1)

    def latents(self, pixel_values):
        return self.vae.encode(pixel_values).latent_dist.mean * self.vae.config.scaling_factor

    def losses(self, latents, prompt, draws, generator, time_ids):
        """[draw] -> (t, model_losses[n], ref_losses[n]) for the n images of `latents`."""
        count = latents.shape[0]
        embeds, pooled = self.encode_prompt(prompt)
        results = []
        for _ in range(draws):
            t = torch.randint(0, self.scheduler.config.num_train_timesteps, (1,), generator=generator)
            noise = torch.randn((1,) + tuple(latents.shape[1:]), generator=generator)
            timesteps = t.repeat(count)
            noise = noise.repeat(count, 1, 1, 1)
            noisy = self.scheduler.add_noise(latents, noise, timesteps)
            kwargs = {}
            if self.sdxl:
                kwargs["added_cond_kwargs"] = {"time_ids": time_ids, "text_embeds": pooled.repeat(count, 1)}
            model_pred = self.tuned(noisy, timesteps, embeds.repeat(count, 1, 1), **kwargs).sample
            ref_pred = self.reference(noisy, timesteps, embeds.repeat(count, 1, 1), **kwargs).sample
            if self.scheduler.config.prediction_type == "epsilon":
                target = noise
            elif self.scheduler.config.prediction_type == "v_prediction":
                target = self.scheduler.get_velocity(latents, noise, timesteps)
            else:
                raise ValueError(self.scheduler.config.prediction_type)
            model_losses = F.mse_loss(model_pred.float(), target.float(), reduction="none")
            model_losses = model_losses.mean(dim=list(range(1, len(model_losses.shape))))
            ref_losses = F.mse_loss(ref_pred.float(), target.float(), reduction="none")
            ref_losses = ref_losses.mean(dim=list(range(1, len(ref_losses.shape))))
            results.append((int(t.item()), model_losses, ref_losses))
        return results


def load_images(names, resolution):
    transform = training_transforms(resolution)
    opened = [Image.open(OUT_DIR / "images" / f"{name}.png").convert("RGB") for name in names]
    pixels = torch.stack([transform(image) for image in opened])
    time_ids = torch.tensor([[image.height, image.width, *crop_top_left(image, resolution), resolution, resolution]
                             for image in opened], dtype=torch.float32)
    return pixels, time_ids


def inside_term(convention, beta, model_losses, ref_losses):
    model_w, model_l = model_losses.chunk(2)
    ref_w, ref_l = ref_losses.chunk(2)
    model_diff = model_w - model_l
    ref_diff = ref_w - ref_l
    if convention == "sd":
        return beta * (ref_diff - model_diff)
    scale_term = -0.5 * beta
    return scale_term * (model_diff - ref_diff)


def score_case(family, settings, folder, latents_out):
    tuned = write_tuned_unet(family, settings["perturbation"], seed={"sd1": 71, "sd2": 72, "sdxl": 73}[family])
    models = Models(folder, tuned, family)
    resolution = settings["resolution"] or models.native
    lines = [json.dumps({"prompt": prompt, "winner": f"../images/{winner}.png", "loser": f"../images/{loser}.png"})
             for prompt, winner, loser in PAIRS]
    (OUT_DIR / family / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    generator = torch.Generator("cpu").manual_seed(settings["seed"])
    pairs = []
    for prompt, winner, loser in PAIRS:
        pixels, time_ids = load_images([winner, loser], resolution)
        latents = models.latents(pixels)
        for name, latent in zip([winner, loser], latents):
            latents_out[f"{family}.{name}"] = latent.unsqueeze(0).contiguous()
        draws = []
        for t, model_losses, ref_losses in models.losses(latents, prompt, settings["draws"], generator, time_ids):
            inside = inside_term(settings["convention"], settings["beta"], model_losses, ref_losses)
            loss = -1 * F.logsigmoid(inside)
            accuracy = (inside > 0).sum().float() / inside.size(0) + 0.5 * (inside == 0).sum().float() / inside.size(0)
            draws.append({
                "t": t, "model_loss_w": model_losses[0].item(), "model_loss_l": model_losses[1].item(),
                "ref_loss_w": ref_losses[0].item(), "ref_loss_l": ref_losses[1].item(),
                "inside_term": inside.item(), "loss": loss.item(), "implicit_acc": accuracy.item(),
            })
        pairs.append({
            "prompt": prompt, "winner": f"../images/{winner}.png", "loser": f"../images/{loser}.png", "draws": draws,
            "inside_term": float(np.mean([d["inside_term"] for d in draws])),
            "loss": float(np.mean([d["loss"] for d in draws])),
            "implicit_acc": float(np.mean([d["implicit_acc"] for d in draws])),
        })
    summary = {
        "pairs": len(pairs), "draws": settings["draws"],
        "loss": float(np.mean([p["loss"] for p in pairs])),
        "implicit_acc": float(np.mean([p["implicit_acc"] for p in pairs])),
        "model_loss": float(np.mean([0.5 * (d["model_loss_w"] + d["model_loss_l"]) for p in pairs for d in p["draws"]])),
        "ref_loss": float(np.mean([0.5 * (d["ref_loss_w"] + d["ref_loss_l"]) for p in pairs for d in p["draws"]])),
    }
    smallest = min(abs(d["inside_term"]) for p in pairs for d in p["draws"])
    print(f"{family}: resolution {resolution}, accuracy {summary['implicit_acc']}, loss {summary['loss']:.4f}, "
          f"smallest |inside_term| {smallest:.4g}")
    assert smallest > 1e-2, "an inside term too close to 0 for its sign to be a stable check"
    case = {key: value for key, value in settings.items() if key != "perturbation"}
    case.update(family=family, resolution=resolution, pairs=pairs, summary=summary)
    return case, models, resolution


def rank_case(models, resolution):
    generator = torch.Generator("cpu").manual_seed(RANK["seed"])
    pixels, time_ids = load_images(RANK["images"], resolution)
    latents = models.latents(pixels)
    draws = models.losses(latents, RANK["prompt"], RANK["draws"], generator, time_ids)
    images = []
    for index, name in enumerate(RANK["images"]):
        per_draw = [{"t": t, "model_loss": m[index].item(), "ref_loss": r[index].item(),
                     "reward": RANK["beta"] * (r[index].item() - m[index].item())} for t, m, r in draws]
        images.append({"image": f"images/{name}.png", "draws": per_draw,
                       "reward": float(np.mean([d["reward"] for d in per_draw]))})
    images.sort(key=lambda image: -image["reward"])
    return dict(RANK, images=images, order=[image["image"] for image in images], resolution=resolution)


def write_randint():
    """torch.randint(low, high, (1,)) interleaved with torch.randn, on several widths and seeds."""
    cases = []
    widths = [1000, 1, 7, 2 ** 28 - 1, 2 ** 28, 2 ** 31, 2 ** 32 + 5, 3 * 10 ** 12]
    for seed in [0, 42, 2 ** 40 + 3]:
        for width in widths:
            generator = torch.Generator("cpu").manual_seed(seed)
            calls = []
            for step in range(4):
                low = 0 if step % 2 == 0 else -5
                value = torch.randint(low, low + width, (1,), generator=generator).item()
                noise = torch.randn((1, 4, 4, 4) if step < 3 else (3,), generator=generator)
                calls.append({"low": low, "high": low + width, "value": value,
                              "noise_head": [float(v) for v in noise.flatten()[:4].tolist()]})
            several = torch.randint(0, width, (5,), generator=generator).tolist()
            cases.append({"seed": str(seed), "calls": calls, "five": several})
    RANDINT_FILE.write_text(json.dumps({"cases": cases}, indent=1) + "\n")


def write_resize():
    """Pillow's bilinear resize and torchvision's Resize + CenterCrop on PIL images, over many sizes."""
    if RESIZE_DIR.exists():
        shutil.rmtree(RESIZE_DIR)
    RESIZE_DIR.mkdir(parents=True)
    sources = {"wide": (97, 61, "RGB"), "tall": (40, 111, "RGB"), "small": (13, 9, "RGB"), "gray": (64, 50, "L")}
    for index, (name, (width, height, mode)) in enumerate(sorted(sources.items())):
        rng = np.random.RandomState(500 + index)
        y, x = np.mgrid[0:height, 0:width]
        smooth = np.stack([(x * 255 // max(width - 1, 1)), (y * 255 // max(height - 1, 1)), ((x + y) * 7) % 256], axis=-1)
        pixels = np.clip(smooth + rng.randint(-60, 60, size=smooth.shape), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels, "RGB")
        (image.convert("L") if mode == "L" else image).save(RESIZE_DIR / f"{name}.png")
    # Pillow runs the vertical pass first when the height shrinks by more than twice as many pixels
    # as the width (tall 17x23, tall 38x30, wide 97x20, gray 60x10), else the horizontal one.
    resizes = [("wide", 48, 30), ("wide", 200, 130), ("wide", 97, 20), ("wide", 10, 61), ("wide", 30, 20), ("tall", 40, 64),
               ("tall", 17, 23), ("tall", 38, 30), ("small", 64, 48), ("small", 5, 3), ("gray", 33, 27), ("gray", 128, 100),
               ("gray", 60, 10)]
    crops = [("wide", 32), ("wide", 61), ("wide", 64), ("wide", 120), ("tall", 24), ("tall", 40), ("tall", 41),
             ("small", 16), ("small", 8), ("gray", 48), ("gray", 49), ("gray", 64)]
    cases = {"resizes": [], "crops": []}
    for source, width, height in resizes:
        image = Image.open(RESIZE_DIR / f"{source}.png")
        output = f"resize_{source}_{width}x{height}.png"
        image.resize((width, height), Image.BILINEAR).save(RESIZE_DIR / output)
        cases["resizes"].append({"source": f"{source}.png", "width": width, "height": height, "output": output})
    for source, resolution in crops:
        image = Image.open(RESIZE_DIR / f"{source}.png").convert("RGB")
        resize = transforms.Resize(resolution, interpolation=transforms.InterpolationMode.BILINEAR)
        resized = resize(image)
        result = transforms.CenterCrop(resolution)(resized)
        output = f"crop_{source}_{resolution}.png"
        result.save(RESIZE_DIR / output)
        top, left = crop_top_left(image, resolution)
        tensor = transforms.Normalize([0.5], [0.5])(transforms.ToTensor()(result))
        expected = torch.tensor(np.asarray(result), dtype=torch.float32).permute(2, 0, 1) / 255 * 2 - 1
        assert torch.equal(tensor, expected), "Normalize([0.5], [0.5]) after ToTensor is 2 * (p / 255) - 1 exactly"
        cases["crops"].append({"source": f"{source}.png", "resolution": resolution, "output": output,
                               "resized": [resized.width, resized.height], "crop_top_left": [top, left]})
    (RESIZE_DIR / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")


def main():
    torch.set_grad_enabled(False)
    torch.use_deterministic_algorithms(True)
    if OUT_DIR.exists():
        shutil.rmtree(OUT_DIR)
    OUT_DIR.mkdir(parents=True)
    write_images()
    write_randint()
    write_resize()
    latents = {}
    cases = []
    rank = None
    with tempfile.TemporaryDirectory() as tmp:
        for family, settings in CASES.items():
            (OUT_DIR / family).mkdir()
            case, models, resolution = score_case(family, settings, complete_folder(family, tmp), latents)
            cases.append(case)
            if family == RANK["family"]:
                rank = rank_case(models, resolution)
    records = {"cases": cases, "rank": rank}
    (OUT_DIR / "records.json").write_text(json.dumps(records, indent=1) + "\n")
    save_file(dict(sorted(latents.items())), str(OUT_DIR / "latents.safetensors"), metadata={"format": "pt"})


if __name__ == "__main__":
    main()
