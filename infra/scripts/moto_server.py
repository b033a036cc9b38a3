"""moto server with each DynamoDB request applied atomically.

DynamoDB applies every request, and every TransactWriteItems as a whole,
atomically: a conditional write either sees and wins, or fails. moto's
threaded server interleaves requests, and a transaction that fails restores
table snapshots taken when it started, undoing writes other requests made
meanwhile. Serialising DynamoDB requests (in-memory and fast) restores the
semantics Smart Chat relies on (conditional claims, counters moved inside
transactions); other services, such as SQS long polls, stay concurrent.
"""

import threading

from moto.core.responses import BaseResponse
from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_dynamodb = threading.RLock()
_call_action = DynamoHandler.call_action if "call_action" in vars(DynamoHandler) else BaseResponse.call_action


def _one_at_a_time(self):
    with _dynamodb:
        return _call_action(self)


DynamoHandler.call_action = _one_at_a_time

if __name__ == "__main__":
    main()
