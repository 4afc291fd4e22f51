"""Runs exported InterActive models on images: ONNX Runtime, TensorRT or PyTorch behind one runner
interface. Reads the exporter's manifest and never imports torch unless the torch backend is asked for."""
