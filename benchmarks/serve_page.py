"""The README's screenshot of `mtl serve`'s page: each form of the model's tasks filled in and run, in headless
Chromium (Debian package `chromium`), driven by Playwright.

    python benchmarks/serve_page.py --model runs/export-minilm/last --out benchmarks/results/serve_page.png
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from serve_load import start_server

# no sandbox as root, nothing fetched in the background (the machine has no network)
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    process, url = start_server(args.model, [])
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 960, "height": 900}, device_scale_factor=1)
            page.goto(url)
            page.wait_for_selector("body[data-ready=true]")
            for task, done in (("ner", "#ner-output mark"), ("qa", "#qa-nbest li"), ("cls", "#cls-output .label-row")):
                if page.is_visible(f"#{task}"):
                    page.click(f"#{task}-run")
                    page.wait_for_selector(done)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=60)


if __name__ == "__main__":
    main()
