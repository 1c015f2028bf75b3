"""A notification receiver on Python's http.server (HTTP/1.1, keep-alive) for the outbox tests.

Usage: notify_receiver.py STALL_SECONDS [--ok] [--tls CERT_PEM KEY_PEM] [--port PORT]
Per path, the n-th request (0-based) gets: 0 → 500, 1 → no answer for STALL_SECONDS (the client
times out), 2 → the connection dropped without an answer, 3 and later → 200 (webhook: `{"ok":true}`,
`/wecom` and `/ding`: `{"errcode":0,"errmsg":"ok"}`); with `--ok` every request gets 200. With
`--tls` it speaks HTTPS with that certificate and key; a client that gives up in the handshake is
printed as `HANDSHAKE-FAILED <reason>`. Every request is printed as one line
`REQ <path> <Idempotency-Key> <action> <client port>` once its action is decided (the port tells
connections apart); `READY <port>` once listening (127.0.0.1 only; `--port` takes that port, else
a free one). Ends when its standard input closes.
"""
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = sys.argv[1:]
STALL = float(args[0]) if args and not args[0].startswith("--") else 2.0
ALWAYS_OK = "--ok" in args
TLS = args[args.index("--tls") + 1:args.index("--tls") + 3] if "--tls" in args else None
PORT = int(args[args.index("--port") + 1]) if "--port" in args else 0
counts = {}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client says close

    def setup(self):
        super().setup()
        # Nagle off, or each keep-alive answer waits for the client's delayed ACK (~40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        key = self.headers.get("Idempotency-Key", "-")
        with lock:  # one thread prints at a time, so lines never run into each other
            nth = counts.get(self.path, 0)
            counts[self.path] = nth + 1
            action = ["500", "stall", "drop"][nth] if nth < 3 and not ALWAYS_OK else "200"
            sys.stdout.write(f"REQ {self.path} {key} {action} {self.client_address[1]}\n")
            sys.stdout.flush()
        if action == "stall":
            time.sleep(STALL)
            self.close_connection = True
            return
        if action == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if action == "500":
            body = b"busy"
            status = 500
        else:
            body = b'{"ok":true}' if self.path.startswith("/hooks/") else b'{"errcode":0,"errmsg":"ok"}'
            status = 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        if isinstance(error, ssl.SSLError):
            with lock:
                sys.stdout.write(f"HANDSHAKE-FAILED {error.reason}\n")
                sys.stdout.flush()
        else:
            super().handle_error(request, client_address)


def main():
    server = Server(("127.0.0.1", PORT), Handler)
    if TLS:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(TLS[0], TLS[1])
        # The handshake happens in each connection's thread, on its first read, not in accept.
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"READY {server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
