"""Copies a file into or out of qemu-ga with qemu.qmp's client, as a user of it would:
guest-file-open, then guest-file-read or guest-file-write one chunk a call, then close.

usage: python qemu_qmp_ga_copy.py SOCKET in|out LOCAL GUEST CHUNK
CHUNK 0 reads with the agent's default count (no count given). Prints the seconds taken
(connected to closed) as JSON.
"""
import asyncio
import base64
import json
import sys
import time

from qemu.qmp import QMPClient


async def copy(sock, way, local, guest, chunk):
    client = QMPClient("ga-copy", readbuflen=64 << 20)
    # The agent sends no greeting and takes no negotiation.
    client.await_greeting = False
    client.negotiate = False
    await client.connect(sock)
    start = time.perf_counter()
    if way == "out":
        handle = await client.execute("guest-file-open", {"path": guest, "mode": "r"})
        args = {"handle": handle}
        if chunk:
            args["count"] = chunk
        with open(local, "wb") as f:
            while True:
                r = await client.execute("guest-file-read", args)
                f.write(base64.b64decode(r["buf-b64"]))
                if r["eof"] or r["count"] == 0:
                    break
    else:
        handle = await client.execute("guest-file-open", {"path": guest, "mode": "w"})
        with open(local, "rb") as f:
            while True:
                data = f.read(chunk)
                if not data:
                    break
                await client.execute(
                    "guest-file-write", {"handle": handle, "buf-b64": base64.b64encode(data).decode()}
                )
    await client.execute("guest-file-close", {"handle": handle})
    seconds = time.perf_counter() - start
    await client.disconnect()
    print(json.dumps({"seconds": seconds}))


asyncio.run(copy(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
