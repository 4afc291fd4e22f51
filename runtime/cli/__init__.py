"""The runtime's commands (interactive-infer, -features, -eval, -sheet): options in, one library call,
output out."""

import typer

PRECISION = typer.Option("exported", "--precision", help="exported (compute as the model was exported) | "
                         "bf16 (--backend openvino: backward convolutions in bfloat16, where the CPU has it)")
