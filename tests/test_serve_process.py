"""`mtl serve` as a real process on a free loopback port: a flood gets 429s, SIGTERM finishes what is in flight,
and the page works in headless Chromium."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from test_serve import TEXTS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model_dir, *options) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "mtlcli", "serve", str(model_dir), "--port", str(port), "--device", "cpu"]
    process = subprocess.Popen([*command, "--precision", "fp32", *options], stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError("the server did not become healthy within 60 s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def server(tagging_model_dir):
    """A server with room for 4 waiting inputs, each batch waiting 0.3 s for company."""
    process, url = start_server(tagging_model_dir, "--max-queue", "4", "--max-wait-ms", "300")
    yield url
    stop(process)


def post_concurrently(url: str, bodies: list[dict]) -> list:
    answers = [None] * len(bodies)

    def send(i):
        try:
            answers[i] = httpx.post(f"{url}/ner", json=bodies[i], timeout=30)
        except httpx.HTTPError as err:
            answers[i] = err

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_a_flood_beyond_the_queue_gets_429s_not_a_hang(server):
    url = server
    answers = post_concurrently(url, [{"texts": [TEXTS[i % 3]] * 2} for i in range(24)])
    codes = [getattr(a, "status_code", a) for a in answers]
    assert set(codes) == {200, 429}, codes
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.headers["retry-after"] == "1" and "busy" in refused.json()["error"]
    assert httpx.get(f"{url}/health").status_code == 200
    metrics = httpx.get(f"{url}/metrics").text
    assert f'mtl_requests_total{{code="429",route="/ner"}} {codes.count(429)}.0' in metrics


def test_sigterm_finishes_the_requests_in_flight_then_exits_0(tagging_model_dir):
    process, url = start_server(tagging_model_dir, "--max-wait-ms", "1500")  # a lone request waits 1.5 s for company
    answers = []
    sender = threading.Thread(
        target=lambda: answers.append(httpx.post(f"{url}/ner", json={"texts": TEXTS}, timeout=30))
    )
    sender.start()
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    sender.join()
    assert answers[0].status_code == 200 and len(answers[0].json()["results"]) == 3
    try:
        assert process.wait(timeout=30) == 0
    finally:
        stop(process)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_the_page_highlights_entities_in_headless_chromium(server, tmp_path):
    from playwright.sync_api import sync_playwright

    url = server
    text = "Angela Merkel visited Paris"
    expected = httpx.post(f"{url}/ner", json={"texts": [text]}).json()["results"][0]["entities"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url) else route.abort())
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        assert page.is_visible("#ner") and page.is_visible("#qa") and page.is_visible("#cls")
        legend = page.eval_on_selector_all("#ner-legend mark", "marks => marks.map(m => m.dataset.type)")
        page.fill("#ner-text", text)
        page.click("#ner-run")
        page.wait_for_selector("#ner-output mark.entity")
        marks = page.eval_on_selector_all(
            "#ner-output mark.entity",
            "marks => marks.map(m => [m.firstChild.textContent, m.dataset.type, getComputedStyle(m).backgroundColor])",
        )
        page.screenshot(path=str(tmp_path / "page.png"))
        browser.close()
    assert [(m[0], m[1]) for m in marks] == [(e["text"], e["type"]) for e in expected]
    assert {"PER": "rgb(0, 128, 128)", "LOC": "rgb(0, 128, 0)"}[marks[0][1]] == marks[0][2]  # predict-ner's colours
    assert legend == ["PER", "LOC"] and (tmp_path / "page.png").stat().st_size > 1000


# as the machine's own check runs it: no sandbox as root, nothing fetched in the background
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
