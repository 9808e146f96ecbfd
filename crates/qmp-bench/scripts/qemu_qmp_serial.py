"""Serial query-status round trips with QEMU's own Python client, qemu.qmp.

Usage: python3 qemu_qmp_serial.py SOCKET COUNT
Prints one JSON object: {"serial_us": mean microseconds per call, "version": qemu.qmp's}.
Run by qmp-bench as a subprocess against the same peer as the other clients.
"""
import asyncio
import json
import sys
import time

from qemu.qmp import QMPClient


async def main(path: str, count: int) -> None:
    qmp = QMPClient("qmp-bench")
    await qmp.connect(path)
    for _ in range(min(count, 100)):  # warm up
        await qmp.execute("query-status")
    start = time.perf_counter()
    for _ in range(count):
        await qmp.execute("query-status")
    elapsed = time.perf_counter() - start
    await qmp.disconnect()
    try:
        from importlib.metadata import version
        ver = version("qemu.qmp")
    except Exception:  # the version is informative only
        ver = "unknown"
    print(json.dumps({"serial_us": elapsed * 1e6 / count, "version": ver}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
