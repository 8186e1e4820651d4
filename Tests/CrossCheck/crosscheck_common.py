"""What the cross-check tools share: offline Hugging Face settings, tiny models with every
parameter moved off its initial value, and running `kiln generate --save-latents`."""

import os
import subprocess
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["DIFFUSERS_VERBOSITY"] = "error"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Tests" / "Fixtures"))
KILN = REPO / ".build" / "debug" / "kiln"


def seeded(cls, config, seed):
    torch.manual_seed(seed)
    model = cls(config) if not isinstance(config, dict) else cls(**config)
    with torch.no_grad():
        for parameter in model.parameters():  # norms start at 1/0: move them so they matter
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return model.eval()


def kiln_latents(model, options, backend, folder):
    """`kiln generate --model MODEL OPTIONS...` on `backend`; returns its `--save-latents` tensor."""
    out = folder / "latents.safetensors"
    command = [str(KILN), "generate", "--model", str(model), *options, "--backend", backend, "--quiet",
               "--save-latents", str(out), "--output", str(folder / "image-%d.png")]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"kiln exited {completed.returncode}: {completed.stderr.strip()}")
    return load_file(out)["latents"]
