"""Class names: an ILSVRC synset-words file ('n01440764 tench, Tinca tinca') or one name per line.

Without a file, a 1000-class head gets ImageNet's names in class-index order as every vision library
ships them (`imagenet_classes.txt` beside this file: torchvision's list, BSD-3-Clause).
"""

from __future__ import annotations

from pathlib import Path

from interactive_trt.common.errors import InterActiveError


IMAGENET_CLASSES = Path(__file__).with_name("imagenet_classes.txt")


def read_labels(path: Path | None, classes: int) -> list[str]:
    if path is None:
        if classes == 1000:
            return IMAGENET_CLASSES.read_text(encoding="utf-8").splitlines()
        return [f"class {i}" for i in range(classes)]
    try:
        lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InterActiveError(f"{path}: cannot read labels ({exc})") from None
    if len(lines) != classes:
        raise InterActiveError(f"{path}: {len(lines)} labels, the model has {classes} classes")
    names = []
    for line in lines:
        head, _, rest = line.partition(" ")
        names.append(rest.split(",")[0].strip() if head.startswith("n") and head[1:].isdigit() and rest else line)
    return names

