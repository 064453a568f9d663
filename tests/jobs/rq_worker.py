"""The RQ worker the tests run in burst mode: RQ's own, without its command channel.

RQ's worker subscribes to a pubsub channel for remote commands, read by a thread that
blocks up to 60 s per read; at exit it unsubscribes and closes that connection, which can
wait for the read to end (rq/rq#1613), so a burst worker sometimes took a minute to exit
after its last job. The tests send no remote commands."""

from rq.worker import Worker


class BurstWorker(Worker):
    def subscribe(self):
        pass

    def unsubscribe(self):
        pass
