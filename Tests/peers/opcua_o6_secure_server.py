"""o6 (open62541) server peer that requires security, for the OPCUA security interop tests.

Usage: opcua_o6_secure_server.py FOLDER
Makes its certificate (uacert.py: RSA 2048, SHA-256, urn:linemes:test:o6-server in subjectAltName) as
FOLDER/server.der and FOLDER/server-key.pem; every client certificate accepted, user name logins only
(li.wei / s3cret). o6's `secureOnly` refuses even a None channel for GetEndpoints, so it stays off and the
access control refuses sessions on None itself (BadSecurityPolicyRejected). Prints `SESSION <policy> <mode> <user>` per activated session and
`DENIED <user>` per refused login. Variable ns=1;s=Demo.Double (3.25). o6 binds 0.0.0.0 on its own: the
running loop's create_server is patched to bind 127.0.0.1. Prints `READY <port>`; exits when stdin closes
(o6 also stops itself after 10 minutes).
"""
import asyncio
import logging
import socket
import sys

from uacert import make_certificate

logging.basicConfig(level=logging.ERROR)
APP_URI = "urn:linemes:test:o6-server"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main():
    import o6  # prints a banner to stdout; READY comes after it
    from o6.server import AccessControl

    folder = sys.argv[1]
    der, key = make_certificate(folder, "server", APP_URI)

    class OneUser(AccessControl):
        def __init__(self):
            super().__init__(anonymous=False, username=True)

        def activateSession(self, endpoint, remoteCertificate, session, userIdentityToken):
            if str(endpoint.securityPolicyUri).endswith("#None"):
                print("REFUSED None", flush=True)
                raise o6.StatusCodeError(o6.StatusCode.BAD_SECURITY_POLICY_REJECTED)
            name = getattr(userIdentityToken, "userName", None)
            password = getattr(userIdentityToken, "password", b"")
            if isinstance(password, str):
                password = password.encode()
            if name == "li.wei" and password == b"s3cret":
                policy = str(endpoint.securityPolicyUri).split("#")[-1]
                mode = getattr(endpoint.securityMode, "name", str(endpoint.securityMode))
                print(f"SESSION {policy} {mode} {name}", flush=True)
                return None
            print(f"DENIED {name}", flush=True)
            raise o6.StatusCodeError(o6.StatusCode.BAD_USER_ACCESS_DENIED)

    port = free_port()
    loop = asyncio.get_running_loop()
    original = loop.create_server

    async def loopback_only(*args, **kwargs):
        if len(args) >= 2:
            args = (args[0], "127.0.0.1") + tuple(args[2:])
        else:
            kwargs["host"] = "127.0.0.1"
        return await original(*args, **kwargs)

    loop.create_server = loopback_only
    server = o6.Server(port=port, loop=loop, certificate=der, privateKey=key, allowNonePolicyPassword=True,
                       acceptAllCertificates=True, applicationUri=APP_URI, accessControl=OneUser())
    folder_node = await server.addObject("Demo", server.objects, nodeId="ns=1;s=Demo")
    await server.addVariable("Double", folder_node, 3.25, nodeId="ns=1;s=Demo.Double")
    server.start()
    await server.waitReady()
    print(f"READY {port}", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    server.stop()


asyncio.run(main())
