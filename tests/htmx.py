"""Reading htmx pages in tests: the page's one job poller."""

from __future__ import annotations

import html
import re

HX = {"HX-Request": "true"}


def poller_url(body: str) -> str | None:
    """Where the page's one poller asks for the status of its running jobs, if it has one."""
    found = re.search(r'<div id="job-poller"[^>]*hx-get="([^"]+)"', body)
    return html.unescape(found.group(1)) if found else None
