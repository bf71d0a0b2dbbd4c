"""The journal as a stream for other machines: NATS JetStream (``jetstream``)."""
