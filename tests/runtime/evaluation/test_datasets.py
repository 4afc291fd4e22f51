"""Dataset readers: labels right, or a clear error, or a listed skip; never a silent wrong label."""

import numpy as np
import pytest

from interactive_trt.runtime.evaluation.datasets import DatasetError, flat_folder, image_folder, read_synsets

SYNSETS = ["n00000001", "n00000002", "n00000003", "n00000004"]


def touch_image(path):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)


def test_image_folder_maps_folders_through_the_synset_list(tmp_path):
    touch_image(tmp_path / "n00000003" / "a.png")
    touch_image(tmp_path / "n00000001" / "b.png")
    (tmp_path / "n00000001" / "notes.txt").write_text("x")
    (tmp_path / "n00000004").mkdir()
    (tmp_path / "stray.jpg").write_bytes(b"")
    data = image_folder(tmp_path, SYNSETS, classes=4)
    assert sorted((i.item.key, i.label) for i in data.images) == [("n00000001/b.png", 0), ("n00000003/a.png", 2)]
    reasons = {s.path.split("/")[-1]: s.reason for s in data.skips}
    assert reasons == {"stray.jpg": "not inside a class folder", "notes.txt": "not an image file name",
                       "n00000004": "empty class folder (no images)"}


def test_image_folder_refuses_unknown_classes_and_count_mismatch(tmp_path):
    touch_image(tmp_path / "n00000009" / "a.png")
    with pytest.raises(DatasetError, match="not in the synset list: n00000009"):
        image_folder(tmp_path, SYNSETS)
    with pytest.raises(DatasetError, match="1 class folders but the model has 4 classes; pass --synsets"):
        image_folder(tmp_path, None, classes=4)


def test_image_folder_without_synsets_uses_sorted_folder_order(tmp_path):
    for name in ("zebra", "ant", "moth"):
        touch_image(tmp_path / name / "x.png")
    data = image_folder(tmp_path)
    assert data.classes == ["ant", "moth", "zebra"]
    assert {i.item.key: i.label for i in data.images} == {"ant/x.png": 0, "moth/x.png": 1, "zebra/x.png": 2}


def flat(tmp_path, count=3):
    folder = tmp_path / "val"
    for index in range(1, count + 1):
        touch_image(folder / f"ILSVRC2012_val_{index:08d}.JPEG")
    return folder


def test_flat_folder_label_per_line_and_named_lines(tmp_path):
    folder = flat(tmp_path)
    gt = tmp_path / "labels.txt"
    gt.write_text("3\n0\nn00000002\n")
    data = flat_folder(folder, gt, SYNSETS)
    assert [i.label for i in data.images] == [3, 0, 1]
    named = tmp_path / "named.txt"
    named.write_text("ILSVRC2012_val_00000002.JPEG 2\nILSVRC2012_val_00000001 n00000004\n")
    data = flat_folder(folder, named, SYNSETS)
    assert {i.item.key: i.label for i in data.images} == {"ILSVRC2012_val_00000002.JPEG": 2,
                                                          "ILSVRC2012_val_00000001.JPEG": 3}
    assert [s.reason for s in data.skips] == ["no label in named.txt"]


@pytest.mark.parametrize("text, message", [
    ("1\n2\n", "2 labels but .* holds 3 images"),
    ("1\n2\n7\n", "label 7 of ILSVRC2012_val_00000003.JPEG is outside 0..3"),
    ("1\n2\nn99999999\n", "class n99999999 of ILSVRC2012_val_00000003.JPEG is not in the synset list"),
    ("1\n2\ncat\n", "'cat' for ILSVRC2012_val_00000003.JPEG is neither a synset id nor a class index"),
    ("a 1\nb\n", "expected '<label>' or '<file> <label>'"),
    ("missing.JPEG 1\n", "1 listed images are not in"),
])
def test_flat_folder_bad_ground_truth_is_one_clear_error(tmp_path, text, message):
    gt = tmp_path / "gt.txt"
    gt.write_text(text)
    with pytest.raises(DatasetError, match=message):
        flat_folder(flat(tmp_path), gt, SYNSETS)


def test_devkit_ids_are_refused_without_meta_and_mapped_with_it(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    folder = flat(tmp_path)
    gt = tmp_path / "ILSVRC2012_validation_ground_truth.txt"
    gt.write_text("1\n4\n2\n")
    with pytest.raises(DatasetError, match="devkit's 1-based ILSVRC2012_IDs"):
        flat_folder(folder, gt, SYNSETS)
    # the devkit orders synsets its own way: ID 1 is the 3rd synset of the class order here
    table = np.array([(1, "n00000003"), (2, "n00000001"), (3, "n00000004"), (4, "n00000002")],
                     dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O")])
    scipy_io.savemat(tmp_path / "meta.mat", {"synsets": table})
    data = flat_folder(folder, gt, SYNSETS, devkit_meta=tmp_path / "meta.mat")
    assert [i.label for i in data.images] == [2, 1, 0]


def test_synset_words_file(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish\n")
    assert read_synsets(words) == ["n01440764", "n01443537"]
    words.write_text("n01440764 a\nn01440764 b\n")
    with pytest.raises(DatasetError, match="names a class twice"):
        read_synsets(words)
