"""asyncua client peer for the OPCUA security interop tests: connects to our server securely.

Usage: opcua_asyncua_secure_client.py URL CERT_DER KEY_PEM USER PASSWORD POLICY/MODE [POLICY/MODE …]
POLICY is Basic256Sha256, Aes128Sha256RsaOaep or Aes256Sha256RsaPss; MODE Sign or SignAndEncrypt. For each
combination: fetches the endpoints (over None), opens a secure channel and session with the user name and
password, reads ns=2;s=Station.Temperature, writes ns=2;s=Station.Setpoint and disconnects. Prints
`READY 0`, then `OK <policy>/<mode> <value> <channel policy URI> <channel mode>` or `FAIL <policy>/<mode> <error>`
per combination, and `DONE`.
"""
import asyncio
import logging
import sys

from asyncua import Client, ua

logging.basicConfig(level=logging.CRITICAL)


async def one(url, cert, key, user, password, combo):
    policy, mode = combo.split("/")
    client = Client(url, timeout=5)
    client.application_uri = "urn:linemes:test:client"
    client.set_user(user)
    client.set_password(password)
    try:
        await client.set_security_string(f"{policy},{mode},{cert},{key}")
        await client.connect()
        try:
            value = await client.get_node("ns=2;s=Station.Temperature").read_value()
            await client.get_node("ns=2;s=Station.Setpoint").write_value(ua.Variant(7.5, ua.VariantType.Double))
            used = client.uaclient.security_policy
            print(f"OK {combo} {value} {used.URI} {used.Mode.name}", flush=True)
        finally:
            await client.disconnect()
    except Exception as error:  # the test reads the reason
        print(f"FAIL {combo} {type(error).__name__}: {error}".replace("\n", " "), flush=True)


async def main():
    url, cert, key, user, password = sys.argv[1:6]
    print("READY 0", flush=True)
    for combo in sys.argv[6:]:
        await one(url, cert, key, user, password, combo)
    print("DONE", flush=True)


asyncio.run(main())
