"""click parameter types shared by the commands."""

import click

from riaktq_cli.durations import parse_duration
from riaktq_cli.errors import DurationError


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


DURATION = Duration()
KEY_VALUE = KeyValue()


def pass_app(fn):
    return click.pass_obj(fn)
