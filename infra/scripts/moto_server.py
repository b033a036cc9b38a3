"""moto server as the local stack runs it: SQS and EventBridge (and
DynamoDB, when someone points DynamoDB at it), with these corrections.

1. Each DynamoDB request is applied atomically. DynamoDB applies every
   request, and every TransactWriteItems as a whole, atomically: a
   conditional write either sees and wins, or fails. moto's threaded server
   interleaves requests, and a transaction that fails restores table
   snapshots taken when it started, undoing writes other requests made
   meanwhile. Serialising DynamoDB requests restores the semantics Smart
   Chat relies on; other services, such as SQS long polls, stay concurrent.

2. An SQS send costs what it touches, not the queue's depth. moto computes
   every attribute of the queue (the Approximate* counts among them, each a
   walk over every message with a datetime per message) several times per
   SendMessage, only to read ContentBasedDeduplication: with a few hundred
   messages queued a send took 30-60 ms. Sends now read the queue's
   attributes without the counts, and "now" is read from the clock directly.
   What a client sees is unchanged (GetQueueAttributes still counts).

3. A request finds its service without listing moto's package folder. For
   every request moto works out which service it is for under one global
   lock, listing and stat-ing its own package folder (a hundred-odd
   entries) on the way; concurrent requests queued behind it. The answer
   for a signed SQS, EventBridge or DynamoDB request depends only on the
   signature's region and service and the target header's prefix, so it is
   worked out once per such triple and remembered. werkzeug's line per
   request is not logged (errors still are).

4. A FIFO group's messages come back in order after a lost batch. When a
   batch was received and never deleted (its consumer crashed, or the
   answer to the receive was lost), its messages become visible together
   after the visibility timeout. moto clears a message's in-flight mark only
   when its loop reaches that message, and skips any message whose group
   still has an in-flight mark: so it delivered the group's *last* message
   first and the earlier ones a receive later. SQS delivers them in order.
   Every visible message's mark is now cleared before the loop.
   And two receives at once could both hand out one group: moto reads the
   groups in flight once, then walks the queue (again after each long-poll
   wait) without a lock, so a customer's later message was processed beside
   an earlier one and stored before it (one sender in sixty, on a loaded
   machine). Each walk now runs alone under the queue's lock, with the
   groups in flight read afresh; a long poll waits with the lock released.

5. A message sent while another is deleted is kept. moto's delete rebuilds
   the queue's message list without the lock its sends append under, so a
   message sent at that instant could vanish. Deletes now hold that lock.

6. A queue's visible messages are listed with one reading of the clock.
   moto lists them for every receive (and for every waiting receive each
   time a message is sent), reading the clock twice per message through two
   properties; with thousands queued that walk was most of moto's time.
   The same comparisons, one clock reading per walk.

moto is pinned in infra/requirements.txt; these patches are checked against
that version at start (a moto without the patched names fails loudly).
"""

import json
import logging
import threading
import time

import moto.sqs.models as sqs_models
from moto.core.responses import BaseResponse
from moto.core.utils import camelcase_to_underscores
from moto.dynamodb.responses import DynamoHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import main

# 1. One DynamoDB request at a time.
_dynamodb = threading.RLock()
_call_action = DynamoHandler.call_action if "call_action" in vars(DynamoHandler) else BaseResponse.call_action


def _one_at_a_time(self):
    with _dynamodb:
        return _call_action(self)


DynamoHandler.call_action = _one_at_a_time

# 2. Sends without counting the queue.
_COUNTS = {
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
}
_sending = threading.local()
_full_attributes = sqs_models.Queue.attributes.fget
_send_message = sqs_models.SQSBackend.send_message
_unix_time = sqs_models.unix_time


def _attributes(self):
    if not getattr(_sending, "active", False):
        return _full_attributes(self)
    # moto's Queue.attributes, less the counts.
    result = {}
    names = [a for a in self.BASE_ATTRIBUTES if a not in _COUNTS]
    if self.fifo_queue:
        names += self.FIFO_ATTRIBUTES
    if self.kms_master_key_id:
        names += self.KMS_ATTRIBUTES
    for attribute in names:
        result[attribute] = getattr(self, camelcase_to_underscores(attribute))
    if self.policy:
        result["Policy"] = self.policy
    if self.redrive_policy:
        result["RedrivePolicy"] = json.dumps(self.redrive_policy)
    for key in result:
        if isinstance(result[key], bool):
            result[key] = str(result[key]).lower()
    return result


def _send_without_counting(self, *args, **kwargs):
    _sending.active = True
    try:
        return _send_message(self, *args, **kwargs)
    finally:
        _sending.active = False


def _now(dt=None):
    return time.time() if dt is None else _unix_time(dt)


def _now_millis(dt=None):
    return _now(dt) * 1000.0


sqs_models.Queue.attributes = property(_attributes)
sqs_models.SQSBackend.send_message = _send_without_counting
sqs_models.unix_time = _now
sqs_models.unix_time_millis = _now_millis

# 3. The service of a signed request, found once.
_get_application = DomainDispatcherApplication.get_application
_REMEMBERED = {"sqs", "events", "dynamodb"}
_applications = {}


def _application(self, environ):
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/") if "Credential=" in auth else []
    if len(scope) < 5 or scope[3] not in _REMEMBERED or environ.get("PATH_INFO", "").startswith("/moto-api"):
        return _get_application(self, environ)
    key = (scope[2], scope[3], environ.get("HTTP_X_AMZ_TARGET", "").split(".", 1)[0])
    app = _applications.get(key)
    if app is None:
        app = _applications.setdefault(key, _get_application(self, environ))
    return app


DomainDispatcherApplication.get_application = _application

# 4. One receive at a time per queue; lost batches come back in order.
_receive_message = sqs_models.SQSBackend.receive_message


def _receive_in_order(self, queue_name, count, wait_seconds_timeout, *args, **kwargs):
    queue = self.get_queue(queue_name)
    # moto reads the FIFO groups in flight once, then walks the queue (and
    # walks again after a long poll's wait): two receives at once both
    # handed out the same group, a customer's later message processed beside
    # an earlier one. Each walk now runs alone under the queue's lock, with
    # the groups in flight read afresh; a long poll waits outside it.
    deadline = time.time() + wait_seconds_timeout
    while True:
        with queue._messages_lock:
            for message in [m for m in queue.pending_messages if m.visible]:
                queue.pending_messages.discard(message)
            result = _receive_message(self, queue_name, count, 0, *args, **kwargs)
            left = deadline - time.time()
            if result or left <= 0:
                return result
            # Releases the lock while waiting: sends go on.
            queue._messages_lock.wait(min(left, 1.0))


sqs_models.SQSBackend.receive_message = _receive_in_order

# 5. Deletes under the lock sends append under.
_delete_message = sqs_models.Queue.delete_message


def _delete_locked(self, receipt_handle):
    with self._messages_lock:
        return _delete_message(self, receipt_handle)


sqs_models.Queue.delete_message = _delete_locked

# 6. One clock reading per walk over a queue.


def _visible_messages(self):
    now = _now_millis()
    return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]


sqs_models.Queue.messages = property(_visible_messages)
logging.getLogger("werkzeug").setLevel(logging.WARNING)

if __name__ == "__main__":
    main()
