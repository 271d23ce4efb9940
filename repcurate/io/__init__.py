"""Writing and reading repcurate artifacts (atomically, byte-deterministically)."""
