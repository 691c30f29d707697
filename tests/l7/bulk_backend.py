"""A bulk HTTP/1.1 backend for the large-transfer test (run as a script).

``POST /upload`` reads its Content-Length body and answers the byte count;
``GET /download?n=N`` answers N zero bytes. Plain blocking sockets, one thread per
connection, so that the proxy is what is measured.
"""

from __future__ import annotations

import socket
import sys
import threading

CHUNK = 1024 * 1024


def _serve(conn: socket.socket) -> None:
    with conn:
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ")
            pairs = (line.partition(":") for line in lines[1:])
            fields = {k.strip().lower(): v.strip() for k, _, v in pairs}
            if method == "POST":
                remaining = int(fields.get("content-length", "0")) - len(buffer)
                received = len(buffer)
                buffer = b""
                while remaining > 0:
                    data = conn.recv(min(CHUNK, remaining))
                    if not data:
                        return
                    remaining -= len(data)
                    received += len(data)
                body = str(received).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            else:
                size = int(target.partition("n=")[2] or "0")
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
                zeros = bytes(CHUNK)
                while size > 0:
                    n = min(size, CHUNK)
                    conn.sendall(zeros[:n])
                    size -= n


def main() -> None:
    server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    while True:
        conn, _ = server.accept()
        threading.Thread(target=_serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
