"""Shared fixtures: a tiny random-weight Stable Diffusion 1.x model (scripts/tiny-model.py),
the `kiln` CLI to compare against, and an open CPU pipeline.

Environment: KILN_LIBRARY (the libkiln.so under test), KILN_CLI (default: the repository's
.build/debug/kiln, else .build/release/kiln).
"""

import os
import pathlib
import subprocess
import sys

import pytest

import kiln

REPOSITORY = pathlib.Path(__file__).resolve().parents[3]

# Small enough to run in about a second on the CPU backend, even in a debug build.
SMALL = {"width": 64, "height": 64, "steps": 2}


def kiln_cli():
    """The `kiln` executable to compare with."""
    configured = os.environ.get("KILN_CLI")
    if configured:
        return configured
    for configuration in ("debug", "release"):
        candidate = REPOSITORY / ".build" / configuration / "kiln"
        if candidate.exists():
            return str(candidate)
    pytest.fail("no kiln CLI: build it (swift build --product kiln) or set KILN_CLI")


def run_cli(*arguments):
    """Runs `kiln ARGUMENTS...`, failing the test with its stderr when it fails."""
    completed = subprocess.run([kiln_cli(), *map(str, arguments)], capture_output=True, text=True)
    if completed.returncode != 0:
        pytest.fail(f"kiln {' '.join(map(str, arguments))} exited {completed.returncode}: {completed.stderr}")
    return completed


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "tiny-sd1"
    subprocess.run([sys.executable, str(REPOSITORY / "scripts" / "tiny-model.py"), str(folder)], check=True,
                   capture_output=True)
    return folder


@pytest.fixture(scope="session")
def pipeline(tiny_model):
    with kiln.Pipeline(tiny_model, backend="cpu") as opened:
        yield opened


def generate_with_cli(tmp_path, model, backend="cpu", **settings):
    """The PNG files `kiln generate` writes for `settings` (keyword names as in Python)."""
    arguments = ["generate", "--model", model, "--backend", backend, "--quiet", "--output", tmp_path / "cli-%d.png"]
    for name, value in settings.items():
        arguments += [f"--{name.replace('_', '-')}", value]
    run_cli(*arguments)
    count = settings.get("batch_count", 1)
    return [(tmp_path / f"cli-{index}.png").read_bytes() for index in range(count)]
