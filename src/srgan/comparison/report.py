"""The comparison as one self-contained HTML page: no CDN, no external file, no network.

Every picture is embedded as a PNG data URI; the page's only script is inline. For each
input there is a before/after slider whose two sides can be any two columns (a button per
pair: input, every model, ground truth), the magnified crops, and the input's numbers;
the summary tables (scores, wins, head-to-head, pairwise differences) come first.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import math
from collections.abc import Sequence
from datetime import datetime, timezone

from PIL import Image as PILImage

from srgan.comparison.results import ComparedImage, Summary
from srgan.comparison.sheet import (
    REGION_COLOURS,
    cell_captions,
    column_images,
    input_crop,
    to_display,
)

DEFAULT_MAX_SIDE = 2048  # longer embedded images are shown downscaled (crops stay native)
CROP_SIDE = 192  # crops are enlarged by a whole factor to at most this many CSS pixels


def _data_uri(image: PILImage.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _fmt(value: float, digits: int) -> str:
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


class HtmlReport:
    """Collects one section per input (`add`), then writes the page (`render`)."""

    def __init__(self, labels: Sequence[str], title: str, max_side: int = DEFAULT_MAX_SIDE):
        self.labels = list(labels)
        self.title = title
        self.max_side = max_side
        self.sections: list[str] = []
        self.images: dict[str, dict[str, str]] = {}

    def add(self, item: ComparedImage) -> None:
        key = f"i{len(self.sections)}"
        names = [name for name, _ in cell_captions(self.labels, item)]
        height, width = item.outputs[0].height, item.outputs[0].width
        scale = height / item.lr.height
        shrink = min(1.0, self.max_side / max(height, width))
        sources: dict[str, str] = {}
        for name, pixels in zip(names, column_images(item), strict=True):
            shown = to_display(pixels)
            if shrink < 1:
                factor = shrink * (scale if name == "input" else 1)
                shown = shown.resize(
                    (max(1, round(shown.width * factor)), max(1, round(shown.height * factor))),
                    PILImage.Resampling.LANCZOS,
                )
            sources[name] = _data_uri(shown)
        self.images[key] = sources
        self.sections.append(self._section(key, item, names, scale, shrink))

    def _section(
        self, key: str, item: ComparedImage, names: list[str], scale: float, shrink: float
    ) -> str:
        e = html.escape
        height, width = item.outputs[0].height, item.outputs[0].width
        options = "".join(f'<option value="{e(n)}">{e(n)}</option>' for n in names)
        pairs = "".join(
            f'<button type="button" data-left="{e(a)}" data-right="{e(b)}">{e(a)} | {e(b)}</button>'
            for a, b in itertools.combinations(names, 2)
        )
        note = (
            f"<p class=note>shown at {shrink:.0%} of {width}x{height}; crops are full size</p>"
            if shrink < 1
            else ""
        )
        crops = []
        for number, region in enumerate(item.regions):
            red, green, blue = REGION_COLOURS[number % len(REGION_COLOURS)]
            colour = f"#{red:02x}{green:02x}{blue:02x}"
            magnify = max(1, CROP_SIDE // max(region.w, region.h))
            figures = []
            for name, pixels in zip(names, column_images(item), strict=True):
                if name == "input":
                    piece = input_crop(pixels, region, scale)
                else:
                    piece = to_display(
                        pixels[region.y : region.y + region.h, region.x : region.x + region.w]
                    )
                shown_w = piece.width * magnify
                figures.append(
                    f'<figure><img class=pixelated src="{_data_uri(piece)}" '
                    f'style="width:{shown_w}px" alt="{e(name)}, crop {number + 1}">'
                    f"<figcaption>{e(name)}</figcaption></figure>"
                )
            crops.append(
                f'<div class=crop style="border-color:{colour}"><h4 style="color:{colour}">'
                f"crop {number + 1}: x={region.x} y={region.y} {region.w}x{region.h}, "
                f"x{magnify}</h4><div class=figures>{''.join(figures)}</div></div>"
            )
        rows = []
        for index, label in enumerate(self.labels):
            cells = ""
            if item.scores is not None:
                s = item.scores[index]
                cells = f"<td>{s.psnr:.2f}</td><td>{s.ssim:.4f}</td>"
            rows.append(f"<tr><th>{e(label)}</th>{cells}</tr>")
        header = "<tr><th>model</th><th>PSNR</th><th>SSIM</th></tr>" if item.scores else ""
        score_table = f"<table>{header}{''.join(rows)}</table>" if item.scores else ""
        diff_rows = "".join(
            f"<tr><td>{e(self.labels[i])}</td><td>{e(self.labels[j])}</td>"
            f"<td>{d.mean_abs:.2f}</td><td>{d.max_abs:.0f}</td><td>{_fmt(d.psnr, 2)}</td></tr>"
            for (i, j), d in item.differences.items()
        )
        diff_table = (
            "<table><tr><th>a</th><th>b</th><th>mean |a-b|</th><th>max</th>"
            f"<th>PSNR a vs b</th></tr>{diff_rows}</table>"
            if diff_rows
            else ""
        )
        aspect = f"{width} / {height}"
        shown_width = max(min(width, 1024), min(2 * width, 768))  # small outputs enlarged
        return f"""
<section class=image id="{key}" data-key="{key}">
  <h2>{e(item.name)}</h2>
  <p class=note>input {item.lr.width}x{item.lr.height}, output {width}x{height} (x{scale:g})</p>
  <div class=viewer style="aspect-ratio:{aspect}; max-width:{shown_width}px">
    <img class=right-image alt="right side">
    <img class=left-image alt="left side">
    <div class=divider></div>
  </div>
  <div class=controls>
    <label>left <select class=left>{options}</select></label>
    <input class=slider type=range min=0 max=100 value=50 aria-label="divider position">
    <label>right <select class=right>{options}</select></label>
  </div>
  <div class=pairs>{pairs}</div>
  {note}
  <div class=crops>{"".join(crops)}</div>
  <div class=numbers>{score_table}{diff_table}</div>
</section>"""

    def render(self, summary: Summary) -> str:
        e = html.escape
        created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        data = json.dumps(self.images, separators=(",", ":")).replace("</", "<\\/")
        return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(self.title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header><h1>{e(self.title)}</h1><p class=note>made by srgan compare, {created}</p></header>
<section id=summary>{_summary_tables(summary)}</section>
{"".join(self.sections)}
<script type="application/json" id="images">{data}</script>
<script>{_SCRIPT}</script>
</body>
</html>
"""


def _summary_tables(summary: Summary) -> str:
    e = html.escape
    parts: list[str] = []
    labels = summary.labels
    if summary.scores is not None:
        head = "".join(f"<th colspan=2>{e(label)}</th>" for label in labels)
        sub = "<th>PSNR</th><th>SSIM</th>" * len(labels)
        body = []
        for image, name in enumerate(summary.names):
            cells = "".join(
                f"<td>{summary.scores[m][image].psnr:.2f}</td>"
                f"<td>{summary.scores[m][image].ssim:.4f}</td>"
                for m in range(len(labels))
            )
            body.append(f"<tr><th>{e(name)}</th>{cells}</tr>")
        means = "".join(
            f"<td>{summary.mean_score(m).psnr:.2f}</td><td>{summary.mean_score(m).ssim:.4f}</td>"
            for m in range(len(labels))
        )
        parts.append(
            "<h2>PSNR (dB) and SSIM on Y, border = scale</h2>"
            f"<table id=scores><tr><th></th>{head}</tr><tr><th>image</th>{sub}</tr>"
            f"{''.join(body)}<tr class=mean><th>mean</th>{means}</tr></table>"
        )
        wins = "".join(
            f"<tr><th>{e(label)}</th><td>{p}</td><td>{s}</td></tr>"
            for label, (p, s) in zip(labels, summary.wins(), strict=True)
        )
        parts.append(
            f"<h2>Wins (of {len(summary.names)} images)</h2><table id=wins><tr><th>model</th>"
            f"<th>best PSNR</th><th>best SSIM</th></tr>{wins}</table>"
        )
        matrix = summary.head_to_head()
        head2 = "".join(f"<th>{e(label)}</th>" for label in labels)
        rows2 = "".join(
            f"<tr><th>{e(a)}</th>"
            + "".join(
                "<td>-</td>" if i == j else f"<td>{matrix[i][j]}</td>" for j in range(len(labels))
            )
            + "</tr>"
            for i, a in enumerate(labels)
        )
        parts.append(
            "<h2>Head to head: images where the row beats the column (PSNR)</h2>"
            f"<table id=head-to-head><tr><th></th>{head2}</tr>{rows2}</table>"
        )
    rows = []
    for i, j in summary.differences:
        d = summary.mean_difference((i, j))
        rows.append(
            f"<tr><td>{e(labels[i])}</td><td>{e(labels[j])}</td><td>{d.mean_abs:.2f}</td>"
            f"<td>{d.max_abs:.0f}</td><td>{_fmt(d.psnr, 2)}</td></tr>"
        )
    if rows:
        parts.append(
            "<h2>Differences between the models (levels of 255, mean over images)</h2>"
            "<table id=differences><tr><th>a</th><th>b</th><th>mean |a-b|</th><th>max</th>"
            f"<th>PSNR a vs b</th></tr>{''.join(rows)}</table>"
        )
    return "".join(parts)


_CSS = """
body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1em;
 background:#181818;color:#e8e8e8}
a{color:#8cf} h1{margin:.2em 0} h2{margin:1.2em 0 .3em} .note{color:#aaa;margin:.2em 0}
table{border-collapse:collapse;margin:.4em 0 1em} td,th{border:1px solid #444;
 padding:.2em .6em;text-align:right} th{background:#262626} tr.mean td{font-weight:bold}
section.image{border-top:1px solid #444;margin-top:1.5em}
.viewer{position:relative;width:100%;overflow:hidden;background:#000;user-select:none}
.viewer img{position:absolute;inset:0;width:100%;height:100%}
.viewer img.nearest,.pixelated{image-rendering:pixelated}
.divider{position:absolute;top:0;bottom:0;width:2px;background:#fff;left:50%;
 pointer-events:none}
.controls{display:flex;gap:1em;align-items:center;margin:.5em 0}
.controls .slider{flex:1} .pairs button{margin:.15em;background:#333;color:#eee;
 border:1px solid #555;border-radius:3px;padding:.2em .5em;cursor:pointer}
.pairs button.active{background:#556;border-color:#99c}
.crop{border-left:4px solid;padding-left:.6em;margin:.6em 0}
.crop h4{margin:.2em 0}.figures{display:flex;flex-wrap:wrap;gap:.5em}
figure{margin:0}figcaption{color:#aaa;font-size:13px}
"""

# The slider: the left image is clipped to the left of the divider (clip-path), so the
# two sides of the divider show two results of the same pixels.
_SCRIPT = """
"use strict";
const IMAGES = JSON.parse(document.getElementById("images").textContent);
for (const section of document.querySelectorAll("section.image")) {
  const sources = IMAGES[section.dataset.key];
  const left = section.querySelector("select.left");
  const right = section.querySelector("select.right");
  const slider = section.querySelector(".slider");
  const leftImage = section.querySelector(".left-image");
  const rightImage = section.querySelector(".right-image");
  const divider = section.querySelector(".divider");
  const buttons = section.querySelectorAll(".pairs button");
  const names = Object.keys(sources);
  const models = names.filter((n) => n !== "input" && n !== "ground truth");
  left.value = names.includes("ground truth") ? models[0] : "input";
  right.value = names.includes("ground truth") ? "ground truth" : models[0];
  if (left.value === right.value) right.value = models[1] || names[names.length - 1];
  function show() {
    leftImage.src = sources[left.value];
    rightImage.src = sources[right.value];
    leftImage.classList.toggle("nearest", left.value === "input");
    rightImage.classList.toggle("nearest", right.value === "input");
    const at = Number(slider.value);
    leftImage.style.clipPath = `inset(0 ${100 - at}% 0 0)`;
    divider.style.left = `${at}%`;
    for (const b of buttons) {
      const same = b.dataset.left === left.value && b.dataset.right === right.value;
      b.classList.toggle("active", same);
    }
  }
  left.addEventListener("change", show);
  right.addEventListener("change", show);
  slider.addEventListener("input", show);
  for (const b of buttons) {
    b.addEventListener("click", () => {
      left.value = b.dataset.left;
      right.value = b.dataset.right;
      show();
    });
  }
  section.querySelector(".viewer").addEventListener("pointermove", (event) => {
    if (event.buttons !== 1) return;
    const box = event.currentTarget.getBoundingClientRect();
    slider.value = String(Math.round(100 * (event.clientX - box.left) / box.width));
    show();
  });
  show();
}
"""
