"""Parse functions for the worker tests, run inside parse workers (`ParsePool(target=...)`).

Each misbehaves in one way chosen by the upload's file name, so one pool can be shown a hostile upload and then
a normal one; any other name is parsed by the real loader.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any

from core.models import ApiSpec, SpecFormat
from core.parsing.loader import load_spec

PLANTED_SECRET = "sk_live_planted_in_an_exception"


def parse(filename: str, data: bytes, **limits: Any) -> ApiSpec:
    """Misbehave as the file name says (`spin…`, `hog…`, `explode…`, `smuggle…`, `slow…`, `chatty…`).

    Any other name is parsed for real.
    """
    if filename.startswith("spin"):
        while True:  # a parser stuck in a loop
            pass
    if filename.startswith("hog"):
        hoard = []
        while True:  # a parser that keeps allocating
            hoard.append(bytearray(32 * 1024 * 1024))
    if filename.startswith("explode"):
        raise KeyError(f"unexpected key {PLANTED_SECRET}")
    if filename.startswith("smuggle"):  # an answer holding a class the bot does not expect
        return ApiSpec(SpecFormat.OPENAPI3, title=Fraction(1, 3))  # type: ignore[arg-type]
    if filename.startswith("slow"):
        time.sleep(0.4)
    if filename.startswith("chatty"):
        print("debug output a parser should never have written")  # must not corrupt the answer
    return load_spec(filename.split(":", 1)[-1], data, **limits)
