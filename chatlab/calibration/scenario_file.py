"""Write a calibrated scenario as an ordinary, commented scenario file (TOML).

Why text and not a TOML library: the comments are the point — every value says which fit it
came from, how good it is and which period it describes — and TOML writers drop comments.
The emitter knows only what a scenario holds (numbers, strings, lists, inline tables), and
the text is parsed back by :func:`sim.scenario.parse_scenario` before anyone sees it, so a
writer bug is an error here, never a broken file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any


def value(v: Any) -> str:
    """One TOML value (inline)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return "inf" if v > 0 else "nan"
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, Sequence):
        return "[" + ", ".join(value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


class ScenarioText:
    """Lines of a scenario file: ``comment``, ``key``, ``table``, ``array_table``."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def comment(self, text: str) -> None:
        for line in text.splitlines() or [""]:
            self.lines.append(f"# {line}".rstrip())

    def key(self, name: str, v: Any, note: str | None = None) -> None:
        if note:
            self.comment(note)
        self.lines.append(f"{name} = {value(v)}")

    def multiline(self, name: str, text: str) -> None:
        self.lines.append(f'{name} = """{text.replace(chr(92), chr(92) * 2).replace(chr(34) * 3, "")}"""')

    def table(self, name: str, note: str | None = None) -> None:
        self.lines.append("")
        if note:
            self.comment(note)
        self.lines.append(f"[{name}]")

    def array_table(self, name: str) -> None:
        self.lines.append("")
        self.lines.append(f"[[{name}]]")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"
