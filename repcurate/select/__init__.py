"""Choosing the representative set: class quotas, then coverage sampling inside each class."""
