"""Generated tables: rewrite every `<!-- table:NAME -->` block of README.md and docs/*.md from
the committed results files, or check that they agree.

    python tools/tables.py                 # rewrite every table
    python tools/tables.py --check         # exit 1 naming each table that differs from its results
    python tools/tables.py collect NAME [RUN_JSON]   # results/NAME.json from a run of its command
    python tools/tables.py collect         # every results file whose run output is there
    python tools/tables.py list            # results files, their commands, tables and where shown
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bleedorigin.errors import InputError
from bleedorigin.eval import results, tables

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", nargs="?", default="write", choices=("write", "collect", "list"))
    parser.add_argument("name", nargs="?", help="collect: the results source (see `list`; default: all)")
    parser.add_argument("run_json", nargs="?", type=Path, help="collect: the JSON the run wrote "
                        "(default: the output its command names)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a table differs")
    args = parser.parse_args(argv)
    try:
        if args.action == "collect" and args.name is None:
            for source in results.SOURCES.values():
                if (ROOT / source.output).is_file():
                    print(f"wrote {results.collect(source, ROOT / source.output, ROOT).relative_to(ROOT)}")
                else:
                    print(f"skipped results/{source.name}.json: no {source.output} (run `{source.command}`)")
        elif args.action == "collect":
            if args.name not in results.SOURCES:
                raise InputError(f"unknown results source {args.name!r} (known: {', '.join(results.SOURCES)})")
            source = results.SOURCES[args.name]
            path = results.collect(source, args.run_json or ROOT / source.output, ROOT)
            print(f"wrote {path.relative_to(ROOT)}; now run `python tools/tables.py`")
        elif args.action == "list":
            shown = tables.used(ROOT)
            for source in results.SOURCES.values():
                print(f"results/{source.name}.json: {source.command}")
            for name, t in tables.TABLES.items():
                print(f"table {name} <- {', '.join(t.sources)}: {', '.join(shown.get(name, ['(not shown)']))}")
        else:
            stale = tables.update(ROOT, write=not args.check)
            for doc, name in stale:
                print(f"{doc}: table {name} {'differs from its results file' if args.check else 'rewritten'}")
            if args.check and stale:
                return 1
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
