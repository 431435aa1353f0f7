"""click parameter types shared by the commands (the settings' flags have
theirs in options.py, made from the declarations)."""

import click

from riaktq_cli.durations import parse_duration
from riaktq_cli.errors import DurationError

# Priorities, retries and counts are stored as 64-bit integers (SQLite, the
# fixed-width Riak index terms), and every restart lowers a priority by one:
# numbers beyond this are a usage error, not an overflow deep in a store.
INT_LIMIT = 2**62


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


DURATION = Duration()
KEY_VALUE = KeyValue()
ADDRESS = Address()

