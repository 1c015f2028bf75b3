"""asyncua client read throughput, for comparison with our client.

Usage: opcua_asyncua_bench.py URL SINGLE_NODE BATCH_FIRST_NUMERIC_ID BATCH_NS BATCH_SIZE SECONDS [CONCURRENCY,...]
Prints `READY 0`, then `SINGLE <reads/s>` (one read in flight at a time), `BATCH <values/s>`, and for each
concurrency N of the optional comma-separated list (default 1,8,32,64) `CONCURRENT <N> <reads/s>`:
N tasks on one client (one secure channel, one session), each reading the single node in a loop, so
N single-value Read requests are in flight at once.
"""
import asyncio
import logging
import sys
import time

from asyncua import Client, ua

logging.basicConfig(level=logging.ERROR)


async def concurrent_reads(node, concurrency, seconds):
    """`concurrency` tasks each awaiting one read after another until `seconds` pass; returns reads/s."""
    deadline = time.monotonic() + seconds
    counts = [0] * concurrency

    async def worker(index):
        while time.monotonic() < deadline:
            await node.read_value()
            counts[index] += 1

    start = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return sum(counts) / (time.monotonic() - start)


async def main():
    url, single, first, ns, size, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    levels = [int(x) for x in sys.argv[7].split(",")] if len(sys.argv) > 7 and sys.argv[7] else [1, 8, 32, 64]
    print("READY 0", flush=True)
    async with Client(url, timeout=10) as client:
        node = client.get_node(single)
        n, start = 0, time.monotonic()
        while time.monotonic() - start < seconds:
            await node.read_value()
            n += 1
        print(f"SINGLE {n / (time.monotonic() - start):.0f}", flush=True)
        nodes = [client.get_node(ua.NodeId(first + i, ns)) for i in range(size)]
        n, start = 0, time.monotonic()
        while time.monotonic() - start < seconds:
            values = await client.read_values(nodes)
            n += len(values)
        print(f"BATCH {n / (time.monotonic() - start):.0f}", flush=True)
        for level in levels:
            rate = await concurrent_reads(node, level, seconds)
            print(f"CONCURRENT {level} {rate:.0f}", flush=True)


asyncio.run(main())
