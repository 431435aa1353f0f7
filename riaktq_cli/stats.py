"""How the queue is doing: the figures of `riaktq stats`, and its live view.

Every figure is one index query (counts per status, the oldest `todo`,
tasks finished since a moment) plus the instance records, so gathering
them costs the same with a hundred tasks or a million.
"""


from riaktq_cli import clock
from riaktq_cli.clock import seconds_to_us
from riaktq_cli.durations import format_duration
from riaktq_cli.output import escape, utc_time
from riaktq_cli.task import FAILED, STATUSES, TODO

MINUTE, HOUR = 60, 3600


def gather(store, instance_timeout):
    """The figures as a JSON-able dict (ages and durations in seconds).

    Instances are judged with the running scheduler's instance timeout when
    it has published one; `instance_timeout` (the config's) is the fallback.
    """
    from riaktq_cli import limits, pausing, scheduler_settings
    from riaktq_cli.instances import instance_rows

    timeout, source = scheduler_settings.instance_timeout(store, instance_timeout)
    now = clock.now_us()
    counts = store.count_by_status()
    counts = {status: counts.get(status, 0) for status in STATUSES}
    oldest = store.oldest_cat(TODO) if counts[TODO] else None
    pause = pausing.view(store)
    return {
        "at": now,
        "counts": counts,
        "total": sum(counts.values()),
        "oldest_todo_age": None if oldest is None else round(max(0, now - oldest) / 1e6, 3),
        "closed_last_minute": store.count_finished_since(now - seconds_to_us(MINUTE)),
        "closed_last_hour": store.count_finished_since(now - seconds_to_us(HOUR)),
        "failed_last_hour": store.count_finished_since(now - seconds_to_us(HOUR), FAILED),
        "instance_timeout": timeout,
        "instance_timeout_from": source,
        "pause": pause,
        "limits": limits.view(store, now),
        "instances": instance_rows(store, timeout, pause),
        # why the counts may be short now (a Riak cluster catching up), or None
        "partial": store.listings_partial(),
    }


THROUGHPUT = [("closed_last_minute", "closed last minute"), ("closed_last_hour", "closed last hour"),
              ("failed_last_hour", "failed last hour")]


def _at_hand(row):
    if not row["current"]:
        return "-"
    return f"{row['current']} ({format_duration(row['current_for'])})"


def _timeout_note(figures):
    source = "the scheduler's" if figures["instance_timeout_from"] == "scheduler" else "config; no scheduler yet"
    return f"{format_duration(figures['instance_timeout'])} ({source})"


def _assignment(figures):
    """`running`, or what is paused and whether the scheduler applied it."""
    pause = figures.get("pause")
    if not pause:
        return "running"
    what = "all tasks" if pause["all"] else "tags " + ",".join(pause["tags"])
    return f"paused: {escape(what)}" + ("" if pause["applied"] else " (not yet applied)")


def _limit_line(row):
    from riaktq_cli.limits import describe
    return describe(row)


def instance_table_rows(figures):
    """Instance rows as the human views show them (escaped: an instance
    record is whatever its writer put there)."""
    return [[escape(row["name"]), escape(",".join(row["tags"])) or "-", escape(row["status"] or "-"),
             row["queue"], row["outbox"], format_duration(row["heartbeat_age"]), escape(_at_hand(row))]
            for row in figures["instances"]]


INSTANCE_HEADERS = ["NAME", "TAGS", "STATUS", "QUEUE", "OUTBOX", "HEARTBEAT AGE", "AT HAND"]


def render_text(figures):
    """The plain-text report of `riaktq stats` (tabulate)."""
    from tabulate import tabulate

    tasks = [[status, figures["counts"][status]] for status in STATUSES]
    tasks.append(["total", figures["total"]])
    rates = [["oldest todo", format_duration(figures["oldest_todo_age"])]]
    rates += [[title, figures[key]] for key, title in THROUGHPUT]
    rates.append(["instance timeout", _timeout_note(figures)])
    rates.append(["assignment", _assignment(figures)])
    rates += [["limit", escape(_limit_line(row))] for row in figures.get("limits") or []]
    parts = [tabulate(tasks, headers=["STATUS", "TASKS"], tablefmt="simple"),
             tabulate(rates, tablefmt="plain", colalign=("left", "right"))]
    if figures.get("partial"):
        parts.insert(0, f"counts may be partial: {escape(figures['partial'])}")
    if figures["instances"]:
        parts.append(tabulate(instance_table_rows(figures), headers=INSTANCE_HEADERS,
                              tablefmt="simple", disable_numparse=True))
    else:
        parts.append("no instances")
    return "\n\n".join(parts) + "\n"


def renderable(figures, title, error=None):
    """The rich view of `stats --watch`: tasks, throughput, instances."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    stamp = utc_time(figures["at"]) + " UTC" if figures else ""
    header = Text.assemble((f"riaktq stats · {title}", "bold"), f"  {stamp}  ",
                           ("(every second; Ctrl-C to quit)", "dim"))
    parts = [header]
    if error:
        parts.append(Text(f"store unavailable, retrying: {escape(error)}", style="bold red"))
    if figures and figures.get("partial"):
        parts.append(Text(f"counts may be partial: {escape(figures['partial'])}", style="bold yellow"))
    if figures:
        tasks = Table(box=box.SIMPLE_HEAD, show_edge=False, title="Tasks", title_justify="left")
        tasks.add_column("status")
        tasks.add_column("tasks", justify="right")
        styles = {"todo": "yellow", "nextup": "cyan", "done": "green", "failed": "red"}
        for status in STATUSES:
            tasks.add_row(Text(status, style=styles[status]), str(figures["counts"][status]))
        tasks.add_row("total", str(figures["total"]), style="bold")

        rates = Table(box=box.SIMPLE_HEAD, show_edge=False, title="Throughput", title_justify="left")
        rates.add_column("figure")
        rates.add_column("value", justify="right")
        rates.add_row("oldest todo", format_duration(figures["oldest_todo_age"]))
        for key, label in THROUGHPUT:
            rates.add_row(label, str(figures[key]))
        rates.add_row("instance timeout", _timeout_note(figures))
        rates.add_row("assignment", Text(_assignment(figures), style="bold yellow" if figures["pause"] else ""))
        for row in figures.get("limits") or []:
            rates.add_row("limit", Text(_limit_line(row)))

        side = Table.grid(padding=(0, 4))
        side.add_row(tasks, rates)
        parts += [Text(""), side, Text("")]

        instances = Table(box=box.SIMPLE_HEAD, show_edge=False, title=f"Instances ({len(figures['instances'])})",
                          title_justify="left")
        for name in INSTANCE_HEADERS:
            instances.add_column(name, justify="right" if name in ("QUEUE", "OUTBOX") else "left")
        status_style = {"busy": "cyan", "idle": "green", "lost": "bold red", "stopped": "dim"}
        for row, cells in zip(figures["instances"], instance_table_rows(figures)):
            cells = [Text(str(c)) for c in cells]  # Text: no rich markup from record fields
            cells[2].stylize(status_style.get(row["status"], ""))
            instances.add_row(*cells)
        parts.append(instances)
    return Group(*parts)


def watch(figures_of, title, stop, interval=1.0, console=None):
    """Redraw the view in place every `interval` seconds until `stop` is set;
    `figures_of()` gives the figures (`Queue.stats`, i.e. `gather`).

    rich's Live rewrites the same lines (no screen clearing, no alternate
    screen), so nothing flickers; the last view stays on the terminal.
    """
    from rich.console import Console
    from rich.live import Live

    from riaktq_cli.errors import StoreUnavailable

    console = console or Console()

    def frame():
        try:
            return figures_of(), None
        except StoreUnavailable as exc:
            return None, str(exc)

    figures, error = frame()
    with Live(renderable(figures, title, error), console=console, auto_refresh=False, screen=False,
              transient=False, redirect_stdout=False, redirect_stderr=False) as live:
        live.refresh()
        while not stop.wait(interval):
            fresh, error = frame()
            figures = fresh or figures  # keep the last figures on screen while the store is away
            live.update(renderable(figures, title, error), refresh=True)
