"""A local Pub/Sub emulator: a gRPC server the real google-cloud-pubsub clients talk to unchanged.

Use `PUBSUB_EMULATOR_HOST=127.0.0.1:PORT`. Start it with `python -m emulators.pubsub --port 8085`
or in-process with `emulators.pubsub.server.start_emulator()`.

Behaves like the service for: topics and subscriptions (CRUD, ModifyPushConfig), publish with fan-out
to every subscription that existed at publish time, Pull/StreamingPull with ack deadlines,
ModifyAckDeadline (0 nacks), redelivery after a deadline expires, retention, push delivery with the
wrapped JSON envelope, retry-policy back-off and dead-letter policies.

Deliberate differences from the real service:
- Limits are loosened for fast tests: ack deadlines of 1-9 s, retention under 10 minutes and
  `max_delivery_attempts` of 1-4 are accepted (the service requires 10-600 s, >= 10 min, 5-100).
- A nack without a retry policy is redelivered after 0.1 s (the service: "immediately").
- The push `Authorization` header carries an UNSIGNED fake OIDC token (`alg: none`) with the
  configured audience and service account email; it never passes signature verification.
- `CloudPubSubDeadLetterSourceTopicPublishTime` is RFC 3339.
- Not implemented: filters, message ordering guarantees, exactly-once delivery, snapshots/seek,
  schemas, BigQuery/Cloud Storage subscriptions, `no_wrapper` push, StreamingPull flow control on
  the server side (the client library applies its own), persistence (state lives in memory).
"""

from emulators.pubsub.server import RunningEmulator, start_emulator

__all__ = ["RunningEmulator", "start_emulator"]
