"""fail: every task fails with its input as the reason; for trying out retries."""


class TaskFailed(Exception):
    pass


def handle(task_id, data, tags, state):
    raise TaskFailed(data.decode("utf-8", "replace") or "failed on purpose")
