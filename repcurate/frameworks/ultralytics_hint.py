"""What to tell a user whose untraceable model is made of Ultralytics modules (no torch or Ultralytics import)."""
from __future__ import annotations

from typing import Any

ULTRALYTICS_ROUTE = ("pass the Ultralytics checkpoint itself, --model best.pt (or the DetectionModel / YOLO object), "
                     "and repcurate builds a traceable model from it")


def untraceable_hint(model: Any) -> str | None:
    """The Ultralytics route when an untraceable model is made of Ultralytics modules, else None."""
    modules = getattr(model, "modules", None)
    if not callable(modules):
        return None
    try:
        made_of = {type(m).__module__.split(".")[0] for m in modules()}
    except Exception:  # noqa: BLE001 - not a torch module after all
        return None
    return ULTRALYTICS_ROUTE if "ultralytics" in made_of else None
