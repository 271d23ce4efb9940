"""Embedding images with the model to be quantized (or the bundled default), with a disk cache."""
