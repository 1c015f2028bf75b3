"""A pymodbus 3.16 PLC for the Modbus adapter tests.

usage: modbus_plc.py --port P [--unit U] [--spec FILE] [--size N] [--silent]

--spec: JSON list of {"table": "hr|ir|coil|di", "address": N, "type": ..., "order": "abcd",
        "length": N, "value": ...}; values are encoded here with Python's struct, independently
        of the Swift encoder, following the contract's word-order rules.
--size: registers/bits per table (reads past it get exception 2, illegal data address).
--silent: accept TCP connections and never answer (a hung PLC).
Prints READY when listening; runs until killed.
"""
import argparse
import asyncio
import json
import socket
import struct
import sys


def registers_of(spec):
    kind = spec["type"]
    value = spec["value"]
    order = spec.get("order", "abcd")
    if kind == "string":
        length = spec["length"]
        raw = value.encode("ascii").ljust(((length + 1) // 2) * 2, b"\0")
        return [raw[i] << 8 | raw[i + 1] for i in range(0, len(raw), 2)]
    fmt = {"bool": ">H", "int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I",
           "float32": ">f", "float64": ">d"}[kind]
    if kind == "bool":
        value = 1 if value else 0
    raw = struct.pack(fmt, value)
    regs = [raw[i] << 8 | raw[i + 1] for i in range(0, len(raw), 2)]
    if len(regs) > 1:
        if order in ("cdab", "dcba"):
            regs.reverse()
        if order in ("badc", "dcba"):
            regs = [((r & 0xFF) << 8) | (r >> 8) for r in regs]
    return regs


def silent(port):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
    print("READY", flush=True)
    held = []
    while True:
        conn, _ = listener.accept()
        held.append(conn)  # read nothing, answer nothing


async def serve(args):
    from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
    from pymodbus.server import ModbusTcpServer

    def block():
        return ModbusSequentialDataBlock(1, [0] * args.size)

    device = ModbusDeviceContext(di=block(), co=block(), hr=block(), ir=block())
    context = ModbusServerContext(devices={args.unit: device}, single=False)
    server = ModbusTcpServer(context, address=("127.0.0.1", args.port))
    specs = json.load(open(args.spec)) if args.spec else []
    for spec in specs:
        table = spec["table"]
        if table in ("coil", "di"):
            fc, values = (5 if table == "coil" else 2), [bool(spec["value"])]
        else:
            fc, values = (3 if table == "hr" else 4), registers_of(spec)
        await server.context.async_setValues(args.unit, fc, spec["address"], values)
    task = asyncio.create_task(server.serve_forever())
    for _ in range(200):
        await asyncio.sleep(0.02)
        try:
            probe = socket.create_connection(("127.0.0.1", args.port), timeout=0.5)
            probe.close()
            break
        except OSError:
            continue
    print("READY", flush=True)
    await task


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--unit", type=int, default=1)
    parser.add_argument("--spec")
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--silent", action="store_true")
    args = parser.parse_args()
    if args.silent:
        silent(args.port)
    else:
        asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
