"""``/static/herald-inbox.js``: served from the package with the right headers, small, and written
so that no server data can become HTML and no request can leave for a third party."""

from __future__ import annotations

import fnmatch
import gzip
import re
import tomllib
from importlib.resources import files
from pathlib import Path

from tests.conftest import Harness

ROOT = Path(__file__).resolve().parents[2]
WIDGET = files("herald.web").joinpath("static", "herald-inbox.js")
MAX_GZIPPED = 20 * 1024


async def test_served_with_type_caching_and_cross_origin_headers(harness: Harness) -> None:
    r = await harness.client.get("/static/herald-inbox.js", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200
    assert r.content == WIDGET.read_bytes()
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=3600"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["access-control-allow-origin"] == "*"  # a module script from another origin needs it
    assert r.headers["vary"] == "Accept-Encoding"
    assert "content-encoding" not in r.headers
    etag = r.headers["etag"]
    again = await harness.client.get(
        "/static/herald-inbox.js", headers={"If-None-Match": etag, "Accept-Encoding": "identity"}
    )
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    other = await harness.client.get(
        "/static/herald-inbox.js", headers={"If-None-Match": '"stale"', "Accept-Encoding": "identity"}
    )
    assert other.status_code == 200


async def test_gzipped_when_asked_and_at_most_20_kib(harness: Harness) -> None:
    r = await harness.client.get("/static/herald-inbox.js", headers={"Accept-Encoding": "gzip, deflate"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert r.content == WIDGET.read_bytes()  # httpx decoded it
    size = int(r.headers["content-length"])
    assert size == len(gzip.compress(WIDGET.read_bytes(), 9, mtime=0))
    assert size <= MAX_GZIPPED, f"the widget is {size} bytes gzipped; the budget is {MAX_GZIPPED}"
    assert r.headers["etag"].endswith('-gz"')
    refused = await harness.client.get("/static/herald-inbox.js", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


async def test_head_and_not_in_the_api_document(harness: Harness) -> None:
    r = await harness.client.head("/static/herald-inbox.js", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["content-length"]) == len(WIDGET.read_bytes())
    assert (await harness.client.get("/static/nothing.js")).status_code == 404
    paths = (await harness.client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith(("/static", "/demo"))]


def test_the_source_never_turns_data_into_html_or_code() -> None:
    source = WIDGET.read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "srcdoc"):
        assert sink not in source, f"{sink} in herald-inbox.js: insert text (textContent, text nodes) instead"
    # setTimeout/setInterval with a function only, never a string
    assert not re.search(r"set(Timeout|Interval)\(\s*['\"`]", source)
    # attributes set from data are never event handlers (h() turns on* keys into listeners)
    assert not re.search(r"setAttribute\(\s*['\"]on", source)


def test_the_source_names_no_other_host() -> None:
    """Every request goes to api-url (the browser tests check the requests themselves)."""
    urls = set(re.findall(r"https?://[^\s'\"`)]+", WIDGET.read_text(encoding="utf-8")))
    assert urls == {"http://www.w3.org/2000/svg"}  # the SVG namespace, not fetched


def test_shipped_in_the_wheel() -> None:
    """pyproject's package-data takes the widget and the demo page into the wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["herald"]
    for name in ("web/static/herald-inbox.js", "web/templates/demo.html"):
        assert (ROOT / "src/herald" / name).is_file()
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), (name, patterns)
