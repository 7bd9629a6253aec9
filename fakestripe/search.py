"""`GET /v1/<resource>/search`: the subset of Stripe's search query language the product uses.

Supported: `field:'value'` (exact; case-insensitive for text), `metadata['key']:'value'`,
`field~'sub'` (substring, 3+ characters), `field>N` `>=` `<` `<=` on numbers, `-` negation,
and clauses joined by AND or by OR (not both). Results are newest first; `next_page` is an
opaque cursor passed back as `page`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

from . import objects
from .api import Resource, _expand, _tree, check_params, expand_paths, require
from .errors import invalid
from .events import public
from .params import as_int

_CLAUSE = re.compile(
    r"""\s*(?P<neg>-)?
    (?:metadata\[(?P<mq>['"])(?P<mkey>.+?)(?P=mq)\]|(?P<field>[a-z_][a-z0-9_.]*))
    \s*(?P<op>:|~|>=|<=|>|<)\s*
    (?:'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|(?P<num>-?\d+(?:\.\d+)?)|(?P<null>null))""",
    re.VERBOSE,
)
_JOIN = re.compile(r"\s+(AND|OR)\s+")


def _malformed(query: str, detail: str) -> Exception:
    return invalid(
        f"Invalid query: {detail}. Query: {query}. Search query syntax is described at "
        "https://stripe.com/docs/search#search-query-language.",
        param="query",
    )


def parse(query: str, resource: Resource) -> Callable[[dict[str, Any]], bool]:
    clauses: list[Callable[[dict[str, Any]], bool]] = []
    joins: set[str] = set()
    position = 0
    while True:
        match = _CLAUSE.match(query, position)
        if not match:
            raise _malformed(query, f"could not parse a clause at character {position}")
        clauses.append(_clause(match, query, resource))
        position = match.end()
        if position == len(query.rstrip()):
            break
        join = _JOIN.match(query, position)
        if not join:
            raise _malformed(query, f"expected AND or OR at character {position}")
        joins.add(join.group(1))
        position = join.end()
    if len(joins) > 1:
        raise _malformed(query, "AND and OR cannot be combined in one query")
    if joins == {"OR"}:
        return lambda obj: any(test(obj) for test in clauses)
    return lambda obj: all(test(obj) for test in clauses)


def _clause(match: re.Match, query: str, resource: Resource) -> Callable[[dict], bool]:
    op = match["op"]
    value = match["sq"] if match["sq"] is not None else match["dq"]
    number = match["num"]
    if match["mkey"] is not None:
        key = match["mkey"]

        def get(obj: dict[str, Any]) -> Any:
            return obj.get("metadata", {}).get(key)

        text_field = False
    else:
        fields = resource.search_fields or {}
        if match["field"] not in fields:
            raise invalid(
                f"Field `{match['field']}` is an unsupported search field for resource "
                f"`{resource.path}`. See http://stripe.com/docs/search#query-fields-for-"
                f"{resource.path.replace('_', '-')} for a list of supported fields.",
                param="query",
            )
        get, text_field = fields[match["field"]], True
    if match["null"] is not None:
        test = _equals(get, None, False)
    elif op == ":":
        test = _equals(get, value if value is not None else number, text_field)
    elif op == "~":
        if value is None or len(value) < 3:
            raise _malformed(query, "substring matches need a quoted value of 3+ characters")
        test = lambda obj: value.lower() in str(get(obj) or "").lower()  # noqa: E731
    else:
        bound = float(number if number is not None else value or "nan")
        compare = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__}[op]

        def test(obj: dict[str, Any]) -> bool:
            actual = get(obj)
            return isinstance(actual, int | float) and compare(float(actual), bound)

    if match["neg"]:
        return lambda obj: not test(obj)
    return test


def _equals(get, expected: Any, text_field: bool) -> Callable[[dict], bool]:
    def test(obj: dict[str, Any]) -> bool:
        actual = get(obj)
        if expected is None:
            return actual is None
        if isinstance(actual, bool):
            return str(actual).lower() == str(expected).lower()
        if isinstance(actual, int | float):
            try:
                return float(actual) == float(expected)
            except ValueError:
                return False
        if actual is None:
            return False
        return actual.lower() == expected.lower() if text_field else actual == expected

    return test


def _encode(object_id: str) -> str:
    return base64.urlsafe_b64encode(object_id.encode()).decode()


def search(emu, call, resource: Resource) -> dict[str, Any]:
    params = call.params
    check_params(params, {"query", "limit", "page"})
    query = str(require(params, "query"))
    predicate = parse(query, resource)
    limit = as_int(params, "limit", default=10)
    if not 1 <= limit <= 100:
        raise invalid("This value must be between 1 and 100.", param="limit")
    index = emu.store.index(resource.object)
    start = None
    if params.get("page"):
        try:
            cursor = base64.urlsafe_b64decode(str(params["page"]).encode()).decode()
        except ValueError as exc:
            raise invalid("Invalid page token.", param="page") from exc
        if cursor not in index.pos:
            raise invalid("Invalid page token.", param="page")
        start = index.pos[cursor]
    found = []
    for object_id in index.newest_first(start):
        if predicate(emu.store.objects[object_id]):
            found.append(object_id)
            if len(found) > limit:
                break
    has_more = len(found) > limit
    found = found[:limit]
    result = objects.search_result(
        [public(emu.store.objects[i]) for i in found],
        f"/v1/{resource.path}/search",
        has_more=has_more,
        next_page=_encode(found[-1]) if has_more else None,
    )
    paths = expand_paths(params)
    if paths:
        _expand(emu, result, _tree(paths), None, "", None)
    return result
