"""The Python examples of the README and of docs/python-api.md, run as written
there: the README's first steps, the web service that opens tasks through the
API, and the handler package it relies on."""

import contextlib
import importlib
import importlib.util
import io
import json
import re

from tests.conftest import ROOT

API_PAGE = ROOT / "docs" / "python-api.md"


def python_blocks(page):
    """The ```python blocks of a page, as written there."""
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.S)


def example_files(page):
    """{name: source} of a page's Python blocks that begin `# NAME.py ...`
    (a block may hold several files, each from its own such line)."""
    files = {}
    for block in python_blocks(page):
        name = None
        for line in block.splitlines(keepends=True):
            header = re.match(r"# ([\w/]+\.py) --", line)
            if header:
                name = header.group(1)
                files[name] = ""
            elif name:
                files[name] += line
    return files


def call(app, path, body=b""):
    """One request to a WSGI app: (status code, the JSON it answered)."""
    answer = {}
    environ = {"PATH_INFO": path, "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    chunks = app(environ, lambda status, headers: answer.update(status=status))
    return answer["status"].split()[0], json.loads(b"".join(chunks))


def test_api_page_web_service_and_handler_package(procs, tmp_path, config_file, monkeypatch):
    from riaktq_cli.worker import handler_api
    files = example_files(API_PAGE)
    assert {"app.py", "mypkg/__init__.py", "mypkg/resize.py"} <= set(files)
    for name, source in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(source)
    procs.start("scheduler", name="scheduler")
    procs.start("worker", "--handler", "mypkg.resize", "--name", "resize-1", name="worker")  # cwd: tmp_path
    monkeypatch.setenv("RIAKTQ_CONFIG", str(config_file))
    spec = importlib.util.spec_from_file_location("readme_app", tmp_path / "app.py")
    web = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(web)
    try:
        web.WAIT = 60
        assert call(web.app, "/resize/holiday-1", b'{"width": 4000, "height": 3000}') == \
            ("200", {"width": 1024, "height": 768})
        assert call(web.app, "/resize/holiday-1", b"{}") == ("200", {"width": 1024, "height": 768})  # TaskExists
        assert call(web.app, "/resize/empty", b'{"width": 0, "height": 5}') == \
            ("422", {"error": "ValueError: bad size 0x5"})
        assert web.QUEUE.get("resize-empty").run == 3  # retry=2: three runs, then failed
        assert call(web.app, "/resize/bad name", b"{}")[0] == "400"
        web.QUEUE.open("resize-stuck", b"{}", tags=["nobody-offers-this"])
        web.WAIT = 0.2
        assert call(web.app, "/resize/stuck") == ("202", {"id": "resize-stuck", "status": "pending"})
    finally:
        web.QUEUE.close()
    spec = importlib.util.spec_from_file_location("readme_resize", tmp_path / "mypkg" / "resize.py")
    resize = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(resize)
    assert handler_api.check(resize) == [] and handler_api.check(importlib) != []


def test_readme_python_example(procs, config_file, monkeypatch):
    """The README's only Python block: open a task, wait for it, print it."""
    [block] = [b for b in python_blocks(ROOT / "README.md") if "Queue" in b]
    procs.start("scheduler", name="scheduler")
    procs.start("worker", "--handler", "echo", "--name", "echo-1", name="worker")
    monkeypatch.setenv("RIAKTQ_CONFIG", str(config_file))
    for _ in range(2):  # the second run meets TaskExists and waits for the same task
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, "README.md", "exec"), {})
        assert out.getvalue() == "done hello from Python\n"


def test_readme_handler_example(procs, tmp_path):
    """The README's handler file, run by a worker as the README says."""
    files = example_files(ROOT / "README.md")
    (tmp_path / "shout.py").write_text(files["shout.py"])
    procs.start("scheduler", name="scheduler")
    procs.start("worker", "--handler", "./shout.py", "--name", "shout-1", name="worker")  # cwd: tmp_path
    result = procs.run("open", "s-1", "--in", "hello", "--wait", "--timeout", "60s", timeout=90)
    assert (result.returncode, result.stdout) == (0, b"HELLO"), result.stderr  # a pipe gets the exact output


def test_api_page_tour_runs(procs, config_file, monkeypatch):
    """The API page's first block, a call of every kind, runs as written
    against a running scheduler and echo worker."""
    tour = python_blocks(API_PAGE)[0]
    assert "q.open_many(" in tour and "q.stats()" in tour
    procs.start("scheduler", name="scheduler")
    procs.start("worker", "--handler", "echo", "--name", "echo-1", name="worker")
    monkeypatch.setenv("RIAKTQ_CONFIG", str(config_file))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(tour, "docs/python-api.md", "exec"), {})
    assert "old-box-3" in out.getvalue()  # Refused: no such instance
