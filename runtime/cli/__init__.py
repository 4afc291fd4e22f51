"""The runtime's commands (interactive-infer, -features, -eval, -sheet): options in, one library call,
output out."""
