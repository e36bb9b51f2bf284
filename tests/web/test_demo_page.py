"""The newcomer's path: ``herald serve --demo``, open ``/demo``, press the button, the bell lights up."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import free_port, wait_for_ok
from tests.web.conftest import require_playwright, wait_until

expect = require_playwright()


@pytest.mark.slow
def test_a_newcomer_sees_the_bell_light_up(tmp_path: Path, browser_page: Any) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}  # the defaults, as a newcomer has
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "herald.cli", "serve", "--demo", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_ok(base + "/healthz", proc, log)
        assert f"Open {base}/demo to see the inbox widget light up." in log.read_text()
        bp = browser_page(base + "/demo")
        expect(bp.part("badge")).to_have_text("1")  # the notification the demo seeded
        wait_until(lambda: bp.page.evaluate("document.querySelector('herald-inbox').connection") == "live")
        bp.shot("demo")
        sent = time.monotonic()
        bp.page.click("#send")
        expect(bp.part("badge")).to_have_text("2", timeout=1000)
        assert time.monotonic() - sent < 1.0
        expect(bp.page.locator("#status")).to_have_text("已发送 / Sent")
        bp.part("bell").click()
        expect(bp.part("item")).to_have_count(2)
        expect(bp.part("item").first.locator(".title")).to_have_text("充值成功")
        bp.shot("demo-open")
        bp.page.select_option("#locale", "en")
        expect(bp.part("mark-all")).to_have_text("Mark all as read")
        bp.part("mark-all").click()
        expect(bp.part("badge")).to_have_count(0)
        bp.shot("demo-en-read")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
