"""Tiny MQTT capture proxy: listen on LPORT, forward to UPORT, log each MQTT packet in hex."""
import socket, threading, sys, itertools
LPORT, UPORT, LOG = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
counter = itertools.count(1)

def split_packets(buf):
    out = []
    while len(buf) >= 2:
        mult, val, i = 1, 0, 1
        while True:
            if i >= len(buf):
                return out, buf
            b = buf[i]; val += (b & 0x7F) * mult; mult *= 128; i += 1
            if b & 0x80 == 0:
                break
        total = i + val
        if len(buf) < total:
            return out, buf
        out.append(buf[:total]); buf = buf[total:]
    return out, buf

def pump(src, dst, conn, direction):
    buf = b""
    while True:
        try:
            data = src.recv(65536)
        except OSError:
            data = b""
        if not data:
            try: dst.shutdown(socket.SHUT_WR)
            except OSError: pass
            return
        buf += data
        pkts, buf = split_packets(buf)
        with lock, open(LOG, "a") as f:
            for p in pkts:
                f.write(f"{conn} {direction} {p.hex()}\n")
        dst.sendall(data)

srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", LPORT)); srv.listen(16)
while True:
    c, _ = srv.accept()
    u = socket.create_connection(("127.0.0.1", UPORT))
    n = next(counter)
    threading.Thread(target=pump, args=(c, u, n, "C>S"), daemon=True).start()
    threading.Thread(target=pump, args=(u, c, n, "S>C"), daemon=True).start()
