"""``truststack stream`` against a real background node (always stopped, even on failure)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Cli, assert_one_line_error
from tests.fixtures.kafka import Broker
from tests.fixtures.nodes import stop_all_nodes as _stop_all


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """One running node for the module (both tests use streams of their own)."""
    home = tmp_path_factory.mktemp("streams-cli") / "home"
    cli = Cli(home)
    try:
        cli("node", "create", "s1")
        yield cli
    finally:
        _stop_all(home)


def test_stream_commands_end_to_end(node: Cli, broker: Broker) -> None:
    cli = node
    assert "1 partition(s), in sqlite" in cli("stream", "create", "orders", "--at", "s1").out
    assert "Pushed 3 message(s) to orders, from index 0" in cli(
        "stream", "push", "orders", "first", "second", "third\x1b[31m", "--at", "s1").out
    # plain output escapes what a terminal would act on
    assert cli("stream", "pull", "orders", "--at", "s1").out.splitlines() == [
        "first", "second", "third\\x1b[31m"]
    got = cli.json("stream", "pull", "orders", "--at", "s1", "--from-index", "1", "--limit", "1")
    assert got["records"] == [{"index": 1, "data_hex": b"second".hex(), "text": "second"}]
    assert got["next_index"] == 2
    # a group resumes where it stopped
    assert cli("stream", "pull", "orders", "--at", "s1", "--group", "g", "--limit", "2"
               ).out.splitlines() == ["first", "second"]
    assert cli("stream", "pull", "orders", "--at", "s1", "--group", "g").out.splitlines() == [
        "third\\x1b[31m"]
    assert cli("stream", "pull", "orders", "--at", "s1", "--group", "g").out == ""
    # a stream in Kafka, next to the one in the node's database
    topic = f"k{broker.port}"
    info = cli.json("stream", "create", topic, "--at", "s1", "--backend",
                    f"kafka://{broker.bootstrap}", "--partitions", "2")
    assert info == {"name": topic, "partitions": 2, "backend": f"kafka://{broker.bootstrap}"}
    cli("stream", "push", topic, "to-kafka", "--at", "s1", "--partition", "1")
    assert cli("stream", "pull", topic, "--at", "s1", "--partition", "1").out == "to-kafka"
    names = [s["name"] for s in cli.json("stream", "list", "--at", "s1")]
    assert names == sorted(["orders", topic])
    assert cli.json("stream", "show", "orders", "--at", "s1")["service"] == "stream_service"
    # the node restarts with its streams where they were
    cli("node", "stop", "s1")
    cli("node", "start", "s1")
    assert cli("stream", "pull", "orders", "--at", "s1", "--group", "g").out == ""
    assert cli("stream", "pull", topic, "--at", "s1", "--partition", "1").out == "to-kafka"
    cli("stream", "delete", topic, "--at", "s1")
    cli("stream", "delete", "orders", "--at", "s1")
    assert [s["name"] for s in cli.json("stream", "list", "--at", "s1")] == []


def test_stream_service_is_a_policy_resource(node: Cli) -> None:
    """The node decides messages to its stream service like any other resource: a plain TCP
    message is denied, a channel peer is allowed only once a policy says so."""
    cli = node
    ident = "I" + "ab" * 32

    def decide(*extra: str) -> dict[str, object]:
        return cli.json("policy", "test", "--resource", "stream_service", "--at", "s1", *extra)  # type: ignore[no-any-return]

    assert decide()["allowed"] is False
    assert decide("--identifier", ident)["allowed"] is True  # admitted by its listener
    cli("policy", "create", "--at", "s1", "--resource", "stream_service", "--allow",
        'subject.role = "sensor"')
    try:
        assert decide("--identifier", ident)["allowed"] is False
        assert decide("--identifier", ident, "--attribute", "role=sensor")["allowed"] is True
    finally:
        cli("policy", "delete", "--at", "s1", "--resource", "stream_service")


def test_stream_errors_are_one_line(node: Cli) -> None:
    cli = node
    before = cli.json("stream", "list", "--at", "s1")
    cli("stream", "create", "s", "--at", "s1")
    for args, needle in [
        (("stream", "create", "bad name", "--at", "s1"), "stream name"),
        (("stream", "create", "x", "--at", "s1", "--backend", "kafka://evil host:1"), "backend"),
        (("stream", "create", "x", "--at", "s1", "--backend", "http://x:1"), "backend"),
        (("stream", "create", "s", "--at", "s1", "--partitions", "2"), "exists"),
        (("stream", "create", "x", "--at", "s1", "--partitions", "65"), "65"),
        (("stream", "pull", "nope", "--at", "s1"), "no stream named nope"),
        (("stream", "push", "nope", "m", "--at", "s1"), "no stream named nope"),
        (("stream", "delete", "nope", "--at", "s1"), "no stream named nope"),
        (("stream", "pull", "s", "--at", "s1", "--group", "a b"), "group name"),
        (("stream", "list", "--at", "nonode"), "nonode"),
    ]:
        assert_one_line_error(cli(*args, ok=False), needle)
    assert cli.json("stream", "list", "--at", "s1") == [
        *before, {"name": "s", "partitions": 1, "backend": "sqlite"}]
    cli("stream", "delete", "s", "--at", "s1")
