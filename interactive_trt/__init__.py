"""interactive-trt: InterActive features, weight maps and re-weighted ImageNet scores (Xie et al.,
CVPR 2016) from CNNs, exported as one ONNX graph holding the forward and the InterActive backward
pass, and run on ONNX Runtime, TensorRT or PyTorch.

The pipeline, by subpackage: `exporter.networks` (layer tables and weights) -> `exporter.interactive`
(the explicit graph and its autograd reference) -> `exporter.onnx` (export, verification, manifest)
-> `exporter.tensorrt` (engines) -> `runtime` (backends, inference, features, evaluation, pictures).
`contracts` is what the exporter writes and the runtime reads; `common` is what both use.
"""

__version__ = "0.2.0"
