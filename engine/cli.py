"""`replydesk` command line. Thin: parses arguments, builds settings and services, calls `engine` code."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from engine.errors import ReplyDeskError
from engine.settings import Settings

Handler = Callable[[argparse.Namespace, Settings], int]


def _open_input(path: str | None) -> IO[str]:
    if path in (None, "-"):
        return sys.stdin
    try:
        return open(path, encoding="utf-8")
    except OSError as exc:
        raise ReplyDeskError(f"Cannot read {path}: {exc.strerror}. Check the path.") from None


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from engine.db import Database

    Database(settings.resolved_database_url).migrate()
    print("database is up to date")
    return 0


def cmd_setup(args: argparse.Namespace, settings: Settings) -> int:
    from engine.setup import setup

    for line in setup(settings, demo=args.demo):
        print(line)
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from engine.db import Database
    from engine.mail import check_paths, iter_raw_mails
    from engine.services.importing import import_raw_mails, start_import
    from engine.services.stores import ensure_store

    check_paths(args.paths)
    db = Database(settings.resolved_database_url)
    db.check_migrated()
    with db.transaction() as session:
        store_id = ensure_store(session, args.store).id
    # Every mail is processed; one that fails is kept raw (or reported) and the status says so at the end.
    summary = start_import(db, store_id)
    mails = iter_raw_mails(args.paths, on_error=summary.report_unreadable)
    import_raw_mails(db, store_id, mails, batch_size=settings.sync_batch_size, summary=summary)
    print(f"{args.store}: {summary.line()}")
    for error in summary.errors:
        print(f"  {error['code']}: {error['message']}", file=sys.stderr)
    return 0 if summary.ok else 1


def cmd_process(args: argparse.Namespace, settings: Settings) -> int:
    from engine.components import build_components, read_knowledge
    from engine.db import Database
    from engine.services.pipeline import process_and_route
    from engine.services.routing import routing_summary

    db = Database(settings.resolved_database_url)
    db.check_migrated()
    with db.read() as session:
        knowledge = read_knowledge(session, settings.knowledge_dir)
    components = build_components(settings, knowledge)
    result, assignments = process_and_route(db, components, settings.knowledge_dir, batch=args.batch)
    print(f"{result.messages} buyer messages classified, {result.drafts} drafts written")
    print(routing_summary(assignments))
    return 0


def cmd_classify(args: argparse.Namespace, settings: Settings) -> int:
    from engine.components import build_analyzer

    classify_stream(build_analyzer(settings), _open_input(args.file), sys.stdout)
    return 0


def classify_stream(analyzer: Any, source: IO[str], out: IO[str], *, chunk_size: int = 256) -> int:
    """The `classify` contract over an open stream (an `engine.components.Analyzer`); returns lines written."""
    from engine.jsonl import chunks, read_records, write_record

    written = 0
    for chunk in chunks(read_records(source), chunk_size):
        analyses = analyzer.analyze_many([r["text"] for r in chunk], [r.get("marketplace") for r in chunk])
        for record, analysis in zip(chunk, analyses, strict=True):
            write_record(
                {
                    "id": record["id"],
                    "language": analysis.language.language,
                    "language_score": round(analysis.language.score, 4),
                    "intent": analysis.intent.intent,
                    "intent_score": round(analysis.intent.score, 4),
                },
                out,
            )
        written += len(chunk)
    return written


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from engine.compliance import check_outgoing
    from engine.db import Database
    from engine.jsonl import read_records, write_record

    allow_lists: dict[str, list[str]] = {}
    detector = None  # built on first need: only a buyer language makes the reply language matter
    for _, record in read_records(_open_input(args.file)):
        store = record.get("store")
        if store and store not in allow_lists:
            from engine.services.stores import get_store

            with Database(settings.resolved_database_url).transaction() as session:
                allow_lists[store] = list(get_store(session, store).allow_list or [])
        reply_language = None
        if record.get("language") and record["text"].strip():
            if detector is None:
                from engine.nlp.language import load_language_detector

                detector = load_language_detector()
            reply_language = detector.detect(record["text"]).language
        verdict = check_outgoing(
            record["text"],
            subject=record.get("subject"),
            buyer_language=record.get("language"),
            reply_language=reply_language,
            allow_list=allow_lists.get(store or "", []),
        )
        write_record({"id": record["id"], **verdict.to_dict()})
    return 0


def cmd_draft(args: argparse.Namespace, settings: Settings) -> int:
    from engine.components import build_components
    from engine.drafting.protocols import DraftRequest, OrderContext
    from engine.jsonl import chunks, read_records, write_record

    components = build_components(settings)
    for chunk in chunks(read_records(_open_input(args.file)), 64):
        analyses = components.analyze_many([r["text"] for r in chunk], [r.get("marketplace") for r in chunk])
        for record, analysis in zip(chunk, analyses, strict=True):
            request = DraftRequest(
                text=record["text"],
                language=analysis.language.language,
                intent=analysis.intent.intent,
                marketplace=record.get("marketplace"),
                buyer_name=record.get("buyer_name"),
                product_title=record.get("product_title"),
                order=OrderContext(order_id=record.get("order_id")),
            )
            result, verdict = components.draft(request)
            write_record(
                {
                    "id": record["id"],
                    "language": request.language,
                    "intent": request.intent,
                    "draft": result.text,
                    "action": result.action,
                    "sources": _sources(result.template_id, result.source_ids),
                    "allowed": verdict.allowed,
                    "violations": [v.to_dict() for v in verdict.violations],
                    "drafter": result.drafter,
                }
            )
    return 0


def _sources(template_id: str | None, source_ids: Sequence[int]) -> list[dict[str, Any]]:
    sources: list[dict[str, Any]] = [{"kind": "knowledge", "id": i} for i in source_ids]
    if template_id:
        sources.insert(0, {"kind": "template", "id": template_id})
    return sources


def cmd_parse_email(args: argparse.Namespace, settings: Settings) -> int:
    from engine.errors import MailParseError
    from engine.jsonl import write_record
    from engine.mail import MailLimits, check_paths, iter_raw_mails, parse_mail, to_cli_record

    check_paths(args.paths)
    limits = MailLimits.from_settings(settings)
    failures = 0

    def failed(source: str, error: str) -> None:
        nonlocal failures
        failures += 1
        write_record({"source": source, "kind": "unparsed", "error": error})

    # One line per mail, in order; a mail that cannot be read gets an `error` line and the rest go on.
    for mail in iter_raw_mails(args.paths, on_error=failed):
        try:
            record = to_cli_record(parse_mail(mail.raw, limits), mail.source)
        except MailParseError as exc:
            failed(mail.source, str(exc))
            continue
        except MemoryError:
            failed(mail.source, "Too large to parse in the memory available; parse it on a larger machine.")
            continue
        write_record(record)
    return 1 if failures else 0


def cmd_train_intents(args: argparse.Namespace, settings: Settings) -> int:
    from engine.components import build_embedder, intent_model_directory
    from engine.db import Database
    from engine.nlp.intent import EMBEDDING_CACHE_DIR, train_default_model
    from engine.services.knowledge import accepted_examples

    extra = []
    if not args.no_db:
        db = Database(settings.resolved_database_url)
        db.check_migrated()
        with db.transaction() as session:
            extra = accepted_examples(session)
    embedder = build_embedder(settings)
    model = train_default_model(
        embedder, extra=extra, include_public=not args.team_only, cache_dir=settings.models_dir / EMBEDDING_CACHE_DIR
    )
    path = model.save(intent_model_directory(settings))
    print(f"intent model {model.version} saved to {path} ({len(extra)} examples from the queue)")
    return 0


def cmd_reindex(args: argparse.Namespace, settings: Settings) -> int:
    from engine.components import build_embedder, index_directory, knowledge_items
    from engine.db import Database
    from engine.nlp.index import AnswerIndex

    db = Database(settings.resolved_database_url)
    db.check_migrated()
    with db.transaction() as session:
        items = knowledge_items(session)
    index = AnswerIndex(build_embedder(settings))
    index.add(items)
    directory = index_directory(settings, from_database=True)
    index.save(directory)
    print(f"indexed {len(index)} past answers into {directory}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="replydesk", description="ReplyDesk: Amazon buyer-message replies.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(handler=handler)
        return command

    add("migrate", cmd_migrate, "create or upgrade the database schema")
    setup = add(
        "setup", cmd_setup, "migrate, seed the knowledge base; with --demo also load and process the demo inbox"
    )
    setup.add_argument("--demo", action="store_true", help="load the demo stores, users and inbox when empty")
    imp = add("import", cmd_import, "import mail from .eml files, folders, mbox files or Maildir folders")
    imp.add_argument("paths", nargs="+", type=Path)
    imp.add_argument("--store", required=True, help="store (seller account) the mail belongs to")
    proc = add("process", cmd_process, "classify new buyer messages and write drafts")
    proc.add_argument("--batch", type=int, default=200)
    for name, handler, text in (
        (
            "classify",
            cmd_classify,
            "JSON Lines {id,text,marketplace?} → {id,language,language_score,intent,intent_score}",
        ),
        ("check", cmd_check, "JSON Lines {id,text,language?,store?} → {id,allowed,violations}"),
        ("draft", cmd_draft, "JSON Lines {id,text,marketplace?,order_id?,buyer_name?,product_title?} → drafts"),
    ):
        command = add(name, handler, text)
        command.add_argument("file", nargs="?", help="input file (default: standard input)")
    parse = add("parse-email", cmd_parse_email, "parse relay mails (.eml, folders, mbox, Maildir) to JSON Lines")
    parse.add_argument("paths", nargs="+", type=Path)
    train = add("train-intents", cmd_train_intents, "train and save a new intent model version")
    train.add_argument("--team-only", action="store_true", help="team examples only, without the public data sets")
    train.add_argument("--no-db", action="store_true", help="do not read accepted corrections from the database")
    add("reindex", cmd_reindex, "rebuild the past-answer index from the knowledge base")
    _register_optional(sub, add)
    return parser


def _register_optional(sub: Any, add: Callable[[str, Handler, str], argparse.ArgumentParser]) -> None:
    """Commands contributed by other parts: stores and users, sync and send workers, evals."""
    from engine import cli_admin, cli_eval, cli_integrations, cli_workers

    for module in (cli_admin, cli_workers, cli_eval, cli_integrations):
        module.register(add)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        settings = Settings.from_env()
        return int(args.handler(args, settings))
    except ReplyDeskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
