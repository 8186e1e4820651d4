"""A bounded load test: bursts of 50 concurrent A1111 requests against --max-queue 8. The excess
get 429 with Retry-After, every accepted job completes, the process stays up, and its resident
memory stays flat from burst to burst. Loopback only; bounded in count and time."""
import concurrent.futures
import json
import os
import time

import requests

from conftest import PASSWORD, USER, wait_idle

BURSTS = 3
CONCURRENT = 50


def one_request(url, index):
    try:
        response = requests.post(f"{url}/sdapi/v1/txt2img", auth=(USER, PASSWORD), timeout=300,
                                 json={"prompt": f"load {index}", "seed": index, "width": 64, "height": 64, "steps": 4})
    except requests.RequestException as error:
        return ("error", str(error))
    if response.status_code == 200:
        return ("ok", len(response.json()["images"]))
    if response.status_code == 429:
        return ("full", response.headers.get("Retry-After"))
    return ("other", f"{response.status_code} {response.text[:200]}")


def test_bursts_against_a_bounded_queue(server):
    url = server.url
    with requests.Session() as http:
        http.auth = (USER, PASSWORD)
        wait_idle(http, url)
        resident = []
        accepted_total = 0
        seconds_total = 0.0
        for burst in range(BURSTS):
            started = time.time()
            with concurrent.futures.ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
                outcomes = list(pool.map(lambda index: one_request(url, burst * 1000 + index), range(CONCURRENT)))
            seconds = time.time() - started
            kinds = [kind for kind, _ in outcomes]
            assert kinds.count("error") == 0 and kinds.count("other") == 0, [o for o in outcomes if o[0] in ("error", "other")]
            accepted = kinds.count("ok")
            # One running plus eight waiting at most; at least the eight that fit.
            assert 8 <= accepted <= 9 + 8, outcomes
            assert kinds.count("full") == CONCURRENT - accepted
            assert all(detail and int(detail) >= 1 for kind, detail in outcomes if kind == "full")
            assert all(detail == 1 for kind, detail in outcomes if kind == "ok")
            assert server.process.poll() is None
            assert http.get(f"{url}/health").json()["status"] == "ok"
            wait_idle(http, url)
            resident.append(server.resident_kib())
            accepted_total += accepted
            seconds_total += seconds
        growth = resident[-1] - resident[0]
        report = {"bursts": BURSTS, "concurrent": CONCURRENT, "accepted": accepted_total, "seconds": seconds_total,
                  "accepted_per_minute": accepted_total / seconds_total * 60, "resident_kib": resident}
        print("load:", json.dumps(report))
        if os.environ.get("KILN_LOAD_REPORT"):
            with open(os.environ["KILN_LOAD_REPORT"], "w") as file:
                json.dump(report, file)
        # Flat: after the first burst (caches warm), later bursts add less than 16 MiB.
        assert growth < 16 * 1024, resident
