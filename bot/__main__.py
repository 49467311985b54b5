"""Command line: `python -m bot [run|check|chat|health|reload|backup <file>|forget-user <id>]`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.config import ConfigError, Settings, load_settings
from bot.logs import setup_logging

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot", description="mcpcord: an LLM Discord bot with MCP tools."
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "check", "chat", "health", "reload", "backup", "forget-user"],
        help="run the bot (default), check the configuration, chat in the terminal, "
        "report the running bot's health (for a container HEALTHCHECK), make it reload, "
        "copy the database to a file (backup <file>), or erase one user (forget-user <id>)",
    )
    parser.add_argument(
        "target", nargs="?", help="backup: the file to write; forget-user: the Discord user id"
    )
    parser.add_argument(
        "--discord",
        action="store_true",
        help="check: also log in to Discord and list, per channel, what the bot may do there",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "health":
            from bot.ops.health import check_health

            healthy, line = check_health(settings)
            print(line)
            return 0 if healthy else 1
        if args.command == "reload":
            from bot.ops.reload import signal_reload

            sent, line = signal_reload(settings)
            print(line, file=sys.stdout if sent else sys.stderr)
            return 0 if sent else 1
        if args.command == "backup":
            return _backup(settings, args.target)
        setup_logging(settings.logging)
        if args.command == "forget-user":
            return _forget_user(settings, args.target)
        if args.command == "check":
            from bot.ops.check import run_checks

            return asyncio.run(run_checks(settings, discord=args.discord))
        if args.command == "chat":
            from bot.ops.console import chat

            return asyncio.run(chat(settings))
        from bot.app import serve

        asyncio.run(serve(settings))
        return 0
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"config error: {line}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def _backup(settings: Settings, target: str | None) -> int:
    from pathlib import Path

    from bot.ops.backup import backup

    if not target:
        print("usage: python -m bot backup <file>", file=sys.stderr)
        return EXIT_CONFIG
    done, line = backup(settings, Path(target))
    print(line, file=sys.stdout if done else sys.stderr)
    return 0 if done else 1


def _forget_user(settings: Settings, target: str | None) -> int:
    from bot.ops.forget_user import forget_user

    if not target or not target.isdigit():
        print("usage: python -m bot forget-user <Discord user id (digits)>", file=sys.stderr)
        return EXIT_CONFIG
    done, line = asyncio.run(forget_user(settings, int(target)))
    print(line, file=sys.stdout if done else sys.stderr)
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
