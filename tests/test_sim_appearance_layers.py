"""BleedSim v2 scene layers: each changes the frames where it should, never the truth, and is
deterministic per seed."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from bleedorigin.sim.appearance import Appearance
from bleedorigin.sim.appearance_layers import layer_at, scene_shift, to_canvas
from bleedorigin.sim.generator import generate_clip

NEW = ("dissection_bed", "dark_pools", "bubbles", "smoke")


def _clip(app: Appearance | None = None):  # noqa: ANN202
    return generate_clip("track_short", 3, size=(128, 96), num_tracks=4, num_frames=8, appearance=app)


@pytest.fixture(scope="module")
def v1():  # noqa: ANN201
    return _clip()


@pytest.mark.parametrize("name", NEW)
def test_layer_keeps_truth_and_is_deterministic(v1, name: str) -> None:  # noqa: ANN001
    a, b = _clip(Appearance.parse(name)), _clip(Appearance.parse(name))
    assert np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, v1.frames)
    assert a.onset_frame == v1.onset_frame
    for field in ("source_xy", "source_visible", "tracks_xy", "tracks_visible", "blood_mask"):
        assert np.array_equal(getattr(a, field), getattr(v1, field)), field
    dark = v1.frames.max(axis=(0, 3)) <= 8  # outside the field stop stays black
    assert (a.frames[:, dark] == 0).all()


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).sum(-1)


def test_dark_pools_darken_blood_only(v1) -> None:  # noqa: ANN001
    out = _clip(Appearance(dark_pools=True)).frames
    # the soft edge of the blood reaches a few pixels beyond its mask
    near = np.stack([cv2.dilate(m.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0 for m in v1.blood_mask])
    view = v1.frames.max(axis=(0, 3)) > 8  # (the field stop's dim fringe is cleared by every feature)
    assert v1.blood_mask.any() and _diff(out, v1.frames)[~near & view].max() == 0
    assert out[v1.blood_mask].mean() < v1.frames[v1.blood_mask].mean() - 10


def test_dissection_bed_paints_tissue_not_blood(v1) -> None:  # noqa: ANN001
    d = _diff(_clip(Appearance(dissection_bed=True)).frames, v1.frames)
    view = v1.frames.max(axis=(0, 3)) > 8
    tissue = ~v1.blood_mask & view
    assert (d[tissue] > 30).mean() > 0.03  # a patch of a few percent of the view at least
    assert d[v1.blood_mask].mean() < 0.5 * d[tissue].mean()


def test_bubbles_are_small_and_bright(v1) -> None:  # noqa: ANN001
    out = _clip(Appearance(bubbles=True)).frames
    changed = _diff(out, v1.frames) > 20
    assert 0 < changed.mean() < 0.1
    assert out[changed].mean() > v1.frames[changed].mean()


def test_smoke_veils_the_view_and_lowers_contrast(v1) -> None:  # noqa: ANN001
    out = _clip(Appearance(smoke=True)).frames
    view = v1.frames.max(axis=(0, 3)) > 8
    assert (_diff(out, v1.frames)[:, view] > 0).mean() > 0.3
    assert out[:, view].std() < v1.frames[:, view].std()


def test_scene_shift_follows_a_known_pan_and_layers_move_with_it() -> None:
    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur(rng.random((300, 400)).astype(np.float32), (0, 0), 4)
    tex = ((tex - tex.min()) / (tex.max() - tex.min()) * 255).astype(np.uint8)
    frames = np.stack([np.dstack([tex[50:146, 100 + 3 * t:228 + 3 * t]] * 3) for t in range(5)])
    shift = scene_shift(frames)
    assert np.allclose(shift[:, 0], -3 * np.arange(5), atol=1.5) and np.abs(shift[:, 1]).max() < 1
    layer = np.zeros((144, 192, 1), np.float32)
    c = to_canvas(np.array([60.0, 40.0]), shift[0], 96, 128).round().astype(int)
    layer[c[1], c[0]] = 1
    seen = layer_at(layer, shift[4], 96, 128)
    y, x = np.unravel_index(seen.argmax(), seen.shape)
    assert (y, x) == (40, round(60 + shift[4, 0]))


def _write_clip(folder, frames: np.ndarray, meta: dict | None = None) -> None:  # noqa: ANN001
    import json
    folder.mkdir(parents=True)
    np.savez_compressed(folder / "frames.npz", frames=frames)
    if meta is not None:
        (folder / "meta.json").write_text(json.dumps(meta))


def test_real_texture_uses_bleeding_free_frames_only(tmp_path) -> None:  # noqa: ANN001
    """Frames from bleeding_from_frame - margin on, and clips bleeding throughout, are not used."""
    from bleedorigin.errors import InputError
    from bleedorigin.sim.appearance_layers import TEXTURE_EVERY, TEXTURE_MARGIN, texture_frames

    n = 3 * TEXTURE_EVERY + TEXTURE_MARGIN
    frames = np.zeros((n, 60, 80, 3), np.uint8)
    frames[:, :, :, 1] = 200  # green before the bleeding...
    frames[3 * TEXTURE_EVERY:, :, :, 0] = 255  # ...yellow from where it is too close to it
    _write_clip(tmp_path / "src" / "a", frames, {"bleeding": True, "bleeding_from_frame": n})
    _write_clip(tmp_path / "src" / "b", np.full((5, 60, 80, 3), 255, np.uint8), {"bleeding": True})
    got = texture_frames(str(tmp_path / "src"))
    assert len(got) == 3 and all((f[..., 0] == 0).all() and (f[..., 1] == 200).all() for f in got)
    with pytest.raises(InputError):
        texture_frames(str(tmp_path / "src" / "b"))
    (tmp_path / "src" / "b" / "meta.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):  # a one-line error, not a traceback
        texture_frames(str(tmp_path / "src" / "b"))


def test_real_texture_replaces_tissue_not_blood_nor_truth(tmp_path, v1) -> None:  # noqa: ANN001
    green = np.zeros((4, 60, 80, 3), np.uint8)
    green[..., 1] = 180
    _write_clip(tmp_path / "green", green)
    out = _clip(Appearance().with_texture(str(tmp_path / "green")))
    assert np.array_equal(out.blood_mask, v1.blood_mask)
    assert np.array_equal(out.tracks_xy, v1.tracks_xy)
    view = v1.frames.max(axis=(0, 3)) > 8
    tissue = ~v1.blood_mask & view & (v1.frames[..., 0].astype(int) - v1.frames[..., 1:].max(-1) > 60)
    gain = out.frames[..., 1].astype(int) - v1.frames[..., 1]
    assert gain[tissue].mean() > 60 and gain[v1.blood_mask].mean() < 0.3 * gain[tissue].mean()
