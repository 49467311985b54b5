"""Discord's message limits, checked the way Discord reports them, so bot bugs fail loudly in tests."""

from __future__ import annotations

from typing import Any

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_ROWS = 5
MAX_ROW_ITEMS = 5
MAX_CUSTOM_ID = 100
MAX_LABEL = 80
IS_COMPONENTS_V2 = 1 << 15
# Uploads: all files of one request together, for a guild without boosts (premium_tier 0, as
# the fake's guilds are; discord.py's DEFAULT_FILE_SIZE_LIMIT_BYTES), and files per message.
UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024
MAX_FILES = 10

BUTTON = 2
ACTION_ROW = 1
SELECTS = (3, 5, 6, 7, 8)
# Embed field -> maximum length, per Discord's documented embed limits.
EMBED_LIMITS = {"title": 256, "description": 4096}


def error_body(code: int, message: str, errors: dict | None = None) -> dict:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return body


class FormErrors:
    """Collects field errors into Discord's nested {"a": {"0": {"b": {"_errors": [...]}}}} shape."""

    def __init__(self) -> None:
        self.tree: dict = {}

    def add(self, path: str, code: str, message: str) -> None:
        node = self.tree
        for part in path.split("."):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def max_len(self, path: str, value: Any, limit: int) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")

    def body(self) -> dict | None:
        if not self.tree:
            return None
        return error_body(50035, "Invalid Form Body", self.tree)


def upload_problem(sizes: list[int], body: Any) -> tuple[int, dict] | None:
    """Discord's answer to a request whose files are too many or too big together, or None."""
    if not sizes:
        return None
    data = body.get("data") if isinstance(body, dict) and "type" in body else body
    listed = (data or {}).get("attachments") if isinstance(data, dict) else None
    if max(len(sizes), len(listed or [])) > MAX_FILES:
        errs = FormErrors()
        errs.add("attachments", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FILES} or fewer in length.")
        return 400, errs.body() or {}
    if sum(sizes) > UPLOAD_LIMIT_BYTES:
        return 413, error_body(40005, "Request entity too large")
    return None


def _check_embeds(embeds: list, errs: FormErrors) -> None:
    if len(embeds) > MAX_EMBEDS:
        errs.add("embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")
    total = 0
    for i, embed in enumerate(embeds):
        for key, limit in EMBED_LIMITS.items():
            errs.max_len(f"embeds.{i}.{key}", embed.get(key), limit)
            total += len(embed.get(key) or "")
        fields = embed.get("fields") or []
        if len(fields) > 25:
            errs.add(f"embeds.{i}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for j, f in enumerate(fields):
            errs.max_len(f"embeds.{i}.fields.{j}.name", f.get("name"), 256)
            errs.max_len(f"embeds.{i}.fields.{j}.value", f.get("value"), 1024)
            total += len(f.get("name") or "") + len(f.get("value") or "")
        footer = (embed.get("footer") or {}).get("text")
        author = (embed.get("author") or {}).get("name")
        errs.max_len(f"embeds.{i}.footer.text", footer, 2048)
        errs.max_len(f"embeds.{i}.author.name", author, 256)
        total += len(footer or "") + len(author or "")
    if total > MAX_EMBED_TOTAL:
        errs.add(
            "embeds",
            "MAX_EMBED_SIZE_EXCEEDED",
            f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}",
        )


def _walk_custom_ids(component: dict, path: str, seen: set, errs: FormErrors) -> None:
    """Checks every interactive component, at any depth (v2 containers and sections nest)."""
    custom_id = component.get("custom_id")
    if custom_id is not None:
        errs.max_len(f"{path}.custom_id", custom_id, MAX_CUSTOM_ID)
        if custom_id in seen:
            errs.add(
                f"{path}.custom_id",
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            )
        seen.add(custom_id)
    if component.get("type") == BUTTON:
        errs.max_len(f"{path}.label", component.get("label"), MAX_LABEL)
        is_link = component.get("style") in (5, 6)
        if not is_link and not custom_id:
            errs.add(f"{path}.custom_id", "BASE_TYPE_REQUIRED", "This field is required")
    for i, child in enumerate(component.get("components") or []):
        _walk_custom_ids(child, f"{path}.components.{i}", seen, errs)
    if isinstance(component.get("accessory"), dict):
        _walk_custom_ids(component["accessory"], f"{path}.accessory", seen, errs)


def _check_components(components: list, flags: int, errs: FormErrors) -> None:
    v2 = bool(flags & IS_COMPONENTS_V2)
    if not v2 and len(components) > MAX_ROWS:
        errs.add(
            "components", "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_ROWS} in length."
        )
    seen: set = set()
    for i, comp in enumerate(components):
        path = f"components.{i}"
        if comp.get("type") == ACTION_ROW:
            items = comp.get("components") or []
            if not 1 <= len(items) <= MAX_ROW_ITEMS:
                errs.add(
                    f"{path}.components",
                    "BASE_TYPE_BAD_LENGTH",
                    f"Must be between 1 and {MAX_ROW_ITEMS} in length.",
                )
            if any(c.get("type") in SELECTS for c in items) and len(items) > 1:
                errs.add(
                    f"{path}.components",
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "The specified component exceeds the maximum width",
                )
        elif not v2:
            errs.add(
                f"{path}.type", "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (1,).'
            )
        _walk_custom_ids(comp, path, seen, errs)


def check_message(body: dict, *, files: int = 0, existing: dict | None = None) -> dict | None:
    """Returns Discord's error body for an invalid create/edit, else None.

    `existing` is the message being edited: fields the edit leaves out keep their old value,
    which matters for the "empty message" rule.
    """
    errs = FormErrors()
    content = body.get("content")
    errs.max_len("content", content, MAX_CONTENT)
    flags = body.get("flags") or (existing or {}).get("flags") or 0
    if flags & IS_COMPONENTS_V2 and (content or body.get("embeds")):
        errs.add(
            "content",
            "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
            "The 'content' and 'embeds' fields cannot be used when using components v2",
        )
    _check_embeds(body.get("embeds") or [], errs)
    _check_components(body.get("components") or [], flags, errs)
    result = errs.body()
    if result is not None:
        return result

    merged = dict(existing or {})
    merged.update({k: v for k, v in body.items() if k in ("content", "embeds", "components")})
    if "attachments" in body:
        merged["attachments"] = body["attachments"]
    has_anything = (
        merged.get("content")
        or merged.get("embeds")
        or merged.get("components")
        or merged.get("attachments")
        or files
        or body.get("sticker_ids")
        or body.get("poll")
    )
    if not has_anything:
        return error_body(50006, "Cannot send an empty message")
    return None
