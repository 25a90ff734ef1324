"""The llhttp-based readers of ``authsome.proxy.http1``, fed raw bytes directly (and over a socketpair)."""

from __future__ import annotations

import socket
import threading

import httptools
import pytest

from authsome.proxy import wire
from authsome.proxy.http1 import END, MAX_HEAD_BYTES, Head, HeadTooLarge, RequestReader, ResponseReader


def events_of(reader) -> list:
    """The queued events in a comparable form: ("head", method or status, target) / body bytes / END."""
    out = []
    for event in reader.events:
        if isinstance(event, Head):
            out.append(("head", event.method or event.status, event.target))
        else:
            out.append(event)
    return out


def body_of(events) -> bytes:
    return b"".join(e for e in events if isinstance(e, bytes))


def feed_all(reader, *pieces: bytes):
    for piece in pieces:
        reader.feed(piece)
    return reader


def response_reader(method: bytes = b"GET") -> ResponseReader:
    reader = ResponseReader(None)
    reader.expect(method)
    return reader


# -- requests: framing that two parsers could disagree on is an error --------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        # Content-Length and Transfer-Encoding together (the classic CL.TE / TE.CL smuggling shape).
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
        # Two different Content-Length values, as two fields and as a list.
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\nabcd",
        # Transfer-Encoding whose last coding is not chunked (length unknowable in a request).
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
        # A bad chunk size.
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n",
        # obs-fold (a header continued on the next line) and bare LF line ends.
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\n\n",
        b"GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n",
        # A space before the colon, a NUL in a value.
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n",
    ],
    ids=[
        "cl-then-te",
        "te-then-cl",
        "two-content-lengths",
        "content-length-list",
        "te-chunked-not-last",
        "te-identity",
        "bad-chunk-size",
        "negative-chunk-size",
        "obs-fold",
        "bare-lf-everywhere",
        "bare-lf-in-header",
        "space-before-colon",
        "nul-in-value",
    ],
)
def test_ambiguous_or_malformed_request_is_a_parser_error(raw):
    reader = RequestReader(None)
    with pytest.raises(httptools.HttpParserError):
        reader.feed(raw)
    # Whatever the parser queued before the error, it never reached a complete message.
    assert END not in list(reader.events)


def test_errors_found_after_the_head_are_still_errors_when_fed_byte_by_byte():
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nQ\r\n"
    reader = RequestReader(None)
    with pytest.raises(httptools.HttpParserError):
        for i in range(len(raw)):
            reader.feed(raw[i : i + 1])
    assert END not in list(reader.events)


# -- the head size limit ------------------------------------------------------------------------------


def big_head(total: int) -> bytes:
    """A request head of exactly ``total`` bytes."""
    start, end = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ", b"\r\n\r\n"
    return start + b"a" * (total - len(start) - len(end)) + end


def test_head_over_the_limit_fed_in_pieces_is_head_too_large():
    head = big_head(MAX_HEAD_BYTES + 4096)
    reader = RequestReader(None)
    with pytest.raises(HeadTooLarge):
        for i in range(0, len(head), 1000):
            reader.feed(head[i : i + 1000])
    assert not any(isinstance(e, Head) for e in reader.events)


def test_many_small_headers_over_the_limit_is_head_too_large():
    reader = RequestReader(None)
    with pytest.raises(HeadTooLarge):
        reader.feed(b"GET / HTTP/1.1\r\nHost: a\r\n")
        for i in range(10_000):
            reader.feed(b"X-%d: %s\r\n" % (i, b"v" * 20))


def test_head_just_under_the_limit_is_accepted():
    head = big_head(MAX_HEAD_BYTES - 100)
    reader = RequestReader(None)
    for i in range(0, len(head), 1000):
        reader.feed(head[i : i + 1000])
    assert events_of(reader) == [("head", b"GET", b"/"), END]


def test_head_over_the_limit_completed_by_one_feed_is_head_too_large():
    reader = RequestReader(None)
    with pytest.raises(HeadTooLarge):
        reader.feed(big_head(MAX_HEAD_BYTES + 4096))


def test_head_limit_applies_to_the_second_request_on_a_connection():
    reader = RequestReader(None)
    reader.feed(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
    head = big_head(MAX_HEAD_BYTES + 40_000)
    with pytest.raises(HeadTooLarge):
        reader.feed(head[:60_000])
        for i in range(60_000, len(head), 1000):
            reader.feed(head[i : i + 1000])


@pytest.mark.parametrize("before", [b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n", b"x" * 5], ids=["pipelined", "body-end"])
def test_head_that_begins_inside_the_read_ending_the_previous_message_is_measured_whole(before):
    """The first 60 KB of the head arrive with the end of the previous message, the rest alone."""
    reader = RequestReader(None)
    if before.startswith(b"x"):
        reader.feed(b"POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nxxxxx")
    head = big_head(MAX_HEAD_BYTES + 8000)
    with pytest.raises(HeadTooLarge):
        reader.feed(before + head[:60_000])
        reader.feed(head[60_000:])


def test_small_heads_in_large_reads_are_accepted():
    """A read as large as the limit that ends one message and starts the next is not a large head."""
    reader = RequestReader(None)
    body = b"b" * (MAX_HEAD_BYTES - 200)
    reader.feed(b"POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body))
    reader.feed(body + b"GET /2 HTTP/1.1\r\nHo")
    reader.feed(b"st: a\r\n" + b"X-Pad: p\r\n" * 10 + b"\r\n")
    heads = [e for e in reader.events if isinstance(e, Head)]
    assert [h.target for h in heads] == [b"/1", b"/2"]


# -- requests: bodies, pipelining, CONNECT -----------------------------------------------------------------


def test_chunked_body_is_dechunked_with_extensions_and_trailers():
    reader = feed_all(
        RequestReader(None),
        b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"3;name=value;other\r\nabc\r\n",
        b"A\r\n0123456789\r\n",
        b"0\r\nX-Checksum: 1234\r\n\r\n",
    )
    events = list(reader.events)
    assert events[0].method == b"POST" and events[0].framing() == "chunked"
    assert body_of(events) == b"abc0123456789"
    assert events[-1] is END and events.count(END) == 1


def test_chunked_body_split_at_every_byte():
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n1\r\n!\r\n0\r\n\r\n"
    reader = RequestReader(None)
    for i in range(len(raw)):
        reader.feed(raw[i : i + 1])
    assert body_of(list(reader.events)) == b"hello!"
    assert list(reader.events)[-1] is END


def test_trailer_fields_are_not_added_to_the_heads_headers():
    reader = RequestReader(None)
    reader.feed(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    head = reader.events[0]
    assert [name for name, _ in head.headers] == [b"Host", b"Transfer-Encoding"]


def test_two_pipelined_requests_in_one_feed():
    reader = RequestReader(None)
    reader.feed(
        b"POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /3 HTTP/1.1\r\nHost: a\r\n"  # incomplete: waits for more
    )
    assert events_of(reader) == [("head", b"POST", b"/1"), b"abc", END, ("head", b"GET", b"/2"), END]
    reader.events.clear()
    reader.feed(b"\r\n")
    assert events_of(reader) == [("head", b"GET", b"/3"), END]


def test_a_request_hidden_in_a_body_stays_body():
    hidden = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
    reader = RequestReader(None)
    reader.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s" % (len(hidden), hidden))
    assert events_of(reader) == [("head", b"POST", b"/"), hidden, END]


def test_connect_with_early_bytes_keeps_them_in_upgraded():
    reader = RequestReader(None)
    reader.feed(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01\x00\x05hello")
    assert events_of(reader) == [("head", b"CONNECT", b"example.com:443"), END]
    assert reader.upgraded == b"\x16\x03\x01\x00\x05hello"
    reader.feed(b"more")  # no longer HTTP: kept, never parsed
    assert reader.upgraded.endswith(b"hellomore") and len(reader.events) == 2


def test_connect_without_early_bytes():
    reader = RequestReader(None)
    reader.feed(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert events_of(reader)[0] == ("head", b"CONNECT", b"example.com:443")
    assert not reader.upgraded


def test_request_with_upgrade_and_a_body_hands_the_body_over_as_upgraded_bytes():
    # llhttp's behaviour, and the reason the relay refuses such requests (400) instead of relaying them.
    reader = RequestReader(None)
    reader.feed(
        b"POST /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: 5\r\n\r\nhello"
    )
    assert events_of(reader) == [("head", b"POST", b"/up"), END]
    assert reader.upgraded == b"hello"


def test_http10_request_is_not_keep_alive_and_repeated_headers_keep_the_first():
    reader = RequestReader(None)
    reader.feed(b"GET / HTTP/1.0\r\nHost: a\r\nX-A: first\r\nx-a: second\r\n\r\n")
    head = reader.events[0]
    assert head.version == "1.0" and not head.keep_alive
    assert head.get(b"x-a") == b"first" and head.count(b"x-a") == 2 and head.count(b"host") == 1


# -- responses ----------------------------------------------------------------------------------------------


def test_response_to_head_with_content_length_has_no_body_and_the_next_response_follows():
    reader = response_reader(b"HEAD")
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    assert events_of(reader) == [("head", 200, b""), END]
    assert reader.events[0].get(b"content-length") == b"1000"
    assert reader.reusable and not reader.eof_delimited
    reader.events.clear()
    reader.expect(b"GET")
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert events_of(reader) == [("head", 200, b""), b"ok", END]
    assert reader.reusable


def test_response_to_head_split_across_reads_then_another_head():
    reader = response_reader(b"HEAD")
    for piece in (b"HTTP/1.1 200 OK\r\nContent-Le", b"ngth: 5\r\n\r", b"\n"):
        reader.feed(piece)
    assert events_of(reader) == [("head", 200, b""), END]
    reader.events.clear()
    reader.expect(b"HEAD")
    reader.feed(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert events_of(reader) == [("head", 404, b""), END]
    assert reader.reusable


@pytest.mark.parametrize("reused", [False, True], ids=["fresh", "reused"])
def test_response_to_head_followed_by_stray_bytes_is_not_reusable(reused):
    reader = response_reader(b"GET" if reused else b"HEAD")
    if reused:  # a complete exchange first, so the parser has been through a message
        reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        reader.events.clear()
        reader.expect(b"HEAD")
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    assert events_of(reader) == [("head", 200, b""), END]
    assert not reader.reusable


def test_unrequested_response_after_a_complete_one_does_not_answer_the_next_request():
    reader = response_reader(b"GET")
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")
    assert events_of(reader)[:3] == [("head", 200, b""), b"ok", END]
    for _ in range(3):
        reader.events.popleft()
    reader.expect(b"GET")
    assert not reader.reusable or not reader.events


def test_informational_responses_then_the_final_one():
    reader = response_reader(b"POST")
    reader.feed(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone"
    )
    assert events_of(reader) == [("head", 100, b""), END, ("head", 103, b""), END, ("head", 201, b""), b"done", END]
    assert reader.events[2].get(b"link") == b"</style.css>; rel=preload"


def test_informational_response_then_final_response_to_head():
    reader = response_reader(b"HEAD")
    reader.feed(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
    assert events_of(reader) == [("head", 103, b""), END]
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n")
    assert events_of(reader)[2:] == [("head", 200, b""), END]


def test_101_with_bytes_after_the_head_keeps_them_in_upgraded():
    reader = response_reader(b"GET")
    reader.feed(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi")
    events = list(reader.events)
    assert events_of(reader) == [("head", 101, b""), END]
    assert events[0].status == 101 and not reader.eof_delimited
    assert reader.upgraded == b"\x81\x02hi"
    reader.feed(b"\x81\x01!")
    assert reader.upgraded == b"\x81\x02hi\x81\x01!" and len(reader.events) == 2


def test_eof_delimited_response_ends_at_end_of_stream():
    reader = response_reader(b"GET")
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc")
    reader.feed(b"def")
    assert reader.eof_delimited
    assert events_of(reader) == [("head", 200, b""), b"abc", b"def"]
    assert reader.end_of_stream() is True
    assert events_of(reader)[-1] is END and not reader.reusable


def test_eof_during_a_length_delimited_body_is_not_an_end():
    reader = response_reader(b"GET")
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert reader.end_of_stream() is False
    assert END not in list(reader.events)


def test_eof_during_a_head_is_not_an_end():
    reader = response_reader(b"GET")
    reader.feed(b"HTTP/1.1 200 OK\r\nX-A: b")
    assert reader.end_of_stream() is False
    assert list(reader.events) == []


@pytest.mark.parametrize("status", [204, 304])
def test_204_and_304_with_content_length_are_bodiless(status):
    reader = response_reader(b"GET")
    reader.feed(b"HTTP/1.1 %d X\r\nContent-Length: 5\r\n\r\n" % status)
    assert events_of(reader) == [("head", status, b""), END]
    assert not reader.eof_delimited
    reader.events.clear()
    reader.expect(b"GET")
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    assert events_of(reader) == [("head", 200, b""), b"hello", END]


@pytest.mark.parametrize("status", [204, 304])
def test_204_and_304_without_framing_are_not_eof_delimited(status):
    reader = response_reader(b"GET")
    reader.feed(b"HTTP/1.1 %d X\r\n\r\n" % status)
    assert events_of(reader) == [("head", status, b""), END]
    assert not reader.eof_delimited and reader.reusable


def test_response_with_content_length_and_transfer_encoding_is_an_error():
    reader = response_reader(b"GET")
    with pytest.raises(httptools.HttpParserError):
        reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")


def test_response_with_a_non_chunked_transfer_encoding_ends_at_eof():
    reader = response_reader(b"GET")
    reader.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabcdef")
    assert reader.eof_delimited
    assert reader.end_of_stream() is True


def test_response_head_over_the_limit_is_head_too_large():
    reader = response_reader(b"GET")
    with pytest.raises(HeadTooLarge):
        reader.feed(b"HTTP/1.1 200 OK\r\n")
        for _ in range(MAX_HEAD_BYTES // 1000 + 2):
            reader.feed(b"X-Filler: " + b"f" * 988 + b"\r\n")


def test_garbage_instead_of_a_status_line_is_an_error():
    reader = response_reader(b"GET")
    with pytest.raises(httptools.HttpParserError):
        reader.feed(b"garbage garbage\r\n\r\n")
    assert reader.fed > 0


# -- next_event over a real socket -------------------------------------------------------------------------


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_next_event_ends_an_eof_delimited_body_at_close(pair):
    ours, theirs = pair
    reader = ResponseReader(ours)
    reader.expect(b"GET")
    theirs.sendall(b"HTTP/1.1 200 OK\r\n\r\nstreamed ")
    head = wire.next_event(reader, 5)
    assert head.status == 200 and reader.eof_delimited
    theirs.sendall(b"until close")
    theirs.shutdown(socket.SHUT_WR)
    body = b""
    while (event := wire.next_event(reader, 5)) is not END:
        body += event
    assert body == b"streamed until close"


def test_next_event_raises_peer_closed_for_a_truncated_body(pair):
    ours, theirs = pair
    reader = ResponseReader(ours)
    reader.expect(b"GET")
    theirs.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    theirs.shutdown(socket.SHUT_WR)
    assert wire.next_event(reader, 5).status == 200
    assert wire.next_event(reader, 5) == b"abc"
    with pytest.raises(wire.PeerClosed):
        wire.next_event(reader, 5)


def test_next_event_bounds_a_trickled_head_by_its_total_time(pair):
    ours, theirs = pair
    stop = threading.Event()

    def trickle():
        for byte in b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"z" * 1000:
            if stop.wait(0.05):
                return
            try:
                theirs.send(bytes([byte]))
            except OSError:
                return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        with pytest.raises(wire.PeerClosed):
            wire.next_event(RequestReader(ours), 0.5)  # each byte comes well within 0.5 s
    finally:
        stop.set()
        thread.join(5)


def test_next_event_returns_queued_events_without_reading(pair):
    ours, _ = pair
    reader = RequestReader(ours)
    reader.feed(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n")
    targets = []
    for _ in range(4):
        event = wire.next_event(reader, 0.2)  # nothing more arrives: the queue alone must answer
        if isinstance(event, Head):
            targets.append(event.target)
    assert targets == [b"/a", b"/b"]
