"""init fails: the worker must say so in one line and exit 2."""


def init(options):
    raise RuntimeError("no GPU here")


def handle(task_id, data, tags, state):
    return data
