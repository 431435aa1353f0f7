"""No copied blocks in riaktq_cli/ (issues 13 and 19).

A block of six code lines that stands in two modules is one rule in two
places, free to drift apart unnoticed: the test fails on any such pair, so
the next change gives the block one home instead. Module and function sizes
are no longer capped: a module is sized by what belongs together, and which
package may import which is tests/test_layering.py's to say.
"""

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "riaktq_cli"
BLOCK = 6  # lines that make a repeated block
GENERATED = ("riak/pb/riak_pb2.py",)   # protoc's output, not ours to shape
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


def modules():
    return {path.relative_to(PACKAGE).as_posix(): path.read_text(encoding="utf-8")
            for path in sorted(PACKAGE.rglob("*.py"))
            if path.relative_to(PACKAGE).as_posix() not in GENERATED}


def repeated_blocks(sources):
    """["a.py:LINE ~ b.py:LINE"] for each block of BLOCK counted lines that
    stands in two of `sources` ({name: source})."""
    seen = {}      # a block's text -> the first (module, line) it stands in
    repeated = []
    for name in sorted(sources):
        kept = code_lines(sources[name])
        mine = set()
        for i in range(len(kept) - BLOCK + 1):
            block = tuple(text for _, text in kept[i:i + BLOCK])
            if block in mine:
                continue
            mine.add(block)
            first = seen.setdefault(block, (name, kept[i][0]))
            if first[0] != name:
                repeated.append(f"{first[0]}:{first[1]} ~ {name}:{kept[i][0]}")
    return repeated


def test_no_block_is_repeated_between_modules():
    repeated = repeated_blocks(modules())
    assert not repeated, (f"{BLOCK} or more lines stand in two modules; give them one place: "
                          + "; ".join(repeated[:20]))


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
    assert repeated_blocks({"a.py": original, "b.py": pasted}) == ["a.py:2 ~ b.py:4"]
    assert repeated_blocks({"a.py": original, "c.py": "def third(name):\n" + "".join(f"    {line}\n" for line in block[1:])}) == []
    words = '"""' + "\n".join(block) + '\n"""\nimport os\nimport sys\n'
    assert repeated_blocks({"a.py": words * 2, "b.py": words}) == []
