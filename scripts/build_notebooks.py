"""Write the paper-artefact notebooks ``notebooks/<name>.ipynb`` from the specifications below (one place to edit them).

Each notebook: a markdown cell with the paper's numbers (rendered from :mod:`paperlib.core.paper_numbers`) and claims,
a ``parameters`` cell of literals (papermill) holding exactly the parameters of its artefact function
(:data:`paperlib.paper.artefacts.ARTEFACTS`), a cell that checks them (:mod:`paperlib.paper.notebook_parameters`), the
known deviations and how the profiles map the paper, the call, display, ``save_artefact`` and the figures inline. No
def/class. The kernel is the project's (``paperlib``, "Python (paperlib)"; ``make venv`` registers it).
``tests/test_notebooks.py`` checks the committed notebooks equal this script's output and carry no outputs.

Usage: ``python scripts/build_notebooks.py [--check]``
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

import nbformat

from paperlib.core import paper_numbers as N
from paperlib.paper.artefacts import ARTEFACTS

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 120

# Every parameter an artefact function may take: its literal in the parameters cell and the comment beside it.
# Empty strings stand for None (the call passes ``x or None``).
PARAMETERS = {
    "profile": ('"mini"', "smoke | mini | full | paper"),
    "seed": ("0", ""),
    "device": ('"auto"', "auto (CUDA when present) | cpu | cuda"),
    "data_root": ('""', "paper: folder holding lrs3/, lrs3_no_face_crop/, vggsound_sparse/, vggsound/, weights/"),
    "checkpoint": ('""', "campaign keys and files (see above): evaluate the files instead of training those runs"),
    "gpus": ("0", "processes per training run, each launched through torchrun (0: one per GPU at paper, else 1)"),
    "recipe": ('""', "on | off: the plateau recipe (empty: the profile preset's; off at smoke and paper)"),
    "overrides": ('""', "config overrides for every training run, space-separated (a trial size; see above)"),
    "figures_root": ('""', "folder for figures and tables; empty: figures/ of this repository"),
    "runs_root": ('""', "folder for run directories; empty: runs/ of this repository"),
}

SHOW = '''for title, table in art.tables.items():
    print(title)
    display(table)
for claim in art.claims:
    print(f"[{claim.verdict}] {claim.text}: {claim.evidence}")
for note in art.notes:
    print("note:", note)'''

SAVE = '''written = report.save_artefact(art, out_dir=figures_root or None)
written'''

# The figures inline, right after the call (above the long tables), so that an executed copy (notebooks/executed/)
# shows them in JupyterLab.
FIGURES = '''from IPython.display import Image

for path in art.figures:
    if path.endswith(".png"):
        display(Image(filename=str(report.repo_root() / path)))'''

# The project's kernel: `make venv` and `make lab` register it (the .venv interpreter), papermill picks it by this name.
KERNELSPEC = {"name": "paperlib", "display_name": "Python (paperlib)", "language": "python"}

# Names the notebook's own cells bind: a second "Run All" finds them set, and the parameter check must not object.
NOTEBOOK_NAMES = ("art", "claim", "note", "path", "table", "title", "written")


def _md_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _pair(acc: tuple[float, float] | None) -> str:
    return "—" if acc is None else f"{acc[0]} / {acc[1]}"


def table1_md() -> str:
    return _md_table(["Codec", "Acc@1", "Acc@5"], [[codec, a1, a5] for codec, a1, a5 in N.TABLE1.values()])


def table2_md() -> str:
    header = [""] + [f"{N.TABLE2_SETTINGS[s] + ' ' if c == 3 else ''}{c} cls{'*' if (s, c) == ('sparse', 3) else ''}"
                     for s in N.TABLE2_SETTINGS for c in (3, 21)]
    rows = [[name] + [N.TABLE2[(v, s, c)] for s in N.TABLE2_SETTINGS for c in (3, 21)]
            for v, name in N.TABLE2_MODELS.items()]
    return _md_table(header, rows) + f"\n\n*: oracle (human) performance is {N.ORACLE_SPARSE_3CLS:g} %."


def table5_md() -> str:
    header = list(N.TABLE5_COLUMNS) + [f"{name} Acc / Acc tol" for name in N.TABLE5_SETTINGS.values()]
    rows = [["✗" if col == row.ablated else "✓" for col in N.TABLE5_COLUMNS]
            + [_pair(row.acc.get(s)) for s in N.TABLE5_SETTINGS] for row in N.TABLE5]
    return _md_table(header, rows)


def table4_md() -> str:
    return _md_table(["Length (sec.)", "3 classes", "21 classes"],
                     [[sec, N.TABLE4[3].get(sec, "—"), N.TABLE4[21].get(sec, "—")]
                      for sec in sorted(set(N.TABLE4[3]) | set(N.TABLE4[21]))])


def table6_md() -> str:
    return _md_table(["Depth", "Params.", "Acc / Acc tol"],
                     [[d, f"{p}M", _pair((a, t))] for d, (p, a, t) in N.TABLE6.items()])


def table7_md() -> str:
    return _md_table(["Pre-trained on", "Fine-tuned on", "Acc / Acc tol"],
                     [[N.TABLE7_PRETRAINED, N.TABLE7_DATASETS[ft], _pair(acc)] for ft, acc in N.TABLE7.items()])


def _ablation(name: str) -> tuple[float, float]:
    return next(r for r in N.TABLE5 if r.name == name).acc["sparse"]


_FULL, _SCRATCH = _ablation("full model"), _ablation("sync model not pre-trained on dense data")


def _overall(variant: str) -> str:
    return f"{N.TABLE2[(variant, 'sparse', 3)]} / {N.TABLE2[(variant, 'sparse', 21)]}"


# The training-based artefacts share one set of cached training runs (paperlib/paper/campaign.py).
MAPPING = """Mapping at the `smoke`, `mini` and `full` profiles (synthetic benchmark, `paperlib/data/synthetic/`):
dense-crop = LRS3 (face crop), dense-wide = LRS3 (no face crop), sparse = VGGSound-Sparse, general = VGGSound (a larger,
more varied set); "pre-trained on LRS3" = the dense-crop -> dense-wide chain before sparse. At `mini` the model is the
small CPU configuration of the paper's architecture (`cpu-recipe`: d_model 64, depth 2, 16 selectors, 48-px crops, 5-s
windows) with the plateau recipe of `paperlib/engine/recipes.py` (time-anchored init, auxiliary losses); `full` is the
same model with every run trained past its plateau (`python -m paperlib campaign --profile full --budget`); `smoke` is
a wiring check whose claims are all "not testable at this profile"; `paper` uses the paper's geometry and backbones on
the prepared datasets. Every run is trained once per profile and shared by all notebooks (cached by its resolved
config). Tables: paper | ours | delta (percent), two binomial standard errors of ours (`2se`), the chance
level and the test-set size `n`; a difference counts only beyond 2 s.e., and comparisons of runs that are all at chance
are "not testable" (rules: `paperlib/paper/verdicts.py`)."""

# The paper profile's parameters, and checkpoint mode, in the training notebooks.
PAPER = """At `paper`: `data_root` holds the prepared datasets and `weights/` (the pretrained extractors; README, "The
paper profile"); each training run is launched through torchrun with `gpus` processes; `device` "auto" uses CUDA when
present (the device does not split the run cache; the precision and the number of processes do); `recipe` switches the
plateau recipe (off by default at `paper`, where it was never measured); `overrides` changes every run's config."""
CHECKPOINT = """`checkpoint` = `key=path[,key=path]` (keys of the campaign's plan, e.g. `sparsesync/sparse/c21`): the
cells whose run has the spec of a given key are evaluated from the file instead of trained; the other cells are
trained, or left empty and named in a note where their data or weights are missing."""

INTROS = {
    "table1": f"""# Table 1 and Figures 6-7: codec leakage (paper Sec. 4, 7.1)

A classifier is trained to predict where a 5-s trim starts in a 10-s clip (50 classes on a 0.1-s grid; chance
{N.TABLE1_CHANCE[0]:g} % Acc@1, {N.TABLE1_CHANCE[1]:g} % Acc@5). Above-chance accuracy means compression artefacts leak
the start time, which a synchronisation model could use.

{table1_md()}

Known deviations (details in `paperlib/studies/leakage/`): the paper's MJPEG-AoT ProRes footage is not available, so
natural-looking footage is rendered procedurally (textures, camera and object motion, a static caption); at the `smoke`
and `mini` sizes the classifier is a position-aware CPU model instead of the paper's ResNet18 (kept for `paper`), with
fewer and smaller clips. The authors never released this experiment; Fig. 6 adds a quantitative view (per-frame mean
absolute first difference and its periodogram) and the top-5 modulo-12 indicator of Sec. 7.1 is reported against its
chance level.""",
    "table2": f"""# Table 2: SparseSync vs AVST_dec from dense to sparse data (paper Sec. 5.1)

Acc@1 on the 3-class grid (-1, 0, +1 s) and Acc@1 with +-1 class tolerance on the 21-class grid (-2..+2 s, 0.2-s
steps), 5-s inputs. Sparse models are pre-trained on LRS3 (no face crop), as in the paper.

{table2_md()}

Claims: SparseSync outperforms AVST_dec on sparse data; the gap to AVST_dec grows from dense to sparse data and from
3 to 21 classes; sparse data is harder than dense data.

{MAPPING}

Our oracle is the share of sparse test items whose windows hold a sync cue (with the ceiling it implies and
each model's accuracy on those items).

{CHECKPOINT} The official checkpoints fill the SparseSync cells on LRS3 no face crop and VGGSound-Sparse
(22-07-18T08-00-00 / 22-07-13T22-25-49 as `sparsesync/dense-wide/c3` / `c21`, 22-08-13T21-55-03 / 22-07-28T15-49-45
as `sparsesync/sparse/c3` / `c21`); LRS3 face crop and AVST_dec are trained.

{PAPER}""",
    "table3": f"""# Tables 3 and 5: ablations (paper Sec. 5.2, 7.2)

21 classes, 5-s inputs; Acc@1 / Acc@1 +-1 class on LRS3 (no face crop) and VGGSound-Sparse. Table 3 is the
VGGSound-Sparse Acc@1 +-1 column of Table 5.

{table5_md()}

Claims: selectors beat the no-selector transformer on sparse data (with a narrower gap on LRS3 no face crop);
pre-training on dense data is essential for sparse data ({_FULL[1]} vs {_SCRATCH[1]}, near chance); pre-trained and
trainable (unfrozen) feature extractors help.

{MAPPING}

"Pre-trained feature extractors" at the CPU profiles = the extractors carried over from the dense chain; at
`paper` they are the paper's: S3D on Kinetics 400 and ResNet18 on VGGSound (`data_root/weights/`). Without pre-training
they start from a fresh init; "frozen" keeps the pretrained ones (at `paper`: those weights, never trained).

{CHECKPOINT} The official checkpoints fill the full-model rows (22-07-13T22-25-49 as `sparsesync/dense-wide/c21`,
22-07-28T15-49-45 as `sparsesync/sparse/c21`); the ablation rows are trained.

{PAPER}""",
    "table4": f"""# Table 4: input length (paper Sec. 5.2)

VGGSound-Sparse; Acc@1 (3 classes) and Acc@1 +-1 class (21 classes); the same length for pre-training, fine-tuning and
testing.

{table4_md()}

Claim: longer inputs help on sparse data (sparse cues are more likely to fall inside a longer window).

{MAPPING}

The lengths trained depend on the profile (its `lengths`, `paperlib/paper/profiles.py`); untrained lengths are empty rows. At
`paper` each length starts from the authors' VGGSound audio extractor of that length.

{CHECKPOINT} The official checkpoints fill the 5-s rows (22-08-13T21-55-03 and 22-07-28T15-49-45 as
`sparsesync/sparse/c3` / `c21`); the other lengths are trained.

{PAPER}""",
    "table6": f"""# Table 6: depth of the transformer modules (paper Sec. 7.2)

LRS3 (no face crop), 21 classes; the depth of both selectors and of the sync transformer.

{table6_md()}

Claims: depth helps and the gain saturates around 3 layers.

{MAPPING}

Parameter counts are given twice: the paper-size model at each depth (`paperlib.model.sparsesync.model_summary`, no
training) beside the paper's, and the small model this profile trained.

{CHECKPOINT} The official 22-07-13T22-25-49 (`sparsesync/dense-wide/c21`) fills the depth-3 row; the other depths are
trained.

{PAPER}""",
    "table7": f"""# Table 7: fine-tuning on a larger general-purpose dataset (paper Sec. 7.2)

Tested on VGGSound-Sparse, 21 classes, Acc@1 / Acc@1 +-1 class.

{table7_md()}

Claim: fine-tuning on a larger, more varied set helps on sparse data.

{MAPPING}

{CHECKPOINT} With the official 22-07-28T15-49-45 (`sparsesync/sparse/c21`) and 22-09-21T21-00-52
(`sparsesync/general/c21`) the whole table comes from the official checkpoints.

{PAPER}""",
    "fig3": f"""# Figure 3: performance per content class and per offset class on sparse data (paper Sec. 5.1)

The paper shows, as bars only, the accuracy of SparseSync and AVST_dec per VGGSound-Sparse class (12 classes) and per
offset class on the test set; its values are not given in the text, so there is no paper column here. Overall
(Table 2): SparseSync {_overall("sparsesync")}, AVST_dec {_overall("avst_dec")} (3 classes Acc@1 / 21 classes Acc@1
+-1).

Claim: SparseSync's advantage over AVST_dec on sparse data holds across content classes.

{MAPPING}

Our content classes are the synthetic sparse event kinds; per-class bars use each grid's main metric
(Acc@1 for 3 classes, Acc@1 +-1 class for 21).
{CHECKPOINT} The official checkpoints fill SparseSync (22-08-13T21-55-03 and 22-07-28T15-49-45 as
`sparsesync/sparse/c3` / `c21`); AVST_dec is trained.

{PAPER}""",
    "fig4": """# Figure 4: memory footprint vs input length (paper Sec. 5.2)

The paper's argument for selectors: the no-selector transformer's training memory grows quadratically with input
duration, the selectors' linearly (feature extractors excluded, as the paper states). The authors released no code for
the figure.

Here: peak training memory (forward + backward, batch 10, paper width and depth) of the selector + sync-transformer
stack and of the no-selector transformer, fed with the token grids that 2..30-s inputs produce at the paper's geometry.
Without a GPU the peak is estimated without real allocation (fake tensors + a storage tracker,
`paperlib/studies/memory.py`), validated against an exact count on a small model; on CUDA it is measured with
`torch.cuda.max_memory_allocated`. A third curve shows explicit softmax attention instead of SDPA's memory-efficient
path.""",
    "fig5": """# Figures 5 and 8: where the selectors look (paper Sec. 5.2, 7.2)

The paper shows min-max-scaled cross-attention from a selector to visual and audio tokens, from "a head within one of
the layers", chosen by eye. On the synthetic benchmark the sound source's box and the event times are known, so here
each layer and head gets a localisation score: attention mass on the source region at event times divided by the
region's share of the frame (1.0 = no preference), for an untrained and (where a checkpoint is given or trained) a
trained model; the figure's head is the best-scoring one. `checkpoint`: a model file to score instead of the trained
model of the campaign (in a `key=path` list, the file given for `sparsesync/dense-wide/c21`). With a checkpoint or at
`paper`, the clips are the test splits under `data_root` (VGGSound-Sparse and LRS3 no face crop): scored where they are
synthetic stand-ins with known sources, drawn with each head's peakedness (max / mean of its map) where they are real
clips, which carry no ground truth. One real video: `python -m paperlib attention VIDEO --checkpoint CKPT --out
DIR`.""",
}


def _parameter_names(name: str) -> list[str]:
    return list(inspect.signature(ARTEFACTS[name]).parameters)


def parameters_cell(name: str) -> str:
    lines = []
    for p in _parameter_names(name):
        literal, comment = PARAMETERS[p]
        if "=" in comment:  # papermill skips a parameters line with two "=" (it would not pass that parameter)
            raise ValueError(f"the comment of parameter {p!r} holds '=': {comment!r}")
        lines.append(f"{p} = {literal}" + (f"  # {comment}" if comment else ""))
    return "\n".join(lines)


def call_cell(name: str) -> str:
    func = ARTEFACTS[name].__name__
    args = [f"{p}={p} or None" if PARAMETERS[p][0] == '""' else f"{p}={p}" for p in _parameter_names(name)]
    head = f"art = artefacts.{func}("
    pieces = [a + "," for a in args[:-1]] + [args[-1] + ")"]
    lines = [head + pieces[0]]
    for piece in pieces[1:]:  # greedy wrap, continuation lines aligned after the parenthesis
        if len(lines[-1]) + 1 + len(piece) > WIDTH:
            lines.append(" " * len(head) + piece)
        else:
            lines[-1] += " " + piece
    return "from paperlib.paper import artefacts, report\n\n" + "\n".join(lines)


def check_cell(name: str) -> str:
    """The cell right after the parameters (and papermill's injected ones): fails at once on an undeclared name or a
    bad value (:mod:`paperlib.paper.notebook_parameters`)."""
    declared = ", ".join(f'"{p}"' for p in _parameter_names(name))
    if len(declared) > WIDTH - 30:  # wrapped after the 5th name, aligned under the first
        names = [f'"{p}"' for p in _parameter_names(name)]
        declared = ", ".join(names[:5]) + ",\n" + " " * 29 + ", ".join(names[5:])
    own = ", ".join(f'"{n}"' for n in NOTEBOOK_NAMES)
    return ("# Stops here, listing the declared parameters, on a misspelt name (papermill -p) or a bad value.\n"
            "import warnings\n\n"
            "from paperlib.paper.notebook_parameters import check_parameters\n\n"
            "# Progress bars are text (no ipywidgets): shown here and in papermill's log (--log-output).\n"
            'warnings.filterwarnings("ignore", message="IProgress not found")\n\n'
            f'check_parameters(globals(), [{declared}],\n'
            f'                 notebook_names=[{own}], notebook="{name}.ipynb")')


def split_intro(text: str) -> tuple[str, str]:
    """The intro's head (title, the paper's numbers, the claims) and its details (how the profiles map the paper's
    data, checkpoints, the paper profile), which go below the parameters so that those sit near the top."""
    cut = text.find(MAPPING)
    if cut < 0:
        return text, ""
    return text[:cut].rstrip(), "## How this notebook maps the paper\n\n" + text[cut:]


def build(name: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    params = nbformat.v4.new_code_cell(parameters_cell(name))
    params.metadata["tags"] = ["parameters"]
    head, details = split_intro(INTROS[name])
    nb.cells = [
        nbformat.v4.new_markdown_cell(head),
        params,
        nbformat.v4.new_code_cell(check_cell(name)),
        *([nbformat.v4.new_markdown_cell(details)] if details else []),
        nbformat.v4.new_code_cell(call_cell(name)),
        nbformat.v4.new_code_cell(FIGURES),
        nbformat.v4.new_code_cell(SHOW),
        nbformat.v4.new_code_cell(SAVE),
    ]
    for i, cell in enumerate(nb.cells):  # stable ids "0", "1", ... as nbstripout (the git filter) writes them
        cell["id"] = str(i)
    return nb


def render(name: str) -> str:
    return nbformat.writes(build(name)) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if a committed notebook differs from its spec")
    args = p.parse_args(argv)
    if set(INTROS) != set(ARTEFACTS):
        raise SystemExit(f"notebook intros {sorted(INTROS)} and artefacts {sorted(ARTEFACTS)} differ")
    out = ROOT / "notebooks"
    out.mkdir(exist_ok=True)
    stale = []
    for name in ARTEFACTS:
        path = out / f"{name}.ipynb"
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    extra = sorted(p.name for p in out.glob("*.ipynb") if p.stem not in ARTEFACTS)
    if stale or extra:
        print(f"notebooks differ from scripts/build_notebooks.py: {stale}; not built by it: {extra}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
