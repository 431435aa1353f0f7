"""No copied blocks in riaktq_cli/ (issue 13). Modules are sized by what
belongs together (issue 19 lifted the line caps).

The two stores, and the two ways into `open` (the fast lane in entry.py and
the click command with the API's checks), are where copied code would let
two versions of one rule drift apart unnoticed: a block of six lines that
stands in both files of such a pair fails the test, so the next change
moves it to one place instead.
"""

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "riaktq_cli"
BLOCK = 6  # lines that make a repeated block
# file -> the files it must share no block with (paths below riaktq_cli/)
APART = {
    "store/sqlite.py": sorted(p.relative_to(PACKAGE).as_posix()
                              for p in (PACKAGE / "store").glob("riak*.py")),
    "entry.py": ["commands/tasks.py", "api_input.py"],
}
_PUNCTUATION = re.compile(r"[\s()\[\]{},:;]*")


def code_lines(source):
    """[(line number, line)] of the code that counts: white space folded;
    blank lines, comments, lone punctuation, imports and docstrings (any
    statement that is only a string) left out."""
    skip = set()
    for node in ast.walk(ast.parse(source)):
        text_only = (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                     and isinstance(node.value.value, str))
        if text_only or isinstance(node, (ast.Import, ast.ImportFrom)):
            skip.update(range(node.lineno, node.end_lineno + 1))
    kept = []
    for number, line in enumerate(source.splitlines(), 1):
        text = " ".join(line.split())
        if number in skip or text.startswith("#") or _PUNCTUATION.fullmatch(text):
            continue
        kept.append((number, text))
    return kept


def shared_block(source_a, source_b, size=BLOCK):
    """(line in a, line in b) where `size` counted lines stand in both, or None."""
    a, b = code_lines(source_a), code_lines(source_b)
    starts = {}
    for i in range(len(a) - size + 1):
        starts.setdefault(tuple(t for _, t in a[i:i + size]), a[i][0])
    for j in range(len(b) - size + 1):
        found = starts.get(tuple(t for _, t in b[j:j + size]))
        if found is not None:
            return found, b[j][0]
    return None


def test_no_block_is_repeated_between_the_stores_or_the_open_paths():
    repeated = []
    for name, others in APART.items():
        source = (PACKAGE / name).read_text(encoding="utf-8")
        for other in others:
            where = shared_block(source, (PACKAGE / other).read_text(encoding="utf-8"))
            if where:
                repeated.append(f"{name}:{where[0]} ~ {other}:{where[1]}")
    assert not repeated, (f"{BLOCK} or more lines stand in both files; give them one place: "
                          + "; ".join(repeated))


def test_the_repeat_check_sees_a_pasted_block():
    """The check above must not pass for want of looking: a block pasted
    with other indentation and spacing, between blank lines, a comment and
    an import, is still found; docstrings and imports alone are not code."""
    block = [f"value_{n} = compute({n}, key=name)" for n in range(BLOCK)]
    original = "def first(name):\n" + "".join(f"    {line}\n" for line in block)
    pasted = ("class Other:\n    def second(self, name):\n"
              '        """Some words."""\n'
              + "".join(f"        {line.replace(', ', ',   ')}\n" for line in block[:3])
              + "\n        # a comment\n        import os\n\n"
              + "".join(f"        {line}\n" for line in block[3:]))
    assert shared_block(original, pasted) == (2, 4)
    assert shared_block(original, "def third(name):\n" + "".join(f"    {line}\n" for line in block[1:])) is None
    words = '"""' + "\n".join(block) + '\n"""\nimport os\nimport sys\n'
    assert shared_block(words * 2, words) is None
