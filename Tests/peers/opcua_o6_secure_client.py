"""o6 (open62541) client peer for the OPCUA security interop tests: connects to our server securely.

Usage: opcua_o6_secure_client.py URL CERT_DER KEY_PEM USER PASSWORD POLICY/MODE [POLICY/MODE …]
POLICY is Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss; MODE Sign or SignAndEncrypt.
For each combination: opens a secure channel and session with the user name and password, reads
ns=2;s=Station.Temperature and disconnects. Prints `READY 0`, then `OK <policy>/<mode> <value>` or
`FAIL <policy>/<mode> <error>` per combination, and `DONE`. No event loop runs, so o6's calls are synchronous.
"""
import logging
import sys

logging.basicConfig(level=logging.DEBUG if "--debug" in sys.argv else logging.CRITICAL)
if "--debug" in sys.argv:
    sys.argv.remove("--debug")


def main():
    import o6  # prints a banner to stdout; READY comes after it

    url, cert, key, user, password = sys.argv[1:6]
    print("READY 0", flush=True)
    modes = {"Sign": 2, "SignAndEncrypt": 3}
    for combo in sys.argv[6:]:
        policy, mode = combo.split("/")
        try:
            client = o6.Client(url, certificate=cert, privateKey=key, securityMode=modes[mode],
                               securityPolicy=f"http://opcfoundation.org/UA/SecurityPolicy#{policy}",
                               applicationUri="urn:linemes:test:client", username=user, password=password)
            client.connect()
            try:
                value = client.read("ns=2;s=Station.Temperature")
                print(f"OK {combo} {value}", flush=True)
            finally:
                client.disconnect()
        except Exception as error:  # the test reads the reason
            print(f"FAIL {combo} {type(error).__name__}: {error}".replace("\n", " "), flush=True)
    print("DONE", flush=True)


main()
