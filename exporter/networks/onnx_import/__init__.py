"""Bring your own network: an ONNX file (torch.onnx, tf2onnx, a model zoo) mapped exactly onto the layer
vocabulary of INTERACTIVE.md ("Any CNN"), or refused in one line naming the node.

`import_onnx` canonicalises the file (`canonical.py`), maps every node with the converter its op and opset
resolve to (`converters/`), and returns the ModelSpec and Weights the exporter serves like a built-in's;
`verify_against_source` holds our rebuilt forward pass to the original file run by ONNX Runtime.
"""

from interactive_trt.exporter.networks.onnx_import.network import ImportedNetwork, ImportOptions, import_onnx
from interactive_trt.exporter.networks.onnx_import.verify import verify_against_source

__all__ = ["ImportOptions", "ImportedNetwork", "import_onnx", "verify_against_source"]
