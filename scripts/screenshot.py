"""Open the running app in headless Chromium, generate a clip and save a screenshot.

    python app.py &   # then
    python scripts/screenshot.py --url http://127.0.0.1:7860 --out page.png

Needs Debian's `chromium` and `pip install playwright` (no browser download: it drives the
system Chromium).
"""
import argparse

from playwright.sync_api import sync_playwright

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="http://127.0.0.1:7860")
    p.add_argument("--prompt", default="a yellow star moving right on a gray background")
    p.add_argument("--steps", default="25")
    p.add_argument("--out", default="page.png")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(args.url)
        box = page.get_by_label("Prompt")
        box.fill(args.prompt)
        steps = page.get_by_label("number input for Steps")
        steps.fill(args.steps)
        steps.press("Enter")
        page.get_by_role("button", name="Generate").click()
        page.wait_for_selector("video", timeout=300_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
