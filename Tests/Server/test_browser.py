"""The web page in a real headless browser (Debian's chromium and chromium-driver, driven by
selenium from PyPI): type a prompt, click Generate, watch the preview, get the image, check it
is the PNG the API returns; cancel a queued job from the queue table."""
import base64
import shutil
import time

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900"]:
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def fetch_base64(driver, path):
    """The bytes the browser gets for `path`, as base64 (fetched inside the page)."""
    return driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0]).then(r => r.arrayBuffer()).then(buffer => {
            let text = ""; const bytes = new Uint8Array(buffer);
            for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
            done(btoa(text));
        }).catch(error => done("error: " + error));
    """, path)


def test_generate_from_the_page(browser, open_server):
    url = open_server.url
    browser.get(url + "/")
    wait = WebDriverWait(browser, 120)
    wait.until(lambda driver: "tiny-sd1" in driver.find_element(By.ID, "model").text)
    assert browser.find_element(By.ID, "width").get_attribute("value") == "64"
    browser.find_element(By.ID, "prompt").send_keys("a lighthouse from the browser")
    steps = browser.find_element(By.ID, "steps")
    steps.clear()
    steps.send_keys("200")
    seed = browser.find_element(By.ID, "seed")
    seed.send_keys("77")
    browser.find_element(By.ID, "generate").click()
    # The live preview appears while it samples.
    wait.until(lambda driver: driver.find_element(By.ID, "preview").get_attribute("src", ) or False)
    assert browser.find_element(By.ID, "preview").get_attribute("src").startswith("data:image/png;base64,")
    result = wait.until(expected_conditions.visibility_of_element_located((By.ID, "result")))
    assert "done" in browser.find_element(By.ID, "status").text
    source = result.get_attribute("src")
    job_id = result.get_attribute("data-job")
    assert f"/kiln/v1/jobs/{job_id}/images/0" in source
    shown = base64.b64decode(fetch_base64(browser, source))
    api = requests.get(f"{url}/kiln/v1/jobs/{job_id}").json()
    assert shown == base64.b64decode(api["images"][0]) and shown.startswith(b"\x89PNG")
    assert "Seed: 77" in browser.find_element(By.ID, "parameters").text
    assert browser.execute_script("return document.getElementById('result').naturalWidth") == 64


def test_cancel_a_queued_job_from_the_page(browser, open_server):
    url = open_server.url
    browser.get(url + "/")
    running = requests.post(f"{url}/kiln/v1/jobs", json={"prompt": "busy", "steps": 1000, "sampler": "euler"}).json()
    queued = requests.post(f"{url}/kiln/v1/jobs", json={"prompt": "waiting", "steps": 1000, "sampler": "euler"}).json()
    wait = WebDriverWait(browser, 60)
    row = wait.until(lambda driver: driver.find_element(By.CSS_SELECTOR, f'tr[data-job="{queued["id"]}"] button.cancel'))
    row.click()
    deadline = time.time() + 20
    while time.time() < deadline and requests.get(f"{url}/kiln/v1/jobs/{queued['id']}").json()["status"] != "cancelled":
        time.sleep(0.1)
    assert requests.get(f"{url}/kiln/v1/jobs/{queued['id']}").json()["status"] == "cancelled"
    wait.until(lambda driver: not driver.find_elements(By.CSS_SELECTOR, f'tr[data-job="{queued["id"]}"]'))
    requests.delete(f"{url}/kiln/v1/jobs/{running['id']}")
