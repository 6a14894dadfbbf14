"""The limits a policy must stay within, checked at load with a location (issue 12).

Each one is far above what a real policy needs and far below what would exhaust memory,
the stack or the matcher. docs/policy.md ("Limits") lists them for operators; keep the two
in step.
"""

from __future__ import annotations

import math

MAX_FILE_BYTES = 1 << 20  # characters per policy file (the shipped policy's largest: ~20 KB)
MAX_FILES = 64  # files a policy may include, the root file counted
MAX_YAML_DEPTH = 32  # nested YAML mappings/sequences (the shipped policy uses 5)
MAX_INCLUDE_CHARS = 255  # characters of one include path
MAX_EXPRESSION_CHARS = 10_000  # characters of one when/then/let/why text
MAX_EXPRESSION_DEPTH = 48  # nesting of one expression: operators, parentheses, not, calls
MAX_NUMBER_CHARS = 32  # characters of one number literal, as written
MAX_NUMBER_ABS = 1e21  # magnitude of any number literal, param or state value (2.1e18 msat is all bitcoin)
MAX_STRING_CHARS = 1_000  # characters of one DSL string literal
MAX_FORMAT_WIDTH = 64  # width and precision in a why placeholder's format spec ({x:10.2f})
MAX_WHY_CHARS = 2_000  # characters of a rendered why (longer is cut, with an ellipsis)


def number_problem(value) -> str | None:
    """Why `value` (an int or float) is not an acceptable policy number, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if abs(value) > MAX_NUMBER_ABS:
        return f"numbers are limited to ±{MAX_NUMBER_ABS:.0e} in magnitude"
    return None
