"""The comparison sheet: a row per input, a column per model, labels, and magnified crops.

Each row is drawn as soon as its input has been through every model and only the drawn
row (display size, 8-bit RGB) is kept, so a contact sheet of many inputs holds its rows,
not the full-resolution outputs. `sheet_bytes_estimate` gives the sheet's memory before
any model runs, so an oversized sheet is refused up front.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from srgan.comparison.regions import Region
from srgan.comparison.results import ComparedImage

# Distinct outline colours for the crop regions (colour-blind safe: Okabe-Ito).
REGION_COLOURS = ((230, 159, 0), (86, 180, 233), (0, 158, 115), (213, 94, 0), (204, 121, 167))
BACKGROUND = (24, 24, 24)
TEXT = (235, 235, 235)
MUTED = (170, 170, 170)
GAP = 8
FONT_SIZE = 14
LINE = FONT_SIZE + 6


@dataclass(frozen=True)
class SheetLayout:
    """`cell`: the longest side of a full image on the sheet; crops are magnified by a
    whole factor (nearest neighbour, pixels stay visible) to at most `cell` wide."""

    columns: tuple[str, ...]
    cell: int = 256
    crops: int = 2
    title: str = ""

    @property
    def width(self) -> int:
        return GAP + len(self.columns) * (self.cell + GAP)

    def row_height(self, crop_heights: Sequence[int] | None = None) -> int:
        """A row's height; its crops `crop_heights` high (default: the most they take)."""
        heights = [self.cell] * self.crops if crop_heights is None else crop_heights
        return LINE + self.cell + 2 * LINE + sum(h + LINE + GAP for h in heights) + GAP


def _magnify(region: Region, cell: int) -> int:
    return max(1, cell // max(region.w, region.h))


def sheet_bytes_estimate(layout: SheetLayout, rows: int) -> int:
    """RGB bytes of a sheet of `rows` rows (the rows kept plus the composed sheet)."""
    return 2 * 3 * layout.width * (LINE + 4 + rows * layout.row_height())


def _font(size: int = FONT_SIZE) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError, ValueError):  # Pillow built without FreeType
        return ImageFont.load_default()


def to_display(pixels: np.ndarray) -> PILImage.Image:
    """Any decoded pixels (8/16-bit, gray or colour, alpha) as an 8-bit RGB PIL image."""
    if pixels.dtype == np.uint16:
        pixels = ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    colour = pixels[..., :3] if pixels.shape[2] >= 3 else np.repeat(pixels[..., :1], 3, axis=2)
    return PILImage.fromarray(np.ascontiguousarray(colour), "RGB")


def _display_factor(height: int, width: int, cell: int) -> float:
    longest = max(height, width)
    if longest > cell:
        return cell / longest
    return float(max(1, cell // longest))  # small images: whole-number enlargement


def _fit(image: PILImage.Image, factor: float, nearest: bool) -> PILImage.Image:
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    if size == image.size:
        return image
    use_nearest = nearest or factor >= 1
    return image.resize(
        size, PILImage.Resampling.NEAREST if use_nearest else PILImage.Resampling.LANCZOS
    )


def column_images(item: ComparedImage) -> list[np.ndarray]:
    """The full-resolution pixels of each column: input (enlarged later), models, HR."""
    columns = [item.lr.pixels, *(o.pixels for o in item.outputs)]
    if item.hr is not None:
        columns.append(item.hr.pixels)
    return columns


def input_crop(pixels: np.ndarray, region: Region, scale: float) -> PILImage.Image:
    """The input under an output region, enlarged by nearest neighbour to the region."""
    x0, y0 = int(region.x // scale), int(region.y // scale)
    x1 = max(x0 + 1, int(np.ceil((region.x + region.w) / scale)))
    y1 = max(y0 + 1, int(np.ceil((region.y + region.h) / scale)))
    block = to_display(pixels[y0:y1, x0:x1])
    size = (max(1, round(block.width * scale)), max(1, round(block.height * scale)))
    block = block.resize(size, PILImage.Resampling.NEAREST)
    left, top = round(region.x - x0 * scale), round(region.y - y0 * scale)
    return block.crop((left, top, left + region.w, top + region.h))


def _crop(pixels: np.ndarray, region: Region, scale: float, is_input: bool) -> PILImage.Image:
    """The region of a column; for the input column, the LR pixels under the region."""
    if is_input:
        return input_crop(pixels, region, scale)
    return to_display(pixels[region.y : region.y + region.h, region.x : region.x + region.w])


def cell_captions(labels: Sequence[str], item: ComparedImage) -> list[tuple[str, str]]:
    """(name, detail) under each column: the scores with ground truth."""
    scale = item.outputs[0].height / item.lr.height
    captions = [("input", f"{item.lr.width}x{item.lr.height}, nearest x{scale:g}")]
    for index, label in enumerate(labels):
        detail = ""
        if item.scores is not None:
            s = item.scores[index]
            detail = f"{s.psnr:.2f} dB  SSIM {s.ssim:.4f}"
        captions.append((label, detail))
    if item.hr is not None:
        captions.append(("ground truth", f"{item.hr.width}x{item.hr.height}"))
    return captions


def draw_row(layout: SheetLayout, labels: Sequence[str], item: ComparedImage) -> PILImage.Image:
    """One input's row: its name, the full images with the crop regions outlined, the
    captions, then one line of magnified crops per region."""
    font, small = _font(), _font(FONT_SIZE - 2)
    columns = column_images(item)
    out_h, out_w = item.outputs[0].height, item.outputs[0].width
    scale = out_h / item.lr.height
    factor = _display_factor(out_h, out_w, layout.cell)
    crop_heights = [min(r.h * _magnify(r, layout.cell), layout.cell) for r in item.regions]
    row = PILImage.new("RGB", (layout.width, layout.row_height(crop_heights)), BACKGROUND)
    draw = ImageDraw.Draw(row)
    draw.text((GAP, 2), item.name, fill=TEXT, font=font)
    top = LINE
    for index, (pixels, (name, detail)) in enumerate(
        zip(columns, cell_captions(labels, item), strict=True)
    ):
        left = GAP + index * (layout.cell + GAP)
        shown = to_display(pixels)
        if index == 0:
            shown = _fit(shown, factor * scale, nearest=True)
        else:
            shown = _fit(shown, factor, nearest=False)
        row.paste(shown, (left, top))
        for number, region in enumerate(item.regions):
            colour = REGION_COLOURS[number % len(REGION_COLOURS)]
            box = [
                left + region.x * factor,
                top + region.y * factor,
                left + (region.x + region.w) * factor - 1,
                top + (region.y + region.h) * factor - 1,
            ]
            draw.rectangle(box, outline=colour, width=2)
        caption_top = top + layout.cell + 2
        draw.text((left, caption_top), name, fill=TEXT, font=font)
        draw.text((left, caption_top + LINE), detail, fill=MUTED, font=small)
    crop_top = top + layout.cell + 2 * LINE + GAP
    for number, (region, crop_height) in enumerate(zip(item.regions, crop_heights, strict=True)):
        colour = REGION_COLOURS[number % len(REGION_COLOURS)]
        magnify = _magnify(region, layout.cell)
        draw.text(
            (GAP, crop_top),
            f"crop {number + 1}: x={region.x} y={region.y} {region.w}x{region.h}, x{magnify}",
            fill=colour,
            font=small,
        )
        for index, pixels in enumerate(columns):
            left = GAP + index * (layout.cell + GAP)
            piece = _crop(pixels, region, scale, is_input=index == 0)
            piece = piece.resize(
                (piece.width * magnify, piece.height * magnify), PILImage.Resampling.NEAREST
            )
            if piece.width > layout.cell or piece.height > layout.cell:
                piece = piece.crop(
                    (0, 0, min(piece.width, layout.cell), min(piece.height, layout.cell))
                )
            row.paste(piece, (left, crop_top + LINE))
            draw.rectangle(
                [left, crop_top + LINE, left + piece.width - 1, crop_top + LINE + piece.height - 1],
                outline=colour,
                width=1,
            )
        crop_top += crop_height + LINE + GAP
    return row


def compose(layout: SheetLayout, rows: Sequence[PILImage.Image]) -> PILImage.Image:
    """The header (title, column names) above the rows."""
    font = _font()
    header = LINE + 4 if layout.title else 0
    height = header + sum(r.height for r in rows)
    sheet = PILImage.new("RGB", (layout.width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    y = 2
    if layout.title:
        draw.text((GAP, y), layout.title, fill=TEXT, font=font)
    top = header
    for row in rows:
        sheet.paste(row, (0, top))
        top += row.height
    return sheet
