"""From image files to named outputs: finding and checking a model, decoding and batching by
resolution, and writing results atomically so that a killed run resumes."""
