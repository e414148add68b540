"""Screenshots of every playground view, for the README: `python scripts/playground_screenshots.py RUN [RUN2] --out DIR`.

Serves the app on a free loopback port, drives Debian's chromium (playwright, no browser download)
through each tab with the examples below, and writes DIR/{fill-mask,mask-preview,generate,score,runs}.png.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


# (file name, tab, text box, text to type, button, (element, what it holds when the view is ready))
VIEWS = [
    ("fill-mask", "Fill-mask", "fill-text", "", "fill-go", ("#fill-out", "ml-bar")),
    ("mask-preview", "Mask preview", "preview-text", "Mr. Speaker, the President of the United States will travel to New York "
     "next week to meet the governors of every state.", "preview-go", ("#preview-out", "ml-table")),
    ("generate", "Generate", "gen-text", "", "gen-go", ("#gen-out", "tokens in")),
    ("score", "Score", "score-text", "The state of the union is strong.\nThe state of the union are strong.\n"
     "The union of the state is strong.", "score-go", ("#score-out", "ml-scores")),
    ("runs", "Runs", "", "", "", ("#runs-out", "summary.json")),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/playground"))
    args = parser.parse_args()
    from masklab.playground.serve import quiet_gradio

    quiet_gradio()
    from playwright.sync_api import sync_playwright

    from masklab.playground.app import build_app
    from masklab.playground.models import load_runs
    from masklab.playground.serve import any_free_port, launch

    port = any_free_port()
    app = build_app(load_runs(args.runs), "The state of the [MASK] is strong.")
    launch(app, port=port, block=False)
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"http://127.0.0.1:{port}/")
        for name, tab, box, text, button, ready in VIEWS:
            page.get_by_role("tab", name=tab).click()
            if text:
                page.locator(f"#{box} textarea").fill(text)
            if tab == "Mask preview":
                page.locator("#preview-strategy input").fill("span")
                page.keyboard.press("Enter")
            if button:
                page.locator(f"#{button}").click()
            page.wait_for_function(f"document.querySelector('{ready[0]}') && "
                                   f"document.querySelector('{ready[0]}').innerHTML.includes('{ready[1]}')", timeout=60_000)
            page.wait_for_timeout(600)  # bars and plots settle
            page.screenshot(path=str(args.out / f"{name}.png"), full_page=tab != "Runs")
        browser.close()
    app.close()
    print(f"wrote {args.out}/*.png")


if __name__ == "__main__":
    main()
