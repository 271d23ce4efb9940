"""repcurate's command line: a thin layer over the library (installed as ``repcurate_cli``)."""
