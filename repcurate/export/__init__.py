"""Export formats: a set as the files a toolchain's own tool reads (one registry of exporters, ``registry.py``).
The ``repcurate export`` command itself is :func:`repcurate.commands.export.export_set`."""
