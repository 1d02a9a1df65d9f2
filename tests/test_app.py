"""The app launched for real and driven over HTTP with gradio_client, and in headless Chromium."""

import os
import socket

import pytest

from mcm_demo.app import ui
from mcm_demo.app.service import Service
from mcm_demo.catalog import Catalog
from mcm_demo.video_io import probe

PROMPT = "a blue square moving right on a white background"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(student_weights):
    demo = ui.build_demo(Service(Catalog(student_weights)))
    port = free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        css=ui.PAGE_CSS,
    )
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def compare_args(**overrides):
    args = dict(
        prompt=PROMPT,
        teacher="embedded",
        variant="webvid",
        steps=2,
        seed=0,
        randomize=False,
        frames=8,
        fps=8,
        left="lcm",
        right="mcm-webvid",
        teacher_steps=3,
        guidance=5.0,
    )
    args.update(overrides)
    return args


def video_path(value):
    return value.get("video") if isinstance(value, dict) else value


def test_client_gets_streamed_previews_then_two_h264_videos(app_url):
    from gradio_client import Client

    job = Client(app_url, verbose=False).submit(**compare_args(), api_name="/compare")
    final = job.result(timeout=300)
    streamed = job.outputs()
    assert len(streamed) >= 6  # start, 2 + 2 previews, 2 videos, speedup
    left, right = video_path(final[2]), video_path(final[5])
    for path in (left, right):
        info = probe(path)
        assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert "Speedup" in final[7] and "measured" in final[7]


def test_ten_concurrent_requests_all_answered_and_the_server_stays_up(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    jobs = [
        client.submit(**compare_args(steps=1, seed=i, teacher_steps=1), api_name="/compare")
        for i in range(10)
    ]
    results = [job.result(timeout=600) for job in jobs]
    paths = [video_path(r[5]) for r in results]
    assert all(p and os.path.exists(p) for p in paths) and len(set(paths)) == 10
    bad = client.submit(**compare_args(prompt=""), api_name="/compare").result(timeout=60)
    assert "prompt is empty" in bad[3]
    assert video_path(
        client.submit(**compare_args(steps=1), api_name="/compare").result(timeout=120)[5]
    )


def test_client_uploads_a_clip_for_motion_transfer(app_url, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    reference = os.path.join(ui.ASSETS, "growing-cyan-cross.gif")
    ref, new, base, status = client.predict(
        handle_file(reference),
        "a red star on a black background",
        "fastvmt",
        "mcm-webvid",
        2,
        0.75,
        3,
        5,
        "",
        0,
        "prompt",
        api_name="/transfer",
    )
    assert (
        all(probe(video_path(v))["codec"] == "h264" for v in (ref, new, base))
        and "motion fidelity" in status
    )
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(4096))
    *_, status = client.predict(
        handle_file(corrupt),
        "a red star",
        "fastvmt",
        "mcm-webvid",
        2,
        0.75,
        3,
        5,
        "",
        0,
        "prompt",
        api_name="/transfer",
    )
    assert status.startswith("⚠️") and "could not be decoded" in status
    with pytest.raises(
        Exception, match="Invalid file type"
    ):  # Gradio refuses other extensions itself
        client.predict(
            handle_file(__file__),
            "a red star",
            "fastvmt",
            "mcm-webvid",
            2,
            0.75,
            3,
            5,
            "",
            0,
            "prompt",
            api_name="/transfer",
        )


CHROMIUM = os.environ.get("MCM_DEMO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_browser_types_a_prompt_clicks_generate_sees_both_videos_and_downloads_the_export(
    app_url, tmp_path
):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("MCM_DEMO_REQUIRE_BROWSER"):
            pytest.fail(f"no Chromium at {CHROMIUM}")
        pytest.skip(
            f"no Chromium at {CHROMIUM}: `apt-get install chromium` (Debian) runs this test"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(app_url)
        assert "LCM baseline" in page.inner_text("#left-note")  # each column says what it is
        assert "MCM with the webvid image set" in page.inner_text("#right-note")
        page.get_by_label("Prompt").fill(PROMPT)
        page.get_by_role("button", name="Generate").click()
        for side in ("left", "right"):
            page.wait_for_selector(f"#{side}-video video", timeout=180_000)
        page.wait_for_selector("#summary :text('Speedup')", timeout=180_000)
        # the clips are enlarged without blur, in the file and by the browser
        rendering = page.eval_on_selector(
            "#right-video video", "e => getComputedStyle(e).imageRendering"
        )
        assert rendering == "pixelated"
        # the labelled side by side follows the columns, as a download
        page.wait_for_selector("#export-status :text('built in')", timeout=180_000)
        with page.expect_download(timeout=60_000) as download:
            page.locator("#download-mp4").click()
        saved = tmp_path / "side-by-side.mp4"
        download.value.save_as(saved)
        shot = tmp_path / "page.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    info = probe(str(saved))
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["frames"] == 8
    assert info["width"] >= 2 * 256 and info["height"] > 256
    assert shot.stat().st_size > 10_000
