"""Real inputs for the report tests (no mocks): a digits set built with the trained digits CNN, a real
``repcurate check`` of it with a planted pipeline defect, the JSON of a real ``repcurate confirm`` run
(``data/confirm_digits.json``, see ``make_confirm_fixture.py``) and a hand-written doctor JSON in the
generic format the report also accepts (``repcurate doctor``'s own JSON is rendered in
``tests/e2e/test_doctor.py``)."""
from __future__ import annotations

import base64
import io
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from PIL import Image

from tests.unit.checks.checks_testdata import DigitsProject

DATA = Path(__file__).with_name("data")
CONFIRM_JSON = DATA / "confirm_digits.json"
SET_SIZE = 100

EVAL_PIPELINES = '''
import numpy as np
from PIL import Image


def forgets_normalisation(image):
    return (np.asarray(image.convert("L").resize((8, 8), Image.BILINEAR), dtype=np.float32) / 255.0)[None]
'''

DOCTOR = {
    "gain_unit": "top-1 points",
    "findings": [
        {"title": "bias correction off", "gain": 0.4, "message": "bias correction costs accuracy at 2-bit weights"},
        {"id": "set_size", "gain": 2.75, "description": "a 300-image set beats the 32-image set", "size": 300},
        {"title": "no gain measured", "message": "mixed precision not tried"},
        {"name": "balance", "gain": 1.5, "message": "uniform quotas beat proportional ones"},
    ],
    "recommended_config": {"size": 300, "balance": "uniform", "bias_correction": True},
}


class ReportProject(DigitsProject):
    """A digits project with every input a report can show, written under ``work``."""

    def __init__(self, work: Path) -> None:
        import repcurate

        super().__init__(work)
        (self.train / "3" / "broken.png").write_bytes(b"not a png")  # skipped: not_an_image
        (self.train / "4" / "empty.png").write_bytes(b"")  # skipped: empty_file
        (self.train / "z_empty").mkdir()  # an empty class folder
        self.repset = work / "repset"
        self.build_set(self.repset, size=SET_SIZE)
        self.pipelines = work / "eval_pipelines.py"
        self.pipelines.write_text(EVAL_PIPELINES)
        self.eval_preprocess = f"{self.pipelines}:forgets_normalisation"
        result = repcurate.check(self.repset, self.eval, model=self.model, eval_preprocess=self.eval_preprocess,
                                 cache_dir=self.cache, config={})
        self.check_json = work / "check.json"
        self.check_json.write_text(json.dumps(result.to_dict(), indent=2))
        self.doctor_json = work / "doctor.json"
        self.doctor_json.write_text(json.dumps(DOCTOR))

    def manifest(self) -> dict[str, Any]:
        return json.loads((self.repset / "manifest.json").read_text(encoding="utf-8"))

    def full_report(self, out: Path, **kwargs: Any) -> str:
        import repcurate

        kwargs.setdefault("trust_set", True)  # re-run the eval pipeline the check JSON names (the test's own file)
        return repcurate.report_html(self.repset, out, check=self.check_json, confirm=CONFIRM_JSON,
                                     doctor=self.doctor_json, **kwargs)


class PageParser(HTMLParser):
    """Every start tag's attributes, element ids, and the ``src`` / ``href`` values of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.ids: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if attributes.get("id"):
            self.ids.append(str(attributes["id"]))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def images(self) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == "img"]

    def by_class(self, tag: str, css_class: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and css_class in (a.get("class") or "").split()]


def parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    parser.close()
    return parser


DATA_URI = re.compile(r"^data:(image/(?:png|jpeg|svg\+xml));base64,([A-Za-z0-9+/=]+)$")


def decode_data_uri(uri: str) -> tuple[str, bytes]:
    """(mime, payload) of a base64 image data URI; AssertionError for anything else."""
    match = DATA_URI.match(uri)
    assert match, uri[:80]
    return match.group(1), base64.b64decode(match.group(2), validate=True)


def check_image(uri: str) -> tuple[int, int] | None:
    """Decode an inline image fully: PNG/JPEG with Pillow (returns its size), SVG as XML (None)."""
    mime, payload = decode_data_uri(uri)
    if mime == "image/svg+xml":
        root = ET.fromstring(payload)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        for element in root.iter():
            for name, value in element.attrib.items():
                if name.endswith("href"):
                    assert value.startswith("#"), (name, value)  # only internal references
        return None
    with Image.open(io.BytesIO(payload)) as image:
        assert image.format == {"image/png": "PNG", "image/jpeg": "JPEG"}[mime]
        image.load()
        return image.size
