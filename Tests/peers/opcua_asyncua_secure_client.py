"""asyncua client peer for the OPCUA security interop tests: connects to our server securely.

Usage: opcua_asyncua_secure_client.py [--hold SECONDS] URL CERT_DER KEY_PEM USER PASSWORD POLICY/MODE [POLICY/MODE …]
POLICY is Basic256Sha256, Aes128Sha256RsaOaep or Aes256Sha256RsaPss; MODE Sign or SignAndEncrypt. For each
combination: fetches the endpoints (over None), opens a secure channel and session with the user name and
password, reads ns=2;s=Station.Temperature, writes ns=2;s=Station.Setpoint and disconnects. Prints
`READY 0`, then `OK <policy>/<mode> <value> <channel policy URI> <channel mode>` or `FAIL <policy>/<mode> <error>`
per combination, and `DONE`. With `--hold S` the channel asks for a 10 s token lifetime and each session
reads every 0.5 s for S seconds (asyncua renews the token at 75 %), printing `HELD <reads>` before the OK line.
"""
import asyncio
import logging
import sys

from asyncua import Client, ua

logging.basicConfig(level=logging.CRITICAL)


async def one(url, cert, key, user, password, combo, hold):
    policy, mode = combo.split("/")
    client = Client(url, timeout=5)
    if hold:
        client.secure_channel_timeout = 10000
    client.application_uri = "urn:linemes:test:client"
    client.set_user(user)
    client.set_password(password)
    try:
        await client.set_security_string(f"{policy},{mode},{cert},{key}")
        await client.connect()
        try:
            value = await client.get_node("ns=2;s=Station.Temperature").read_value()
            await client.get_node("ns=2;s=Station.Setpoint").write_value(ua.Variant(7.5, ua.VariantType.Double))
            if hold:
                reads = 0
                deadline = asyncio.get_running_loop().time() + hold
                while asyncio.get_running_loop().time() < deadline:
                    assert await client.get_node("ns=2;s=Station.Temperature").read_value() == value
                    reads += 1
                    await asyncio.sleep(0.5)
                print(f"HELD {reads}", flush=True)
            used = client.uaclient.security_policy
            print(f"OK {combo} {value} {used.URI} {used.Mode.name}", flush=True)
        finally:
            await client.disconnect()
    except Exception as error:  # the test reads the reason
        print(f"FAIL {combo} {type(error).__name__}: {error}".replace("\n", " "), flush=True)


async def main():
    args = sys.argv[1:]
    hold = 0.0
    if args[0] == "--hold":
        hold = float(args[1])
        args = args[2:]
    url, cert, key, user, password = args[0:5]
    print("READY 0", flush=True)
    for combo in args[5:]:
        await one(url, cert, key, user, password, combo, hold)
    print("DONE", flush=True)


asyncio.run(main())
