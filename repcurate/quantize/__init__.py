"""Handing models to MCT: output-preserving rewrites and (later) PTQ arms."""
