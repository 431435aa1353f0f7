"""echo: the output is the input, byte for byte. The demo's and benchmarks' handler."""


def handle(task_id, data, tags, state):
    return data
