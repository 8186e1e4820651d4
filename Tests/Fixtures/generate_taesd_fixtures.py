"""Record diffusers' AutoencoderTiny (TAESD) on random weights, for Kiln's TAESD tests.

Rerun from the repository root (pins in Tests/Fixtures/requirements.txt):

    .venv/bin/python Tests/Fixtures/generate_taesd_fixtures.py

Nothing is downloaded. Two AutoencoderTiny models in TAESD's layout (blocks (1, 3, 3, 3) and
(3, 3, 3, 1)) at 8 channels instead of 64, random weights rounded to float16 values:

  taesd/    4 latent channels, scaling 1, shift 0 (as taesd and taesdxl)
  taef1/    16 latent channels, scaling 0.3611, shift 0.1159 (as taef1 and FLUX.1's VAE)

each as a diffusers folder (save_pretrained) and as a released-style file
`<name>_decoder.safetensors` (the decoder as one nn.Sequential whose layer 0 is the clamp, so
diffusers' decoder.layers.N is key N+1). records.safetensors holds, per model, `latents`
(the sampler's, [1, C, 6, 8]), `decoded` = decoder(latents / scaling + shift) as diffusers'
pipelines call it ([1, 3, 48, 64] in [-1, 1]), `image` and its `encoded` latents.
"""

import os
import shutil
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["DIFFUSERS_VERBOSITY"] = "error"

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from diffusers import AutoencoderTiny  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "Tests" / "KilnPipelinesTests" / "Fixtures" / "taesd"
MODELS = {
    "taesd": dict(latent_channels=4, scaling_factor=1.0, shift_factor=0.0, seed=1),
    "taef1": dict(latent_channels=16, scaling_factor=0.3611, shift_factor=0.1159, seed=2),
}


def main():
    torch.set_grad_enabled(False)
    if OUT_DIR.exists():
        shutil.rmtree(OUT_DIR)
    OUT_DIR.mkdir(parents=True)
    records = {}
    for name, settings in MODELS.items():
        torch.manual_seed(settings["seed"])
        model = AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                                latent_channels=settings["latent_channels"], scaling_factor=settings["scaling_factor"],
                                shift_factor=settings["shift_factor"]).eval()
        for parameter in model.parameters():
            # Kaiming-like spread so activations neither vanish nor blow up through 20 layers.
            parameter.data = (torch.randn_like(parameter) * (0.9 / max(parameter[0].numel(), 1) ** 0.5)).half().float()
        model.save_pretrained(OUT_DIR / name, safe_serialization=True)
        decoder = {f"{int(k.split('.')[2]) + 1}.{'.'.join(k.split('.')[3:])}": v.half().contiguous()
                   for k, v in model.state_dict().items() if k.startswith("decoder.layers.")}
        save_file(decoder, str(OUT_DIR / f"{name}_decoder.safetensors"))
        generator = torch.Generator().manual_seed(settings["seed"] + 10)
        latents = torch.randn(1, settings["latent_channels"], 6, 8, generator=generator) * 1.5
        decoded = model.decode(latents / settings["scaling_factor"] + settings["shift_factor"]).sample
        image = torch.rand(1, 3, 48, 64, generator=generator) * 2 - 1
        encoded = model.encode(image).latents
        records.update({f"{name}.latents": latents, f"{name}.decoded": decoded, f"{name}.image": image, f"{name}.encoded": encoded})
        print(f"{name}: decoded max |x| {decoded.abs().max():.4f}, encoded max |x| {encoded.abs().max():.4f}")
    save_file({k: v.float().contiguous() for k, v in sorted(records.items())}, str(OUT_DIR / "records.safetensors"))
    size = sum(p.stat().st_size for p in OUT_DIR.rglob("*") if p.is_file())
    print(f"wrote {OUT_DIR.relative_to(REPO)}: {size} bytes")


if __name__ == "__main__":
    main()
