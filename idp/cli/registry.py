"""`yihao registry import FILE.csv`: fill the local population or legal-entity registry.

Streams the file (constant memory), upserts in batches by blind index (a re-run updates in
place), reports bad rows by line number and reason on standard error and goes on, and ends with a
summary. Progress: a self-updating line on a terminal, a plain line every 10 s otherwise.
"""
from __future__ import annotations

import argparse
import sys
import time

from idp import events
from idp.cli.common import open_core
from realname.registry.importer import KINDS, HeaderError, ImportReport, Importer

PLAIN_EVERY = 10.0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("registry", help="local population and legal-entity registries")
    verbs = parser.add_subparsers(dest="registry_verb", required=True)
    load = verbs.add_parser("import", help="import people.csv (name,id_number) or entities.csv "
                                           "(credit_code,name,legal_representative,status)")
    load.add_argument("file", type=argparse.FileType("r", encoding="utf-8-sig"), help="CSV file with a header; - for stdin")
    load.add_argument("--kind", choices=tuple(KINDS), help="default: detected from the header")
    load.add_argument("--batch-size", type=int, default=5000, help="rows per transaction (default 5000)")
    load.add_argument("--start-line", type=int, default=0, help="skip data before this line (resume)")
    load.set_defaults(run=run_import)


class Progress:
    def __init__(self, tty: bool) -> None:
        self._tty = tty
        self._last = time.monotonic()

    def __call__(self, report: ImportReport) -> None:
        if not self._tty and time.monotonic() - self._last < PLAIN_EVERY:
            return
        self._last = time.monotonic()
        line = f"{report.kind}: line {report.line:,}, {report.imported:,} imported, {report.skipped:,} skipped, {report.rate:,.0f} rows/s"
        print(f"\r\x1b[K{line}" if self._tty else line, end="" if self._tty else "\n", file=sys.stderr, flush=True)


def run_import(args: argparse.Namespace) -> int:
    _, core = open_core()
    tty = sys.stderr.isatty()
    clear = "\r\x1b[K" if tty else ""  # a bad row overwrites the progress line, which comes back

    def bad_row(line: int, reason: str) -> None:
        print(f"{clear}line {line}: {reason}", file=sys.stderr)

    importer = Importer(core.engine, core.vault, batch_size=args.batch_size,
                        on_error=bad_row, on_batch=Progress(tty))
    try:
        with args.file:
            report = importer.run(args.file, kind=args.kind, start_line=args.start_line)
        events.record(events.REGISTRY_IMPORTED, actor="cli", kind=report.kind, read=report.read,
                      imported=report.imported, skipped=report.skipped)
    except HeaderError as exc:
        print(f"yihao: {exc}", file=sys.stderr)
        return 1
    except UnicodeDecodeError:
        print(f"yihao: {args.file.name} is not UTF-8 text; rows before the bad bytes were imported", file=sys.stderr)
        return 1
    finally:
        core.close()
    if tty:
        print(file=sys.stderr)
    print(f"{report.kind}: {report.read} rows read, {report.imported} imported, {report.skipped} skipped "
          f"in {report.seconds:.1f} s ({report.rate:,.0f} rows/s)")
    return 1 if report.skipped else 0
