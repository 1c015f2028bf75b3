"""asyncua client read throughput over a secure channel, for comparison with our client (tools/bench).

Usage: opcua_asyncua_secure_bench.py URL NODE SECONDS CONCURRENCY POLICY MODE CERT_DER KEY_PEM
POLICY is Basic256Sha256 (asyncua's spelling), MODE Sign or SignAndEncrypt. Opens one secure channel and
anonymous session with the client certificate and key, then CONCURRENCY tasks each read NODE in a loop
for SECONDS (so CONCURRENCY single-value Read requests are in flight at once). Prints `READY 0`, then
`CONCURRENT <N> <reads/s> <channel policy URI> <channel mode>`.
"""
import asyncio
import logging
import sys
import time

from asyncua import Client

logging.basicConfig(level=logging.CRITICAL)


async def main():
    url, node_id, seconds, concurrency, policy, mode, cert, key = sys.argv[1:9]
    seconds, concurrency = float(seconds), int(concurrency)
    print("READY 0", flush=True)
    client = Client(url, timeout=10)
    client.application_uri = "urn:linemes:bench:asyncua-client"
    await client.set_security_string(f"{policy},{mode},{cert},{key}")
    async with client:
        node = client.get_node(node_id)
        await node.read_value()
        deadline = time.monotonic() + seconds
        counts = [0] * concurrency

        async def worker(index):
            while time.monotonic() < deadline:
                await node.read_value()
                counts[index] += 1

        start = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        rate = sum(counts) / (time.monotonic() - start)
        used = client.uaclient.security_policy
        print(f"CONCURRENT {concurrency} {rate:.0f} {used.URI} {used.Mode.name}", flush=True)


asyncio.run(main())
