"""``python -m paperlib reproduce --profile mini [--only PREFIX ...]``: regenerate the paper's tables and figures."""

from __future__ import annotations

import argparse

from paperlib.paper import reproduce


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m paperlib reproduce", description=reproduce.__doc__.splitlines()[0])
    p.add_argument("--profile", default="mini", choices=reproduce.PROFILES)
    p.add_argument("--only", nargs="*", help="notebook name prefixes (e.g. table1 fig4)")
    p.add_argument("--data-root", default=None, help="paper profile: folder holding the prepared datasets")
    args = p.parse_args(argv)
    report, results = reproduce.reproduce(args.profile, args.only, args.data_root)
    print(f"[reproduce] report: {report}")
    return 1 if any(r["status"] != "ok" for r in results) else 0
