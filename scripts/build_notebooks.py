"""Write the paper-artefact notebooks under notebooks/ from the specifications below (one place to edit them).

Each notebook: a markdown cell with the paper's numbers and the known deviations, a ``parameters`` cell of literals
(papermill), a call to the artefact function in ``paperlib.experiments``, display, and ``save_artefact``. No def/class.
``tests/test_notebooks.py`` checks the committed notebooks equal this script's output and carry no outputs.

Usage: ``python scripts/build_notebooks.py [--check]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]

COMMON_PARAMS = '''profile = "mini"  # smoke | mini | paper
seed = 0
device = "cpu"  # cpu | cuda
data_root = ""  # paper profile: folder holding the prepared datasets
checkpoint = ""  # evaluate an (official or paperlib) checkpoint instead of training, where the artefact allows
figures_root = ""  # folder for figures and tables; empty: figures/ of this repository
runs_root = ""  # folder for run directories; empty: runs/ of this repository'''

SHOW = '''for title, table in art.tables.items():
    print(title)
    display(table)
for claim in art.claims:
    print(f"[{claim.verdict}] {claim.text}: {claim.evidence}")
for note in art.notes:
    print("note:", note)'''

SAVE = '''written = ex.save_artefact(art, out_dir=figures_root or None)
written'''

NOTEBOOKS = {
    "table1_codec_leakage": {
        "intro": """# Table 1 and Figures 6-7: codec leakage (paper Sec. 4, 7.1)

A classifier is trained to predict where a 5-s trim starts in a 10-s clip (50 classes on a 0.1-s grid; chance 2 % Acc@1,
10 % Acc@5). Above-chance accuracy means compression artefacts leak the start time, which a synchronisation model could use.

| codec | paper Acc@1 | paper Acc@5 |
|---|---|---|
| MPEG-4 Part 2 (mpeg4) | 27.2 | 77.1 |
| MPEG-4 Part 10 (H.264) | 2.5 | 11.9 |
| ProRes | 2.7 | 13.4 |
| AAC @ 44100 Hz | 86.7 | 100.0 |
| AAC @ 22050 Hz | 23.0 | 74.3 |
| AAC @ 16000 Hz | 6.3 | 19.3 |
| Lossless @ 22050 Hz | 2.9 | 14.6 |

Known deviations (details in `paperlib/leakage.py`): the paper's MJPEG-AoT ProRes footage is not available, so natural-looking
footage is rendered procedurally (textures, camera and object motion, a static caption); at the `smoke` and `mini` sizes the
classifier is a position-aware CPU model instead of the paper's ResNet18 (kept for `paper`), with fewer and smaller clips.
The authors never released this experiment; Fig. 6 adds a quantitative view (per-frame mean absolute first difference and
its periodogram) and the top-5 modulo-12 indicator of Sec. 7.1 is reported against its chance level.""",
        "call": '''from paperlib import experiments as ex

art = ex.table1_codec_leakage(profile=profile, seed=seed, device=device, figures_root=figures_root or None,
                              runs_root=runs_root or None)''',
    },
    "fig4_memory": {
        "intro": """# Figure 4: memory footprint vs input length (paper Sec. 5.2)

The paper's argument for selectors: the no-selector transformer's training memory grows quadratically with input duration,
the selectors' linearly (feature extractors excluded, as the paper states). The authors released no code for the figure.

Here: peak training memory (forward + backward, batch 10, paper width and depth) of the selector + sync-transformer stack and
of the no-selector transformer, fed with the token grids that 2..30-s inputs produce at the paper's geometry. Without a GPU
the peak is estimated without real allocation (fake tensors + a storage tracker, `paperlib/memory.py`), validated against an
exact count on a small model; on CUDA it is measured with `torch.cuda.max_memory_allocated`. A third curve shows explicit
softmax attention instead of SDPA's memory-efficient path.""",
        "call": '''from paperlib import experiments as ex

art = ex.fig4_memory(profile=profile, device=device, figures_root=figures_root or None, runs_root=runs_root or None)''',
    },
    "fig5_attention": {
        "intro": """# Figures 5 and 8: where the selectors look (paper Sec. 5.2, 7.2)

The paper shows min-max-scaled cross-attention from a selector to visual and audio tokens, from "a head within one of the
layers", chosen by eye. On the synthetic benchmark the sound source's box and the event times are known, so here each layer and
head gets a localisation score: attention mass on the source region at event times divided by the region's share of the frame
(1.0 = no preference), for an untrained and (where a checkpoint is given or trained) a trained model; the figure's head is the
best-scoring one. Real videos: `python -m paperlib attention VIDEO --checkpoint CKPT --out DIR`.""",
        "call": '''from paperlib import experiments as ex

art = ex.fig5_attention(profile=profile, seed=seed, device=device, checkpoint=checkpoint or None,
                        figures_root=figures_root or None, runs_root=runs_root or None)''',
    },
}


def build(name: str, spec: dict) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    params = nbformat.v4.new_code_cell(COMMON_PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell(spec["intro"]),
        params,
        nbformat.v4.new_code_cell(spec["call"]),
        nbformat.v4.new_code_cell(SHOW),
        nbformat.v4.new_code_cell(SAVE),
    ]
    for i, cell in enumerate(nb.cells):  # stable ids "0", "1", ... as nbstripout (the git filter) writes them
        cell["id"] = str(i)
    return nb


def render(name: str) -> str:
    return nbformat.writes(build(name, NOTEBOOKS[name])) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if a committed notebook differs from its spec")
    args = p.parse_args(argv)
    out = ROOT / "notebooks"
    out.mkdir(exist_ok=True)
    stale = []
    for name in NOTEBOOKS:
        path = out / f"{name}.ipynb"
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    if stale:
        print(f"notebooks differ from scripts/build_notebooks.py: {stale}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
