"""What the exporter and the runtime both use and neither owns: named errors, image decoding and
the resize rule, and the command-line helpers (one-line errors, exit codes)."""
