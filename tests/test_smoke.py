import subprocess
import sys

import av


def test_tiny_clip_decodes_to_written_frames(tiny_clip):
    with av.open(str(tiny_clip.path)) as f:
        frames = [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]
    assert len(frames) == len(tiny_clip.frames)
    assert abs(frames[-1].astype(int) - tiny_clip.frames[-1]).mean() < 6


def test_module_entry_point_prints_help():
    out = subprocess.run([sys.executable, "-m", "bleedorigin", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0
    assert "detect" in out.stdout
