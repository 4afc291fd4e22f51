"""The exported graph in the forms the runtimes' kernels run fast: the export's rewrite of backward 3x3
layers (rewrite.py), Winograd F(4x4, 3x3) and the product form for the CPU (winograd.py, cpu.py),
ONNX Runtime's CUDA forms (cuda.py) and OpenVINO's loader (openvino.py).

The same math, rewritten when a file is loaded; export verification and the runtime's backends both load
graphs this way, so it lives on the floor both halves stand on (with contracts and common), and imports
neither of them.
"""
