#!/usr/bin/env python3
"""Soak: many generations in one Kiln process, with its memory and open files read as it runs.

    python3 Benchmarks/Soak/soak.py render --kiln .build/release/kiln [--jobs 1000]
    python3 Benchmarks/Soak/soak.py serve  --kiln .build/release/kiln [--requests 500]

`render` runs JOBS jobs of the tiny SD1 model (scripts/tiny-model.py) through one `kiln render`,
cycling five sizes and seven samplers (35 combinations, so prepared graphs are evicted and made
again all along); `serve` sends REQUESTS txt2img requests of the same mix, one after the other, to
one `kiln serve`. Both read the process's resident memory and open file descriptors from
/proc/PID and the device memory Kiln holds (render: its `--log jsonl` events; serve: /metrics)
once every combination has run (the warm-up) and at the end, and print a markdown table. A leak
shows as growth between the two; the check is that none grows by more than 5 % (open files: or
by one, a descriptor that happens to be open at the moment of reading).

Standard library only.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZES = [(64, 64), (96, 64), (64, 96), (128, 128), (48, 80)]
# Kiln's names and A1111's for the same seven samplers.
SAMPLERS = [("euler", "Euler"), ("euler_a", "Euler a"), ("dpm++2m", "DPM++ 2M"), ("ddim", "DDIM"), ("pndm", "PLMS"),
            ("heun", "Heun"), ("ddpm", "DDPM")]
WARM_UP = len(SIZES) * len(SAMPLERS)


def job(index, steps):
    width, height = SIZES[index % len(SIZES)]
    kiln_name, a1111_name = SAMPLERS[index % len(SAMPLERS)]
    return {"index": index, "prompt": f"a lighthouse number {index}", "seed": index, "steps": steps, "width": width,
            "height": height, "kiln": kiln_name, "a1111": a1111_name}


def process_figures(pid):
    with open(f"/proc/{pid}/status") as status:
        resident = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
    return {"resident_bytes": resident, "open_files": len(os.listdir(f"/proc/{pid}/fd"))}


def table(title, count, seconds, warm, last, warm_label):
    def is_flat(key):
        # Only growth is a leak; a descriptor open at the moment of reading (an output being
        # written) may come and go.
        allowed = max(warm[key] * 0.05, 1 if key == "open_files" else 0)
        return last[key] - warm[key] <= allowed

    def row(name, key, unit=1 << 20, suffix=" MiB"):
        before, after = warm[key], last[key]
        change = (after - before) / before * 100 if before else 0.0
        verdict = "flat" if is_flat(key) else "GROWS"
        shown = (lambda v: f"{v / unit:.1f}{suffix}") if unit else (lambda v: str(v))
        return f"| {name} | {shown(before)} | {shown(after)} | {change:+.1f} % | {verdict} |"

    lines = [f"{title}: {count} generations in {seconds:.0f} s ({count / seconds * 60:.1f} images/min)", "",
             f"| figure | after {warm_label} | at the end | change | within 5 % |", "|---|---|---|---|---|",
             row("resident memory", "resident_bytes"), row("device memory", "device_bytes"),
             row("open file descriptors", "open_files", unit=None)]
    print("\n".join(lines))
    return all(is_flat(key) for key in ("resident_bytes", "device_bytes", "open_files"))


def soak_render(arguments, work, model):
    jobs = [job(index, arguments.steps) for index in range(arguments.jobs)]
    manifest = os.path.join(work, "jobs.jsonl")
    with open(manifest, "w") as file:
        for entry in jobs:
            file.write(json.dumps({"id": f"j{entry['index']:04d}", "prompt": entry["prompt"], "seed": entry["seed"], "steps": entry["steps"],
                                   "width": entry["width"], "height": entry["height"], "sampler": entry["kiln"]}) + "\n")
    start = time.time()
    process = subprocess.Popen([arguments.kiln, "render", manifest, "--model", model, "--out", os.path.join(work, "out"),
                                "--backend", arguments.backend, "--log", "jsonl"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    done, warm, last = 0, None, None
    for line in process.stderr:
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if event.get("event") == "failed":
            print(f"job failed: {line.strip()}", file=sys.stderr)
        if event.get("event") != "done":
            continue
        done += 1
        figures = {"resident_bytes": event["resident_bytes"], "device_bytes": event["device_bytes"],
                   "open_files": process_figures(process.pid)["open_files"]}
        if done == WARM_UP:
            warm = figures
        last = figures
    process.wait()
    seconds = time.time() - start
    if process.returncode != 0 or done != arguments.jobs or warm is None:
        print(f"kiln render exited {process.returncode} after {done} of {arguments.jobs} jobs", file=sys.stderr)
        return False
    return table(f"kiln render ({arguments.backend})", done, seconds, warm, last, f"job {WARM_UP}")


def soak_serve(arguments, work, model):
    process = subprocess.Popen([arguments.kiln, "serve", "--model", model, "--backend", arguments.backend, "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        for line in process.stdout:
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                url = match.group(1)
                break
        if url is None:
            print("kiln serve did not start", file=sys.stderr)
            return False

        def device_bytes():
            with urllib.request.urlopen(url + "/metrics") as response:
                text = response.read().decode()
            match = re.search(r"^kiln_device_memory_reserved_bytes\s+(\S+)", text, re.M)
            return int(float(match.group(1))) if match else 0

        start = time.time()
        warm = last = None
        for index in range(arguments.requests):
            entry = job(index, arguments.steps)
            body = json.dumps({"prompt": entry["prompt"], "seed": entry["seed"], "steps": entry["steps"], "width": entry["width"],
                               "height": entry["height"], "sampler_name": entry["a1111"], "cfg_scale": 7}).encode()
            request = urllib.request.Request(url + "/sdapi/v1/txt2img", data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=300) as response:
                answer = json.loads(response.read())
                if len(answer.get("images", [])) != 1:
                    print(f"request {index}: no image", file=sys.stderr)
                    return False
            if index + 1 in (WARM_UP, arguments.requests):
                figures = process_figures(process.pid) | {"device_bytes": device_bytes()}
                if index + 1 == WARM_UP:
                    warm = figures
                last = figures
        seconds = time.time() - start
        return table(f"kiln serve ({arguments.backend})", arguments.requests, seconds, warm, last, f"request {WARM_UP}")
    finally:
        process.terminate()
        process.wait(timeout=60)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["render", "serve"])
    parser.add_argument("--kiln", default=os.path.join(ROOT, ".build", "release", "kiln"))
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--backend", default="vulkan")
    parser.add_argument("--steps", type=int, default=3)
    arguments = parser.parse_args()
    work = tempfile.mkdtemp(prefix="kiln-soak-")
    try:
        model = os.path.join(work, "model")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "tiny-model.py"), model], check=True, capture_output=True)
        flat = soak_render(arguments, work, model) if arguments.mode == "render" else soak_serve(arguments, work, model)
        return 0 if flat else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
