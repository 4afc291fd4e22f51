"""Runs exported InterActive models on images: ONNX Runtime, TensorRT or PyTorch behind one runner
interface. Installed as `interactive_trt.runtime`. Reads the exporter's manifest and never imports
torch unless the torch backend is asked for."""
