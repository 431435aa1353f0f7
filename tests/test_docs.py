"""The README and the reference under docs/ stay whole: every flag of every
command and every config key is documented, every link between the pages
lands, and the set-up the README gives is the one CI runs."""

import importlib
import re

import click

from tests.conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def sections(page, level="###"):
    """{heading: text} of a page's sections at one heading level."""
    parts = re.split(rf"^{level} (.+)$", page.read_text(), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def anchor(heading):
    """The anchor GitHub gives a heading: lower case, punctuation dropped,
    spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_command_and_flag_is_in_the_commands_page():
    from riaktq_cli.cli.main import COMMANDS
    documented = sections(ROOT / "docs" / "commands.md")
    for name, (module, attr) in COMMANDS.items():
        text = documented.get(f"`riaktq {name}`")
        assert text is not None, f"docs/commands.md has no section for riaktq {name}"
        command = getattr(importlib.import_module(module), attr)
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "help":
                for flag in param.opts:
                    assert f"`{flag}" in text, f"riaktq {name} {flag} is missing from docs/commands.md"


def test_every_config_key_is_in_the_operations_page():
    from riaktq_cli.config.settings import DECLARED
    text = (ROOT / "docs" / "operations.md").read_text()
    for setting in DECLARED:
        assert f"`[{setting.section}] {setting.key}`" in text, f"[{setting.section}] {setting.key}"


def test_every_link_between_the_pages_lands():
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"\w+://", target):
                continue
            path, _, fragment = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.name}: {target}"
            if fragment and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(), flags=re.M)
                assert fragment in {anchor(h) for h in headings}, f"{page.name}: {target}"


def test_the_readme_sets_up_with_make_and_ci_runs_the_same():
    readme = (ROOT / "README.md").read_text()
    [setup] = re.findall(r"^## Set up\n(.*?)^## ", readme, flags=re.S | re.M)
    commands = re.findall(r"^(make \w+)", "".join(re.findall(r"```sh\n(.*?)```", setup, re.S)), re.M)
    assert commands == ["make demo", "make test"]
    assert "PYTHON=" in setup
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), re.M)


def test_every_flag_in_a_shell_example_exists():
    """`riaktq ...` lines in the pages' shell blocks name only flags their
    command has (a renamed or dropped flag breaks the example)."""
    from riaktq_cli.cli.main import COMMANDS, cli
    global_flags = {flag for param in cli.params for flag in param.opts}
    flags_of = {}
    for name, (module, attr) in COMMANDS.items():
        command = getattr(importlib.import_module(module), attr)
        flags_of[name] = {flag for param in command.params for flag in param.opts} | {"--help"}
    checked = 0
    for page in PAGES:
        for block in re.findall(r"```sh\n(.*?)```", page.read_text(), re.S):
            for line in block.splitlines():
                for example in re.findall(r"(?:^|&&\s*|\$\(|^\$ )(riaktq [^#|&)]*)", line.split("  #")[0]):
                    words = [w.strip("[]").split("=")[0] for w in example.split()[1:]]
                    words = [w for w in words if w not in global_flags]
                    name = next((w for w in words if w in COMMANDS), None)
                    assert name, f"{page.name}: {example}"
                    unknown = [w for w in words if w.startswith("--") and w.rstrip(".") not in flags_of[name]]
                    assert not unknown, f"{page.name}: {example}: {unknown}"
                    checked += 1
    assert checked > 50  # the examples were found at all


def test_every_config_example_loads(tmp_path):
    """The pages' TOML blocks are config files riaktq accepts as written."""
    import tomllib

    from riaktq_cli.config import loading as config
    blocks = [(page.name, block) for page in PAGES
              for block in re.findall(r"```toml\n(.*?)```", page.read_text(), re.S)]
    assert len(blocks) >= 4
    for name, block in blocks:
        config.from_dict(tomllib.loads(block), path=str(tmp_path / "riaktq.toml"))
