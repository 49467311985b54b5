"""Interactions the fake creates (button clicks, slash commands) and the payloads Discord would send."""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
from typing import TYPE_CHECKING, Any

from .messages import find_component
from .state import DM
from .validation import UPLOAD_LIMIT_BYTES

if TYPE_CHECKING:
    from .fake import FakeDiscord

APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT = 2, 3, 5
LABEL, TEXT_INPUT = 18, 4
# Discord's modal limits: title 45, 1 to 5 top-level components, text input values 4000.
MODAL_TITLE_MAX, MODAL_COMPONENTS_MAX, TEXT_INPUT_MAX = 45, 5, 4000
# A text input's own fields, and a Label's description (a Label's label is MODAL_TITLE_MAX too).
INPUT_LABEL_MAX, PLACEHOLDER_MAX, CUSTOM_ID_MAX, DESCRIPTION_MAX = 45, 100, 100, 100
ATTACHMENT_SIZE_LIMIT = UPLOAD_LIMIT_BYTES
# Option type -> Python type accepted from tests (STRING, INTEGER, BOOLEAN, NUMBER).
SCALAR_OPTION_TYPES = {3: str, 4: int, 5: bool, 10: (int, float)}
USER, CHANNEL, ROLE, MENTIONABLE = 6, 7, 8, 9


class Interaction:
    """A pending interaction; records how the bot answered it."""

    def __init__(self, fake: FakeDiscord, payload: dict, kind: str, message_id: int | None) -> None:
        self._fake = fake
        self.payload = payload
        self.id = int(payload["id"])
        self.token: str = payload["token"]
        self.kind = kind  # "component" | "command" | "modal_submit"
        self.channel_id = int(payload["channel_id"])
        self.message_id = message_id  # the message holding the clicked component
        self.created = time.monotonic()
        self.responses: list[dict] = []
        self.status: list[int] = []
        self.response_type: int | None = None  # set once a callback was accepted
        self.original_id: int | None = None
        self.followup_ids: list[int] = []
        self._answered = asyncio.Event()

    @property
    def modal(self) -> dict | None:
        """The modal the bot opened in answer (callback type 9): custom_id, title, components."""
        for body, status in zip(self.responses, self.status, strict=True):
            if status == 200 and body.get("type") == 9:
                return copy.deepcopy(body["data"])
        return None

    def text_inputs(self) -> dict[str, dict]:
        """The opened modal's text inputs by custom_id (with their prefilled `value`)."""
        modal = self.modal or {}
        return {c["custom_id"]: c for c in _text_inputs(modal.get("components") or [])}

    @property
    def acknowledged(self) -> bool:
        return self.response_type is not None

    @property
    def followups(self) -> list[dict]:
        msgs = self._fake.world.messages
        return [copy.deepcopy(msgs[i]) for i in self.followup_ids if i in msgs]

    def original(self) -> dict | None:
        """The message created or edited by the callback / @original, ephemeral ones included."""
        if self.original_id is None:
            return None
        msg = self._fake.world.messages.get(self.original_id)
        return copy.deepcopy(msg) if msg is not None else None

    def _record(self, body: Any, status: int) -> None:
        self.responses.append(body)
        self.status.append(status)
        self._answered.set()

    async def wait_response(self, timeout: float = 5.0) -> dict:
        """The bot's first callback, which Discord must have accepted: a callback refused (too
        late for the 3 s deadline, or malformed) fails the test here, as it fails the user."""
        try:
            await asyncio.wait_for(self._answered.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"bot sent no callback for {self.kind} interaction {self.id} within {timeout}s "
                f"(requests so far: {self._fake.requests[-5:]})"
            ) from None
        if self.status[0] != 200:
            raise AssertionError(
                f"Discord refused the bot's callback for {self.kind} interaction {self.id} "
                f"with {self.status[0]}: {self.responses[0]}"
            )
        return self.responses[0]

    def __repr__(self) -> str:
        return f"<Interaction {self.kind} id={self.id} status={self.status}>"


def _base_payload(fake: FakeDiscord, itype: int, channel_id: int, user_id: int, data: dict) -> dict:
    world = fake.world
    channel = world.channels.get(channel_id)
    if channel is None:
        raise ValueError(f"unknown channel {channel_id}")
    if user_id not in world.users:
        raise ValueError(f"unknown user {user_id}")
    payload: dict[str, Any] = {
        "id": str(world.ids.next()),
        "application_id": str(fake.bot_user_id),
        "type": itype,
        "data": data,
        "token": "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48),
        "version": 1,
        "channel_id": str(channel_id),
        "channel": world.channel_payload(channel_id),
        "locale": "en-US",
        "app_permissions": str(world.permissions(fake.bot_user_id)),
        "entitlements": [],
        "entitlement_sku_ids": [],
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
    }
    if channel.type == DM:
        payload["user"] = world.user_payload(user_id)
        payload["context"] = 1  # BOT_DM
        payload["authorizing_integration_owners"] = {"1": str(user_id)}
    else:
        perms = str(world.permissions(user_id))
        payload["channel"]["permissions"] = perms
        payload.update(
            guild_id=str(world.guild_id),
            guild_locale="en-US",
            guild={"id": str(world.guild_id), "locale": "en-US", "features": []},
            member={**world.member_payload(user_id), "permissions": perms},
            context=0,  # GUILD
            authorizing_integration_owners={"0": str(world.guild_id)},
        )
    return payload


def component_payload(
    fake: FakeDiscord,
    message_id: int,
    custom_id: str,
    user_id: int,
    values=None,
    *,
    seen: dict | None = None,
) -> dict:
    """`seen`: the copy of the message the user's client still shows (say, one that missed the
    edit that disabled its buttons): the click is checked against it, as a client checks it, and
    Discord delivers it with the message as it is now, as it does for a stale client."""
    msg = fake.world.messages.get(message_id)
    if msg is None:
        raise ValueError(f"message {message_id} does not exist (deleted?)")
    if seen is not None and int(seen["id"]) != message_id:
        raise ValueError(f"the copy seen is of message {seen['id']}, not {message_id}")
    comp = find_component(seen if seen is not None else msg, custom_id)
    if comp is None:
        ids = _custom_ids(msg.get("components") or [])
        raise ValueError(f"message {message_id} has no component {custom_id!r}; it has {ids}")
    if comp.get("disabled"):
        raise ValueError(
            f"component {custom_id!r} is disabled; Discord would not let a user click it"
        )
    if (values is None) != (comp.get("type") == 2):
        raise ValueError(
            f"component {custom_id!r} has type {comp.get('type')}; use the matching helper"
        )
    data: dict[str, Any] = {
        "custom_id": custom_id,
        "component_type": comp["type"],
        "id": comp.get("id"),
    }
    if values is not None:
        data["values"] = [str(v) for v in values]
    payload = _base_payload(fake, MESSAGE_COMPONENT, int(msg["channel_id"]), user_id, data)
    payload["message"] = copy.deepcopy(msg)
    return payload


def _custom_ids(components: list) -> list[str]:
    out = []
    for comp in components:
        if comp.get("custom_id"):
            out.append(comp["custom_id"])
        out += _custom_ids(comp.get("components") or [])
    return out


def _find_command(fake: FakeDiscord, name: str, channel_id: int) -> dict:
    in_dm = fake.world.channels[channel_id].type == DM
    scopes: list[str | int] = ["global"] if in_dm else [fake.guild_id, "global"]
    for scope in scopes:
        for cmd in fake.commands.get(scope, []):
            if cmd["name"] == name and cmd.get("type", 1) == 1:
                return cmd
    known = {k: [c["name"] for c in v] for k, v in fake.commands.items()}
    raise LookupError(
        f"slash command {name!r} is not registered (did the bot sync?); known: {known}"
    )


def _build_options(fake: FakeDiscord, spec: list, given: dict, resolved: dict, where: str) -> list:
    world = fake.world
    by_name = {o["name"]: o for o in spec}
    unknown = set(given) - set(by_name)
    if unknown:
        raise ValueError(f"{where} has no option(s) {sorted(unknown)}; it has {sorted(by_name)}")
    out = []
    for opt in spec:
        name, otype = opt["name"], opt["type"]
        if name not in given:
            if opt.get("required"):
                raise ValueError(f"{where}: required option {name!r} missing")
            continue
        value = given[name]
        if otype in SCALAR_OPTION_TYPES:
            expected = SCALAR_OPTION_TYPES[otype]
            if not isinstance(value, expected) or (otype in (4, 10) and isinstance(value, bool)):
                raise ValueError(f"{where}: option {name!r} wants {expected}, got {value!r}")
            choices = [c["value"] for c in opt.get("choices") or []]
            if choices and value not in choices:
                raise ValueError(f"{where}: option {name!r} must be one of {choices}")
        elif otype in (USER, MENTIONABLE) and int(value) in world.users:
            uid = int(value)
            resolved.setdefault("users", {})[str(uid)] = world.user_payload(uid)
            member = world.member_payload(uid, with_user=False)
            member["permissions"] = str(world.permissions(uid))
            resolved.setdefault("members", {})[str(uid)] = member
            value = str(uid)
        elif otype == CHANNEL:
            ch = world.channel_payload(int(value))
            ch["permissions"] = str(world.permissions(fake.bot_user_id))
            resolved.setdefault("channels", {})[str(value)] = ch
            value = str(value)
        elif otype in (ROLE, MENTIONABLE):
            resolved.setdefault("roles", {})[str(value)] = world.role_payload(
                world.roles[int(value)]
            )
            value = str(value)
        else:
            raise ValueError(f"{where}: option type {otype} is not supported by the fake")
        out.append({"name": name, "type": otype, "value": value})
    return out


def command_payload(
    fake: FakeDiscord, name: str, user_id: int, channel_id: int, options: dict
) -> dict:
    """`name` may be "group sub" for subcommands; options are the leaf command's options."""
    root, *subs = name.split()
    cmd = _find_command(fake, root, channel_id)
    resolved: dict = {}
    spec, where = cmd.get("options") or [], f"/{root}"
    nested: list[dict] = []
    top: list[dict] = nested
    for sub in subs:
        match = next((o for o in spec if o["name"] == sub and o["type"] in (1, 2)), None)
        if match is None:
            raise ValueError(f"{where} has no subcommand {sub!r}")
        node = {"name": sub, "type": match["type"], "options": []}
        nested.append(node)
        nested, spec, where = node["options"], match.get("options") or [], f"{where} {sub}"
    nested.extend(_build_options(fake, spec, options, resolved, where))
    data: dict[str, Any] = {"id": cmd["id"], "name": root, "type": 1, "options": top}
    if resolved:
        data["resolved"] = resolved
    if "guild_id" in cmd:
        data["guild_id"] = cmd["guild_id"]
    return _base_payload(fake, APPLICATION_COMMAND, channel_id, user_id, data)


def _text_inputs(components: list) -> list[dict]:
    out = []
    for comp in components:
        if comp.get("type") == TEXT_INPUT:
            out.append(comp)
        elif comp.get("type") == LABEL and isinstance(comp.get("component"), dict):
            out += _text_inputs([comp["component"]])
        else:
            out += _text_inputs(comp.get("components") or [])
    return out


def modal_problem(data: dict) -> str | None:
    """Why Discord would refuse this modal (callback type 9), or None."""
    if not data.get("custom_id") or not data.get("title") or not data.get("components"):
        return "A modal needs custom_id, title and components"
    if len(data["title"]) > MODAL_TITLE_MAX:
        return f"Modal title must be at most {MODAL_TITLE_MAX} characters"
    if len(data["custom_id"]) > 100:
        return "Modal custom_id must be at most 100 characters"
    if not 1 <= len(data["components"]) <= MODAL_COMPONENTS_MAX:
        return f"A modal holds 1 to {MODAL_COMPONENTS_MAX} components"
    for comp in data["components"]:
        if comp.get("type") == LABEL and len(comp.get("label") or "") > MODAL_TITLE_MAX:
            return f"Label text must be at most {MODAL_TITLE_MAX} characters"
        if comp.get("type") == LABEL and len(comp.get("description") or "") > DESCRIPTION_MAX:
            return f"Label description must be at most {DESCRIPTION_MAX} characters"
    for text_input in _text_inputs(data["components"]):
        problem = _text_input_problem(text_input)
        if problem:
            return problem
    return None


def _text_input_problem(text_input: dict) -> str | None:
    """Discord's limits on one text input's fields (legacy label, placeholder, lengths)."""
    if not 1 <= len(text_input.get("custom_id") or "") <= CUSTOM_ID_MAX:
        return f"Text input custom_id must be 1 to {CUSTOM_ID_MAX} characters"
    if len(text_input.get("label") or "") > INPUT_LABEL_MAX:
        return f"Text input label must be at most {INPUT_LABEL_MAX} characters"
    if len(text_input.get("placeholder") or "") > PLACEHOLDER_MAX:
        return f"Text input placeholder must be at most {PLACEHOLDER_MAX} characters"
    low, high = text_input.get("min_length"), text_input.get("max_length")
    if low is not None and not 0 <= low <= TEXT_INPUT_MAX:
        return f"Text input min_length must be 0 to {TEXT_INPUT_MAX}"
    if high is not None and not 1 <= high <= TEXT_INPUT_MAX:
        return f"Text input max_length must be 1 to {TEXT_INPUT_MAX}"
    if low is not None and high is not None and low > high:
        return "Text input min_length must not exceed max_length"
    value = text_input.get("value") or ""
    if len(value) > (high or TEXT_INPUT_MAX):
        return f"Text input value must be at most {high or TEXT_INPUT_MAX} characters"
    return None


def _submitted(components: list, values: dict[str, str]) -> list[dict]:
    """The modal's components as Discord sends them back on submit: ids, custom_ids, values."""
    out: list[dict] = []
    for comp in components:
        if comp.get("type") == TEXT_INPUT:
            cid = comp["custom_id"]
            out.append(
                {"type": TEXT_INPUT, "id": comp.get("id"), "custom_id": cid, "value": values[cid]}
            )
        elif comp.get("type") == LABEL:
            out.append(
                {
                    "type": LABEL,
                    "id": comp.get("id"),
                    "component": _submitted([comp["component"]], values)[0],
                }
            )
        else:
            out.append(
                {
                    "type": comp.get("type"),
                    "id": comp.get("id"),
                    "components": _submitted(comp.get("components") or [], values),
                }
            )
    return out


def modal_submit_payload(
    fake: FakeDiscord, opened: Interaction, user_id: int, values: dict[str, str]
) -> dict:
    """The MODAL_SUBMIT (type 5) a user sends by filling in the modal `opened` answered with."""
    modal = opened.modal
    if modal is None:
        raise ValueError(f"interaction {opened.id} was not answered with a modal")
    inputs = opened.text_inputs()
    unknown = set(values) - set(inputs)
    if unknown:
        raise ValueError(
            f"the modal has no text input(s) {sorted(unknown)}; it has {sorted(inputs)}"
        )
    filled: dict[str, str] = {}
    for cid, comp in inputs.items():
        value = values.get(cid, comp.get("value") or "")
        if comp.get("required", True) and not value:
            raise ValueError(f"text input {cid!r} is required; Discord would not submit it empty")
        if len(value) > (comp.get("max_length") or TEXT_INPUT_MAX):
            raise ValueError(f"text input {cid!r} takes at most {comp.get('max_length')} chars")
        filled[cid] = value
    data = {"custom_id": modal["custom_id"], "components": _submitted(modal["components"], filled)}
    payload = _base_payload(fake, MODAL_SUBMIT, opened.channel_id, user_id, data)
    if opened.message_id is not None and opened.message_id in fake.world.messages:
        # A modal opened from a message component carries that message, as on Discord.
        payload["message"] = copy.deepcopy(fake.world.messages[opened.message_id])
    return payload
