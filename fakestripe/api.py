"""The generic API machinery: resource configuration, list/retrieve/update/delete, expand,
metadata. Resource-specific behaviour lives in the modules that register resources.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import versions
from .errors import StripeError, invalid, no_such, unknown_param
from .events import diff
from .params import as_bool, as_int, as_list

if TYPE_CHECKING:
    from .app import Call, Emulator

MAX_EXPAND_DEPTH = 4
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500
ALWAYS_ALLOWED = frozenset({"expand"})

Predicate = Callable[[dict[str, Any], Any], bool]


@dataclass
class Resource:
    """How one object type behaves in the generic paths."""

    object: str  # the `object` value, e.g. "checkout.session"
    path: str  # URL path under /v1, e.g. "checkout/sessions"
    prefix: str  # id prefix
    noun: str  # as in "No such customer: 'cus_x'"
    event: str | None = None  # event prefix: "customer" -> customer.created/updated/deleted
    create: Callable | None = None  # (emu, call, params) -> stored object
    create_params: frozenset[str] = frozenset()
    update_params: dict[str, Callable] = field(default_factory=dict)  # param -> coercer
    update_hook: Callable | None = None  # (emu, call, obj, params) custom update step
    hook_params: frozenset[str] = frozenset()  # extra update params the hook reads
    updatable: bool = True
    deletable: str | None = None  # "stub" keeps {"deleted": true}, "remove" forgets it
    delete_check: Callable | None = None  # (emu, obj) raises when Stripe refuses a delete
    filters: dict[str, Predicate] = field(default_factory=dict)
    default_filter: Predicate | None = None  # applied when a filter param is absent
    expandable: frozenset[str] = frozenset()  # dotted paths holding ids of other objects
    includable: dict[str, Callable] = field(default_factory=dict)  # (emu, obj) -> value
    search_fields: dict[str, Callable] | None = None  # field -> getter; None: no search
    has_created_filter: bool = True
    indexed: tuple[str, ...] = ()  # exact-match filters backed by a secondary index


REGISTRY: dict[str, Resource] = {}  # by object type
ROUTES: list[tuple[str, str, Callable]] = []  # (method, template, handler) beyond the generic


def register(resource: Resource) -> Resource:
    REGISTRY[resource.object] = resource
    return resource


BACKGROUND: list[Callable] = []  # (emu) -> seconds until it next has work, or None


def background(job: Callable) -> Callable:
    """Run `job(emu)` on the emulator's ticker (about once a second, sooner when woken)."""
    BACKGROUND.append(job)
    return job


def route(method: str, template: str, *, locked: bool = True) -> Callable:
    """Declare a handler `(emu, call, **path_params)` for a resource-specific endpoint.

    Handlers run holding the store lock unless `locked=False` (those that wait).
    """

    def decorate(handler: Callable) -> Callable:
        handler.locked = locked
        ROUTES.append((method, template, handler))
        return handler

    return decorate


# -- parameters -------------------------------------------------------------------------


def check_params(params: dict[str, Any], allowed: frozenset[str] | set[str]) -> None:
    for name in params:
        if name not in allowed and name not in ALWAYS_ALLOWED:
            raise unknown_param(name)


def require(params: dict[str, Any], name: str) -> Any:
    from .errors import missing_param

    value = params.get(name)
    if value is None or value == "":
        raise missing_param(name)
    return value


def merge_metadata(current: dict[str, str], value: Any, param: str = "metadata") -> dict:
    """Stripe's metadata update: merge; "" deletes a key; metadata="" clears them all."""
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid("Invalid object", param=param)
    result = dict(current)
    for key, item in value.items():
        key = str(key)
        if len(key) > METADATA_KEY_MAX:
            raise invalid(
                f"Metadata keys can have up to {METADATA_KEY_MAX} characters, but you passed in "
                f"a key that is {len(key)} characters. Invalid key: {key}",
                param=f"{param}[{key}]",
            )
        if "[" in key or "]" in key:
            raise invalid(
                f"Metadata keys cannot contain square brackets ('[' or ']'). Invalid key: {key}",
                param=f"{param}[{key}]",
            )
        if item is None or item == "":
            result.pop(key, None)
            continue
        if isinstance(item, dict | list):
            raise invalid("Invalid string", param=f"{param}[{key}]")
        item = str(item).lower() if isinstance(item, bool) else str(item)
        if len(item) > METADATA_VALUE_MAX:
            raise invalid(
                f"Metadata values can have up to {METADATA_VALUE_MAX} characters, but you "
                f"passed in a value that is {len(item)} characters. Invalid value: {item}",
                param=f"{param}[{key}]",
            )
        result[key] = item
    if len(result) > METADATA_MAX_KEYS:
        raise invalid(
            f"You can have up to {METADATA_MAX_KEYS} metadata keys, but this object would "
            f"have {len(result)}.",
            param=param,
        )
    return result


def text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def boolean(value: Any) -> bool:
    return as_bool({"v": value}, "v")


def integer(value: Any) -> int:
    return as_int({"v": value}, "v")


def string_list(value: Any) -> list:
    return as_list({"v": value}, "v")


# -- lookups ----------------------------------------------------------------------------


def fetch(emu: Emulator, resource: Resource, object_id: str, *, param: str | None = None):
    """The stored object, or Stripe's resource_missing (404 on a path, 400 as a param)."""
    obj = emu.store.get(object_id) if isinstance(object_id, str) else None
    if obj is None or obj.get("object") != resource.object:
        if param:
            raise no_such(resource.noun, str(object_id), param=param, status=400)
        raise no_such(resource.noun, str(object_id))
    return obj


def fetch_live(emu: Emulator, resource: Resource, object_id: str, *, param: str | None = None):
    obj = fetch(emu, resource, object_id, param=param)
    if obj.get("deleted"):
        raise no_such(resource.noun, object_id, param=param or "id", status=400 if param else 404)
    return obj


# -- rendering and expand -----------------------------------------------------------------


def expand_paths(params: dict[str, Any]) -> list[str]:
    paths = [str(p) for p in as_list(params, "expand")]
    for path in paths:
        if len(path.split(".")) > MAX_EXPAND_DEPTH:
            raise invalid(
                f"You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property. "
                f"Property: {path}",
                param="expand",
                code="property_expansion_max_depth",
            )
    return paths


def _tree(paths: list[str]) -> dict[str, dict]:
    root: dict[str, dict] = {}
    for path in paths:
        node = root
        for segment in path.split("."):
            node = node.setdefault(segment, {})
    return root


# Includable fields of objects that have no resource of their own, by object type (None for
# plain hashes such as a session's total_details): absent by default, rendered when expanded.
# The emulator has no discounts or taxes to show, so they render empty.
EMBEDDED_INCLUDABLE: dict[str | None, dict[str, Callable[[], Any]]] = {
    "item": {"discounts": list, "taxes": list},
    None: {"breakdown": lambda: {"discounts": [], "taxes": []}},
}


def _cannot(segment: str, in_list: bool) -> StripeError:
    message = f"This property cannot be expanded ({segment})."
    if in_list:
        message += f" You may want to try expanding 'data.{segment}' instead."
    return invalid(message, param="expand")


def _expand(
    emu: Emulator, obj: dict, tree: dict, owner: Resource | None, prefix: str, raw: dict | None
) -> None:
    """Expand `tree` in place in `obj` (a public copy); `raw` is the stored original."""
    kind = obj.get("object")
    if kind in ("list", "search_result") and not prefix:
        for segment, sub in tree.items():
            if segment != "data":
                raise _cannot(segment, in_list=True)
            for item in obj["data"]:
                stored = emu.store.get(item.get("id", "")) if isinstance(item, dict) else None
                _expand(emu, item, sub, REGISTRY.get(item.get("object")), "", stored)
        return
    for segment, sub in tree.items():
        dotted = prefix + segment
        if owner and segment in owner.includable and not prefix:
            obj[segment] = owner.includable[segment](emu, raw or obj)
        elif owner is None and segment in EMBEDDED_INCLUDABLE.get(obj.get("object"), {}):
            obj[segment] = obj.get(segment) or EMBEDDED_INCLUDABLE[obj.get("object")][segment]()
        elif owner and dotted in owner.expandable:
            value = obj.get(segment)
            if isinstance(value, str):
                target = emu.store.get(value)
                if target is not None:
                    obj[segment] = versions.public(target)
        elif owner and any(p.startswith(dotted + ".") for p in owner.expandable) and sub:
            if isinstance(obj.get(segment), dict):
                _expand(emu, obj[segment], sub, owner, dotted + ".", None)
            continue
        elif isinstance(obj.get(segment), dict) and sub:
            pass  # an embedded object (a price in an item, a list of items): descend below
        elif isinstance(obj.get(segment), dict) and obj[segment].get("object") == "list":
            pass  # an includable list the emulator always renders (a charge's refunds)
        elif isinstance(obj.get(segment), list) and not sub:
            # An array of ids (discounts on a line item or an invoice): each becomes its object.
            obj[segment] = [
                versions.public(emu.store.get(v)) if isinstance(v, str) and emu.store.get(v) else v
                for v in obj[segment]
            ]
            continue
        else:
            raise _cannot(segment, in_list=False)
        value = obj.get(segment)
        if sub and isinstance(value, dict):
            stored = emu.store.get(value.get("id", "")) if value.get("id") else None
            _expand(emu, value, sub, REGISTRY.get(value.get("object")), "", stored)


def render(emu: Emulator, call: Call, obj: dict[str, Any], paths: list[str] | None = None):
    out = versions.public(obj)
    if paths:
        _expand(emu, out, _tree(paths), REGISTRY.get(obj.get("object")), "", obj)
    # Events keep the version they were created at, whatever version reads them.
    if versions.is_legacy(call.api_version) and obj.get("object") != "event":
        out = versions.render(out, call.api_version, emu.store.get)
    return out


# -- generic operations -------------------------------------------------------------------


def create(emu: Emulator, call: Call, resource: Resource) -> dict:
    check_params(call.params, resource.create_params)
    paths = expand_paths(call.params)
    obj = resource.create(emu, call, call.params)
    return render(emu, call, obj, paths)


def retrieve(emu: Emulator, call: Call, resource: Resource, object_id: str) -> dict:
    obj = fetch(emu, resource, object_id)
    check_params(call.params, set())
    return render(emu, call, obj, expand_paths(call.params))


def created_matches(created: int, value: Any) -> bool:
    if isinstance(value, dict):
        checks = {
            "gt": created.__gt__,
            "gte": created.__ge__,
            "lt": created.__lt__,
            "lte": created.__le__,
        }
        for op in value:
            if op not in checks:
                raise invalid(f"Received unknown parameter: created[{op}]", param=f"created[{op}]")
            if not checks[op](as_int(value, op)):
                return False
        return True
    return created == as_int({"created": value}, "created")


def _lower_bound(value: Any) -> int | None:
    if isinstance(value, dict):
        bounds = [as_int(value, "gte")] if "gte" in value else []
        bounds += [as_int(value, "gt") + 1] if "gt" in value else []
        return max(bounds) if bounds else None
    return as_int({"created": value}, "created")


def paginate(
    emu: Emulator,
    call: Call,
    object_type: str,
    predicate,
    url: str,
    created: Any = None,
    positions: list[int] | None = None,
) -> dict[str, Any]:
    """One page, newest first, walking the type's creation-ordered index.

    `positions` (from a secondary index) narrows the walk to the objects that can match.
    """
    params = call.params
    limit = as_int(params, "limit", default=10)
    if limit < 1:
        raise invalid("This value must be greater than or equal to 1.", param="limit")
    if limit > 100:
        raise invalid("This value must be less than or equal to 100.", param="limit")
    after, before = params.get("starting_after"), params.get("ending_before")
    if after and before:
        raise invalid(
            "You may only specify one of these parameters: ending_before, starting_after.",
            param="ending_before",
        )
    index = emu.store.index(object_type)
    floor = _lower_bound(created) if created is not None else None
    noun = REGISTRY[object_type].noun if object_type in REGISTRY else object_type

    def accept(object_id: str) -> bool:
        obj = emu.store.objects[object_id]
        if created is not None and not created_matches(obj["created"], created):
            return False
        return predicate(obj)

    found: list[str] = []
    with emu.store.lock:
        cursor = after or before
        if cursor and cursor not in index.pos:
            raise no_such(
                noun, cursor, param="starting_after" if after else "ending_before", status=400
            )
        if before:
            for object_id in index.oldest_first(index.pos[before], positions):
                if accept(object_id):
                    found.append(object_id)
                    if len(found) > limit:
                        break
            has_more = len(found) > limit
            found = list(reversed(found[:limit]))
        else:
            start = index.pos[after] if after else None
            for object_id in index.newest_first(start, positions):
                obj = emu.store.objects[object_id]
                if floor is not None and obj["created"] < floor:
                    break  # the index is in creation order: nothing older can match
                if accept(object_id):
                    found.append(object_id)
                    if len(found) > limit:
                        break
            has_more = len(found) > limit
            found = found[:limit]
        data = [versions.public(emu.store.objects[i]) for i in found]
    page = {"object": "list", "data": data, "has_more": has_more, "url": url}
    paths = expand_paths(params)
    if paths:
        _expand(emu, page, _tree(paths), None, "", None)
    if versions.is_legacy(call.api_version) and object_type != "event":
        page = versions.render(page, call.api_version, emu.store.get)
    return page


def embedded_page(call, data: list, url: str) -> dict[str, Any]:
    """Pagination over a short embedded list (lines of an invoice or a session)."""
    limit = as_int(call.params, "limit", default=10)
    if not 1 <= limit <= 100:
        raise invalid("This value must be between 1 and 100.", param="limit")
    ids = [d["id"] for d in data]
    after, before = call.params.get("starting_after"), call.params.get("ending_before")
    start = ids.index(after) + 1 if after in ids else 0
    end = ids.index(before) if before in ids else len(ids)
    if before:
        window = data[max(end - limit, 0) : end]
        has_more = end - limit > 0
    else:
        window = data[start : start + limit]
        has_more = start + limit < len(data)
    page = {"object": "list", "data": versions.public(window), "has_more": has_more, "url": url}
    return page


def list_objects(emu: Emulator, call: Call, resource: Resource) -> dict[str, Any]:
    params = call.params
    allowed = {"limit", "starting_after", "ending_before", *resource.filters}
    if resource.has_created_filter:
        allowed.add("created")
    check_params(params, allowed)
    active = [
        (resource.filters[name], params[name])
        for name in resource.filters
        if name in params and params[name] != ""
    ]
    default = resource.default_filter

    def predicate(obj: dict[str, Any]) -> bool:
        if default is not None and not default(obj, params):
            return False
        return all(test(obj, value) for test, value in active)

    positions = None
    for name in resource.indexed:
        value = params.get(name)
        # Exact values only: an event type pattern such as "customer.*" walks everything.
        if isinstance(value, str) and value and not value.endswith("*"):
            positions = emu.store.index(resource.object).matching(name, value)
            break
    return paginate(
        emu,
        call,
        resource.object,
        predicate,
        f"/v1/{resource.path}",
        created=params.get("created"),
        positions=positions,
    )


def apply_update(
    emu: Emulator, call: Call, resource: Resource, obj: dict[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    """Apply simple fields and metadata, run the resource's hook, emit `<x>.updated`."""
    with emu.store.lock:
        before = versions.deepcopy(obj)
        for name, coerce in resource.update_params.items():
            if name in params:
                obj[name] = coerce(params[name])
        if "metadata" in params:
            obj["metadata"] = merge_metadata(obj["metadata"], params["metadata"])
        if resource.update_hook:
            resource.update_hook(emu, call, obj, params)
        changes = diff(before, obj)
        if changes:
            if "updated" in obj:
                obj["updated"] = max(obj["updated"], emu.now())
                changes = diff(before, obj)
            emu.store.save(obj)
            if resource.event:
                emu.events.emit(f"{resource.event}.updated", obj, call=call, previous=changes)
    return obj


def update(emu: Emulator, call: Call, resource: Resource, object_id: str) -> dict:
    params = call.params
    check_params(params, {*resource.update_params, "metadata", *resource.hook_params})
    obj = fetch_live(emu, resource, object_id)
    apply_update(emu, call, resource, obj, params)
    return render(emu, call, obj, expand_paths(params))


def delete(emu: Emulator, call: Call, resource: Resource, object_id: str) -> dict:
    check_params(call.params, set())
    with emu.store.lock:
        obj = fetch_live(emu, resource, object_id)
        if resource.delete_check:
            resource.delete_check(emu, obj)
        stub = {"id": object_id, "object": resource.object, "deleted": True}
        keep = stub if resource.deletable == "stub" else None
        snapshot = versions.deepcopy(obj)
        emu.store.unlist(object_id, keep=keep)
        if resource.event:
            emu.events.emit(f"{resource.event}.deleted", snapshot, call=call)
    return stub
