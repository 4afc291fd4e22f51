"""How a message says which optional part to install.

interactive-trt is not on PyPI: it installs from a checkout, or from a wheel built in one, so a hint
that installs the extra by the distribution's name fails for a newcomer. A hint names the extra and the command that
works in a checkout; tests/common/test_extras.py holds every extra a message names to pyproject.toml.
"""

from __future__ import annotations


def install(extra: str, why: str = "") -> str:
    """`install the export extra (why): pip install '.[export]' in the interactive-trt checkout`."""
    reason = f" ({why})" if why else ""
    return f"install the {extra} extra{reason}: pip install '.[{extra}]' in the interactive-trt checkout"
