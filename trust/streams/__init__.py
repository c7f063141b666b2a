"""Streams: ordered, durable logs of messages on a node (its database, or Kafka), consumer groups
that resume, and secure channels over pairs of streams (see ``docs/streams.md``).

* :mod:`trust.streams.messages` — the stream protocol's wire types;
* :mod:`trust.streams.service` — the stream service worker; :mod:`trust.streams.client` — the
  client, producer and consumer;
* :mod:`trust.streams.backend` — what a backend provides; :mod:`trust.streams.memory`,
  :mod:`trust.storage.streams` (SQLite, PostgreSQL), :mod:`trust.streams.kafka`;
  :mod:`trust.streams.catalog` — a node's streams across backends;
* :mod:`trust.streams.channel` — secure channels over two streams.
"""
