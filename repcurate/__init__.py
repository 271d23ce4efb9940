"""repcurate: curate, check and confirm representative datasets for post-training quantization with MCT.

Public API: :func:`build`, :func:`check`, :func:`confirm`, :func:`doctor`, :func:`analyze`, :func:`report_html`, :func:`load`,
:class:`RepresentativeSet`. Heavy dependencies (torch, faiss, TensorFlow, matplotlib, Jinja2) are
imported only when a function needs them.
"""
from __future__ import annotations

from repcurate.commands.analyze import analyze
from repcurate.commands.build import BuildResult, build
from repcurate.commands.check import check
from repcurate.commands.confirm import confirm
from repcurate.commands.doctor import doctor
from repcurate.data.geometry import letterbox, resize
from repcurate.report.html import report_html
from repcurate.repset import RepresentativeSet, load
from repcurate.version import __version__

__all__ = ["BuildResult", "RepresentativeSet", "__version__", "analyze", "build", "check", "confirm", "doctor", "letterbox", "load",
           "report_html", "resize"]
