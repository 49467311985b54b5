"""The schema's history: ordered migrations, each applied once and recorded in schema_migrations."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    # The name is what schema_migrations records, so a shipped migration must never be renamed or
    # edited: databases that already ran it would silently differ from new ones. Append instead.
    name: str
    # Separate statements rather than one script: sqlite3's executescript() commits first, which
    # would take the migration out of its transaction.
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "m001_conversations",
        (
            """
            CREATE TABLE conversations (
                key TEXT PRIMARY KEY,            -- str(ConversationKey): "guild:channel:user"
                guild_id INTEGER NOT NULL,
                channel_id INTEGER NOT NULL,
                user_id INTEGER NOT NULL,
                backend TEXT NOT NULL DEFAULT '',
                history TEXT NOT NULL DEFAULT '[]',  -- JSON list of message dicts
                previous_response_id TEXT,
                model TEXT,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )
            """,
            # reset_channel deletes by channel regardless of user.
            "CREATE INDEX conversations_by_channel ON conversations (guild_id, channel_id)",
        ),
    ),
    Migration(
        "m002_approvals",
        (
            # No foreign key to conversations: the approval is written during a conversation's
            # first turn, before that turn (and so the conversation row) is saved.
            # AUTOINCREMENT so an id, which lives on in a button's custom_id, is never reused.
            """
            CREATE TABLE approvals (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                conversation_key TEXT NOT NULL,
                call_id TEXT NOT NULL,
                server TEXT NOT NULL,
                tool TEXT NOT NULL,
                arguments TEXT NOT NULL,         -- JSON object
                requester_id INTEGER NOT NULL,
                status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                    ('pending', 'approved', 'denied', 'always', 'timeout', 'expired')),
                decided_by INTEGER,
                channel_id INTEGER,
                message_id INTEGER,
                created_at TEXT NOT NULL,
                decided_at TEXT
            )
            """,
            # Start-up looks for pending rows only; a partial index stays small as history grows.
            "CREATE INDEX approvals_pending ON approvals (id) WHERE status = 'pending'",
        ),
    ),
    Migration(
        "m003_tool_grants",
        (
            # Keyed by conversation key, not a foreign key: "always allow" can be granted before
            # the conversation's first turn is saved.
            """
            CREATE TABLE tool_grants (
                conversation_key TEXT NOT NULL,
                tool TEXT NOT NULL,
                granted_by INTEGER NOT NULL,
                created_at TEXT NOT NULL,
                PRIMARY KEY (conversation_key, tool)
            )
            """,
        ),
    ),
    Migration(
        "m004_usage",
        (
            # Not tied to conversations: usage must outlive a /reset or quotas could be dodged.
            """
            CREATE TABLE usage (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                conversation_key TEXT NOT NULL,
                user_id INTEGER NOT NULL,
                model TEXT NOT NULL,
                input_tokens INTEGER NOT NULL CHECK (input_tokens >= 0),
                output_tokens INTEGER NOT NULL CHECK (output_tokens >= 0),
                duration_s REAL NOT NULL CHECK (duration_s >= 0),
                created_at TEXT NOT NULL
            )
            """,
            # tokens_used_since: one user's rows after a moment.
            "CREATE INDEX usage_by_user_time ON usage (user_id, created_at)",
        ),
    ),
    Migration(
        "m005_approval_edits_and_reasons",
        (
            # An approval may be decided with edited arguments (a JSON object), or denied with
            # a reason; both NULL otherwise.
            "ALTER TABLE approvals ADD COLUMN edited_arguments TEXT",
            "ALTER TABLE approvals ADD COLUMN reason TEXT",
        ),
    ),
    Migration(
        "m006_usage_details",
        (
            # Parts of input_tokens / output_tokens, not additions to them: the daily budget
            # keeps summing input + output.
            "ALTER TABLE usage ADD COLUMN cached_input_tokens INTEGER NOT NULL DEFAULT 0"
            " CHECK (cached_input_tokens >= 0)",
            "ALTER TABLE usage ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0"
            " CHECK (reasoning_tokens >= 0)",
        ),
    ),
    Migration(
        "m007_usage_channel_and_cost",
        (
            # Channel totals (/status) without parsing conversation_key; in a thread the channel
            # is the thread, as in the key.
            "ALTER TABLE usage ADD COLUMN guild_id INTEGER",
            "ALTER TABLE usage ADD COLUMN channel_id INTEGER",
            # US dollars from litellm's price map at the time of the turn; NULL when the model
            # had no known price (a sum over NULLs must not pretend to be complete).
            "ALTER TABLE usage ADD COLUMN cost_usd REAL CHECK (cost_usd IS NULL OR cost_usd >= 0)",
            # Older rows: the key is "guild:channel:user", so their channel is in it.
            """
            UPDATE usage SET
                guild_id = CAST(substr(conversation_key, 1, instr(conversation_key, ':') - 1)
                    AS INTEGER),
                channel_id = CAST(substr(
                    substr(conversation_key, instr(conversation_key, ':') + 1), 1,
                    instr(substr(conversation_key, instr(conversation_key, ':') + 1), ':') - 1
                ) AS INTEGER)
            """,
            "CREATE INDEX usage_by_channel_time ON usage (guild_id, channel_id, created_at)",
        ),
    ),
    Migration(
        "m008_channel_prompts",
        (
            # /system: a channel's (or thread's) own system prompt, above the configured ones.
            # Channel ids are unique across guilds, so they alone are the key.
            """
            CREATE TABLE channel_prompts (
                channel_id INTEGER PRIMARY KEY,
                guild_id INTEGER NOT NULL,
                system_prompt TEXT NOT NULL,
                set_by INTEGER NOT NULL,
                updated_at TEXT NOT NULL
            )
            """,
        ),
    ),
    Migration(
        "m009_install_secrets",
        (
            # Random secrets of this install (the first open writes them), for hashes that only
            # this install can compute. In the database, so a backup carries them: hashes in
            # old audit lines stay comparable after a restore.
            """
            CREATE TABLE install_secrets (
                name TEXT PRIMARY KEY,
                secret BLOB NOT NULL CHECK (length(secret) >= 32),
                created_at TEXT NOT NULL
            )
            """,
        ),
    ),
    Migration(
        "m010_user_data",
        (
            # Usage of a user who asked to be forgotten, kept for the last 24 hours only so the
            # daily limits still hold: user_id 0 and an HMAC of the id (bot.core.keyed).
            "ALTER TABLE usage ADD COLUMN user_hash TEXT",
            "CREATE INDEX usage_by_user_hash ON usage (user_hash, created_at)"
            " WHERE user_hash IS NOT NULL",
            # Anonymous daily totals: usage rows folded here (after a /forget, or by retention)
            # keep /status's channel totals right without naming anyone. `day` is the day's
            # start in the store's timestamp form, so it compares with created_at as text.
            """
            CREATE TABLE usage_daily (
                day TEXT NOT NULL,
                guild_id INTEGER NOT NULL,
                channel_id INTEGER NOT NULL,
                model TEXT NOT NULL,
                turns INTEGER NOT NULL,
                input_tokens INTEGER NOT NULL,
                cached_input_tokens INTEGER NOT NULL,
                output_tokens INTEGER NOT NULL,
                reasoning_tokens INTEGER NOT NULL,
                cost_usd REAL NOT NULL,           -- over the priced turns only
                unpriced_turns INTEGER NOT NULL,
                PRIMARY KEY (day, guild_id, channel_id, model)
            )
            """,
            # Who said which user message of a shared conversation (its history has no names),
            # so /forget can replace that person's turns. content_hash is an HMAC of the
            # message's content: their words themselves are not repeated here.
            """
            CREATE TABLE turn_authors (
                conversation_key TEXT NOT NULL,
                content_hash TEXT NOT NULL,
                user_id INTEGER NOT NULL,
                created_at TEXT NOT NULL,
                PRIMARY KEY (conversation_key, content_hash, user_id)
            )
            """,
            "CREATE INDEX turn_authors_by_user ON turn_authors (user_id)",
        ),
    ),
    Migration(
        "m011_cache_writes",
        (
            # Input tokens written to the provider's prompt cache (Anthropic's
            # cache_creation_input_tokens): a part of input_tokens, priced at its own rate.
            "ALTER TABLE usage ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0"
            " CHECK (cache_write_tokens >= 0)",
            "ALTER TABLE usage_daily ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0",
        ),
    ),
    Migration(
        "m012_open_questions",
        (
            # MCP servers' questions (elicitation) posted and not yet answered: a question
            # cannot outlive the process that asked it, so the next start marks these expired.
            # Written before the prompt is posted (message_id NULL until the post returned), so
            # a kill in between leaves a row that the next start looks for after the anchor.
            """
            CREATE TABLE open_questions (
                id TEXT PRIMARY KEY,
                channel_id INTEGER NOT NULL,
                anchor_id INTEGER NOT NULL,
                message_id INTEGER,
                created_at TEXT NOT NULL
            )
            """,
        ),
    ),
    Migration(
        "m013_cut_questions",
        (
            # Questions whose turn a shutdown cut before any tool ran or approval was asked:
            # the next start answers each once (taken out as it is answered).
            """
            CREATE TABLE cut_questions (
                message_id INTEGER PRIMARY KEY,
                channel_id INTEGER NOT NULL,
                created_at TEXT NOT NULL
            )
            """,
        ),
    ),
    Migration(
        "m014_handled_messages",
        (
            # Messages the bot took as questions (accepted, refused or over a limit alike),
            # kept 7 days: a start-up catch-up answers mentions after the newest one per
            # channel, and never one that is here.
            """
            CREATE TABLE handled_messages (
                message_id INTEGER PRIMARY KEY,
                channel_id INTEGER NOT NULL,
                handled_at TEXT NOT NULL
            )
            """,
            "CREATE INDEX handled_messages_by_channel ON handled_messages (channel_id, message_id)",
        ),
    ),
    Migration(
        "m015_cut_reply_parts",
        (
            # The parts of a cut question's reply (its Interrupted line), space-separated: the
            # answer after the restart is written into them instead of a new reply.
            "ALTER TABLE cut_questions ADD COLUMN reply_ids TEXT NOT NULL DEFAULT ''",
        ),
    ),
    Migration(
        "m016_approval_resumes",
        (
            # Where the turn that asked stands (bot/core/resume.py), written with the row before
            # its prompt is posted and cleared when the turn ends: a restart continues the turn.
            "ALTER TABLE approvals ADD COLUMN resume_state TEXT",
            # Start-up and each turn's end look for the few rows that hold one.
            "CREATE INDEX approvals_resumable ON approvals (conversation_key)"
            " WHERE resume_state IS NOT NULL",
        ),
    ),
)
