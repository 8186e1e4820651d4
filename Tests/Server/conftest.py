"""Fixtures for the real-client tests: a live `kiln serve` on 127.0.0.1 (port 0) with a tiny
random-weight model, started once per session and stopped by PID (SIGTERM, exit status 0 checked).

Environment: KILN_BINARY (default .build/debug/kiln), KILN_SERVE_BACKEND (default cpu).
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("KILN_BINARY", os.path.join(ROOT, ".build", "debug", "kiln"))
BACKEND = os.environ.get("KILN_SERVE_BACKEND", "cpu")
USER, PASSWORD = "alice", "s3cret:with:colons"


class Server:
    """A running `kiln serve`: its URL, PID and output."""

    def __init__(self, args, workdir, name):
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [BINARY, "serve", "--backend", BACKEND, "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env={**os.environ, "KILN_CACHE_DIR": os.path.join(workdir, "cache")})
        self.url = None
        deadline = time.time() + 120
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                self.url = match.group(1)
                break
        if self.url is None:
            self.process.kill()
            raise RuntimeError(f"kiln serve did not start: {open(self.log_path).read()}")
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        self.port = int(self.url.rsplit(":", 1)[1])

    @property
    def pid(self):
        return self.process.pid

    def resident_kib(self):
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, timeout=90):
        """SIGTERM, then the exit status (0 expected)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.log.close()


@pytest.fixture(scope="session")
def workdir():
    with tempfile.TemporaryDirectory(prefix="kiln-serve-tests-") as folder:
        yield folder


@pytest.fixture(scope="session")
def models(workdir):
    """The start-up model and a models folder holding it and a second one (an SD2 tiny model)."""
    folder = os.path.join(workdir, "models")
    os.makedirs(folder)
    for name, family in [("tiny-sd1", "sd1"), ("tiny-sd2", "sd2")]:
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "tiny-model.py"), os.path.join(folder, name), "--family", family],
                       check=True, capture_output=True)
    return {"dir": folder, "sd1": os.path.join(folder, "tiny-sd1"), "sd2": os.path.join(folder, "tiny-sd2")}


@pytest.fixture(scope="session")
def server(workdir, models):
    """The authenticated server the client tests share: --max-queue 8, --max-body-mb 2."""
    running = Server(["--model", models["sd1"], "--models-dir", models["dir"], "--api-auth", f"{USER}:{PASSWORD},bob:hunter2",
                      "--max-queue", "8", "--max-body-mb", "2"], workdir, "server")
    yield running
    assert running.stop() == 0, open(running.log_path).read()


@pytest.fixture(scope="session")
def open_server(workdir, models):
    """A server without authentication (the browser test) with a short result retention."""
    running = Server(["--model", models["sd1"], "--result-ttl", "3", "--max-queue", "8"], workdir, "open-server")
    yield running
    assert running.stop() == 0, open(running.log_path).read()


@pytest.fixture
def session(server):
    """A requests session with the server's credentials."""
    with requests.Session() as http:
        http.auth = (USER, PASSWORD)
        yield http


def kiln_generate(workdir, model, output, *args):
    """`kiln generate` with the same backend, returning the PNG's bytes."""
    subprocess.run([BINARY, "generate", "--model", model, "--backend", BACKEND, "--quiet", "--output", output, *args], check=True,
                   env={**os.environ, "KILN_CACHE_DIR": os.path.join(workdir, "cache")})
    with open(output.replace("%d", "0"), "rb") as file:
        return file.read()


def wait_idle(http, url, timeout=60):
    """Waits until the server runs nothing and has nothing queued."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = http.get(f"{url}/sdapi/v1/progress").json()["state"]
        if state["job_count"] == 0 and state["queued"] == 0:
            return
        time.sleep(0.1)
    raise AssertionError("the server did not become idle")
