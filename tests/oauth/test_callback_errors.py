"""The loopback callback answers unreadable requests with its own hardened page, then keeps waiting."""

import socket
import threading

from authsome.flows.callback import LoopbackCallback


def test_unparsable_request_gets_our_headers_and_the_real_redirect_still_works():
    cb = LoopbackCallback(0)
    outcome = {}
    waiter = threading.Thread(target=lambda: outcome.setdefault("r", cb.wait("the-state", 10)), daemon=True)
    waiter.start()
    with socket.create_connection(("127.0.0.1", cb.port), timeout=5) as s:
        s.sendall(b"GARBAGE\x00<script>alert(1)</script> HTTP/9\r\n\r\n")
        reply = s.recv(4096).decode(errors="replace")
    assert reply.startswith("HTTP/1.0 400")
    assert "Content-Security-Policy: default-src 'none'" in reply and "Cache-Control: no-store" in reply
    assert "<script>" not in reply
    with socket.create_connection(("127.0.0.1", cb.port), timeout=5) as s:
        s.sendall(f"GET /callback?code=abc&state=the-state HTTP/1.1\r\nHost: 127.0.0.1:{cb.port}\r\n\r\n".encode())
        assert s.recv(4096).startswith(b"HTTP/1.0 200")
    waiter.join(10)
    assert outcome["r"].code == "abc" and outcome["r"].state_ok
