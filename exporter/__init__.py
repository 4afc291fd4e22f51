"""The exporter: network descriptions and weights -> the InterActive graph and its autograd reference ->
ONNX export, verification and manifest -> TensorRT engines. Installed as `interactive_trt.exporter`.

It never imports the runtime; the runtime reads what it writes (the ONNX graph, the manifest, the
engine files) through `interactive_trt.contracts`.
"""
