"""asyncua client peer: exercises our OPC UA server.

Usage: opcua_asyncua_client.py URL
Prints `READY 0`, then one line per step: BROWSE <json>, PATH <nodeid>, READ <json>, WRITE <json>, SUBSCRIBED,
CHANGE <value> for each data change of ns=2;s=Station.Counter, and DONE after 5 distinct values (or TIMEOUT).
"""
import asyncio
import json
import logging
import sys

from asyncua import Client, ua

logging.basicConfig(level=logging.ERROR)


class Handler:
    def __init__(self):
        self.values = []

    def datachange_notification(self, node, val, data):
        self.values.append(val)
        print(f"CHANGE {val}", flush=True)


async def main():
    url = sys.argv[1]
    print("READY 0", flush=True)
    client = Client(url, timeout=5)
    await client.connect()
    try:
        children = await client.nodes.objects.get_children()
        names = [(await c.read_browse_name()).Name for c in children]
        print("BROWSE " + json.dumps(names), flush=True)
        node = await client.nodes.objects.get_child(["2:Station", "2:Temperature"])
        print(f"PATH {node.nodeid.to_string()}", flush=True)
        values = []
        for nid in ["ns=2;s=Station.Temperature", "ns=2;i=1007", "ns=2;s=Station.Name", "ns=2;s=Station.Flags"]:
            values.append(await client.get_node(nid).read_value())
        state = await client.nodes.server_state.read_value()
        ns = await client.get_namespace_array()
        try:
            await client.get_node("ns=2;s=Nope").read_value()
            missing = "Good"
        except ua.UaStatusCodeError as e:
            missing = type(e).__name__
        print("READ " + json.dumps({"values": values, "state": int(state), "ns": ns, "missing": missing}), flush=True)
        setpoint = client.get_node("ns=2;s=Station.Setpoint")
        await setpoint.write_value(ua.Variant(12.5, ua.VariantType.Double))
        back = await setpoint.read_value()
        try:
            await client.get_node("ns=2;s=Station.Temperature").write_value(ua.Variant(1.0, ua.VariantType.Double))
            ro = "Good"
        except ua.UaStatusCodeError as e:
            ro = type(e).__name__
        print("WRITE " + json.dumps({"back": back, "readonly": ro}), flush=True)
        handler = Handler()
        sub = await client.create_subscription(50, handler)
        await sub.subscribe_data_change(client.get_node("ns=2;s=Station.Counter"), sampling_interval=20)
        print("SUBSCRIBED", flush=True)
        for _ in range(100):
            if len(set(handler.values)) >= 5:
                print("DONE", flush=True)
                break
            await asyncio.sleep(0.1)
        else:
            print("TIMEOUT", flush=True)
        await sub.delete()
    finally:
        await client.disconnect()
    print("CLOSED", flush=True)


asyncio.run(main())
