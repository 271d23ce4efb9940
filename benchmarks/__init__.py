"""Benchmark scripts (not part of the installed package); a package so they can share helpers,
e.g. ``from benchmarks.fashion_mnist import fashion_arrays, write_folders`` from the repository root."""
