"""The docs run: every shell example of README.md and docs/quickstart.md, against a live server.

The test reads the fenced ```sh blocks of the two pages in order, substitutes what the docs tell the
reader to substitute (the base URL and ports, ``KEY=hk_…`` → the key ``herald serve`` printed,
``NTF=ntf_…`` → the id of the answer above), and runs them in one bash session in the server's
directory, like a reader with two terminals. ``curl`` is a wrapper that records each request's HTTP
status and body: every request must answer 2xx, and a ```json block right after a ```sh block is the
documented answer of that block's last request, whose shape (the keys, recursively) must match.

A block that cannot run here says so in the docs, just before its fence:

- ``<!-- docs-test: skip (reason) -->``: not run (installing packages, a PostgreSQL server, ...);
- ``<!-- docs-test: background (reason) -->``: a server the reader leaves running in another
  terminal; the test starts it first and stops it at the end.

Nothing is skipped without one of these markers, and the test asserts how many blocks ran.
The Chinese pages must show the same commands as the English ones they translate.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[1]
RUN_IN_ORDER = [ROOT / "README.md", ROOT / "docs" / "quickstart.md"]
TRANSLATIONS = {ROOT / "README.zh-CN.md": ROOT / "README.md", ROOT / "docs/zh-CN/quickstart.md": RUN_IN_ORDER[1]}
# Fewer shell blocks than this ran: a block was lost (a marker too many, a broken fence).
MIN_BLOCKS_RUN = 17
MIN_REQUESTS = 30

FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w.+-]*)\s*$")
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<mode>skip|background)\s*\((?P<reason>[^)]+)\)\s*-->\s*$")
PLACEHOLDER = re.compile(r"^(?P<lead>\s*)(?P<var>[A-Z][A-Z0-9_]*)=(?P<prefix>[a-z]+_)…", re.MULTILINE)
# the docs' loopback addresses: host:port, ("host", port) in Python, "host": …, "port": … in JSON
DOC_HOSTPORT = re.compile(r"127\.0\.0\.1(?P<sep>:|\",\s*|\",\s*\"port\":\s*)(?P<port>\d{4,5})\b")


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    mode: str | None  # None (run), "skip" or "background"
    reason: str | None
    answer: Any = None  # the ```json block right after it, parsed

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def parse_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    previous_closed_at = -10  # the line index where the last block ended
    while i < len(lines):
        opener = FENCE.match(lines[i])
        if not opener:
            i += 1
            continue
        indent, lang, start = len(opener["indent"]), opener["lang"], i
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":  # the closing fence
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1  # the closing fence
        above = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.match(above)
        block = Block(
            path, start + 1, lang, "\n".join(body) + "\n", marker and marker["mode"], marker and marker["reason"]
        )
        if lang == "json" and blocks and blocks[-1].lang == "sh" and previous_closed_at == start - 1:
            blocks[-1].answer = json.loads(block.text)
        blocks.append(block)
        previous_closed_at = i - 1
    return blocks


def shape_problems(documented: Any, actual: Any, where: str = "$") -> list[str]:
    """Where the actual answer's shape differs from the documented one: the same keys at every level."""
    if isinstance(documented, dict):
        if not isinstance(actual, dict):
            return [f"{where}: documented an object, got {json.dumps(actual, ensure_ascii=False)[:200]}"]
        problems = []
        if set(documented) != set(actual):
            problems.append(
                f"{where}: keys differ: only in the docs {sorted(set(documented) - set(actual))}, "
                f"only in the answer {sorted(set(actual) - set(documented))}"
            )
        for key in set(documented) & set(actual):
            problems += shape_problems(documented[key], actual[key], f"{where}.{key}")
        return problems
    if isinstance(documented, list) and documented and isinstance(documented[0], dict):
        if not isinstance(actual, list):
            return [f"{where}: documented a list, got {actual!r:.200}"]
        return [p for item in actual for p in shape_problems(documented[0], item, f"{where}[]")]
    return []


CURL_WRAPPER = """#!{python}
# Runs the real curl, prints what it prints, and records the request for the docs test.
import json, os, subprocess, sys, tempfile
args = sys.argv[1:]
with tempfile.TemporaryDirectory() as tmp:
    headers, body = os.path.join(tmp, "h"), os.path.join(tmp, "b")
    rc = subprocess.run([{curl!r}, *args, "-D", headers, "-o", body]).returncode
    raw = open(body, "rb").read() if os.path.exists(body) else b""
    head = open(headers, "rb").read().decode("latin-1") if os.path.exists(headers) else ""
sys.stdout.buffer.write(raw)
sys.stdout.flush()
status = [int(line.split()[1]) for line in head.splitlines() if line.startswith("HTTP/")]
text = raw.decode("utf-8", "replace")
if "-i" in args and "\\r\\n\\r\\n" in text:
    text = text.split("\\r\\n\\r\\n", 1)[1]
with open(os.environ["DOCS_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps({{"block": os.environ.get("DOCS_BLOCK"), "args": args, "rc": rc,
                          "status": status[-1] if status else None, "body": text}}) + "\\n")
sys.exit(rc)
"""

LAST_ID = """#!{python}
# docs_last PREFIX: the last id with this prefix the reader has seen (server output, then answers).
import json, os, re, sys
pattern = re.compile(re.escape(sys.argv[1]) + r"[A-Za-z0-9_-]+")
seen = pattern.findall(open(os.environ["DOCS_SERVER_STDERR"], encoding="utf-8").read())
for line in open(os.environ["DOCS_LOG"], encoding="utf-8"):
    seen += pattern.findall(json.loads(line)["body"])
if not seen:
    sys.exit("docs_last: no " + sys.argv[1] + " id seen yet")
print(seen[-1])
"""


def wait_port(port: int, what: str, proc: subprocess.Popen[bytes], output: Path, deadline: float = 20) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        assert proc.poll() is None, f"{what} exited early:\n{output.read_text(errors='replace')[-3000:]}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on {port}:\n{output.read_text(errors='replace')[-3000:]}")


def test_every_block_is_runnable_or_marked() -> None:
    """Every shell block of the run pages runs or carries a reason; markers are only on code blocks."""
    for path in RUN_IN_ORDER:
        blocks = parse_blocks(path)
        assert blocks, path
        for block in blocks:
            if block.mode is not None:
                assert block.reason and block.reason.strip(), block.where
                assert block.lang in ("sh", "python"), f"{block.where}: a marker on a ```{block.lang} block"
            if block.mode == "background":
                assert block.lang == "python" or block.text.count("\n") == 1, f"{block.where}: one command"
        markers = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if "docs-test:" in line)
        assert markers == sum(1 for b in blocks if b.mode), f"{path.name}: a docs-test marker not right above a block"


def test_translations_show_the_same_commands() -> None:
    """README.zh-CN.md and docs/zh-CN/quickstart.md run what the tested English pages run."""
    for translated, original in TRANSLATIONS.items():
        assert translated.exists(), translated

        def commands(path: Path) -> list[tuple[str | None, list[str]]]:
            """Each sh block's commands, comments (translated) left out."""
            return [
                (
                    b.mode,
                    [
                        line.split("  #")[0].rstrip()
                        for line in b.text.splitlines()
                        if line.strip() and not line.lstrip().startswith("#")
                    ],
                )
                for b in parse_blocks(path)
                if b.lang == "sh"
            ]

        mine, theirs = commands(translated), commands(original)
        assert len(mine) >= 5
        assert mine == theirs, f"{translated.relative_to(ROOT)} runs other commands than {original.relative_to(ROOT)}"


@pytest.mark.slow
def test_readme_and_quickstart_examples_run(tmp_path: Path) -> None:
    curl, bash = shutil.which("curl"), shutil.which("bash")
    assert curl and bash, "the docs test needs curl and bash on PATH"
    assert shutil.which("jq"), "the quick start uses jq (section 5): install it"
    blocks = [b for path in RUN_IN_ORDER for b in parse_blocks(path)]

    ports = {"8000": str(free_port())}
    for block in blocks:  # every other loopback port of the docs (the receivers) gets a free one
        for match in DOC_HOSTPORT.finditer(block.text):
            ports.setdefault(match["port"], str(free_port()))

    def localise(text: str) -> str:
        text = DOC_HOSTPORT.sub(lambda m: f"127.0.0.1{m['sep']}{ports[m['port']]}", text)
        return PLACEHOLDER.sub(lambda m: f"{m['lead']}{m['var']}=$(docs_last {m['prefix']})", text)

    work = tmp_path / "checkout"
    tools = tmp_path / "tools"
    (work / ".venv" / "bin").mkdir(parents=True)
    tools.mkdir()
    # `. .venv/bin/activate` in the docs: this test's interpreter stands in for the reader's venv
    (work / ".venv" / "bin" / "activate").write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')
    for name, source in (("curl", CURL_WRAPPER), ("docs_last", LAST_ID)):
        (tools / name).write_text(source.format(python=sys.executable, curl=curl))
        (tools / name).chmod(0o755)
    log, server_out, server_err = tmp_path / "requests.jsonl", tmp_path / "serve.out", tmp_path / "serve.err"
    log.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env.update(
        PATH=f"{tools}:{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}",
        DOCS_LOG=str(log),
        DOCS_SERVER_STDERR=str(server_err),
        PYTHONUNBUFFERED="1",
    )
    base = f"http://127.0.0.1:{ports['8000']}"

    # `herald serve --demo` as the README says, on SQLite in its own directory
    started: list[subprocess.Popen[bytes]] = []
    with server_out.open("wb") as out, server_err.open("wb") as err:
        server = subprocess.Popen(
            [sys.executable, "-m", "herald.cli", "serve", "--demo", "--port", ports["8000"]],
            cwd=work,
            env=env,
            stdout=out,
            stderr=err,
        )
    started.append(server)
    try:
        wait_port(int(ports["8000"]), "herald serve", server, server_err)
        stderr_text = server_err.read_text(encoding="utf-8")
        # README: the first admin key and the demo are printed on stderr
        assert "Created the first admin API key (shown once, keep it): hk_" in stderr_text, stderr_text
        assert "Demo seeded: type 'recharge.succeeded', users 'alice' and 'bob'." in stderr_text, stderr_text
        assert "hk_" not in server_out.read_text(encoding="utf-8")

        background = [b for b in blocks if b.mode == "background"]
        receivers: list[tuple[Block, Path]] = []
        for n, block in enumerate(background):
            output = tmp_path / f"background-{n}.out"
            if block.lang == "python":
                script = tmp_path / f"background-{n}.py"
                script.write_text(localise(block.text))
                command = [sys.executable, str(script)]
            else:
                command = [bash, "-c", "exec " + localise(block.text).strip()]
            with output.open("wb") as handle:
                proc = subprocess.Popen(command, cwd=work, env=env, stdout=handle, stderr=subprocess.STDOUT)
            started.append(proc)
            port = DOC_HOSTPORT.search(localise(block.text))
            assert port, f"{block.where}: a background block names the 127.0.0.1 port it listens on"
            wait_port(int(port["port"]), block.where, proc, output)
            receivers.append((block, output))

        script_lines = ["set -eo pipefail"]
        ran: list[Block] = []
        for n, block in enumerate(blocks):
            if block.lang != "sh" or block.mode is not None:
                continue
            ran.append(block)
            script_lines += [f"export DOCS_BLOCK={n}", f"echo '>>> {block.where}' >&2", localise(block.text)]
        started_at = time.monotonic()
        result = subprocess.run(
            [bash, "-c", "\n".join(script_lines)], cwd=work, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"a docs block failed:\n{result.stderr[-3000:]}\n{result.stdout[-3000:]}"
        assert len(ran) >= MIN_BLOCKS_RUN, f"only {len(ran)} shell blocks ran"
        assert time.monotonic() - started_at < 60

        requests = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        assert len(requests) >= MIN_REQUESTS, f"only {len(requests)} requests were made"
        failures = [r for r in requests if r["rc"] != 0 or r["status"] is None or not 200 <= r["status"] < 300]
        assert not failures, "requests of the docs that did not answer 2xx:\n" + "\n".join(
            f"{blocks[int(r['block'])].where}: {r['status']} {' '.join(r['args'])}\n  {r['body'][:400]}"
            for r in failures
        )
        every_block_asked = {int(r["block"]) for r in requests}
        for n, block in enumerate(blocks):
            if block not in ran or "curl" not in block.text:
                continue
            assert n in every_block_asked, f"{block.where}: no request recorded"
            if block.answer is None:
                continue
            last = [r for r in requests if int(r["block"]) == n][-1]
            problems = shape_problems(block.answer, json.loads(last["body"]))
            assert not problems, f"{block.where}: the answer is not the documented one:\n" + "\n".join(problems)
        assert sum(1 for b in ran if b.answer is not None) >= 5

        check_outcomes(base, log, receivers)

        # README (Processes): access log lines on stdout, Herald's own logs on stderr
        access = '"GET /healthz HTTP/1.1" 200'
        assert access in server_out.read_text(encoding="utf-8")
        assert access not in server_err.read_text(encoding="utf-8")
        assert " INFO herald" in server_err.read_text(encoding="utf-8")
    finally:
        for proc in reversed(started):
            proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def check_outcomes(base: str, log: Path, receivers: list[tuple[Block, Path]]) -> None:
    """What the quick start says happened did happen."""
    requests = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    key = next(
        a.split("Bearer ", 1)[1] for r in requests for a in r["args"] if a.startswith("Authorization: Bearer hk_")
    )
    admin = {"Authorization": f"Bearer {key}"}
    token = next(
        a.split("Bearer ", 1)[1] for r in requests for a in r["args"] if a.startswith("Authorization: Bearer eyJ")
    )
    alice = {"Authorization": f"Bearer {token}"}

    # section 6: both announcements are live in alice's feed (alice is vip), the banner in her banners
    feed = httpx.get(f"{base}/v1/me/inbox?category=announcement", headers=alice).json()["items"]
    assert sorted(i["title"] for i in feed) == ["VIP 双倍积分", "系统升级通知"], feed
    banners = httpx.get(f"{base}/v1/me/banners", headers=alice).json()["items"]
    assert [b["title"] for b in banners] == ["VIP 双倍积分"]

    # sections 7 and 8: the webhook reached the receiver, the email was sent to alice and skipped for bob
    triggered = [json.loads(r["body"])["id"] for r in requests if r["body"].startswith('{"id":"ntf_')]
    deadline = time.monotonic() + 20
    while True:
        webhook = httpx.get(f"{base}/v1/notifications/{triggered[-2]}", headers=admin).json()
        email = httpx.get(f"{base}/v1/notifications/{triggered[-1]}", headers=admin).json()
        hooks = [d for d in webhook["deliveries"] if d["channel"] == "webhook"]
        mails = {d["user_id"]: d for d in email["deliveries"] if d["channel"] == "email"}
        settled = all(d["status"] == "sent" for d in hooks) and mails.get("alice", {}).get("status") == "sent"
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [d["user_id"] for d in hooks] == ["carol", "dave"] and {d["status"] for d in hooks} == {"sent"}, hooks
    assert mails["alice"]["status"] == "sent", json.dumps(mails, indent=1)
    bob = mails["bob"]
    assert (bob["status"], bob["reason"], bob["reason_detail"]) == ("skipped", "no_address", "no email address"), mails
    assert email["delivery_counts"] == {"sent": 1, "skipped": 1, "delivered": 2}, email["delivery_counts"]
    outputs = {block.lang: path for block, path in receivers}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(outputs["python"].read_text().splitlines()) < 2:
        time.sleep(0.1)
    received = outputs["python"].read_text().splitlines()
    assert sum('"order.shipped"' in line for line in received) == 2, received
    assert "alice@example.com" in outputs["sh"].read_text(errors="replace")


LINK = re.compile(r"\]\((?P<target>[^)\s#]+)(?:#[^)\s]*)?\)")


def test_relative_links_resolve() -> None:
    """Every relative link of the READMEs and docs/ (English and zh-CN) points at a file that exists."""
    pages = [ROOT / "README.md", ROOT / "README.zh-CN.md", *sorted((ROOT / "docs").rglob("*.md"))]
    assert ROOT / "docs/zh-CN/api.md" in pages and ROOT / "docs/zh-CN/channels/sms_aliyun.md" in pages
    broken = []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
        for match in LINK.finditer(text):
            target = match["target"]
            if re.match(r"^[a-z]+:", target):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_chinese_docs_are_linked() -> None:
    """The zh-CN pages are reachable from the English entry points and link each other."""
    assert "README.zh-CN.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "zh-CN/README.md" in (ROOT / "docs/README.md").read_text(encoding="utf-8")
    index = (ROOT / "docs/zh-CN/README.md").read_text(encoding="utf-8")
    for page in ("quickstart.md", "api.md", *(f"channels/{c}.md" for c in CHINA_CHANNELS)):
        assert (ROOT / "docs/zh-CN" / page).exists(), page
        assert f"]({page})" in index, f"docs/zh-CN/README.md does not link {page}"
    for page in ("quickstart.md", "api.md"):
        text = (ROOT / "docs/zh-CN" / page).read_text(encoding="utf-8")
        assert "](README.md)" in text and f"](../{page})" in text, page


CHINA_CHANNELS = ("sms_aliyun", "sms_tencent", "wechat_oa", "wechat_mp", "dingtalk", "wecom", "feishu")
