"""JSON error bodies shared by every view: ``{"error": code, "message": text}``."""
from __future__ import annotations

from typing import Any


def error(web: Any, status: int, code: str, message: str) -> Any:
    return web.json({"error": code, "message": message}, status=status)
