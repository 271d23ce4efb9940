"""Rendering results: text, JSON, JUnit XML, Markdown."""
