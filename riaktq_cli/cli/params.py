"""click parameter types shared by the commands (the settings' flags have
theirs in options.py, made from the declarations)."""

import click

from riaktq_cli.config import settings
from riaktq_cli.core.errors import ConfigError
from riaktq_cli.core.task_checks import PRIORITY_MAX

# Counts a user gives (`--limit`) are bounded as the task model bounds its
# numbers (task_checks: ±2^53, exact in JSON for every consumer): one bound,
# and a number beyond it is a usage error, not an overflow deep in a store.
COUNT_MAX = PRIORITY_MAX


class KindParam(click.ParamType):
    """A value of one of the settings' kinds (settings.Duration...): parsed
    and range-checked by the kind's own code, whether it comes from a
    command's flag, a setting's flag or the config file; a refusal is a
    usage error (exit 2)."""

    def __init__(self, kind):
        self.kind = kind
        self.name = kind.metavar or kind.noun

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value  # a default, already parsed
        try:
            return self.kind.parse(value, self.kind.noun)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


class KeyValue(click.ParamType):
    """`KEY=VALUE` → (key, value)."""

    name = "KEY=VALUE"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        key, sep, val = value.partition("=")
        if not sep or not key:
            self.fail(f"{value!r} is not KEY=VALUE", param, ctx)
        return key, val


class Address(click.ParamType):
    """`HOST:PORT`, `[IPv6]:PORT` or `:PORT` → (host, port)."""

    name = "ADDR:PORT"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        from riaktq_cli.views.metrics import parse_addr
        try:
            return parse_addr(value)
        except ValueError as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)


class Identifier(click.ParamType):
    """A task id or an instance name as typed: text a store can hold. The
    shell hands over bytes, and Python keeps the ones that are not UTF-8 as
    lone surrogates, which no store request can encode: every id and name
    argument comes through here, so such an argument is one usage line
    (exit 2), not an UnicodeEncodeError deep in a store (exit 70)."""

    name = "ID"

    def convert(self, value, param, ctx):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            from riaktq_cli.core.output import escape
            try:
                shown = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            except UnicodeEncodeError:
                shown = ascii(value)[1:-1]
            self.fail(f"'{escape(shown)}' is not UTF-8 text", param, ctx)
        return value


DURATION = KindParam(settings.Duration(0, low_open=False))  # `250ms`, `5s`, `1m`, `2h`, `1d` → seconds
IDENTIFIER = Identifier()
KEY_VALUE = KeyValue()
ADDRESS = Address()

