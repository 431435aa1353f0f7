"""`/__test__/...`: how another process steers a standalone server
(faults, counts, outages). The client never calls these paths."""

from __future__ import annotations

import json
import threading

from riaktq_testing.riak_sim.wire import _Halt, _WM_404


class ControlMixin:
    """The request handler's control resource."""

    # -- control (for other processes; the client never calls these) ---

    def _control(self, segs):
        riak = self.riak
        q = self.query
        name = segs[0] if segs else ""
        if name == "counts" and self.command == "GET":
            return self._send(200, json.dumps(dict(riak.counts)).encode(),
                              ctype="application/json")
        if self.command != "POST":
            raise _Halt(405, b"", headers=[("Allow", "POST")])
        n = int(q.get("n", "1"))
        if name == "reset":
            riak.reset_counts()
        elif name == "wipe":
            riak.store.wipe()
        elif name == "clear_faults":
            riak._faults.clear()
        elif name == "fail":
            riak.fail_next(n, int(q.get("status", "503")))
        elif name == "slow":
            riak.slow_next(n, float(q.get("seconds", "1")), after=q.get("after") == "true")
        elif name == "drop":
            riak.drop_next(n, after=q.get("after") == "true")
        elif name == "storm":
            riak.sibling_storm(n)
        elif name == "down":
            seconds = float(q.get("seconds", "1"))
            self._send(204, ctype=None)
            self.close_connection = True
            threading.Thread(target=riak._down_for, args=(seconds,), daemon=True).start()
            return
        elif name == "stopping":
            riak.set_stopping(q.get("enabled", "true") == "true")
        elif name == "rejoin":
            riak.rejoin(float(q.get("seconds", "30")),
                        since=float(q["since"]) if "since" in q else None)
        elif name == "2i":
            riak.backend_2i = q.get("enabled", "true") == "true"
        elif name == "password" and riak.security is not None:
            try:
                riak.security.set_password(q.get("user", ""), q.get("password", ""))
            except KeyError:
                raise _Halt(404, f"no user {q.get('user')!r}\n") from None
        elif name in ("grant", "revoke") and riak.security is not None:
            perms = [p for p in q.get("perms", "").split(",") if p]
            getattr(riak.security, name)(q.get("user", ""), perms, q.get("on", "any"))
        else:
            raise _Halt(404, _WM_404, ctype="text/html")
        self._send(204, ctype=None)
