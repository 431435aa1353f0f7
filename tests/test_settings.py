"""Every setting declared once (riaktq_cli/config/settings.py), and resolved one way.

The walk over the declarations is what keeps the file, the flags and
`riaktq init`'s template from drifting apart: a new setting without a config
key, a range, a flag (or a reason for none) or a template line fails here.
"""

import re
import tomllib

import pytest
from click.testing import CliRunner

from riaktq_cli.config import loading as config, settings as S
from riaktq_cli.worker import supervisor
from riaktq_cli.cli.main import cli
from riaktq_cli.core.errors import ConfigError
from riaktq_cli.cli.options import SettingType

COMMANDS = {"scheduler": "scheduler_cmd", "worker": "worker_cmd", "observe": "observe_cmd"}


def command(name):
    return cli.get_command(None, name)


def template_sections():
    """section -> {key: line} for every `key = ...` line, commented or not."""
    sections, current = {}, None
    for line in config.template().splitlines():
        header = re.match(r"^\[(\w+)\]$", line)
        if header:
            current = sections.setdefault(header.group(1), {})
            continue
        entry = re.match(r"^#? ?(\w+) = ", line)
        if entry and current is not None:
            current.setdefault(entry.group(1), line)
    return sections


@pytest.mark.parametrize("setting", S.DECLARED, ids=lambda s: s.name)
def test_each_setting_is_declared_completely(setting):
    assert setting.help and setting.kind.range, "a help text and a range"
    assert bool(setting.flag) != bool(setting.no_flag), "a flag, or a reason not to have one"
    assert config.SCHEMA[setting.section][setting.key][1] == setting.default, "a config key"
    setting.parse(setting.default)  # the default is in range
    assert setting.bad, "an example the range refuses"
    for value in setting.bad:
        with pytest.raises(ConfigError, match=re.escape(f"[{setting.section}] {setting.key}")):
            config.from_dict({setting.section: {setting.key: value}})
    assert setting.key in template_sections().get(setting.section, {}), "a line in riaktq init's template"


@pytest.mark.parametrize("setting", [s for s in S.DECLARED if s.flag and s.commands != ("riaktq",)],
                         ids=lambda s: s.name)
def test_each_flag_is_on_its_command_and_refuses_what_the_file_refuses(setting, tmp_path):
    for name in setting.commands:
        option = next(p for p in command(name).params if p.name == setting.param)
        assert setting.flag in option.opts and isinstance(option.type, SettingType)
    for value in setting.bad:
        if isinstance(value, str):
            result = CliRunner().invoke(cli, ["--config", str(tmp_path / "none.toml"), setting.commands[0],
                                              setting.flag, value])
            assert result.exit_code == 2 and "Invalid value for" in result.output, result.output


def test_commands_take_no_setting_flag_that_is_not_declared():
    for name in COMMANDS:
        typed = {p.name for p in command(name).params if isinstance(p.type, SettingType)}
        assert typed == {s.param for s in S.for_command(name)}
    assert {o for p in command("worker").params for o in p.opts} >= {"--heartbeat", "--poll"}


def test_the_template_says_the_declared_defaults():
    parsed = tomllib.loads(config.template())
    for setting in S.DECLARED:
        if setting.key in parsed.get(setting.section, {}):
            assert setting.parse(parsed[setting.section][setting.key]) == setting.parse(setting.default), \
                setting.name


class FakeConfig:
    def __init__(self, **values):
        self.cfg = config.from_dict({})
        self.values = values  # "section.key" -> value, as if from the file

    def get(self, section, key):
        return self.values.get(f"{section}.{key}", self.cfg.get(section, key))

    def source(self, section, key):
        return "file" if f"{section}.{key}" in self.values else "default"


def test_flag_then_environment_then_file_then_default():
    heartbeat, fmt = S.declared("worker", "heartbeat"), S.declared("log", "format")
    cfg = FakeConfig(**{"worker.heartbeat": 1.0, "log.format": "text"})
    plain = S.Settings(cfg, environ={})
    assert (plain.get("worker", "heartbeat"), plain.sources[heartbeat]) == (1.0, "file")
    assert (plain.get("worker", "poll"), plain.sources[S.declared("worker", "poll")]) == (5.0, "default")
    env = S.Settings(cfg, environ={fmt.env: "json"})
    assert (env.get("log", "format"), env.sources[fmt]) == ("json", "env")
    flagged = S.Settings(cfg, {heartbeat: S.Given(0.25, "250ms"), fmt: S.Given("text", "text")},
                         environ={fmt.env: "json"})
    assert flagged.get("worker", "heartbeat") == 0.25 and flagged.get("log", "format") == "text"
    assert flagged.flag_argv() == ["--heartbeat", "250ms", "--log-format", "text"]


def test_a_zero_from_the_flag_is_refused_never_replaced_by_the_file(tmp_path):
    path = tmp_path / "riaktq.toml"
    path.write_text('[scheduler]\ninstance_timeout = "30s"\ninterval = "1s"\n')
    for flag in ("--instance-timeout", "--interval"):
        result = CliRunner().invoke(cli, ["--config", str(path), "scheduler", "--once", flag, "0s"])
        assert result.exit_code == 2 and "expected a duration above 0s" in result.output, result.output
    assert not (tmp_path / "riaktq.db").exists()


def test_heartbeat_must_be_shorter_than_the_instance_timeout(tmp_path):
    with pytest.raises(ConfigError, match=r"heartbeat 30s must be shorter than \[scheduler\] instance_timeout 30s"):
        config.from_dict({"worker": {"heartbeat": "30s"}, "scheduler": {"instance_timeout": "30s"}})
    cfg = FakeConfig(**{"worker.heartbeat": 2.0})
    with pytest.raises(ConfigError, match="--instance-timeout 2s"):
        S.Settings(cfg, {S.declared("scheduler", "instance_timeout"): S.Given(2.0, "2s")}, environ={})
    (tmp_path / "riaktq.toml").write_text("")
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "riaktq.toml"), "worker", "--name", "w",
                                      "--handler", "echo", "--heartbeat", "1m"])
    assert isinstance(result.exception, ConfigError) and result.exception.exit_code == 2
    assert "--heartbeat 60s must be shorter" in str(result.exception)
    assert not (tmp_path / "riaktq.db").exists()


def test_the_supervisor_passes_flags_as_written():
    poll = S.declared("worker", "poll")
    resolved = S.Settings(FakeConfig(), {poll: S.Given(5e-05, "0.05ms")}, environ={})
    argv = supervisor.worker_argv("w-1", config_path=None, verbose=False, handler="echo", tags=[],
                                  options=[], setting_flags=resolved.flag_argv())
    assert argv[-2:] == ["--poll", "0.05ms"]


def test_a_zero_in_range_from_the_flag_wins_over_the_file():
    grace = S.declared("worker", "shutdown_grace")
    resolved = S.Settings(FakeConfig(**{"worker.shutdown_grace": 30.0}), {grace: S.Given(0.0, "0s")}, environ={})
    assert resolved.get("worker", "shutdown_grace") == 0.0 and resolved.sources[grace] == "flag"


def test_the_fast_lane_of_open_imports_neither_click_nor_the_flags(tmp_path):
    """`riaktq open` reads its config through the declarations, never
    through the click side of the resolver (options.py)."""
    import subprocess
    import sys
    code = ("import sys\nfrom riaktq_cli.cli import fast_open as entry\ntry:\n    entry.main(['open', 't', '--in', 'x'])\n"
            "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'riaktq_cli')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    loaded = out.stdout.strip()
    assert "riaktq_cli.config.settings" in loaded, out.stderr
    assert "'click" not in loaded and "riaktq_cli.cli.options" not in loaded and "riaktq_cli.cli.main" not in loaded


def test_a_riak_section_means_the_riak_store_unless_the_backend_says_otherwise():
    nodes = {"nodes": ["http://127.0.0.1:8098"]}
    assert config.from_dict({"riak": nodes}).backend == "riak"
    assert config.from_dict({"riak": nodes, "store": {"backend": "sqlite"}}).backend == "sqlite"
    assert config.from_dict({}).backend == "sqlite"
