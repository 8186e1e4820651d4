"""Kiln's async jobs (SSE included), request validation, authentication, CORS and body limits,
over plain HTTP (requests)."""
import base64
import json
import threading
import time

import pytest
import requests

from conftest import wait_idle


def submit(http, url, **fields):
    response = http.post(f"{url}/kiln/v1/jobs", json={"prompt": "a job", "width": 64, "height": 64, **fields})
    assert response.status_code == 202, response.text
    return response.json()


def wait_status(http, url, job_id, statuses, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = http.get(f"{url}/kiln/v1/jobs/{job_id}").json()
        if body["status"] in statuses:
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {statuses}")


def read_events(http, url, job_id, timeout=120):
    events = []
    with http.get(f"{url}/kiln/v1/jobs/{job_id}/events", stream=True, timeout=timeout) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in stream.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: "):])))
    return events


def test_job_lifecycle_with_events(session, server):
    url = server.url
    job = submit(session, url, steps=6, seed=3, sampler="euler")
    assert job["status"] in ("queued", "running") and "id" in job
    events = read_events(session, url, job["id"])
    names = [name for name, _ in events]
    assert names[-1] == "done" and "progress" in names
    progress = [data for name, data in events if name == "progress"]
    assert progress[-1]["step"] == 6 and progress[-1]["steps"] == 6
    assert all(data["preview"].startswith("data:image/png;base64,") for data in progress)
    done = session.get(f"{url}/kiln/v1/jobs/{job['id']}").json()
    assert done["status"] == "done" and len(done["images"]) == 1
    png = session.get(f"{url}{events[-1][1]['images'][0]}")
    assert png.headers["content-type"] == "image/png" and png.content == base64.b64decode(done["images"][0])
    assert done["parameters"][0]["seed"] == 3


def test_cancel_queued_and_running(session, server):
    url = server.url
    wait_idle(session, url)
    running = submit(session, url, steps=1000, seed=1, sampler="euler")
    queued = submit(session, url, steps=1000, seed=2, sampler="euler")
    wait_status(session, url, running["id"], {"running"})
    assert session.get(f"{url}/kiln/v1/jobs/{queued['id']}").json()["position"] == 1
    assert session.delete(f"{url}/kiln/v1/jobs/{queued['id']}").json()["status"] == "cancelled"
    session.delete(f"{url}/kiln/v1/jobs/{running['id']}")
    assert wait_status(session, url, running["id"], {"cancelled"}, timeout=30)["status"] == "cancelled"
    assert session.delete(f"{url}/kiln/v1/jobs/{running['id']}").status_code == 409
    assert session.get(f"{url}/kiln/v1/jobs/000000-nothing").status_code == 404


def test_results_expire_with_410(open_server):
    url = open_server.url
    job = submit(requests, url, steps=1)
    wait_status(requests, url, job["id"], {"done"})
    time.sleep(4.5)
    gone = requests.get(f"{url}/kiln/v1/jobs/{job['id']}")
    assert gone.status_code == 410 and job["id"] in gone.json()["detail"]


def test_client_disconnect_cancels_its_job(session, server):
    url = server.url
    wait_idle(session, url)
    before = session.get(f"{url}/metrics").text
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.post(f"{url}/sdapi/v1/txt2img", json={"prompt": "abandoned", "width": 64, "height": 64, "steps": 1000, "n_iter": 16}, timeout=2)
    wait_idle(session, url, timeout=30)
    after = session.get(f"{url}/metrics").text

    def cancelled(text):
        for line in text.splitlines():
            if line.startswith('kiln_jobs_finished_total{status="cancelled"}'):
                return float(line.split()[-1])
        return 0

    assert cancelled(after) == cancelled(before) + 1


@pytest.mark.parametrize("body,status,field", [
    ('{"prompt": "x", "steps": "many"}', 422, "steps"),
    ('{"prompt": "x", "width": 65, "height": 64, "steps": 1}', 422, "width"),
    ('{"prompt": "x", "width": 0}', 422, "width"),
    ('{"prompt": "x", "batch_size": 1000}', 422, "batch_size"),
    ('{"prompt": 7}', 422, "prompt"),
    ('{"prompt": "x", "seed": 1.5}', 422, "seed"),
    ('{"prompt": "x", "scheduler": "sgm_uniform"}', 422, "scheduler"),
    ('{"prompt": "x", "alwayson_scripts": {"ControlNet": {"args": [1]}}}', 422, "alwayson_scripts"),
    ('{"prompt": "x", "save_images": true}', 422, "save_images"),
    ('{"prompt": "x", "steps": 1', 400, None),
    ('[1, 2, 3]', 400, None),
    ('{"a":' * 200 + '1' + '}' * 200, 400, None),
])
def test_bad_txt2img_bodies(session, server, body, status, field):
    response = session.post(f"{server.url}/sdapi/v1/txt2img", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()
    assert error["detail"] and (field is None or error["field"] == field), error


@pytest.mark.parametrize("body,field", [
    ({"init_images": ["not base64!"], "width": 64, "height": 64}, "init_images[0]"),
    ({"init_images": [base64.b64encode(b"\xff\xd8\xff\xe0 jpeg").decode()], "width": 64, "height": 64}, "init_images[0]"),
    ({"init_images": ["http://example.invalid/x.png"], "width": 64, "height": 64}, "init_images[0]"),
    ({"init_images": []}, "init_images"),
])
def test_bad_img2img_bodies(session, server, body, field):
    response = session.post(f"{server.url}/sdapi/v1/img2img", json={"prompt": "x", "steps": 1, **body})
    assert response.status_code == 422 and response.json()["field"] == field, response.text


def test_body_limit_413(session, server):
    response = session.post(f"{server.url}/sdapi/v1/img2img", data=b'{"prompt": "' + b"x" * (3 * 1024 * 1024) + b'"}',
                            headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_authentication_and_cors_off(server):
    anonymous = requests.get(f"{server.url}/health", headers={"Origin": "http://elsewhere.example"})
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert "Access-Control-Allow-Origin" not in anonymous.headers
    ok = requests.get(f"{server.url}/health", auth=("bob", "hunter2"))
    assert ok.status_code == 200 and ok.json()["status"] == "ok"
    assert requests.get(f"{server.url}/", auth=("bob", "wrong")).status_code == 401


def test_unknown_route_and_fields(session, server):
    missing = session.get(f"{server.url}/sdapi/v1/no-such-route")
    assert missing.status_code == 404 and missing.json()["detail"]
    # A field no A1111 version has is ignored, as pydantic ignores it.
    ok = session.post(f"{server.url}/sdapi/v1/txt2img", json={"prompt": "x", "width": 64, "height": 64, "steps": 1, "frobnicate": [1]})
    assert ok.status_code == 200


def test_metrics_and_health(session, server):
    text = session.get(f"{server.url}/metrics").text
    for name in ["kiln_queue_depth", "kiln_jobs_finished_total", "kiln_step_duration_seconds_bucket",
                 "kiln_http_request_duration_seconds_bucket", "kiln_device_weight_bytes", "kiln_process_resident_memory_bytes"]:
        assert name in text, name
