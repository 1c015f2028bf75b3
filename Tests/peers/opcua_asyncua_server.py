"""asyncua server peer for the OPCUA interop tests.

Usage: opcua_asyncua_server.py [PORT] [users]   (PORT 0 or absent: ephemeral)
With `users`, user name logins are offered too and only li.wei / s3cret is accepted.
Prints `READY <port>` once serving on 127.0.0.1. Variables (namespace 2):
ns=2;s=Demo.<Type> for each scalar type, ns=2;s=Demo.DoubleArray, ns=2;i=1007 (double),
ns=2;s=Demo.Counter (Int32, +1 every 100 ms), ns=2;s=Demo.Writable (Double, writable).
Exits when stdin closes.
"""
import asyncio
import datetime
import logging
import sys
import uuid

from asyncua import Server, ua
from asyncua.server.user_managers import UserManager
from asyncua.crypto.permission_rules import User, UserRole

logging.basicConfig(level=logging.ERROR)


class OneUser(UserManager):
    def get_user(self, iserver, username=None, password=None, certificate=None):
        if username is None:
            return User(role=UserRole.User)
        if username == "li.wei" and password == "s3cret":
            return User(role=UserRole.User)
        return None


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    users = "users" in sys.argv[2:]
    server = Server(user_manager=OneUser()) if users else Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    if users:
        server.set_identity_tokens([ua.AnonymousIdentityToken, ua.UserNameIdentityToken])
    else:
        server.set_identity_tokens([ua.AnonymousIdentityToken])
    idx = await server.register_namespace("urn:linemes:test:asyncua")
    objects = server.nodes.objects
    folder = await objects.add_folder(ua.NodeId("Demo", idx), "Demo")
    values = {
        "Boolean": (True, ua.VariantType.Boolean),
        "SByte": (-5, ua.VariantType.SByte),
        "Byte": (200, ua.VariantType.Byte),
        "Int16": (-1234, ua.VariantType.Int16),
        "UInt16": (54321, ua.VariantType.UInt16),
        "Int32": (-123456, ua.VariantType.Int32),
        "UInt32": (3000000000, ua.VariantType.UInt32),
        "Int64": (-9000000000, ua.VariantType.Int64),
        "UInt64": (18000000000000000000, ua.VariantType.UInt64),
        "Float": (1.5, ua.VariantType.Float),
        "Double": (3.25, ua.VariantType.Double),
        "String": ("hello ü", ua.VariantType.String),
        "DateTime": (datetime.datetime(2026, 11, 21, 6, 0, 0, 100000, tzinfo=datetime.timezone.utc), ua.VariantType.DateTime),
        "Guid": (uuid.UUID("72962b91-fa75-4ae6-8d28-b404dc7daf63"), ua.VariantType.Guid),
        "ByteString": (b"\x01\x02\x03", ua.VariantType.ByteString),
        "LocalizedText": (ua.LocalizedText("text", "en"), ua.VariantType.LocalizedText),
        "QualifiedName": (ua.QualifiedName("qn", 2), ua.VariantType.QualifiedName),
        "NodeId": (ua.NodeId("x", 2), ua.VariantType.NodeId),
        "StatusCode": (ua.StatusCode(ua.StatusCodes.BadNodeIdUnknown), ua.VariantType.StatusCode),
    }
    for name, (value, vtype) in values.items():
        await folder.add_variable(ua.NodeId(f"Demo.{name}", idx), name, ua.Variant(value, vtype))
    await folder.add_variable(ua.NodeId("Demo.DoubleArray", idx), "DoubleArray",
                              ua.Variant([1.0, 2.0, 3.5], ua.VariantType.Double))
    await folder.add_variable(ua.NodeId(1007, idx), "FilmThickness", ua.Variant(110.5, ua.VariantType.Double))
    counter = await folder.add_variable(ua.NodeId("Demo.Counter", idx), "Counter", ua.Variant(0, ua.VariantType.Int32))
    writable = await folder.add_variable(ua.NodeId("Demo.Writable", idx), "Writable", ua.Variant(0.0, ua.VariantType.Double))
    await writable.set_writable()
    await server.start()
    actual = server.bserver._server.sockets[0].getsockname()[1]
    print(f"READY {actual}", flush=True)

    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    n = 0
    while not stdin_closed.done():
        await asyncio.sleep(0.1)
        n += 1
        await counter.write_value(ua.Variant(n, ua.VariantType.Int32))
    await server.stop()


asyncio.run(main())
