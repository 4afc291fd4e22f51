"""Built-in networks as tables over one layer vocabulary (`interactive_trt.contracts.spec`), and the
readers that turn checkpoint files into weights checked against those tables."""
