"""Links shown to users: http(s) or relative, never a scheme that runs script, read as a browser reads it."""

from __future__ import annotations

import pytest

from herald.core.links import (
    link_problem,
    link_scheme,
    rendered_link_problems,
    safe_links,
    template_link_problems,
)

RUNS_SCRIPT = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "\x01\x1fjavascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "javascript\r:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
]
FINE = [
    "https://shop.example.com/orders/1",
    "HTTP://shop.example.com/",
    "/orders/1",
    "orders/1?x=javascript:1",
    "?tab=2",
    "#top",
    "//cdn.example.com/a.png",
    "",
]


@pytest.mark.parametrize("url", RUNS_SCRIPT)
def test_a_url_that_runs_script_or_leaves_the_web_is_refused(url: str) -> None:
    assert link_problem(url) is not None
    assert link_scheme(url) not in (None, "http", "https")


@pytest.mark.parametrize("url", FINE)
def test_http_and_relative_urls_are_links(url: str) -> None:
    assert link_problem(url) is None


def test_media_must_be_absolute() -> None:
    assert link_problem("/a.png", absolute=True) is not None
    assert link_problem("https://cdn.example.com/a.png", absolute=True) is None


def test_a_template_is_refused_when_its_literal_part_names_the_scheme() -> None:
    fields = {
        "action_url": "javascript:${code}",
        "actions": [
            {"label": "ok", "url": "https://example.com/${id}"},
            {"label": "bad", "url": "data:text/html,${html}"},
            {"label": "later", "url": "${url}"},  # known only when rendered
            {"label": "id only", "id": "confirm"},
        ],
    }
    assert [p for p, _ in template_link_problems(fields)] == ["action_url", "actions.1.url"]
    assert template_link_problems({"action_url": "${url}", "title": "javascript:x"}) == []
    assert [p for p, _ in template_link_problems({"action_url": "vbscript:x"})] == ["action_url"]
    assert [p for p, _ in template_link_problems({"action_url": 3})] == ["action_url"]


def test_rendered_links_are_checked_and_dropped() -> None:
    content = {
        "title": "t",
        "action_url": " javascript:alert(1)",
        "actions": [{"id": "a", "label": "A", "url": "data:,x"}, {"label": "B", "url": "/b"}],
    }
    assert [p for p, _ in rendered_link_problems(content)] == ["action_url", "actions.0.url"]
    assert safe_links(content) == {
        "title": "t",
        "action_url": None,
        "actions": [{"id": "a", "label": "A"}, {"label": "B", "url": "/b"}],
    }
    fine = {"action_url": "/x", "actions": [{"label": "B", "url": "https://e.com"}]}
    assert safe_links(fine) == fine and rendered_link_problems(fine) == []
    # still to be rendered per recipient: not a string yet, left for safe_links after rendering
    assert rendered_link_problems({"action_url": {"__recipient__": "${recipient.data.site}"}}) == []
