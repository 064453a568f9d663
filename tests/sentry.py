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
