"""Writes the two networks of issue 23's speed rows as ONNX files: EfficientNet-B0 and ConvNeXt-T at their
published sizes (the layouts of tests/support/families.py, seeded random weights and BatchNorm statistics:
the arithmetic is the same as with trained ones), exported by torch.onnx at opset 17 with a dynamic input.

    python benchmarks/part3_models.py --out /tmp/part3
    python benchmarks/benchmark.py --model /tmp/part3/convnext_t.onnx --device cpu --batch 1 \
        --backends autograd-plain,onnxruntime,openvino-fp32
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests" / "support"))
    import torch

    import families

    args.out.mkdir(parents=True, exist_ok=True)
    for name, make in families.FULL_SIZE.items():
        path = args.out / f"{name}.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(make(), (torch.zeros(1, 3, 224, 224),), str(path), dynamo=False, input_names=["input"],
                              output_names=["logits"], opset_version=17,
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
