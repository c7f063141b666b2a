"""``truststack policy``: create, show, list, delete, test and lint access policies."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from trust.cli.common import emit, emit_table, output_option, read_value, run, terminal_safe
from trust.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from policies import Environment, Policy
    from trust.node.files import NodePaths
    from trust.storage.policies import SqlPolicyRepository

DEFAULT_NODE = "default"
T = TypeVar("T")


def _with_store(use: Callable[[SqlPolicyRepository], Awaitable[T]]) -> T:
    """``use`` the home's policy repository (the storage is closed afterwards)."""
    from trust.storage import open_storage

    async def go() -> T:
        async with open_storage() as storage:
            return await use(storage.policies)

    return run(go())


def _target(resource: str | None, resource_type: str | None) -> dict[str, Any]:
    if (resource is None) == (resource_type is None):
        raise UsageError("give exactly one of --resource and --resource-type")
    return {"resource": resource, "resource_type": resource_type}


def _describe(resource: str | None, resource_type: str | None, node: str) -> str:
    what = f"resource {resource}" if resource is not None else f"resource type {resource_type}"
    return f"{what} at node {node}"


def _require_node(node: str) -> None:
    """Refuse to write policies for a node that does not exist (a typo would store them where
    no node reads them). The default scope needs no node."""
    if node == DEFAULT_NODE:
        return
    from trust.node.files import NodePaths

    if not NodePaths(node).exists():
        raise NotFoundError(f"no node named {node}: create it first (truststack node create "
                            f"{node}) or leave out --at for the default scope")


def _node_paths(node: str) -> NodePaths | None:
    """The files of node ``node``, or ``None`` when there is no such node."""
    from trust.node.files import NodePaths

    try:
        paths = NodePaths(node)
    except UsageError:  # a scope name that is no node name
        return None
    return paths if paths.exists() else None


def _reload(node: str) -> bool:
    """Tell node ``node``, if it is running, to read its policies again (it checks messages
    against the copy it holds in memory); ``False`` when it is not running (it reads them when
    it starts)."""
    from trust.errors import TrustError
    from trust.node.control_client import ControlClient, NodeNotRunningError

    paths = _node_paths(node)
    if paths is None or not paths.is_running():
        return False
    try:
        ControlClient.for_node(node).request("policy.reload", timeout=10.0)
    except NodeNotRunningError:
        if paths.is_running():
            raise TrustError(f"the policy is stored, but node {node} did not reload its "
                             f"policies; restart it (truststack node stop {node}, then node "
                             "start)") from None
        return False
    return True


def policy_terminal_text(text: str) -> str:
    """Policy-language text (a canonical expression, a warning or an explanation that quotes
    one) for a terminal, escaped once: a character a terminal would act on (a C1 control such
    as CSI, a bidi override, a line separator; see :func:`~trust.cli.common.terminal_safe`)
    is written as the policy escape ``\\u{hex}``, so the line is still the same policy, and
    backslashes, already escapes of the policy language (``\\u{1b}``, ``\\n``), stay as
    they are."""
    if terminal_safe(text, backslash=False) == text:
        return text
    return "".join(c if terminal_safe(c, backslash=False) == c else f"\\u{{{ord(c):x}}}"
                   for c in text)


def _parse(text: str) -> Policy:
    from policies import Policy

    return Policy.parse(text)


def _target_options(f: Any) -> Any:
    f = click.option("--at", "node", default=DEFAULT_NODE, show_default=True, metavar="NODE",
                     help="The node whose policies to use.")(f)
    f = click.option("--resource-type", metavar="TYPE",
                     help="A resource type (e.g. tcp-outlet).")(f)
    return click.option("--resource", metavar="NAME", help="A resource name.")(f)


@click.group("policy")
def cli() -> None:
    """Attribute-based access policies: which identities may reach which resource.

    A policy is written in the boolean form (web and not (db or ops), role="admin") or as an
    s-expression ((and (= subject.role "admin") (= resource.env "prod"))). It allows only when
    it evaluates to true; a missing attribute makes a comparison unknown, which denies.

    \b
    Examples:
      truststack policy create --resource-type tcp-outlet --allow 'role="admin"'
      truststack policy test --allow '(>= subject.level 3)' --env subject.level=5 --explain
      truststack policy lint '(and (= subject.role "admin") (= resource.env "prod"))'
    """


@cli.command("create")
@_target_options
@click.option("--allow", "expression", metavar="EXPR",
              help="The policy text, or @PATH to read it from a file.")
@click.option("--file", "file", metavar="PATH", help="Read the policy text from this file.")
@output_option
def create(resource: str | None, resource_type: str | None, node: str, expression: str | None,
           file: str | None, output: str) -> None:
    """Set the policy of a resource or of a resource type (replacing any previous one).

    \b
    Examples:
      truststack policy create --resource web --allow 'component.web or role="admin"'
      truststack policy create --resource-type tcp-outlet --at n1 \\
          --allow '(= subject.has_credential true)'
    """
    key = _target(resource, resource_type)
    _require_node(node)
    policy = _parse(read_value(expression, file, what="policy (--allow)"))
    entry = _with_store(lambda s: s.set_policy(policy, scope=node, **key))
    warnings = [str(w) for w in policy.lint()]
    data = {**entry.to_dict(), "warnings": warnings, "reloaded": _reload(node)}
    if output == "plain":
        for w in warnings:
            click.echo(f"warning: {policy_terminal_text(w)}", err=True)
    emit(output, data, f"Set the policy of {_describe(resource, resource_type, node)}: "
                       f"{policy_terminal_text(policy.text)}")


@cli.command("show")
@_target_options
@output_option
def show(resource: str | None, resource_type: str | None, node: str, output: str) -> None:
    """Show the policy stored for exactly this resource or resource type.

    \b
    Example:
      truststack policy show --resource-type tcp-outlet --output json
    """
    key = _target(resource, resource_type)
    entry = _with_store(lambda s: s.get_policy(scope=node, **key))
    if entry is None:
        raise NotFoundError(f"no policy for {_describe(resource, resource_type, node)}")
    emit(output, entry.to_dict(), policy_terminal_text(entry.policy.text))


@cli.command("list")
@click.option("--at", "node", default=DEFAULT_NODE, show_default=True, metavar="NODE",
              help="The node whose policies to list.")
@output_option
def list_(node: str, output: str) -> None:
    """List the policies of a node: resources first, then resource types.

    \b
    Example:
      truststack policy list --at n1 --output json
    """
    entries = _with_store(lambda s: s.list_policies(scope=node))
    if output == "json":
        emit(output, [e.to_dict() for e in entries])
        return
    emit_table(output, [{"kind": e.kind, "name": e.name,
                         "expression": policy_terminal_text(e.policy.text)} for e in entries],
               ["kind", "name", "expression"], escaped=("expression",))


@cli.command("delete")
@_target_options
@output_option
def delete(resource: str | None, resource_type: str | None, node: str, output: str) -> None:
    """Delete the policy of a resource or of a resource type.

    \b
    Example:
      truststack policy delete --resource web
    """
    key = _target(resource, resource_type)
    if not _with_store(lambda s: s.delete_policy(scope=node, **key)):
        raise NotFoundError(f"no policy for {_describe(resource, resource_type, node)}")
    data = {"deleted": True, "node": node, **key, "reloaded": _reload(node)}
    emit(output, data, f"Deleted the policy of {_describe(resource, resource_type, node)}")


def _split(assignment: str, flag: str) -> tuple[str, str]:
    name, eq, value = assignment.partition("=")
    if not eq or not name:
        raise UsageError(f"{flag} expects NAME=VALUE, got {assignment!r}")
    return name.strip(), value


def _number(text: str, what: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{what} must be unix seconds, got {text!r}") from None


def _environment(assignments: tuple[str, ...], schema_items: tuple[str, ...],
                 time_: str | None, resource: str | None,
                 resource_type: str | None) -> Environment:
    from policies import Environment

    seen: set[str] = set()
    args: dict[str, Any] = {}
    maps: dict[str, Any] = {"subject": {}, "resource": {}, "action_attributes": {},
                                       "env": {}}
    if resource is not None:
        args["resource_id"] = resource
    if resource_type is not None:
        args["resource_type"] = resource_type
    for item in assignments:
        name, value = _split(item, "--env")
        if name in seen:
            raise UsageError(f"--env {name} is given twice")
        seen.add(name)
        ns, dot, attr = name.partition(".")
        if not dot or not attr or ns not in ("subject", "resource", "action", "env"):
            raise UsageError(f"--env {name}: names start with subject., resource., action. or "
                             "env. (e.g. subject.role=admin)")
        if name == "subject.identifier":
            args["identifier"] = value
        elif name == "subject.has_credential":
            if value not in ("true", "false"):
                raise UsageError("--env subject.has_credential must be true or false")
            args["has_credential"] = value == "true"
        elif name == "resource.id":
            args["resource_id"] = value
        elif name == "resource.type":
            args["resource_type"] = value
        elif name == "action.id":
            args["action"] = value
        elif name == "env.now":
            args["now"] = _number(value, "--env env.now")
        else:
            maps["action_attributes" if ns == "action" else ns][attr] = value
    if time_ is not None:
        if "now" in args:
            raise UsageError("give the time either with --time or with --env env.now")
        args["now"] = _number(time_, "--time")
    schema = dict(_split(s, "--schema") for s in schema_items)
    if schema:
        from policies.environment import check_schema

        args["schema"] = check_schema(schema)
    return Environment.build(**args, **{k: v for k, v in maps.items() if v})


@cli.command("test")
@click.option("--allow", "expression", metavar="EXPR",
              help="The policy text to test, or @PATH to read it from a file.")
@click.option("--file", "file", metavar="PATH", help="Read the policy text from this file.")
@click.option("--resource", metavar="NAME",
              help="Test the stored policy of this resource (else of its --resource-type).")
@click.option("--resource-type", metavar="TYPE", help="The resource's type.")
@click.option("--at", "node", default=DEFAULT_NODE, show_default=True, metavar="NODE",
              help="The node whose stored policies to test.")
@click.option("--env", "assignments", multiple=True, metavar="NAME=VALUE",
              help="Set one name of the environment, e.g. subject.role=admin (repeatable).")
@click.option("--schema", "schema_items", multiple=True, metavar="ATTR=TYPE",
              help="Type a subject attribute: string, int, float, bool or list (repeatable).")
@click.option("--time", "time_", metavar="UNIX_SECONDS", help="The value of env.now.")
@click.option("--identifier", metavar="I…",
              help="At a node: the channel peer's identifier (without it: a plain TCP message).")
@click.option("--attribute", "attributes", multiple=True, metavar="NAME=VALUE",
              help="At a node: a credential attribute of the peer (repeatable; implies "
                   "--has-credential).")
@click.option("--has-credential", is_flag=True,
              help="At a node: the peer holds a credential from the node's authority.")
@click.option("--explain", is_flag=True, help="Show every sub-result and why it failed.")
@output_option
def test(expression: str | None, file: str | None, resource: str | None,
         resource_type: str | None, node: str, assignments: tuple[str, ...],
         schema_items: tuple[str, ...], time_: str | None, identifier: str | None,
         attributes: tuple[str, ...], has_credential: bool, explain: bool, output: str) -> None:
    """Evaluate a policy against an environment (a dry run; nothing is stored).

    Values given with --env are strings, as credential attributes are; they still compare
    numerically with numbers. The exit code is 0 whether the policy allows or denies.

    With --resource and --at NODE naming a node, it reports the decision that node makes for
    a message from another node to that resource, defaults included (asked of the node when it
    runs): from a channel peer given by --identifier, --has-credential and --attribute, or,
    without --identifier, for a plain TCP message.

    \b
    Examples:
      truststack policy test --allow 'role="admin"' --env subject.role=admin
      truststack policy test --allow '(< subject.age 18)' --env subject.age=15 --output json
      truststack policy test --resource web --resource-type tcp-outlet \\
          --env subject.has_credential=true --explain
      truststack policy test --resource echo --at n1 --identifier I… --attribute role=admin
    """
    stored = resource is not None or resource_type is not None
    if resource is not None and expression is None and file is None \
            and _node_paths(node) is not None:
        if assignments or schema_items or explain:
            raise UsageError("at a node, give the subject with --identifier, --has-credential "
                             "and --attribute (not --env, --schema or --explain)")
        _node_decision(node, resource, resource_type, identifier, attributes, has_credential,
                       time_, output)
        return
    if identifier is not None:
        assignments = (*assignments, f"subject.identifier={identifier}")
    if has_credential or attributes:
        assignments = (*assignments, "subject.has_credential=true")
    assignments = (*assignments, *(f"subject.{a}" for a in attributes))
    if stored and (expression is not None or file is not None):
        raise UsageError("give either a policy (--allow/--file) or a stored one (--resource/"
                         "--resource-type), not both")
    data: dict[str, Any] = {}
    env = _environment(assignments, schema_items, time_, resource, resource_type)
    if stored:
        policy, matched = _stored_policy(resource, resource_type, node)
        data["policy"] = {"node": node, "resource": resource, "resource_type": resource_type,
                          "matched": matched}
    else:
        policy = _parse(read_value(expression, file, what="policy (--allow)"))
    if policy is None:
        data = {"allowed": False, "result": "false", "expression": None, **data,
                "reason": "no policy for this resource or its type",
                "environment": env.to_dict(), "dropped": list(env.dropped)}
        emit(output, data, f"denied: no policy for {_describe(resource, resource_type, node)}")
        return
    why = policy.explain(env)
    data = {"allowed": why.allowed, "result": why.outcome, "expression": policy.text, **data,
            "reason": why.reason, "environment": env.to_dict(), "dropped": list(env.dropped)}
    if explain:
        data["explain"] = why.to_dict()

    def plain() -> str:
        head = "allowed" if why.allowed else f"denied ({why.outcome}: {why.reason})"
        return policy_terminal_text(head) + ("\n" + "\n".join(
            policy_terminal_text(line) for line in why.render().split("\n")) if explain else "")

    emit(output, data, plain)


def _node_decision(node: str, resource: str, resource_type: str | None,
                   identifier: str | None, attributes: tuple[str, ...], has_credential: bool,
                   time_: str | None, output: str) -> None:
    """What node ``node`` decides for a message from another node to ``resource``."""
    params: dict[str, Any] = {"resource": resource, "resource_type": resource_type,
                              "identifier": identifier,
                              "attributes": dict(_split(a, "--attribute") for a in attributes),
                              "has_credential": True if has_credential else None}
    if time_ is not None:
        now = _number(time_, "--time")
        params["time"] = int(now)
    paths = _node_paths(node)
    assert paths is not None
    if paths.is_running():
        from trust.node.control_client import ControlClient

        data = ControlClient.for_node(node).request("policy.decide", params, timeout=10.0)
        data["running"] = True
    else:
        data = _decide_stopped(node, paths.require(), params)
        data["running"] = False

    def plain() -> str:
        head = "allowed" if data.get("allowed") is True else "denied"
        return f"{head} ({data.get('policy_source')}: {data.get('reason')})"

    emit(output, data, plain)


def _decide_stopped(node: str, config: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The decision a stopped node makes once started: its stored policies and authorities."""
    from trust.channels.access import NodeAccess, decision_request
    from trust.node.daemon import node_authorities

    resource, rtype, subject, now = decision_request(params)
    access = NodeAccess(node, authorities=[a.identifier for a in node_authorities(config)])
    _with_store(access.reload)
    decision = access.decide(resource, subject, resource_type=rtype, now=now)
    return {**decision.to_dict(), "node": node,
            "subject": None if subject is None else subject.to_dict()}


def _stored_policy(resource: str | None, resource_type: str | None,
                   node: str) -> tuple[Policy | None, str | None]:
    async def lookup(store: SqlPolicyRepository) -> tuple[Policy | None, str | None]:
        if resource is not None:
            entry = await store.get_policy(resource=resource, scope=node)
            if entry is not None:
                return entry.policy, "resource"
        if resource_type is not None:
            entry = await store.get_policy(resource_type=resource_type, scope=node)
            if entry is not None:
                return entry.policy, "resource_type"
        return None, None

    return _with_store(lookup)


@cli.command("lint")
@click.argument("expression", required=False, metavar="EXPR")
@click.option("--file", "file", metavar="PATH", help="Read the policy text from this file.")
@output_option
def lint(expression: str | None, file: str | None, output: str) -> None:
    """Check a policy: syntax errors with line:column, warnings for suspicious parts.

    Exit code 1 when it does not parse (the error on stderr; with --output json also
    {"valid": false, "error": {...}} on stdout).

    \b
    Examples:
      truststack policy lint 'web and not (db or ops)'
      truststack policy lint @policy.txt --output json
    """
    from policies import Policy, PolicyError

    text = read_value(expression, file, what="policy")
    try:
        policy = Policy.parse(text)
    except PolicyError as e:
        if output == "json":
            err = {"line": e.line, "column": e.column, "message": e.message}
            emit(output, {"valid": False, "error": err})
            sys.stdout.flush()
        raise
    warnings = policy.lint()
    data = {"valid": True, "grammar": policy.grammar, "expression": policy.text,
            "warnings": [w.to_dict() for w in warnings]}
    emit(output, data, "\n".join(policy_terminal_text(line) for line in
                                  [policy.text, *(f"warning: {w}" for w in warnings)]))
