"""An HTTPS notification receiver (Python's http.server in ssl, HTTP/1.1 keep-alive) for the
outbox's TLS tests.

Usage: https_receiver.py CERT_PEM KEY_PEM
Every POST gets 200 (`/wecom`, `/ding`: `{"errcode":0,"errmsg":"ok"}`, else `{"ok":true}`) and is
printed as one line `REQ <path> <Idempotency-Key> <client port>` (the port tells connections
apart); a client that gives up in the handshake prints `HANDSHAKE-FAILED <reason>`. `READY <port>`
once listening (127.0.0.1 only). Ends when its standard input closes.
"""
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()


def say(line):
    with lock:  # one thread prints at a time, so lines never run into each other
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client says close

    def setup(self):
        super().setup()
        # Nagle off, or each keep-alive answer waits for the client's delayed ACK (~40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        say(f"REQ {self.path} {self.headers.get('Idempotency-Key', '-')} {self.client_address[1]}")
        robot = self.path.startswith("/wecom") or self.path.startswith("/ding")
        body = b'{"errcode":0,"errmsg":"ok"}' if robot else b'{"ok":true}'
        self.send_response(200)
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
            say(f"HANDSHAKE-FAILED {error.reason}")


def main():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[1], sys.argv[2])
    server = Server(("127.0.0.1", 0), Handler)
    # The handshake happens in each connection's thread, on its first read, not in accept.
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"READY {server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
