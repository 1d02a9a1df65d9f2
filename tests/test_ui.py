"""The page's handler, called directly: streamed previews, then a playable mp4."""
from mcm_demo.ui import generate
from mcm_demo.video_io import probe


def test_handler_streams_previews_then_the_video():
    updates = list(generate("a red circle moving left on a black background", "ddim", 3, 5.0, 0))
    previews = [u for u in updates if u[0] is not None and u[1] is None]
    assert len(previews) == 3
    final_preview, video, status = updates[-1]
    assert probe(video)["codec"] == "h264" and "done" in status and "measured" in status


def test_handler_reports_bad_input_and_keeps_working():
    for bad in [("", "ddim", 4, 5.0, 0), ("a red circle", "ddim", 0, 5.0, 0), ("a red circle", "ddim", 4, 5.0, -1),
                ("x" * 10_000, "ddim", 4, 5.0, 0), ("a red circle", "heun", 4, 5.0, 0)]:
        (preview, video, status), = list(generate(*bad))
        assert video is None and status.startswith("⚠️")
    assert list(generate("a blue star spinning on a gray background", "dpm++", 2, 5.0, 1))[-1][1] is not None
