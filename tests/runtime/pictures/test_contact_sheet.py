"""Figure 3 pictures: the contact sheet's layout, and the real SqueezeNet's heat-maps of the sample
photos, saved under test-output/ for a person to look at."""

import shutil

import numpy as np
import pytest
from PIL import Image

from interactive_trt.exporter.onnx.export import export_model

from interactive_trt.exporter.onnx.request import ExportRequest
from runtime_helpers import REPO, run_cli


def test_sheet_has_a_row_per_configuration_and_a_column_per_layer(small_model, photos, tmp_path):
    nxt = tmp_path / "next"
    export_model(ExportRequest(weights="random", width_divisor=8, config="next", out=nxt, verify=False),
                 log=lambda m: None)
    photo = tmp_path / "chelsea.png"
    Image.fromarray(photos["chelsea"]).save(photo)
    out = tmp_path / "sheet.png"
    result = run_cli("interactive_trt.runtime.cli.sheet", photo, "--engine", small_model, "--engine", nxt,
                     "--layers", "pool1,conv4_3,fc6", "--out", out, "--tile-height", "100")
    assert result.returncode == 0, result.stderr
    sheet = np.asarray(Image.open(out))
    tile_width = round(451 * 100 / 300)
    assert sheet.shape == (2 * (100 + 18) + 3 * 6, 4 * tile_width + 5 * 6, 3)
    tiles = [sheet[6 + 18 + r * 124: 6 + 18 + r * 124 + 100, 6 + c * (tile_width + 6) + 1: 6 + c * (tile_width + 6) + tile_width - 1]
             for r in range(2) for c in range(4)]
    assert all(t.std() > 5 for t in tiles)  # every tile holds a picture
    assert np.abs(tiles[1].astype(int) - tiles[5].astype(int)).mean() > 1  # 'last' and 'next' differ
    bad = run_cli("interactive_trt.runtime.cli.sheet", photo, "--engine", small_model, "--layers", "fc7", "--out", out)
    assert bad.returncode == 1 and "no gamma map for fc7" in bad.stderr


@pytest.mark.slow
def test_squeezenet_heatmaps_of_the_sample_photos(shared_data, tmp_path):
    out = REPO / "test-output" / "squeezenet-heatmaps"
    shutil.rmtree(out, ignore_errors=True)
    weights = shared_data / "squeezenet1.1" / "weights"
    models = {}
    for config in ("last", "next"):
        models[config] = tmp_path / config
        export = run_cli("interactive_trt.exporter.cli", "squeezenet1.1", "--weights", weights, "--config", config,
                         "--head", "both", "--out", models[config], "--no-verify")
        assert export.returncode == 0, export.stderr
    samples = shared_data / "imagenet-samples"
    photos = [samples / name for name in ("n02391049_zebra.JPEG", "n02105855_Shetland_sheepdog.JPEG", "n01530575_brambling.JPEG")
              if (samples / name).exists()]
    assert photos, "sample photos missing"
    result = run_cli("interactive_trt.runtime.cli.infer", *photos, "--engine", models["last"], "--out", out, "--heatmaps",
                     "--heatmap-layers", "pool2,fire5,imagenet", "--labels", shared_data / "imagenet_synset_words.txt")
    assert result.returncode == 0, result.stderr
    for photo in photos:
        for layer in ("pool2", "fire5", "imagenet"):
            heat = np.asarray(Image.open(out / f"{photo.stem}.{layer}.png"))
            assert heat.shape[:2] == np.asarray(Image.open(photo)).shape[:2] and heat.std() > 10
        sheet = run_cli("interactive_trt.runtime.cli.sheet", photo, "--engine", models["last"], "--engine", models["next"],
                        "--layers", "pool1,pool2,fire3,fire5,fire7", "--out", out / f"{photo.stem}.sheet.png")
        assert sheet.returncode == 0, sheet.stderr
    print(f"heat-maps and contact sheets in {out}")
