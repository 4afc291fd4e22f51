"""Labelled image sets as the two experiments of the paper find them on disk.

ImageNet validation comes either as an ImageFolder (one folder per synset) or as the flat folder of
ILSVRC2012_val_*.JPEG plus a ground-truth file; the classification datasets of Table 1 come as
ImageFolders. Every problem with the data is either a DatasetError (the numbers would be wrong) or a
listed Skip (the numbers stay right but cover fewer images): never a silent guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from interactive_trt.common.errors import InterActiveError
from interactive_trt.common.imaging import IMAGE_SUFFIXES

from interactive_trt.runtime.inference.inputs import ImageInput
from interactive_trt.common.extras import install

SYNSET = re.compile(r"^n\d{8}$")


class DatasetError(InterActiveError):
    """The dataset cannot give correct labels: the command stops before computing anything."""


@dataclass(frozen=True)
class Labelled:
    item: ImageInput
    label: int


@dataclass(frozen=True)
class Skip:
    path: str
    reason: str


@dataclass
class Dataset:
    root: Path
    classes: list[str]  # class index -> name (synset id or folder name)
    images: list[Labelled]
    skips: list[Skip] = field(default_factory=list)

    def counts(self) -> list[int]:
        counts = [0] * len(self.classes)
        for image in self.images:
            counts[image.label] += 1
        return counts


def read_synsets(path: Path) -> list[str]:
    """Synset ids in class-index order: the first word of each line of a synset-words file."""
    try:
        lines = [line.split()[0] for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the synset list ({exc})") from None
    if not lines:
        raise DatasetError(f"{path}: the synset list is empty")
    if len(set(lines)) != len(lines):
        raise DatasetError(f"{path}: the synset list names a class twice")
    return lines


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _key(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def image_folder(root: Path, synsets: list[str] | None = None, classes: int | None = None) -> Dataset:
    """One sub-folder per class. Labels follow `synsets` if given, else sorted folder names
    (torchvision's ImageFolder order); `classes` is the model's class count when the labels must be
    its indices (the ImageNet head)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DatasetError(f"{root}: no class folders (expected ImageFolder layout: {root}/<class>/<image>)")
    skips = [Skip(str(p), "not inside a class folder") for p in sorted(root.iterdir())
             if p.is_file() and not p.name.startswith(".")]
    if synsets is not None:
        index = {name: i for i, name in enumerate(synsets)}
        unknown = [p.name for p in folders if p.name not in index]
        if unknown:
            shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            raise DatasetError(f"{root}: class folders not in the synset list: {shown}")
        names = list(synsets)
        label_of = {p.name: index[p.name] for p in folders}
    else:
        if classes is not None and len(folders) != classes:
            raise DatasetError(f"{root}: {len(folders)} class folders but the model has {classes} classes; "
                               f"pass --synsets to map folder names to class indices")
        names = [p.name for p in folders]
        label_of = {name: i for i, name in enumerate(names)}
    if classes is not None and len(names) != classes:
        raise DatasetError(f"the synset list has {len(names)} classes but the model has {classes}")
    images = []
    for folder in folders:
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        found = [p for p in files if _is_image(p)]
        skips += [Skip(str(p), "not an image file name") for p in files if not _is_image(p) and not p.name.startswith(".")]
        if not found:
            skips.append(Skip(str(folder), "empty class folder (no images)"))
        images += [Labelled(ImageInput(p, _key(root, p)), label_of[folder.name]) for p in found]
    return Dataset(root, names, images, skips)


def read_devkit_meta(path: Path) -> dict[int, str]:
    """ILSVRC2012_ID (1-based, the devkit's own order) -> synset id, from the devkit's meta.mat."""
    try:
        from scipy.io import loadmat
    except ImportError as exc:
        raise DatasetError(f"reading the devkit's meta.mat needs scipy: {install('mat')}") from exc
    try:
        meta = loadmat(str(path), squeeze_me=True)["synsets"]
        ids, wnids = meta["ILSVRC2012_ID"], meta["WNID"]
    except Exception as exc:  # noqa: BLE001 - scipy raises many kinds on a bad file
        raise DatasetError(f"{path}: not a devkit meta.mat with a 'synsets' table ({type(exc).__name__})") from None
    return {int(i): str(w) for i, w in zip(ids, wnids)}


def flat_folder(root: Path, ground_truth: Path, synsets: list[str], devkit_meta: Path | None = None) -> Dataset:
    """A flat folder of images and a ground-truth file.

    Lines are either `<file name> <label>` or, as in the official devkit file, `<label>` alone, one
    per image in sorted file-name order. A label is a synset id, or a 0-based class index in the
    order of `synsets`; the devkit's 1-based ILSVRC2012_IDs need its meta.mat (`devkit_meta`).
    """
    root, ground_truth = Path(root), Path(ground_truth)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    try:
        lines = [line.split() for line in ground_truth.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{ground_truth}: cannot read the ground truth ({exc})") from None
    files = sorted(p for p in root.iterdir() if p.is_file() and _is_image(p))
    skips = [Skip(str(p), "not an image file name") for p in sorted(root.iterdir())
             if p.is_file() and not _is_image(p) and not p.name.startswith(".")]
    if not lines:
        raise DatasetError(f"{ground_truth}: empty ground-truth file")
    widths = {len(parts) for parts in lines}
    if widths == {1}:
        if len(lines) != len(files):
            raise DatasetError(f"{ground_truth}: {len(lines)} labels but {root} holds {len(files)} images; "
                               f"a label-per-line file must match the sorted images one to one")
        pairs = [(path, parts[0]) for path, parts in zip(files, lines)]
    elif widths == {2}:
        by_name = {}
        for path in files:
            by_name[path.name] = path
            by_name.setdefault(path.stem, path)
        pairs, missing = [], []
        for name, label in lines:
            path = by_name.get(name)
            if path is None:
                missing.append(name)
            else:
                pairs.append((path, label))
        if missing:
            raise DatasetError(f"{ground_truth}: {len(missing)} listed images are not in {root} (first: {missing[0]})")
        listed = {path for path, _ in pairs}
        skips += [Skip(str(p), f"no label in {ground_truth.name}") for p in files if p not in listed]
    else:
        raise DatasetError(f"{ground_truth}: expected '<label>' or '<file> <label>' on every line")
    index = {name: i for i, name in enumerate(synsets)}
    devkit = read_devkit_meta(devkit_meta) if devkit_meta else None
    numeric = [label for _, label in pairs if label.lstrip("-").isdigit()]
    if devkit is None and numeric and len(numeric) == len(pairs):
        values = [int(v) for v in numeric]
        if min(values) >= 1 and max(values) == len(synsets) and "ground_truth" in ground_truth.name.lower():
            raise DatasetError(f"{ground_truth}: looks like the devkit's 1-based ILSVRC2012_IDs, which are not "
                               f"class indices; pass --devkit-meta <devkit>/data/meta.mat")
    images = []
    for path, label in pairs:
        if devkit is not None:
            if not label.isdigit() or int(label) not in devkit:
                raise DatasetError(f"{ground_truth}: {label!r} for {path.name} is not an ILSVRC2012_ID in {devkit_meta}")
            label = devkit[int(label)]
        if SYNSET.match(label):
            if label not in index:
                raise DatasetError(f"{ground_truth}: class {label} of {path.name} is not in the synset list")
            value = index[label]
        elif label.lstrip("-").isdigit():
            value = int(label)
            if not 0 <= value < len(synsets):
                raise DatasetError(f"{ground_truth}: label {value} of {path.name} is outside 0..{len(synsets) - 1}")
        else:
            raise DatasetError(f"{ground_truth}: {label!r} for {path.name} is neither a synset id nor a class index")
        images.append(Labelled(ImageInput(path, path.name), value))
    return Dataset(root, list(synsets), images, skips)
