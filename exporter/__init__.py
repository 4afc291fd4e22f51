"""Builds the InterActive graph (paper: Xie et al., CVPR 2016) for a spec'd CNN, exports it to ONNX
with a manifest, verifies it against a torch.autograd reference, and builds TensorRT engines."""

__version__ = "0.1.0"
