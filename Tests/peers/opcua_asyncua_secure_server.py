"""asyncua server peer that requires security, for the OPCUA security interop tests.

Usage: opcua_asyncua_secure_server.py FOLDER
Makes its own certificate with `cryptography` (RSA 2048, SHA-256, urn:linemes:test:asyncua-server as a URI
in subjectAltName) as FOLDER/server.der and FOLDER/server-key.pem, and offers Basic256Sha256,
Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss, each with Sign and SignAndEncrypt, user name logins only
(li.wei / s3cret). asyncua itself keeps serving sessions on a None channel (Tests/peers README in PEERS):
this peer answers every service but GetEndpoints and FindServers on a None channel with
BadSecurityPolicyRejected. Each activated session prints `SESSION <policy> <mode> <user>`; each rejected
login `DENIED <user>`. Variable ns=2;s=Demo.Double (3.25), ns=2;s=Demo.Writable (writable Double).
Prints `READY <port>` once serving on 127.0.0.1; exits when stdin closes.
"""
import asyncio
import logging
import sys

from asyncua import Server, ua
from asyncua.server import uaprocessor
from asyncua.server.user_managers import UserManager
from asyncua.crypto.permission_rules import User, UserRole

from uacert import make_certificate

logging.basicConfig(level=logging.CRITICAL)
APP_URI = "urn:linemes:test:asyncua-server"


class OneUser(UserManager):
    def get_user(self, iserver, username=None, password=None, certificate=None):
        if username == "li.wei" and password == "s3cret":
            return User(role=UserRole.User)
        print(f"DENIED {username}", flush=True)
        return None


ALLOWED_ON_NONE = {
    ua.NodeId(ua.ObjectIds.GetEndpointsRequest_Encoding_DefaultBinary),
    ua.NodeId(ua.ObjectIds.FindServersRequest_Encoding_DefaultBinary),
}
original = uaprocessor.UaProcessor._process_message


async def guarded(self, typeid, requesthdr, seqhdr, body):
    policy = self._connection.security_policy
    if policy.URI.endswith("#None") and typeid not in ALLOWED_ON_NONE:
        raise uaprocessor.ServiceError(ua.StatusCodes.BadSecurityPolicyRejected)
    result = await original(self, typeid, requesthdr, seqhdr, body)
    if typeid == ua.NodeId(ua.ObjectIds.ActivateSessionRequest_Encoding_DefaultBinary):
        user = getattr(self.session, "user", None)
        mode = policy.Mode.name if hasattr(policy.Mode, "name") else str(policy.Mode)
        print(f"SESSION {policy.URI.split('#')[1]} {mode} {'li.wei' if user is not None else '?'}", flush=True)
    return result


uaprocessor.UaProcessor._process_message = guarded


async def main():
    folder = sys.argv[1]
    make_certificate(folder, "server", APP_URI)
    server = Server(user_manager=OneUser())
    await server.init()
    server.set_endpoint("opc.tcp://127.0.0.1:0/")
    server.set_server_name("asyncua secure test server")
    await server.set_application_uri(APP_URI)
    await server.load_certificate(f"{folder}/server.der")
    await server.load_private_key(f"{folder}/server-key.pem")
    server.set_security_policy([
        ua.SecurityPolicyType.Basic256Sha256_Sign, ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
        ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign, ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
        ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign, ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
    ])
    server.set_identity_tokens([ua.UserNameIdentityToken])
    idx = await server.register_namespace("urn:linemes:test:asyncua")
    folder_node = await server.nodes.objects.add_folder(ua.NodeId("Demo", idx), "Demo")
    await folder_node.add_variable(ua.NodeId("Demo.Double", idx), "Double", ua.Variant(3.25, ua.VariantType.Double))
    writable = await folder_node.add_variable(ua.NodeId("Demo.Writable", idx), "Writable", ua.Variant(0.0, ua.VariantType.Double))
    await writable.set_writable()
    await server.start()
    actual = server.bserver._server.sockets[0].getsockname()[1]
    print(f"READY {actual}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await server.stop()


asyncio.run(main())
