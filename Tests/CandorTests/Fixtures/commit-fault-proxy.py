#!/usr/bin/env python3
"""A loopback TCP proxy in front of a PostgreSQL server that breaks one ingest transaction's
connection at its COMMIT, once, for the tests of what a node does when it cannot know whether a
batch committed.

usage: commit-fault-proxy.py TARGET_PORT MODE FAULT_FILE
  MODE after-commit:  the COMMIT reaches the server, its answer is dropped, the connection closed
  MODE before-commit: the connection is closed instead of sending the COMMIT
Prints the port it listens on (127.0.0.1), then serves until its stdin closes (the test stopped
it or ended), killed, or five minutes passed. Writes the fault it caused to FAULT_FILE."""
import os
import select
import socket
import sys
import threading
import time

target_port, mode, fault_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
fault_lock = threading.Lock()
fault_done = [False]


def take_fault():
    with fault_lock:
        if fault_done[0]:
            return False
        fault_done[0] = True
        return True


def pump(client):
    server = socket.create_connection(("127.0.0.1", target_port))
    armed = False
    try:
        while True:
            ready, _, _ = select.select([client, server], [], [], 60)
            if not ready:
                return
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                if sock is client:
                    if b"INSERT INTO ingest_batches" in data:
                        armed = True
                    elif armed and b"COMMIT" in data and take_fault():
                        if mode == "after-commit":
                            server.sendall(data)
                            # The server's answer (CommandComplete, ReadyForQuery) is read and dropped.
                            server.settimeout(10)
                            server.recv(65536)
                        with open(fault_file, "w") as f:
                            f.write(mode)
                        return
                    server.sendall(data)
                else:
                    client.sendall(data)
    except OSError:
        return
    finally:
        client.close()
        server.close()


def exit_when_stdin_closes():
    while sys.stdin.buffer.read(4096):
        pass
    os._exit(0)


threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(16)
print(listener.getsockname()[1], flush=True)
listener.settimeout(1)
deadline = time.time() + 300
while time.time() < deadline:
    try:
        conn, _ = listener.accept()
    except socket.timeout:
        continue
    conn.settimeout(None)
    threading.Thread(target=pump, args=(conn,), daemon=True).start()
