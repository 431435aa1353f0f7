"""click parameter types shared by the commands (the settings' flags have
theirs in options.py, made from the declarations)."""

import click

from riaktq_cli.durations import parse_duration
from riaktq_cli.errors import DurationError
from riaktq_cli.task_checks import PRIORITY_MAX

# Counts a user gives (`--limit`) are bounded as the task model bounds its
# numbers (task_checks: ±2^53, exact in JSON for every consumer): one bound,
# and a number beyond it is a usage error, not an overflow deep in a store.
COUNT_MAX = PRIORITY_MAX


class Duration(click.ParamType):
    """`250ms`, `5s`, `1m`, `2h`, `1d` → seconds (float)."""

    name = "DURATION"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        try:
            return parse_duration(value, "duration")
        except DurationError as exc:
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
        from riaktq_cli.metrics import parse_addr
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
            from riaktq_cli.output import escape
            try:
                shown = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            except UnicodeEncodeError:
                shown = ascii(value)[1:-1]
            self.fail(f"'{escape(shown)}' is not UTF-8 text", param, ctx)
        return value


DURATION = Duration()
IDENTIFIER = Identifier()
KEY_VALUE = KeyValue()
ADDRESS = Address()

