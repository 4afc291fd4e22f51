"""interactive-trt: InterActive features, weight maps and re-weighted ImageNet scores (Xie et al.,
CVPR 2016) from CNNs, exported as one ONNX graph holding the forward and the InterActive backward
pass, and run on ONNX Runtime, OpenVINO, TensorRT or PyTorch.

The pipeline, by subpackage: `exporter.networks` (layer tables and weights) -> `exporter.interactive`
(the explicit graph and its autograd reference) -> `exporter.onnx` (request, export, verification,
manifest) -> `exporter.tensorrt` (engines) -> `runtime` (backends, inference, features, evaluation,
pictures). `contracts` is what the exporter writes and the runtime reads; `common` is what both use;
`forms` is the graph as the runtimes load it, and `runners` runs it, for both halves alike.
"""

import os

__version__ = "0.2.0"

if not os.path.isdir(os.path.join(os.path.dirname(__file__), "exporter")):
    # A source checkout: exporter/ and runtime/ sit beside this folder (the repository keeps the
    # pipeline's stages at its top level), where an installed copy holds them inside. Found either way,
    # also when the checkout's folder shadows an installed copy on sys.path (python -m from the root).
    __path__.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from interactive_trt.api import (Exported, ImageResult, Model, evaluate_imagenet, evaluate_svm, export,
                                 extract_features, load)

__all__ = ["Exported", "ImageResult", "Model", "__version__", "evaluate_imagenet", "evaluate_svm", "export",
           "extract_features", "load"]
