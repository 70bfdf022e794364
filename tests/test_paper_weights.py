"""`bleedorigin weights`: catalogue listing, checking a local file, downloading through the hub
API from a loopback server that imitates huggingface.co."""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from safetensors.torch import save_file

from bleedorigin.cli import main
from bleedorigin.models import layout as layout_mod
from bleedorigin.models import paper_weights as pw
from bleedorigin.models.layout import load_layout, seeded_state_dict

TINY = {"blocks.0.attn.qkv.weight": [12, 4], "norm.weight": [4]}


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("BLEEDORIGIN_PAPER_WEIGHTS", str(tmp_path / "paper"))
    return tmp_path / "paper"


@pytest.fixture
def tiny_catalog(tmp_path, monkeypatch):
    """One hub-hosted file with a 2-tensor layout instead of the 90-200 MB releases."""
    layouts = tmp_path / "layouts"
    layouts.mkdir()
    (layouts / "tiny.json").write_text(json.dumps({"keys": TINY, "tensor_bytes_fp32": 208}))
    monkeypatch.setattr(layout_mod, "LAYOUT_DIR", layouts)
    monkeypatch.setattr(pw, "CATALOG", (pw.WeightFile("source_paper", "model.safetensors", "tiny encoder", "tiny",
                                                      "https://example.org/tiny", "MIT", repo_id="org/tiny"),))
    monkeypatch.setattr(pw, "HF_LAYOUTS", ())


def test_lists_every_preset_file_with_its_official_page(capsys, folder):
    code, out, _ = _cli(capsys, "weights")
    assert code == 0
    assert str(folder) in out
    for e in pw.CATALOG:
        assert f"{e.preset}: {e.filename}" in out
        assert e.page in out
    assert "gaydemir/track_on" in out and "absent" in out
    code, out, _ = _cli(capsys, "weights", "--preset", "source_paper")
    assert "track_on_checkpoint.pt" not in out and "PE-Spatial" in out
    code, _, err = _cli(capsys, "weights", "--preset", "track_small")
    assert code == 2 and err.startswith("error: unknown preset")


def test_check_picks_the_release_a_partial_file_belongs_to(tmp_path, capsys):
    keys = load_layout("pe_spatial_small")["keys"]
    sd = seeded_state_dict({k: keys[k] for k in ("cls_token", "pos_embed", "norm_pre.weight")})
    save_file(sd, str(tmp_path / "partial.safetensors"))
    code, out, _ = _cli(capsys, "weights", "--check", str(tmp_path / "partial.safetensors"))
    assert code == 1
    assert f"MISMATCH against the pe_spatial_small layout: {len(keys) - 3} missing" in out
    assert hashlib.sha256((tmp_path / "partial.safetensors").read_bytes()).hexdigest() in out


def test_check_verdicts(tmp_path, capsys, tiny_catalog):
    save_file(seeded_state_dict(TINY), str(tmp_path / "ok.safetensors"))
    code, out, _ = _cli(capsys, "weights", "--check", str(tmp_path / "ok.safetensors"))
    assert code == 0 and "OK: 2 tensors match the tiny layout" in out
    bad = seeded_state_dict(TINY)
    bad["norm.weight"] = torch.ones(5)
    torch.save({"model": bad}, tmp_path / "bad.pt")
    code, out, _ = _cli(capsys, "weights", "--check", str(tmp_path / "bad.pt"))
    assert code == 1 and "1 wrong shape (norm.weight)" in out
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    code, _, err = _cli(capsys, "weights", "--check", str(tmp_path / "junk.pt"))
    assert code == 2 and "unreadable" in err and "Traceback" not in err


class _Hub(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def _headers(self) -> bytes | None:
        body = self.files.get(self.path)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return None
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
        self.send_header("X-Repo-Commit", "0" * 40)
        self.end_headers()
        return body

    def do_HEAD(self) -> None:  # noqa: N802
        self._headers()

    def do_GET(self) -> None:  # noqa: N802
        body = self._headers()
        if body is not None:
            self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_download_through_the_hub_api(tmp_path, capsys, monkeypatch, folder, tiny_catalog):
    src = tmp_path / "served.safetensors"
    save_file(seeded_state_dict(TINY), str(src))
    _Hub.files = {"/org/tiny/resolve/main/model.safetensors": src.read_bytes()}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    try:
        code, out, _ = _cli(capsys, "weights", "--download")
        got = folder / "source_paper" / "model.safetensors"
        assert code == 0, out
        assert got.read_bytes() == src.read_bytes()
        assert "OK: 2 tensors match the tiny layout" in out
        assert pw.find_local("source_paper") == got
        # the hub no longer has the file and no copy is on disk: one line, exit 2
        got.unlink()
        _Hub.files = {}
        code, _, err = _cli(capsys, "weights", "--download")
        assert code == 2
        assert err.strip().splitlines()[-1].startswith("error: download of org/tiny/model.safetensors failed")
    finally:
        server.shutdown()
        server.server_close()
