"""``python -m paperlib --help`` and every command's ``--help`` print without importing torch (the library is imported
only once a command's arguments are parsed), so they return at once; values listed in the library are still checked."""

from __future__ import annotations

import subprocess
import sys

from paperlib.commands import COMMANDS

SUBCOMMANDS = {"leakage": ["probe", "table1", "fig6"], "datasets": ["fetch-protocol", "make-offsets", "summary"],
               "sparse-recipe": ["data", "eval"]}

SCRIPT = """
import contextlib, io, sys
from paperlib.commands import main
calls = [[]] + [[c] for c in sys.argv[1].split()] + [c.split(":") for c in sys.argv[2].split()]
for argv in calls:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            rc = main(argv + ["--help"])
        except SystemExit as e:
            rc = e.code
    assert rc == 0 and "usage:" in out.getvalue(), (argv, rc, out.getvalue()[-500:])
    heavy = sorted(m for m in ("torch", "torchvision", "torchaudio") if m in sys.modules)
    assert not heavy, (argv, heavy)
print("ok", len(calls))
"""


def test_every_help_prints_without_importing_torch():
    subs = " ".join(f"{c}:{s}" for c, ss in SUBCOMMANDS.items() for s in ss)
    r = subprocess.run([sys.executable, "-c", SCRIPT, " ".join(COMMANDS), subs], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == f"ok {1 + len(COMMANDS) + sum(map(len, SUBCOMMANDS.values()))}"


def test_values_listed_in_the_library_are_still_checked(capsys):
    from paperlib.commands import main

    try:
        main(["model-summary", "--variant", "selectors"])
    except SystemExit as e:
        assert e.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'selectors' (choose from 'sparsesync', 'transformer', 'avst_dec')" in err
