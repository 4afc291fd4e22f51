"""Turns the user's PATH arguments (files, folders, globs) into an ordered list of image files."""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from interactive_trt.common.imaging import IMAGE_SUFFIXES


@dataclass(frozen=True)
class ImageInput:
    path: Path
    key: str  # a unique, filesystem-safe name for the outputs of this image
    rgb: np.ndarray | None = field(default=None, compare=False, repr=False)  # already decoded (Python API)


@dataclass(frozen=True)
class Failure:
    path: str
    reason: str


def _folder_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir())


def expand_inputs(arguments) -> tuple[list[ImageInput], list[Failure]]:
    """Folders are searched recursively for image suffixes; a file named explicitly is always tried."""
    found: list[tuple[Path, str]] = []
    failures: list[Failure] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            images = _folder_images(path)
            if not images:
                failures.append(Failure(str(argument), "no images in this folder (searched recursively for "
                                                       f"{', '.join(sorted(IMAGE_SUFFIXES))})"))
            found += [(p, p.relative_to(path).with_suffix("").as_posix()) for p in images]
        elif path.exists() or path.is_symlink():
            found.append((path, path.stem))
        elif glob.has_magic(str(argument)):
            matches = sorted(Path(m) for m in glob.glob(str(argument), recursive=True))
            files = [m for m in matches if m.is_file()]
            if not files:
                failures.append(Failure(str(argument), "no file matches this pattern"))
            found += [(m, m.stem) for m in files]
        else:
            failures.append(Failure(str(argument), "no such file or folder"))
    inputs, used, seen_paths = [], set(), set()
    for path, key in found:
        resolved = str(path.resolve()) if path.exists() else str(path)
        if resolved in seen_paths:
            continue
        seen_paths.add(resolved)
        candidate, count = key, 1
        while candidate in used:
            count += 1
            candidate = f"{key}-{count}"
        used.add(candidate)
        inputs.append(ImageInput(path=path, key=candidate))
    return inputs, failures
