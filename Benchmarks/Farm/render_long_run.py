#!/usr/bin/env python3
"""A long `kiln render` in one process against the same jobs as separate `kiln generate` runs.

Renders JOBS jobs (three sizes, so prepared graphs alternate) on the tiny SD1 model and reads the
process's resident memory and the device memory from `--log jsonl` after the warm-up jobs and at
the end (a leak shows as growth); then runs the first COMPARE jobs as one `kiln generate`
process each, and prints both rates as a markdown table.

    python3 Benchmarks/Farm/render_long_run.py --kiln .build/release/kiln [--jobs 200] [--compare 20] [--backend vulkan]

Standard library only.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZES = [(64, 64), (64, 48), (48, 64)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default=os.path.join(ROOT, ".build", "release", "kiln"))
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--compare", type=int, default=20)
    parser.add_argument("--backend", default="vulkan")
    parser.add_argument("--steps", type=int, default=4)
    arguments = parser.parse_args()
    work = tempfile.mkdtemp(prefix="kiln-long-run-")
    try:
        model = os.path.join(work, "model")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "tiny-model.py"), model], check=True, capture_output=True)
        jobs = []
        for index in range(arguments.jobs):
            width, height = SIZES[index % len(SIZES)]
            jobs.append({"id": f"j{index:04d}", "prompt": f"a lighthouse number {index}", "seed": index, "steps": arguments.steps,
                         "width": width, "height": height, "sampler": "euler_a"})
        manifest = os.path.join(work, "jobs.jsonl")
        with open(manifest, "w") as file:
            file.write("\n".join(json.dumps(job) for job in jobs) + "\n")

        start = time.time()
        run = subprocess.run([arguments.kiln, "render", manifest, "--model", model, "--out", os.path.join(work, "out"),
                              "--backend", arguments.backend, "--log", "jsonl", "--json"], capture_output=True, text=True)
        render_seconds = time.time() - start
        if run.returncode != 0:
            print(run.stderr[-2000:])
            return 1
        done = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{") and '"done"' in line]
        summary = json.loads(run.stdout)
        warm = done[min(9, len(done) - 1)]
        last = done[-1]

        start = time.time()
        for job in jobs[:arguments.compare]:
            subprocess.run([arguments.kiln, "generate", "--model", model, "--prompt", job["prompt"], "--seed", str(job["seed"]),
                            "--steps", str(job["steps"]), "--width", str(job["width"]), "--height", str(job["height"]),
                            "--sampler", job["sampler"], "--backend", arguments.backend, "--quiet",
                            "--output", os.path.join(work, "generate.png")], check=True)
        generate_seconds = time.time() - start

        mib = lambda value: value / (1 << 20)
        print(f"| measure | value |")
        print(f"|---|---|")
        print(f"| jobs rendered in one process | {summary['done']} ({summary['images']} images) in {render_seconds:.1f} s |")
        print(f"| kiln render images/min | {summary['images'] / render_seconds * 60:.1f} |")
        print(f"| kiln generate images/min ({arguments.compare} processes) | {arguments.compare / generate_seconds * 60:.1f} |")
        print(f"| resident memory after job 10 / at the end | {mib(warm['resident_bytes']):.1f} MiB / {mib(last['resident_bytes']):.1f} MiB "
              f"({(last['resident_bytes'] / warm['resident_bytes'] - 1) * 100:+.1f} %) |")
        if warm["device_bytes"]:
            print(f"| device memory after job 10 / at the end | {mib(warm['device_bytes']):.1f} MiB / {mib(last['device_bytes']):.1f} MiB "
                  f"({(last['device_bytes'] / warm['device_bytes'] - 1) * 100:+.1f} %) |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
