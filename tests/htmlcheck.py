"""A check on the HTML that pages and reports send: no entity escaped twice."""

from __future__ import annotations

import re

# an entity escaped twice reads as "&amp;minus;" in the source and "&minus;" on the page
TWICE = re.compile(r"&amp;(#\d+|#x[0-9a-f]+|[a-z][a-z0-9]*);", re.IGNORECASE)


def escaped_twice(page: str) -> list[str]:
    return TWICE.findall(page)
