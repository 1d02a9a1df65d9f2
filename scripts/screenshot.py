"""Open the running app in headless Chromium, generate, and save screenshots mid-stream and done.

    python app.py &   # then
    python scripts/screenshot.py --url http://127.0.0.1:7860 --out docs/page

writes docs/page-streaming.png (a column's per-step preview showing) and docs/page-done.png
(both videos, the speedups and the side-by-side export's download buttons).
With `--transfer CLIP` it uses the Motion transfer tab instead: uploads CLIP, transfers with
the page's defaults and writes <out>-transfer.png. `--teacher` picks a teacher first (as its
list names it), `--left`/`--right` the columns' models; with `--teacher`, <out>-models.png shows
the left column's list open (the teacher's students and competitors).
Needs Debian's `chromium` and `pip install playwright` (it drives the system Chromium; no
browser download).
"""

import argparse

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="http://127.0.0.1:7860")
    p.add_argument("--prompt", default="a yellow star moving right on a gray background")
    p.add_argument("--steps", default="8", choices=["1", "2", "4", "8"])
    p.add_argument("--variant", default="webvid")
    p.add_argument("--out", default="page", help="prefix of the two PNG files")
    p.add_argument("--teacher", help="the teacher as the page's list names it")
    p.add_argument("--left", help="the left column's model as the dropdown lists it")
    p.add_argument(
        "--right",
        help="the right column's model as the dropdown lists it (e.g. an adapter of "
        "`app.py --adapters DIR`, by its folder's name)",
    )
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument(
        "--transfer", metavar="CLIP", help="screenshot a motion transfer of CLIP instead"
    )
    args = p.parse_args()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(args.url)
        if args.transfer:
            transfer_screenshot(page, args)
            browser.close()
            return
        page.get_by_label("Prompt").fill(args.prompt)
        page.get_by_label(args.steps, exact=True).check()
        page.get_by_label(args.variant, exact=True).check()
        if args.teacher:
            page.get_by_label("Teacher").click()
            page.get_by_role("option", name=args.teacher, exact=True).click()
            page.wait_for_timeout(1500)  # the columns' lists follow the teacher
        if args.teacher or args.left or args.right:
            page.get_by_text("Advanced").click()
        for side, model in (("Left", args.left), ("Right", args.right)):
            if model or (side == "Left" and args.teacher):
                page.get_by_label(f"{side} column").click()
                page.wait_for_timeout(500)
            if side == "Left" and args.teacher:  # the list open: what the teacher offers
                page.screenshot(path=f"{args.out}-models.png", full_page=True)
                if not model:
                    page.get_by_label(f"{side} column").click()  # closes it
            if model:
                page.get_by_role("option", name=model, exact=True).click()
        page.get_by_role("button", name="Generate").click()
        # mid-stream: the right column's preview is in, its video not yet (a fast column can
        # finish before a poll sees it: then only the finished page is written)
        try:
            page.wait_for_selector("#right-status :text('denoised estimate')", timeout=60_000)
            page.screenshot(path=f"{args.out}-streaming.png", full_page=True)
        except PlaywrightTimeout:
            print("the right column finished before its preview was caught: no streaming shot")
        page.wait_for_selector("#summary :text('Speedup')", timeout=300_000)
        page.wait_for_selector("#export-status :text('built in')", timeout=300_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=f"{args.out}-done.png", full_page=True)
        browser.close()
    print(f"wrote {args.out}-streaming.png and {args.out}-done.png")


def transfer_screenshot(page, args):
    page.get_by_role("tab", name="Motion transfer").click()
    page.locator("input[type=file]").first.set_input_files(args.transfer)
    page.get_by_label("Prompt (the look)").fill(args.prompt)
    page.get_by_role("button", name="Transfer motion").click()
    page.wait_for_selector("#transfer-status :text('motion fidelity')", timeout=300_000)
    page.wait_for_selector("#transfer-export-status :text('built in')", timeout=300_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=f"{args.out}-transfer.png", full_page=True)
    print(f"wrote {args.out}-transfer.png")


if __name__ == "__main__":
    main()
