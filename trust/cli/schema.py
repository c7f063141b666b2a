"""``truststack schema``: create, show, list, delete credential schemas."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from trust.cli.common import emit, emit_table, output_option, run, terminal_safe

if TYPE_CHECKING:
    from trust.credentials.schemas import Schema
    from trust.storage.credentials import SqlSchemas

T = TypeVar("T")


def _with_schemas(use: Callable[[SqlSchemas], Awaitable[T]]) -> T:
    """``use`` the home's schema repository (the storage is closed afterwards)."""
    from trust.storage import open_storage

    async def go() -> T:
        async with open_storage() as storage:
            return await use(storage.schemas)

    return run(go())


def _plain(s: Schema) -> str:
    lines = [f"Schema: {s.id}"]
    if s.description:
        lines.append(f"Description: {terminal_safe(s.description)}")
    lines += [f"  {terminal_safe(n)}: {t.value}" for n, t in s.attributes]
    return "\n".join(lines)


@click.group("schema")
def cli() -> None:
    """Credential schemas: numbered lists of typed attributes (string, int, float, bool, list).

    Issuers check what they sign against a schema; verifiers read typed values through it.

    \b
    Examples:
      truststack schema create 7 --attribute role:string --attribute level:int
      truststack schema show 7 --output json
    """


@cli.command("create")
@click.argument("schema_id", metavar="ID")
@click.option("--attribute", "attributes", multiple=True, required=True, metavar="NAME:TYPE",
              help="An attribute and its type: string, int, float, bool or list (repeatable).")
@click.option("--description", default="", help="What the schema is for.")
@output_option
def create(schema_id: str, attributes: tuple[str, ...], description: str, output: str) -> None:
    """Create schema ID (an unsigned 64-bit integer) in this home.

    \b
    Example:
      truststack schema create 7 --attribute role:string --attribute level:int \\
          --attribute admin:bool --attribute groups:list
    """
    from trust.credentials.schemas import Schema

    schema = Schema.create(schema_id, list(attributes), description)
    _with_schemas(lambda s: s.add(schema, now=int(time.time())))
    emit(output, schema.to_json(), f"Created schema {schema.id}")


@cli.command("show")
@click.argument("schema_id", metavar="ID")
@output_option
def show(schema_id: str, output: str) -> None:
    """Show schema ID.

    \b
    Example:
      truststack schema show 7
    """
    from trust.credentials.schemas import check_schema_id
    from trust.errors import NotFoundError

    sid = check_schema_id(schema_id)
    schema = _with_schemas(lambda s: s.get(sid))
    if schema is None:
        raise NotFoundError(f"no schema {sid} (see: truststack schema list)")
    emit(output, schema.to_json(), lambda: _plain(schema))


@cli.command("list")
@output_option
def list_(output: str) -> None:
    """List the schemas of this home.

    Plain output: one line per schema, tab-separated: id, attributes (NAME:TYPE,...),
    description.

    \b
    Example:
      truststack schema list --output json
    """
    items = _with_schemas(lambda s: s.list())
    if output == "json":
        data: list[dict[str, Any]] = [s.to_json() for s in items]
        emit(output, data)
        return
    emit_table(output, [{"id": s.id, "attributes": ",".join(f"{n}:{t.value}" for n, t in s.attributes),
                         "description": s.description} for s in items],
               ("id", "attributes", "description"))


@cli.command("delete")
@click.argument("schema_id", metavar="ID")
@output_option
def delete(schema_id: str, output: str) -> None:
    """Delete schema ID (credentials that name it read as strings afterwards).

    \b
    Example:
      truststack schema delete 7
    """
    from trust.credentials.schemas import check_schema_id
    from trust.errors import NotFoundError

    sid = check_schema_id(schema_id)
    if not _with_schemas(lambda s: s.delete(sid)):
        raise NotFoundError(f"no schema {sid}")
    emit(output, {"deleted": sid}, f"Deleted schema {sid}")
