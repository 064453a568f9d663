"""The real Sentry SDK sending to memory, for the tests of what crontabber tells Sentry."""

import json
from contextlib import contextmanager

import sentry_sdk
from sentry_sdk.transport import Transport


class MemoryTransport(Transport):
    """Keeps each envelope the SDK would send, as the JSON it would send."""

    def __init__(self, options=None):
        super().__init__(options)
        self.items = []  # (type, payload)

    def capture_envelope(self, envelope):
        for item in envelope.items:
            self.items.append((item.type, json.loads(item.get_bytes())))

    def flush(self, timeout, callback=None):
        pass

    def kill(self):
        pass

    def of_type(self, kind):
        return [payload for item_type, payload in self.items if item_type == kind]

    @property
    def events(self):
        return self.of_type("event")

    @property
    def checkins(self):
        return self.of_type("check_in")


@contextmanager
def sentry_in_memory(**options):
    """The SDK initialised with ``options`` for one test; yields the transport it sends to."""
    transport = MemoryTransport()
    sentry_sdk.init(dsn="https://public@sentry.invalid/1", transport=transport, **options)
    try:
        yield transport
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)
        sentry_sdk.get_isolation_scope().clear()


class Envelopes:
    """The envelopes a local HTTP server received from the SDK, as raw (decompressed) bytes."""

    def __init__(self):
        self.received: list[bytes] = []

    def all(self) -> bytes:
        sentry_sdk.flush(timeout=10)
        return b"\n".join(self.received)


@contextmanager
def sentry_over_http(**options):
    """The SDK initialised with ``options`` and the DSN of a Sentry stand-in on 127.0.0.1:
    what it sends goes over a real socket, as it would to Sentry. Yields its Envelopes."""
    import gzip
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    envelopes = Envelopes()

    class Ingest(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            envelopes.received.append(body)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ingest)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sentry_sdk.init(dsn=f"http://public@127.0.0.1:{server.server_address[1]}/1", transport_queue_size=1000, **options)
    try:
        yield envelopes
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)
        sentry_sdk.get_isolation_scope().clear()
        server.shutdown()
        server.server_close()
