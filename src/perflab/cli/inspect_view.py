"""The terminal view of `perflab inspect PID` (cli/inspect.py): the snapshot's tables,
each long one cut to --limit rows, every string already made terminal-safe by the
caller (core/safe.py)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text


def size(n: int | None) -> str:
    if n is None:
        return "n/a"
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _more(console: Console, shown: int, total: int, what: str) -> None:
    if shown < total:
        console.print(f"[dim]... {total - shown} more {what} (--limit 0 shows all, --json gives everything)[/dim]")


def _rows(items: list, limit: int) -> list:
    return items if limit == 0 else items[:limit]


def render(snap: dict, console: Console, maps: bool = False, limit: int = 20) -> None:
    """The snapshot on a terminal; `snap` may be collect_view's, whose "view" holds the
    full counts of the lists it cut."""
    p = snap["process"]
    creds = p["credentials"]
    user = creds["user"] or creds["uid"].get("real")
    console.print(Text.assemble(
        (f"pid {p['pid']} ", "bold"), (p["name"], "bold cyan"),
        f"  {p['state']} ({p['state_name']}), user {user}, {p['num_threads']} thread(s)",
        ", kernel thread" if p["kernel_thread"] else ""))
    console.print(Text(f"exe: {p['exe'] or p['exe_reason']}"))
    if p["cmdline"]:
        console.print(Text(f"cmdline: {' '.join(p['cmdline'])}"))
    _kernel_side(snap, console)
    _address_space(snap, console, maps, limit)
    _fds(snap, console, limit)
    _threads(snap, console, limit)
    _sharing(snap, console, limit)
    for note in snap["notes"]:
        console.print(Text.assemble(("note: ", "yellow"), note))
    console.print(f"[dim]read in {snap['elapsed_s']:.3f} s[/dim]")


def _kernel_side(snap: dict, console: Console) -> None:
    p = snap["process"]
    c = p["credentials"]
    t = Table(title="kernel side", show_header=False, title_justify="left")
    t.add_column("what", style="bold")
    t.add_column("value")
    t.add_row("pid / tgid / ppid", f"{p['pid']} / {p['tgid']} / {p['ppid']}"
              + (f" (pid in its namespaces: {p['nspid']})" if len(p["nspid"]) > 1 else ""))
    t.add_row("state", f"{p['state']} ({p['state_name']}), flags {p['flags']}"
              + (" (PF_KTHREAD)" if p["kernel_thread"] else ""))
    sched = f"{p['policy']}, priority {p['priority']}"
    sched += f", rt_priority {p['rt_priority']}" if p["rt_priority"] else f", nice {p['nice']}"
    t.add_row("scheduling", sched)
    t.add_row("cpu time", f"user {p['cpu_user_s']:.2f} s, system {p['cpu_system_s']:.2f} s; "
              f"faults minor {p['minor_faults']}, major {p['major_faults']}")
    ids = lambda d: "/".join(str(d[k]) for k in ("real", "effective", "saved", "filesystem") if k in d)  # noqa: E731
    t.add_row("uid (r/e/s/fs)", Text(ids(c["uid"]) + (f" ({c['user']})" if c["user"] else "")))
    t.add_row("gid (r/e/s/fs)", ids(c["gid"]) + (f", groups {c['groups']}" if c["groups"] else ""))
    eff = c["capabilities"].get("eff")
    if eff:
        names = eff["names"]
        t.add_row("capabilities (effective)", f"{eff['mask']}: " + (
            "none" if not names else f"{len(names)} caps" if len(names) > 8 else ", ".join(names)))
    t.add_row("no_new_privs / seccomp", f"{c['no_new_privs']} / {c['seccomp']}")
    for cg in p["cgroups"]:
        label = ",".join(cg["controllers"]) or ("v2" if cg["hierarchy_id"] == 0 else "")
        t.add_row(Text(f"cgroup {cg['hierarchy_id']} {label}"), Text(cg["path"]))  # paths are not markup
    if p["namespaces"]:
        t.add_row("namespaces", ", ".join(
            f"{n['name']}:{n['inode']}" + ("" if n["same_as_inspector"] in (True, None) else "*")
            for n in p["namespaces"]) + "  (* = not perflab's own)")
    console.print(t)


def _address_space(snap: dict, console: Console, maps: bool, limit: int) -> None:
    a = snap["address_space"]
    if not a["available"]:
        console.print(Text.assemble(("user address space: ", "bold"), f"none: {a['reason']}"))
        return
    t = Table(title="user address space (from smaps)", title_justify="left")
    for col in ("kind", "mappings", "size", "RSS", "PSS"):
        t.add_column(col, justify="left" if col == "kind" else "right")
    for kind, v in a["by_kind"].items():
        t.add_row(kind, str(v["mappings"]), size(v["size_bytes"]), size(v["rss_bytes"]), size(v["pss_bytes"]))
    tot = a["totals"]
    t.add_row("total", str(tot["mappings"]), size(tot["size_bytes"]), size(tot["rss_bytes"]),
              size(tot["pss_bytes"]), style="bold")
    console.print(t)
    libs = a["libraries"]
    if libs:
        lt = Table(title=f"shared libraries ({len(libs)})", title_justify="left")
        for col in ("library", "mappings", "size", "RSS", "PSS", "path"):
            lt.add_column(col, justify="right" if col in ("mappings", "size", "RSS", "PSS") else "left")
        for lib in _rows(libs, limit):
            lt.add_row(Text(lib["name"]), str(lib["mappings"]), size(lib["size_bytes"]), size(lib["rss_bytes"]),
                       size(lib["pss_bytes"]), Text(lib["path"]))
        console.print(lt)
        _more(console, len(_rows(libs, limit)), len(libs), "libraries")
    if maps:
        mt = Table(title="mappings", title_justify="left")
        for col in ("start", "end", "perms", "size", "RSS", "PSS", "kind", "what"):
            mt.add_column(col, justify="right" if col in ("size", "RSS", "PSS") else "left")
        rows = _rows(a["mappings"], limit)
        for m in rows:
            what = m["path"] or ""
            if m["tids"]:
                what = f"{what} tid {','.join(map(str, m['tids']))}".strip()
            if m["name"]:
                what = f"[anon:{m['name']}]"
            mt.add_row(m["start"], m["end"], m["perms"], size(m["size_bytes"]), size(m["rss_bytes"]),
                       size(m["pss_bytes"]), m["kind"], Text(what))
        console.print(mt)
        _more(console, len(rows), a["totals"]["mappings"], "mappings")  # every mapping, counted


def _fds(snap: dict, console: Console, limit: int) -> None:
    f = snap["fds"]
    if not f["available"]:
        console.print(Text.assemble(("file descriptors: ", "bold"), f"none: {f['reason']}"))
        return
    if not f["count"]:
        console.print("[bold]file descriptors:[/bold] none open")
        return
    counts = ", ".join(f"{k} {v}" for k, v in sorted(f["by_type"].items(), key=lambda kv: -kv[1]))
    t = Table(title=f"file descriptors ({f['count']}: {counts})", title_justify="left")
    for col in ("fd", "type", "target", "offset", "flags", "details"):
        t.add_column(col, justify="right" if col in ("fd", "offset") else "left")
    rows = _rows(f["table"], limit)
    for r in rows:
        flags = " ".join(n for n in r["flag_names"] if n != "O_LARGEFILE")
        details = r.get("details") or {}
        t.add_row(str(r["fd"]), r["type"], Text(r["target"]), str(r["pos_bytes"]), flags,
                  Text(", ".join(f"{k}={v}" for k, v in details.items())))
    console.print(t)
    _more(console, len(rows), f["count"], "fds")


def _threads(snap: dict, console: Console, limit: int) -> None:
    threads = snap["threads"]
    total = snap.get("view", {}).get("threads", len(threads))  # collect_view cut the list
    t = Table(title=f"threads ({total})", title_justify="left")
    for col in ("tid", "name", "state", "cpu s", "vol cs", "invol cs", "last cpu", "stack"):
        t.add_column(col, justify="left" if col in ("name", "state", "stack") else "right")
    rows = _rows(threads, limit)
    for th in rows:
        st = th["stack"]
        if st:
            stack = f"{st['start']}-{st['end']} {size(st['size_bytes'])} ({st['kind']})"
        else:
            stack = f"none: {th['stack_reason']}"
        t.add_row(str(th["tid"]), Text(th["name"]), f"{th['state']} {th['state_name']}", f"{th['cpu_s']:.2f}",
                  str(th["voluntary_switches"]), str(th["involuntary_switches"]), str(th["last_cpu"]), Text(stack))
    console.print(t)
    _more(console, len(rows), total, "threads")


def _members(g: dict, total_threads: int, limit: int) -> str:
    tids = g["tids"]
    if len(tids) == total_threads and total_threads > 1:
        who = f"all {total_threads} threads"
    else:
        shown = tids if limit == 0 else tids[: max(limit, 1)]
        who = ",".join(map(str, shown)) + (f",... ({len(tids)})" if len(shown) < len(tids) else "")
    if g["includes_parent"]:
        who = f"{who} + parent" if tids else "parent"
    return f"{who}: {g['status']}"


def _sharing(snap: dict, console: Console, limit: int) -> None:
    s = snap["sharing"]
    if not s["available"]:
        console.print(Text.assemble(("sharing (kcmp): ", "bold"), f"unavailable: {s['reason']}"))
        return
    par = s["parent"]
    title = "what the tasks share (kcmp)"
    if par["included"]:
        title += f", with the parent {par['pid']} ({par.get('name')})"
    elif par.get("reason"):
        title += f"; parent not compared: {par['reason']}"
    t = Table(title=Text(title), title_justify="left")
    t.add_column("resource", style="bold")
    t.add_column("kernel object")
    t.add_column("groups of tasks sharing one object")
    nthreads = snap.get("view", {}).get("live_threads")
    if nthreads is None:
        nthreads = sum(1 for th in snap["threads"] if th["state"] not in "ZX")
    for r in s["resources"]:
        groups = r["groups"]
        shown = groups if limit == 0 else groups[: max(limit, 1)]
        text = "\n".join(_members(g, nthreads, limit) for g in shown)
        if len(shown) < len(groups):
            text += f"\n... {len(groups) - len(shown)} more groups"
        t.add_row(r["resource"], r["object"], Text(text))
    console.print(t)
    probe = s["null_probe"]
    if probe["reason"]:
        console.print(Text(f"io/sysvsem: {probe['reason']}", style="dim"))
