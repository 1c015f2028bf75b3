"""asyncua client read throughput, for comparison with our client.

Usage: opcua_asyncua_bench.py URL SINGLE_NODE BATCH_FIRST_NUMERIC_ID BATCH_NS BATCH_SIZE SECONDS
Prints `READY 0`, then `SINGLE <reads/s>` and `BATCH <values/s>`.
"""
import asyncio
import logging
import sys
import time

from asyncua import Client, ua

logging.basicConfig(level=logging.ERROR)


async def main():
    url, single, first, ns, size, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
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


asyncio.run(main())
