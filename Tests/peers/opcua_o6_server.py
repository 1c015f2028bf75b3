"""o6 (open62541) server peer for the OPCUA interop tests.

Usage: opcua_o6_server.py [PORT]  (0 or absent: a free port chosen here)
Prints `READY <port>` once serving. o6 binds 0.0.0.0 on its own, so the running loop's
create_server is patched to bind 127.0.0.1. Variables (namespace 1 of o6 = its application namespace):
ns=1;s=Demo.Double, Demo.Int32, Demo.String, Demo.Boolean, Demo.DoubleArray, Demo.Counter (+1 every 100 ms),
Demo.Writable (Double). Exits when stdin closes (o6 also stops itself after 10 minutes).
"""
import asyncio
import logging
import socket
import sys

logging.basicConfig(level=logging.ERROR)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main():
    import o6  # prints a banner to stdout; READY comes after it

    port = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "0" else free_port()
    loop = asyncio.get_running_loop()
    original = loop.create_server

    async def loopback_only(*args, **kwargs):
        if len(args) >= 2:
            args = (args[0], "127.0.0.1") + tuple(args[2:])
        else:
            kwargs["host"] = "127.0.0.1"
        return await original(*args, **kwargs)

    loop.create_server = loopback_only
    server = o6.Server(port=port, loop=loop)
    objects = server.objects
    folder = await server.addObject("Demo", objects, nodeId="ns=1;s=Demo")
    await server.addVariable("Double", folder, 3.25, nodeId="ns=1;s=Demo.Double")
    await server.addVariable("Int32", folder, o6.Int32(-42), nodeId="ns=1;s=Demo.Int32")
    await server.addVariable("String", folder, "hello o6", nodeId="ns=1;s=Demo.String")
    await server.addVariable("Boolean", folder, True, nodeId="ns=1;s=Demo.Boolean")
    await server.addVariable("DoubleArray", folder, [1.0, 2.0, 3.5], nodeId="ns=1;s=Demo.DoubleArray")
    counter = await server.addVariable("Counter", folder, o6.Int32(0), nodeId="ns=1;s=Demo.Counter")
    await server.addVariable("Writable", folder, 0.0, nodeId="ns=1;s=Demo.Writable", writable=True)
    for i in range(1000):
        await server.addVariable(f"Bulk{i}", folder, float(i), nodeId=f"ns=1;i={100000 + i}")
    server.start()
    await server.waitReady()
    print(f"READY {port}", flush=True)

    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    n = 0
    while not stdin_closed.done():
        await asyncio.sleep(0.1)
        n += 1
        await server.write("ns=1;s=Demo.Counter", o6.Int32(n))
    server.stop()


asyncio.run(main())
