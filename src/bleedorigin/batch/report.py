"""report.html of a batch: one row per video with a thumbnail at each onset (source drawn), the
onset-score timeline as inline SVG and links to the run folder. One file with relative links to
the thumbnails in the run folders: it opens from disk, with no server and nothing fetched."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bleedorigin.batch.thumbs import thumb_name
from bleedorigin.utils.files import atomic_open

SVG_W, SVG_H = 480, 70
MAX_POINTS = 480  # scores are max-pooled to this many points: peaks survive

STYLE = """body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:6px;vertical-align:top;text-align:left}
figure{display:inline-block;margin:0 8px 4px 0}figcaption{font-size:12px;color:#555}
.failed{color:#b00}.muted{color:#777}svg{background:#fafafa;border:1px solid #eee}"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _href(*parts: str) -> str:
    return "/".join(quote(p) for p in parts)


def _pooled(scores: list[float | None]) -> list[float | None]:
    """At most MAX_POINTS values, each the max of its bin (None where the detector did not run)."""
    if len(scores) <= MAX_POINTS:
        return scores
    step = len(scores) / MAX_POINTS
    bins = [[v for v in scores[int(i * step):max(int(i * step) + 1, int((i + 1) * step))] if v is not None]
            for i in range(MAX_POINTS)]
    return [max(b) if b else None for b in bins]


def timeline_svg(scores: list[float], episodes: list[tuple[int, int, int]]) -> str:
    """Onset score over the video (0..1), bleeding episodes (onset, raised-at, end) shaded, onsets
    as orange lines; no score line while the point is tracked (the detector does not run)."""
    n = max(len(scores), 1)

    def x(frame: float) -> float:
        return round(frame / max(n - 1, 1) * SVG_W, 1)

    def y(score: float) -> float:
        return round((1.0 - min(max(score, 0.0), 1.0)) * (SVG_H - 4) + 2, 1)

    shown: list[float | None] = list(scores)
    for _, raised, end in episodes:
        shown[raised + 1:end + 1] = [None] * len(shown[raised + 1:end + 1])
    parts = [f'<svg width="{SVG_W}" height="{SVG_H}" viewBox="0 0 {SVG_W} {SVG_H}" '
             'xmlns="http://www.w3.org/2000/svg" role="img"><title>onset score over time</title>']
    for onset, _, end in episodes:
        parts.append(f'<rect x="{x(onset)}" y="0" width="{max(x(end) - x(onset), 1)}" height="{SVG_H}" '
                     'fill="#d33" fill-opacity="0.12"/>')
    pooled = _pooled(shown)
    scale = len(shown) / max(len(pooled), 1)
    runs: list[list[str]] = [[]]
    for i, v in enumerate(pooled):
        if v is None:
            runs.append([])
        else:
            runs[-1].append(f"{x(i * scale)},{y(v)}")
    for run in runs:
        if run:
            parts.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="#c22" stroke-width="1.2"/>')
    for onset, _, _ in episodes:
        parts.append(f'<line x1="{x(onset)}" x2="{x(onset)}" y1="0" y2="{SVG_H}" stroke="#e80" stroke-width="1.5"/>')
    parts.append("</svg>")
    return "".join(parts)


def _episodes_cell(name: str, rows: list[dict[str, Any]], run_dir: Path) -> str:
    figures = []
    for r in rows:
        if r["episode"] is None:
            continue
        caption = (f"episode {r['episode']}: onset frame {r['onset_frame']} ({r['onset_time_s']:.1f} s), "
                   f"source ({r['source_x']:.0f}, {r['source_y']:.0f}) {r['source_confidence']:.2f}, "
                   f"{r['duration_s']:.1f} s" + ("" if r["ended"] else " (still bleeding at the end)"))
        thumb = thumb_name(r["episode"])
        image = (f'<img src="{_href(name, *thumb.split("/"))}" alt="onset of episode {r["episode"]}" '
                 'width="256">' if (run_dir / thumb).is_file() else '<span class="muted">no thumbnail</span>')
        figures.append(f"<figure>{image}<figcaption>{_esc(caption)}</figcaption></figure>")
    return "".join(figures) or '<span class="muted">no bleeding detected</span>'


def _row(name: str, result: dict[str, Any], rows: list[dict[str, Any]], run_dir: Path) -> str:
    frames, fps = int(result.get("frames") or 0), float(result.get("fps") or 30.0)
    episodes = [(r["onset_frame"], r["raised_at_frame"] if r["raised_at_frame"] is not None else r["onset_frame"],
                 r["episode_end_frame"]) for r in rows if r["episode"] is not None]
    timeline = timeline_svg([float(s) for s in result.get("scores") or []], episodes)
    links = [f'<a href="{_href(name)}/">folder</a>', f'<a href="{_href(name, "result.json")}">result.json</a>']
    for extra in ("timeline.png", "overlay.mp4"):
        if (run_dir / extra).is_file():
            links.append(f'<a href="{_href(name, extra)}">{extra}</a>')
    return (f"<tr><td><b>{_esc(name)}</b><br><span class='muted'>{frames} frames, {frames / fps:.1f} s"
            f"</span><br>{' · '.join(links)}</td><td>{len(episodes)}</td>"
            f"<td>{_episodes_cell(name, rows, run_dir)}</td><td>{timeline}</td></tr>")


def write_report(path: Path, videos: list[tuple[str, dict[str, Any], list[dict[str, Any]]]],
                 failures: list[dict[str, Any]], pending: list[str]) -> Path:
    """`videos`: (name, result.json, its event-table rows) of each finished video."""
    out = path.parent
    body = [f"<h1>BleedOrigin batch</h1><p>{len(videos)} videos screened, "
            f"{sum(1 for _, _, rows in videos for r in rows if r['episode'] is not None)} bleeding episodes, "
            f"{len(failures)} failed" + (f", {len(pending)} not done" if pending else "") +
            '. Table: <a href="events.csv">events.csv</a>'
            + (' · <a href="failures.csv">failures.csv</a>' if failures else "") + "</p>"]
    body.append("<table><tr><th>video</th><th>episodes</th><th>onsets (source drawn)</th>"
                "<th>onset score (episodes shaded, orange: onset)</th></tr>")
    body += [_row(name, result, rows, out / name) for name, result, rows in videos]
    body.append("</table>")
    if failures:
        body.append("<h2 class='failed'>Failed</h2><table><tr><th>video</th><th>error</th></tr>")
        body += [f"<tr><td>{_esc(f['video'])}</td><td class='failed'>{_esc(f['error'])}</td></tr>" for f in failures]
        body.append("</table>")
    if pending:
        body.append(f"<h2>Not done</h2><p>{_esc(', '.join(pending))}</p>")
    page = ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>BleedOrigin batch</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")
    with atomic_open(path, "w") as f:
        f.write(page)
    return path
