#!/usr/bin/env python3
"""QEMU's own Python client (pip package qemu.qmp) against a QMP server at argv[1].

Connects, negotiates (with oob when offered), executes commands, listens for events, and
runs blockdev-mirror + block-job-cancel until BLOCK_JOB_CANCELLED, walks the QOM tree from /,
runs a transaction over dirty bitmaps that succeeds and one that is rolled back, and
passes pipe descriptors with `send_fd_scm` for getfd/closefd and add-fd/query-fdsets/remove-fd
(a pipe's write end fails with EPIPE once the server closed the read end it was passed).
Prints one line per check;
exits non-zero on the first failure.

With `--storage-daemon PATH`, runs `storage_daemon_session` instead.
"""
import asyncio
import json
import os
import sys
from collections.abc import Mapping

from qemu.qmp import EventListener, ExecuteError, QMPClient


async def next_event(listener, name, timeout=10.0):
    """The next event called `name` (others are skipped)."""
    while True:
        event = await asyncio.wait_for(listener.get(), timeout)
        if event["event"] == name:
            return event


async def main(path):
    qmp = QMPClient("sim-test")
    await qmp.connect(path)
    caps = qmp.greeting.QMP.capabilities
    assert "oob" in caps, caps
    print("connected; capabilities:", caps)

    # qemu.qmp enabled oob during negotiation, so exec-oob works.
    yank = await qmp.execute_msg(qmp.make_execute_msg("query-yank", oob=True))
    assert yank == [{"type": "chardev", "id": "compat_monitor0"}], yank
    print("exec-oob query-yank:", yank)

    status = await qmp.execute("query-status")
    assert status == {"status": "running", "singlestep": False, "running": True}, status
    print("query-status:", status)

    version = await qmp.execute("query-version")
    assert version["qemu"]["major"] == 7, version
    print("query-version:", version["qemu"])

    try:
        await qmp.execute("no-such-command")
        raise AssertionError("no-such-command succeeded")
    except ExecuteError as err:
        assert err.error_class == "CommandNotFound", err.error_class
        assert str(err) == "The command no-such-command has not been found", str(err)
        print("unknown command:", err.error_class)

    with qmp.listener() as listener:
        await qmp.execute("stop")
        stop = await next_event(listener, "STOP")
        assert "timestamp" in stop, stop
        await qmp.execute("cont")
        await next_event(listener, "RESUME")
        print("events: STOP, RESUME")

    hmp = await qmp.execute("human-monitor-command", {"command-line": "info status"})
    assert hmp == "VM status: running\r\n", repr(hmp)
    print("hmp:", repr(hmp))

    # A mirror (a stream of a node with no backing would end at once, as in QEMU).
    for node in ("disk0", "target0"):
        await qmp.execute("blockdev-add", {"driver": "null-co", "node-name": node, "size": 64 << 20})
    listener = EventListener(("JOB_STATUS_CHANGE", "BLOCK_JOB_CANCELLED"))
    with qmp.listen(listener):
        await qmp.execute("blockdev-mirror", {"job-id": "job0", "device": "disk0", "target": "target0",
                                              "sync": "full", "speed": 1 << 20})
        jobs = await qmp.execute("query-block-jobs")
        assert jobs[0]["device"] == "job0" and jobs[0]["type"] == "mirror", jobs
        await qmp.execute("block-job-cancel", {"device": "job0"})
        statuses = []
        while True:
            event = await asyncio.wait_for(listener.get(), 10.0)
            if event["event"] == "BLOCK_JOB_CANCELLED":
                cancelled = event
                break
            statuses.append(event["data"]["status"])
        assert statuses == ["created", "running", "aborting"], statuses
        assert cancelled["data"]["device"] == "job0" and cancelled["data"]["type"] == "mirror", cancelled
        print("block job:", statuses, "then BLOCK_JOB_CANCELLED")
    assert await qmp.execute("query-block-jobs") == []

    await qmp.execute("object-add", {"qom-type": "iothread", "id": "io0"})
    paths, todo = [], ["/"]
    while todo:
        path = todo.pop()
        paths.append(path)
        for prop in await qmp.execute("qom-list", {"path": path}):
            if prop["type"].startswith("child<"):
                todo.append(path.rstrip("/") + "/" + prop["name"])
    for want in ("/machine/peripheral", "/chardevs/compat_monitor0", "/objects/io0"):
        assert want in paths, paths
    assert await qmp.execute("qom-get", {"path": "io0", "property": "poll-max-ns"}) == 32768
    await qmp.execute("qom-set", {"path": "/objects/io0", "property": "poll-max-ns", "value": 1000})
    assert await qmp.execute("qom-get", {"path": "/objects/io0", "property": "poll-max-ns"}) == 1000
    try:
        await qmp.execute("qom-get", {"path": "/nope", "property": "type"})
        raise AssertionError("qom-get /nope succeeded")
    except ExecuteError as err:
        assert err.error_class == "DeviceNotFound" and str(err) == "Device '/nope' not found", str(err)
    print("qom walk:", len(paths), "objects")

    def bitmap(kind, name):
        return {"type": "block-dirty-bitmap-" + kind, "data": {"node": "disk0", "name": name}}

    await qmp.execute("transaction", {"actions": [bitmap("add", "b0"), bitmap("add", "b1")]})
    try:
        await qmp.execute("transaction", {"actions": [bitmap("remove", "b0"), bitmap("add", "b1")]})
        raise AssertionError("the transaction succeeded")
    except ExecuteError as err:
        assert str(err) == "Bitmap already exists: b1", str(err)
    nodes = await qmp.execute("query-named-block-nodes")
    disk0 = next(n for n in nodes if n["node-name"] == "disk0")
    names = [b["name"] for b in disk0["dirty-bitmaps"]]
    assert names == ["b1", "b0"], names
    print("transaction: committed, then rolled back:", names)

    await fd_passing(qmp)

    await qmp.disconnect()
    print("OK")


async def fd_passing(qmp):
    """getfd/closefd and an fd set, with pipes' read ends passed by `send_fd_scm`."""
    def passed_pipe():
        r, w = os.pipe()
        qmp.send_fd_scm(r)
        os.close(r)  # the server holds the only read end now
        return w

    def assert_closed(w, by):
        try:
            os.write(w, b"x")
            raise AssertionError(by + " left the descriptor open")
        except BrokenPipeError:
            os.close(w)

    w = passed_pipe()
    await qmp.execute("getfd", {"fdname": "pipe0"})
    os.write(w, b"x")
    await qmp.execute("closefd", {"fdname": "pipe0"})
    assert_closed(w, "closefd")

    w = passed_pipe()
    info = await qmp.execute("add-fd", {"opaque": "from qemu.qmp"})
    sets = await qmp.execute("query-fdsets")
    want = [{"fds": [{"fd": info["fd"], "opaque": "from qemu.qmp"}], "fdset-id": info["fdset-id"]}]
    assert sets == want, sets
    await qmp.execute("remove-fd", {"fdset-id": info["fdset-id"], "fd": info["fd"]})
    assert await qmp.execute("query-fdsets") == []
    assert_closed(w, "remove-fd")
    try:
        await qmp.execute("getfd", {"fdname": "none"})
        raise AssertionError("getfd without a descriptor succeeded")
    except ExecuteError as err:
        assert str(err) == "No file descriptor supplied via SCM_RIGHTS", str(err)
    print("fd passing: getfd/closefd, add-fd/query-fdsets/remove-fd")


async def storage_daemon_session(path):
    """A short session with a qemu-storage-daemon (real or simulated) at `path`: prints one
    JSON line per step, [step, result], result being the return value or the error's class
    and text, with member order kept. Only the package string is masked (it names the
    build). The caller compares the lines of the two peers."""

    def masked(value):
        if isinstance(value, Mapping):
            return {k: "PKG" if k == "package" else masked(v) for k, v in value.items()}
        if isinstance(value, list):
            return [masked(v) for v in value]
        return value

    qmp = QMPClient("sd-test")
    await qmp.connect(path)
    print(json.dumps(["greeting", masked(qmp.greeting._raw)]))

    async def step(name, cmd, args=None):
        try:
            result = await qmp.execute(cmd, args)
        except ExecuteError as err:
            result = {"error": [err.error_class, str(err)]}
        print(json.dumps([name, masked(result)]))

    await step("version", "query-version")
    node = {"driver": "null-co", "node-name": "n0", "size": 64 << 20}
    await step("add node", "blockdev-add", node)
    await step("add node again", "blockdev-add", node)
    await step("nodes", "query-named-block-nodes")
    await step("add bitmap", "block-dirty-bitmap-add", {"node": "n0", "name": "b0", "granularity": 65536})
    await step("add bitmap again", "block-dirty-bitmap-add", {"node": "n0", "name": "b0"})
    await step("nodes with bitmap", "query-named-block-nodes")
    await step("not in the daemon", "query-status")
    await step("no device models", "device-list-properties", {"typename": "virtio-blk-pci"})
    await step("user-creatable types", "qom-list-types", {"implements": "user-creatable"})
    await step("iothread properties", "qom-list-properties", {"typename": "iothread"})
    await step("remove bitmap", "block-dirty-bitmap-remove", {"node": "n0", "name": "b0"})
    await step("del node", "blockdev-del", {"node-name": "n0"})
    await step("del node again", "blockdev-del", {"node-name": "n0"})
    await step("no nodes", "query-named-block-nodes")
    await qmp.disconnect()


if __name__ == "__main__":
    if sys.argv[1] == "--storage-daemon":
        asyncio.run(storage_daemon_session(sys.argv[2]))
    else:
        asyncio.run(main(sys.argv[1]))
