"""Video and image sets from disk: every layout reads the same samples as its twins, broken
files are skipped and counted, and a set that cannot be used at all says why at once."""

import json
import os
import tarfile

import numpy as np
import pytest

from mcm_demo.data import ClipSpec, DataSetError, open_image_set, open_video_set
from mcm_demo.data.index import expand_braces
from mcm_demo.data.sets import SampleStream
from mcm_demo.data.world import world_clips
from mcm_demo.data.writers import write_image_set, write_video_set
from mcm_demo.video_io import write_mp4

NUM_CLIPS = 6


@pytest.fixture(scope="module")
def world():
    clips, captions = next(world_clips(NUM_CLIPS, seed=1))
    return clips, captions


def _read(path, **kwargs):
    stream = SampleStream(open_video_set(path, ClipSpec(8, 64)).dataset(passes=1, **kwargs))
    return {item["key"]: item for item in stream}, stream.skipped


def _read_images(path):
    stream = SampleStream(open_image_set(path, 64).dataset(passes=1))
    return {item["key"]: item for item in stream}, stream.skipped


def _break_the_set(folder: str, layout_path: str) -> None:
    """Add a corrupt mp4, a 2-frame clip and a clip without a caption to a written set."""
    clips_dir = os.path.join(folder, "clips")
    with open(os.path.join(clips_dir, "corrupt.mp4"), "wb") as f:
        f.write(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    write_mp4(np.zeros((2, 64, 64, 3), np.uint8), os.path.join(clips_dir, "short.mp4"))
    write_mp4(np.zeros((8, 64, 64, 3), np.uint8), os.path.join(clips_dir, "silent.mp4"))
    rows = {"corrupt": "a red circle", "short": "a blue star", "silent": ""}
    if layout_path.endswith(".jsonl"):
        with open(layout_path, "a") as f:
            for key, caption in rows.items():
                f.write(json.dumps({"path": f"clips/{key}.mp4", "caption": caption}) + "\n")
            f.write("not json\n")
    elif os.path.basename(layout_path) == "results.csv":
        with open(layout_path, "a") as f:
            for key, caption in rows.items():
                f.write(f"{key},,PT1S,clips,{caption}\n")
    else:
        with open(layout_path, "a") as f:
            for key, caption in rows.items():
                f.write(f"clips/{key}.mp4,{caption}\n")


def _break_the_shards(folder: str) -> str:
    """A fourth shard with the same three broken samples."""
    path = os.path.join(folder, "99999.tar")
    with tarfile.open(path, "w") as tar:
        short = os.path.join(folder, ".short.mp4")
        write_mp4(np.zeros((2, 64, 64, 3), np.uint8), short)
        tar.add(short, "short.mp4")
        tar.add(short, "silent.mp4")  # no .txt and no .json: no caption
        corrupt = os.path.join(folder, ".corrupt.mp4")
        with open(corrupt, "wb") as f:
            f.write(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
        tar.add(corrupt, "corrupt.mp4")
        for key in ("short", "corrupt"):
            caption = os.path.join(folder, f".{key}.txt")
            with open(caption, "w") as f:
                f.write("a caption")
            tar.add(caption, f"{key}.txt")
    return folder  # the folder of shards: every .tar in it


def test_every_video_layout_yields_the_same_samples_and_counts_broken_files(world, tmp_path):
    clips, captions = world
    read = {}
    for layout in ("webvid", "csv", "jsonl", "shards"):
        folder = str(tmp_path / layout)
        path = write_video_set(clips, captions, folder, layout, per_shard=2)
        if layout == "shards":
            path = _break_the_shards(folder)
        else:
            _break_the_set(folder, path)
        samples, skipped = _read(path)
        read[layout] = samples
        assert skipped.counts == {"unreadable": 1, "too short": 1, "no caption": 1}, (
            layout,
            skipped.report(layout),
        )
        assert len(samples) == NUM_CLIPS, layout
    reference = read["webvid"]
    for layout, samples in read.items():
        assert samples.keys() == reference.keys(), layout
        for key, item in samples.items():
            assert item["caption"] == reference[key]["caption"]
            # each layout encodes its own copy, and libx264 in PyAV's wheel does not always
            # give the same bytes for the same frames (seen even on one thread): a level or
            # so here and there; reading one file twice is exact (below)
            gap = np.abs(item["pixels"].astype(int) - reference[key]["pixels"])
            assert gap.mean() < 1, (layout, key, gap.mean())
    again, _ = _read(write_video_set(*world, str(tmp_path / "again"), "csv", per_shard=2))
    twice, _ = _read(str(tmp_path / "again" / "captions.csv"))
    for key, item in again.items():
        assert np.array_equal(item["pixels"], twice[key]["pixels"]), key
    # and they are the clips that were written (H.264 at crf 18, 4:2:0: a few levels off)
    for i in range(NUM_CLIPS):
        item = reference[f"{i:08d}"]
        assert item["caption"] == captions[i]
        assert item["pixels"].shape == (8, 64, 64, 3)
        assert np.abs(item["pixels"].astype(int) - clips[i]).mean() < 6


def test_image_layouts_agree_and_captions_are_optional(world, tmp_path):
    clips, captions = world
    stills = [clip[0] for clip in clips]
    stills_captions = captions[:-1] + [None]
    folder = write_image_set(stills, stills_captions, str(tmp_path / "folder"), "folder")
    shards = write_image_set(stills, stills_captions, str(tmp_path / "shards"), "shards", 4)
    with open(os.path.join(folder, "broken.png"), "wb") as f:
        f.write(b"\x89PNG not really")
    a, skipped_a = _read_images(folder)
    b, _ = _read_images(shards)
    assert skipped_a.counts == {"unreadable": 1}
    assert a.keys() == b.keys() and len(a) == NUM_CLIPS
    for key in a:
        assert np.array_equal(a[key]["pixels"], b[key]["pixels"])
        assert a[key]["caption"] == b[key]["caption"]
    assert a[f"{NUM_CLIPS - 1:08d}"]["caption"] is None


def test_ranks_read_disjoint_parts_that_cover_the_set(world, tmp_path):
    clips, captions = world
    for layout, per_shard in (("csv", 1000), ("shards", 1), ("shards", 4)):
        path = write_video_set(
            clips, captions, str(tmp_path / f"{layout}{per_shard}"), layout, per_shard=per_shard
        )
        parts = [set(_read(path, rank=r, world=2)[0]) for r in range(2)]
        assert not parts[0] & parts[1], layout
        assert parts[0] | parts[1] == {f"{i:08d}" for i in range(NUM_CLIPS)}, layout


def test_unusable_sets_stop_with_a_message(tmp_path):
    with pytest.raises(DataSetError, match="does not exist"):
        open_video_set(str(tmp_path / "nowhere.csv"))
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("url,text\nx.mp4,a cat\n")
    with pytest.raises(DataSetError, match="videoid, name, page_dir or path, caption"):
        open_video_set(str(bad_csv))
    with pytest.raises(DataSetError, match="shards of .* do not exist"):
        open_video_set(str(tmp_path / "s-{000..003}.tar"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataSetError, match="neither a captions file"):
        open_video_set(str(tmp_path / "empty"))
    with pytest.raises(DataSetError, match="holds no image"):
        open_image_set(str(tmp_path / "empty"))
    only_broken = tmp_path / "broken"
    (only_broken / "clips").mkdir(parents=True)
    (only_broken / "clips" / "a.mp4").write_bytes(b"junk")
    (only_broken / "list.csv").write_text("path,caption\nclips/a.mp4,a cat\n")
    from mcm_demo.train.clips import check_readable

    with pytest.raises(DataSetError, match="no readable clip.*1 unreadable"):
        check_readable(open_video_set(str(only_broken)))


def test_brace_patterns_expand_as_webdataset_does():
    assert expand_braces("s/{00000..00002}.tar") == ["s/00000.tar", "s/00001.tar", "s/00002.tar"]
    assert expand_braces("{a,b}-{1..2}") == ["a-1", "a-2", "b-1", "b-2"]


def test_frame_stride_and_fps_pick_the_frames(tmp_path):
    frames = np.zeros((24, 64, 64, 3), np.uint8)
    for i in range(24):
        frames[i, :, :, 0] = i * 10  # the frame's index, readable back from its red level
    path = write_mp4(frames, str(tmp_path / "ramp.mp4"), fps=24, crf=0)
    from mcm_demo.data.decode import decode_clip

    strided = decode_clip(path, ClipSpec(4, 32, frame_stride=3))
    assert [round(f[..., 0].mean() / 10) for f in strided] == [0, 3, 6, 9]
    by_fps = decode_clip(path, ClipSpec(4, 32, fps=8))  # 24 fps source → every 3rd frame
    assert np.array_equal(by_fps, strided)
    late = decode_clip(path, ClipSpec(4, 32, frame_stride=3), start_fraction=0.99)
    assert round(late[-1][..., 0].mean() / 10) == 23
