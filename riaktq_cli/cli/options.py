"""The click side of `riaktq_cli.config.settings`: flags made from the declarations.

`@setting_options("worker")` adds a flag for every setting declared with
`commands=("worker",)` and hands the command one resolved `Settings` (keyword
`settings`) instead of one keyword per flag, in the manner of RQ's shared
options. A flag is parsed and range-checked by the setting's own kind, the
same code that checks the config file; a value out of range is a usage
error (exit 2), never replaced by the file's value.

Kept apart from settings.py because it imports click, which `riaktq open`'s
fast lane must not pay for.
"""

import functools

import click

from riaktq_cli.config import settings as settings_mod
from riaktq_cli.cli.params import KindParam


class SettingType(KindParam):
    """A flag's text → settings.Given(value, text), checked as in the file."""

    def __init__(self, setting):
        super().__init__(setting.kind)

    def convert(self, value, param, ctx):
        if isinstance(value, settings_mod.Given):
            return value
        return settings_mod.Given(super().convert(str(value), param, ctx), str(value))


def flag_help(setting):
    """The setting's help, and where else it may come from."""
    default = "none" if setting.default is None else setting.default
    env = f"env: {setting.env}; " if setting.env else ""
    return f"{setting.help} [{env}config: {setting.name}, default {default}]"


def option_for(setting):
    """The click option of one declared setting (no envvar: the resolver reads it)."""
    return click.option(setting.flag, setting.param, type=SettingType(setting),
                        metavar=setting.kind.metavar, help=flag_help(setting))


def setting_options(command):
    """Add `command`'s setting flags; pass the command `settings=Settings`."""
    declared = settings_mod.for_command(command)

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            given = {s: kwargs.pop(s.param) for s in declared}
            app = click.get_current_context().obj
            kwargs["settings"] = settings_mod.Settings(app.config, given)
            return fn(*args, **kwargs)

        for setting in reversed(declared):
            wrapper = option_for(setting)(wrapper)
        return wrapper

    return decorate
