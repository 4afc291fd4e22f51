"""ONNX export of the explicit graph, its verification against the autograd reference (and ONNX
Runtime), and the manifest written beside it."""
