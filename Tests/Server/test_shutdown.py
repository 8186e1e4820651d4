"""SIGTERM: new jobs are refused, the queue is cancelled, the running job stops at a step
boundary, waiting clients get an answer, and the process exits 0 in bounded time."""
import threading
import time

import requests

from conftest import Server


def test_sigterm_with_running_and_queued_jobs(workdir, models):
    server = Server(["--model", models["sd1"], "--shutdown-timeout", "30"], workdir, "shutdown")
    answers = {}

    def waiting_client():
        try:
            answers["sync"] = requests.post(f"{server.url}/sdapi/v1/txt2img", timeout=60,
                                            json={"prompt": "long", "width": 64, "height": 64, "steps": 1000, "n_iter": 16}).status_code
        except requests.RequestException as error:
            answers["sync"] = str(error)

    thread = threading.Thread(target=waiting_client)
    thread.start()
    deadline = time.time() + 30
    while time.time() < deadline and requests.get(f"{server.url}/sdapi/v1/progress").json()["state"]["sampling_step"] < 1:
        time.sleep(0.05)
    queued = requests.post(f"{server.url}/kiln/v1/jobs", json={"prompt": "queued", "width": 64, "height": 64, "steps": 5}).json()
    assert queued["status"] == "queued" and queued["position"] == 1
    started = time.time()
    status = server.stop(timeout=45)
    elapsed = time.time() - started
    thread.join(timeout=30)
    assert status == 0
    assert elapsed < 30, elapsed
    # The waiting client was answered (its job was cancelled at a step boundary), not left hanging.
    assert answers.get("sync") in (409, 503), answers
