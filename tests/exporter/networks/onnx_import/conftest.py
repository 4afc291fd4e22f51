"""What the import's command tests share: square photos on disk (the Keras-style files take a square input)."""

import pytest
from PIL import Image


@pytest.fixture(scope="module")
def square_photos(photos, tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    paths = {}
    for name in ("chelsea", "astronaut", "coffee"):
        rgb = photos[name]
        side = min(rgb.shape[:2])
        paths[name] = folder / f"{name}.png"
        Image.fromarray(rgb[:side, :side]).save(paths[name])
    return paths
