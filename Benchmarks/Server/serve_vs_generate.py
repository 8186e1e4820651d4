#!/usr/bin/env python3
"""Times the same job through `kiln generate` (a new process: open the model, generate, write)
and through a running `kiln serve` (model resident: one A1111 txt2img request), and prints the
medians. Loopback only; a bounded number of runs.

    python3 Benchmarks/Server/serve_vs_generate.py --binary .build/debug/kiln --model MODEL [--backend cpu] [--runs 5]
"""
import argparse
import json
import re
import statistics
import subprocess
import tempfile
import time
import urllib.request


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    arguments = parser.parse_args()
    job = ["--prompt", "a lighthouse at dusk", "--seed", "42", "--steps", str(arguments.steps), "--width", str(arguments.size),
           "--height", str(arguments.size), "--cfg-scale", "7", "--sampler", "euler_a"]
    with tempfile.TemporaryDirectory() as folder:
        generate = []
        for _ in range(arguments.runs):
            started = time.perf_counter()
            subprocess.run([arguments.binary, "generate", "--model", arguments.model, "--backend", arguments.backend, "--quiet",
                            "--output", f"{folder}/out.png", *job], check=True)
            generate.append(time.perf_counter() - started)
        server = subprocess.Popen([arguments.binary, "serve", "--model", arguments.model, "--backend", arguments.backend, "--port", "0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            url = re.search(r"(http://\S+)", server.stdout.readline()).group(1)
            body = json.dumps({"prompt": "a lighthouse at dusk", "seed": 42, "steps": arguments.steps, "width": arguments.size,
                               "height": arguments.size, "cfg_scale": 7, "sampler_name": "Euler a"}).encode()
            served = []
            for run in range(arguments.runs + 1):
                request = urllib.request.Request(f"{url}/sdapi/v1/txt2img", data=body, headers={"Content-Type": "application/json"})
                started = time.perf_counter()
                with urllib.request.urlopen(request, timeout=600) as response:
                    response.read()
                if run > 0:  # the first request prepares the graphs for this size
                    served.append(time.perf_counter() - started)
        finally:
            server.terminate()
            server.wait(timeout=120)
    print(json.dumps({
        "generate_median_s": statistics.median(generate), "generate_runs_s": generate,
        "serve_median_s": statistics.median(served), "serve_runs_s": served,
    }, indent=1))


if __name__ == "__main__":
    main()
