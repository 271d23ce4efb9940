"""Checks of a representative set against the evaluation pipeline (``repcurate check``)."""
