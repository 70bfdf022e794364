"""Video reading and writing: real clips, broken files, image folders, atomic output, coordinate mapping."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from bleedorigin.errors import InputError
from bleedorigin.io.video import FrameMapper, VideoWriter, open_video, probe_video, read_frames
from conftest import make_tiny_frames


def test_reads_every_frame_with_index_and_time(tiny_clip):
    with open_video(tiny_clip.path) as reader:
        assert (reader.info.width, reader.info.height) == (64, 48)
        assert reader.info.fps == pytest.approx(30.0)
        items = list(reader)
    assert [it.index for it in items] == list(range(24))
    assert items[3].time_s == pytest.approx(3 / 30, abs=1e-3)
    # crf 10 keeps the content: the decoded frame is close to what was written
    err = np.abs(items[10].image.astype(int) - tiny_clip.frames[10].astype(int)).mean()
    assert items[10].image.dtype == np.uint8 and err < 6


@pytest.mark.real
def test_reads_real_esd_clip_in_stored_pixels(shared_data):
    info = probe_video(shared_data / "esd_clips" / "water_013" / "video.mp4")
    # non-square sample aspect ratio must not change the stored 112x112 grid the labels live in
    assert (info.width, info.height, info.frames) == (112, 112, 151)
    frames = read_frames(shared_data / "esd_clips" / "water_013" / "video.mp4", start=140)
    assert frames.shape == (11, 112, 112, 3)


@pytest.mark.parametrize("content", [b"", b"this is plain text, not a video\n" * 20])
def test_broken_files_raise_input_error(tmp_path, content):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(content)
    with pytest.raises(InputError, match="clip.mp4"):
        open_video(bad)


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="not found"):
        open_video(tmp_path / "nope.mp4")
    with pytest.raises(InputError, match="no images"):
        open_video(tmp_path)


def test_truncated_file_yields_good_frames_or_fails_cleanly(tiny_clip, tmp_path):
    data = tiny_clip.path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    got = []
    try:
        with open_video(cut) as reader:
            got = [it.index for it in reader]
    except InputError as e:  # moov atom at the end: nothing decodable, but a clean error
        assert "cut.mp4" in str(e)
    assert got == list(range(len(got)))


def test_image_folder_and_single_image(tmp_path):
    frames, _ = make_tiny_frames(n=5)
    for i, f in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{i:04d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    got = read_frames(tmp_path)
    np.testing.assert_array_equal(got, frames)  # png is lossless, RGB order kept
    with open_video(tmp_path / "0002.png") as reader:
        (item,) = list(reader)
    np.testing.assert_array_equal(item.image, frames[2])


def test_writer_is_atomic_and_readable(tmp_path):
    frames, _ = make_tiny_frames(n=6, size=(63, 47))  # odd sizes are padded for yuv420p
    out = tmp_path / "o.mp4"
    with VideoWriter(out, 25, (63, 47)) as w:
        for f in frames:
            w.write(f)
            assert not out.exists()  # only the temp file exists until close
    info = probe_video(out)
    assert info.frames == 6 and (info.width, info.height) == (64, 48)
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "crash.mp4", 25, (63, 47)) as w:
            w.write(frames[0])
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == [out]  # nothing half-written left behind


def test_writer_rejects_wrong_frame_size(tmp_path):
    with VideoWriter(tmp_path / "o.mp4", 25, (64, 48)) as w:
        with pytest.raises(InputError, match="64x48"):
            w.write(np.zeros((10, 10, 3), np.uint8))
        w.write(np.zeros((48, 64, 3), np.uint8))


def test_frame_mapper_is_exact_and_half_pixel_centred():
    m = FrameMapper((112, 112), (512, 384))
    pts = np.array([[0.0, 0.0], [55.5, 55.5], [111.0, 111.0], [-0.5, -0.5]])
    np.testing.assert_allclose(m.to_input(m.to_model(pts)), pts, atol=1e-12)
    # image corners (-0.5) map to corners; the centre maps to the centre
    np.testing.assert_allclose(m.to_model([[-0.5, -0.5]]), [[-0.5, -0.5]])
    np.testing.assert_allclose(m.to_model([[55.5, 55.5]]), [[255.5, 191.5]])
    img = np.zeros((112, 112, 3), np.uint8)
    img[40, 70] = 255
    big = m.resize(img)
    assert big.shape == (384, 512, 3)
    y, x = np.unravel_index(big[..., 0].argmax(), big.shape[:2])
    mx, my = m.to_model([[70, 40]])[0]
    assert abs(x - mx) <= 1.5 and abs(y - my) <= 1.5

