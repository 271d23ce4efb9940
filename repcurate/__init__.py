"""repcurate: curate, check and confirm representative datasets for post-training quantization with MCT.

Public API: :func:`build`, :func:`check`, :func:`confirm`, :func:`doctor`, :func:`report_html`, :func:`load`,
:class:`RepresentativeSet`. Heavy dependencies (torch, faiss, TensorFlow, matplotlib, Jinja2) are
imported only when a function needs them.
"""
from __future__ import annotations

from repcurate.version import __version__

from repcurate.checking import check  # noqa: E402
from repcurate.confirming import confirm  # noqa: E402
from repcurate.curate import BuildResult, build  # noqa: E402
from repcurate.doctor import doctor  # noqa: E402
from repcurate.report.html import report_html  # noqa: E402
from repcurate.repset import RepresentativeSet, load  # noqa: E402

__all__ = ["build", "check", "confirm", "doctor", "report_html", "load", "RepresentativeSet", "BuildResult", "__version__"]
