"""The contract between exporter and runtime: the model description, the output names, the manifest
and the engine-file format. The exporter writes them, the runtime trusts and checks them."""
