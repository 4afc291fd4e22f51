"""The runners of the ONNX file, one interface (base.Runner), on the floor both halves stand on: the
runtime serves users with them, export and import verification check files with them, the benchmark
times them. TensorRT's and the torch graph's runners stay in the runtime (they need the exporter's
engine cache and graph, through exporter.public)."""
