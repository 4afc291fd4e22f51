"""Figure 3 of the paper for one photo: gamma of several layers, for each exported configuration,
upsampled and drawn over the photo, in one picture with titled rows and columns."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from interactive_trt.runtime.pictures.heatmap import overlay

TITLE = 18  # pixels of caption above each tile


def _tile(rgb: np.ndarray, height: int) -> Image.Image:
    image = Image.fromarray(rgb)
    width = max(1, round(image.width * height / image.height))
    return image.resize((width, height), Image.Resampling.BILINEAR)


def contact_sheet(rgb: np.ndarray, rows: list[tuple[str, dict[str, np.ndarray]]], layers: list[str],
                  tile_height: int = 160, gap: int = 6) -> np.ndarray:
    """rows: (caption, {layer: gamma map}) per configuration; columns: the photo, then `layers`."""
    photo = _tile(rgb, tile_height)
    tile_width = photo.width
    columns = 1 + len(layers)
    width = columns * tile_width + (columns + 1) * gap
    height = len(rows) * (tile_height + TITLE) + (len(rows) + 1) * gap
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (caption, maps) in enumerate(rows):
        top = gap + r * (tile_height + TITLE + gap)
        tiles = [(caption, photo)] + [(layer, _tile(overlay(rgb, maps[layer]), tile_height)) for layer in layers]
        for c, (title, tile) in enumerate(tiles):
            left = gap + c * (tile_width + gap)
            draw.text((left + 2, top + 2), title, fill=(0, 0, 0))
            sheet.paste(tile, (left, top + TITLE))
    return np.asarray(sheet)
