"""The authors' protocol files read as the official code reads them, and the paper profile's input check.

The real split lists, filter lists and ``vggsound_sparse.csv`` (``../shared/reference/official_protocol``) are the
inputs: the official LRS3 filter list removes no clip of the official splits; a tiny data root laid out from them
(clips made here under ids taken from the real lists) trains one paper run through torchrun (2 gloo processes),
checkpoints it and tests it at the fixed offsets of the root's CSVs, after printing the table of inputs; removing any
one input (an annotation CSV, a split list, an offset CSV, a listed test clip, a weights file) stops `reproduce
--profile paper` before anything trains with an error naming it."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from paperlib.commands import main
from paperlib.data import datasets as D
from paperlib.data.protocol import check_data_inputs
from paperlib.paper import campaign as C
from paperlib.paper import plan as PL
from paperlib.paper import run_config as RUN

sys.path.insert(0, str(Path(__file__).parent))
from test_paper_profile import AUDIO_2S, TINY, _layout, _write_extractor_weights

OFFICIAL = Path(__file__).resolve().parents[2] / "shared" / "reference" / "official_protocol"
if not OFFICIAL.is_dir():  # a checkout beside shared/
    OFFICIAL = Path("/work/shared/reference/official_protocol")
pytestmark = pytest.mark.skipif(not OFFICIAL.is_dir(), reason="the authors' protocol files are not here")

# the tiny root's fixed offsets: 2-s windows (TINY), per grid (offset_sec, vstart_sec) for the two ids of a split
WINDOWS = {(21, 2.0): [(0.4, 1.0), (-1.2, 2.0)], (3, 1.0): [(1.0, 0.5), (-1.0, 1.5)]}
N = {"train": 4, "valid": 2, "test": 2}


def _official_lrs3_ids() -> dict[str, list[str]]:
    return {s: [D._strip_ext(x) for x in D._read_lines(OFFICIAL / f"lrs3_{s}.txt")] for s in D.SPLITS}


# ---------------------------------------------------------------------------------------------------------------------
# filter lists


def test_official_lrs3_filter_list_removes_no_clip_of_the_official_splits(tmp_path):
    root = tmp_path / "lrs3"
    (root / "filtered_examples_lrs").mkdir(parents=True)
    os.symlink(OFFICIAL / "filtered_examples_lrs" / "less_than_9s.txt",
               root / "filtered_examples_lrs" / "less_than_9s.txt")
    lists = _official_lrs3_ids()
    cfg = D.DataConfig(dataset="lrs3", root=str(root))
    drop = D.filtered_ids(cfg)
    assert len(drop) == 59447 and "pretrain/bRQahFJUSJQ/00003" in drop
    for split, ids in lists.items():
        assert not set(ids) & drop, split
        # a bare clip number names a clip in every video: matched by basename the list would remove nearly all
        assert len({os.path.basename(i) for i in ids} & {os.path.basename(d) for d in drop}) > 0.9 * len(
            {os.path.basename(i) for i in ids})
    # records_for on a root holding the official lists and some of their clips keeps every listed clip on disk
    for split, ids in lists.items():
        os.symlink(OFFICIAL / f"lrs3_{split}.txt", root / f"lrs3_{split}.txt")
        for i in ids[:3]:
            (root / f"{i}.mp4").parent.mkdir(parents=True, exist_ok=True)
            (root / f"{i}.mp4").write_bytes(b"x")
    assert {s: [r.id for r in D.records_for(cfg, s)] for s in D.SPLITS} == {s: ids[:3] for s, ids in lists.items()}
    rows = check_data_inputs(cfg, D.Geometry(), official=True, allow_missing_clips=True)
    (filt,) = [r for r in rows if r.what == "filter list"]
    assert filt.detail == "59447 entries, 0 of the listed clips removed"
    # an entry removes exactly the clip it names, also as an absolute path under the root
    extra = tmp_path / "mine.txt"
    extra.write_text(f"{root / lists['test'][1]}.mp4\n./{lists['test'][2]}.mp4\n00002\n")
    cfg2 = D.DataConfig(dataset="lrs3", root=str(root), filter_lists=(str(extra),))
    assert [r.id for r in D.records_for(cfg2, "test")] == lists["test"][:1]
    assert D.filter_entry_id("G1x66WZKZKQ_215000_225000.mp4", root) == "G1x66WZKZKQ_215000_225000"


def test_official_vggsound_sparse_lists_give_the_official_clip_counts(capsys):
    """The official VGGSound lists, restricted to the 12 classes of vggsound_sparse.csv and with every official filter
    list applied, name the 5,252 / 758 / 542 clips the authors' code uses."""
    cfg = D.DataConfig(dataset="vggsound_sparse", root=str(OFFICIAL))
    rows = check_data_inputs(cfg, D.Geometry(), official=True)
    clips = {r.path.rsplit("[", 1)[1].rstrip("]"): r for r in rows if r.what == "clips"}
    assert {s: r.listed for s, r in clips.items()} == {"train": 5252, "valid": 758, "test": 542}
    assert all(r.count == 0 and r.problem for r in clips.values())  # no clip on disk there: the run cannot start
    (annotations,) = [r for r in rows if r.what == "annotation CSV"]
    assert annotations.detail == "7083 rows, 12 classes" and annotations.status == "present"
    # the same check from the command line: the table, each problem, a non-zero exit
    assert main(["datasets", "check", "--root", str(OFFICIAL), "--dataset", "vggsound_sparse"]) == 1
    out = capsys.readouterr().out
    assert "0 of 542 listed test clips on disk" in out and "problem: vggsound_sparse/test" in out


# ---------------------------------------------------------------------------------------------------------------------
# the tiny data root laid out from the real protocol files


def _ids_in_sparse_csv() -> dict[str, list[str]]:
    """Per split, ids of the official VGGSound lists that are VGGSound-Sparse clips and in no filter list."""
    sparse = {i for i, _, _ in D.read_vggsound_csv(OFFICIAL / "vggsound_sparse.csv")}
    filt = D.DataConfig(dataset="vggsound_sparse", root=str(OFFICIAL))
    drop = D.filtered_ids(filt)
    out = {}
    for split in D.SPLITS:
        ids = [D._strip_ext(x) for x in D._read_lines(OFFICIAL / f"vggsound_{split}.txt")]
        out[split] = [i for i in ids if i in sparse and i not in drop][:N[split]]
    return out


def _link_clips(src: Path, dst_paths: list[Path]) -> None:
    clips = sorted(p for p in src.rglob("*.mp4") if "sidecar" not in p.parts)
    assert len(clips) >= len(dst_paths)
    for c, d in zip(clips, dst_paths):
        d.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(c, d)


def _write_offsets(folder: Path, split_ids: dict[str, list[str]]) -> None:
    for (size, m), rows in WINDOWS.items():
        for split in ("valid", "test"):
            D.write_fixed_offsets(folder / D.fixed_offsets_name(split, size, 2.0, m),
                                  dict(zip(split_ids[split], rows)))


@pytest.fixture(scope="module")
def official_root(tmp_path_factory) -> Path:
    """lrs3/ and lrs3_no_face_crop/ (official LRS3 ids, the official filter list, fixed-offset CSVs in the official
    format), vggsound_sparse/ (the official CSV, class list, filter lists, ids of the official VGGSound lists) and
    weights/, with synthetic clips of the right kind under the official names."""
    base = tmp_path_factory.mktemp("official-root")
    src = base / "src"
    root = base / "data"
    lrs3 = {s: ids[:N[s]] for s, ids in _official_lrs3_ids().items()}
    for folder, setting in (("lrs3", "dense-crop"), ("lrs3_no_face_crop", "dense-wide")):
        made = _layout(src, folder, setting)
        _link_clips(made, [root / folder / f"{i}.mp4" for s in D.SPLITS for i in lrs3[s]])
        for s in D.SPLITS:
            (root / folder / f"lrs3_{s}.txt").write_text("".join(i + "\n" for i in lrs3[s]))
        (root / folder / "filtered_examples_lrs").mkdir()
        os.symlink(OFFICIAL / "filtered_examples_lrs" / "less_than_9s.txt",
                   root / folder / "filtered_examples_lrs" / "less_than_9s.txt")
        _write_offsets(root / folder / "fixed_offsets", lrs3)
    vgg = _ids_in_sparse_csv()
    sparse = root / "vggsound_sparse"
    _link_clips(_layout(src, "vggsound_sparse", "sparse"), [sparse / "video" / f"{i}.mp4" for s in D.SPLITS
                                                             for i in vgg[s]])
    for name in ("vggsound_sparse.csv", "picked_sparse_classes.csv", "filtered_examples_vggsound"):
        os.symlink(OFFICIAL / name, sparse / name)
    for s in D.SPLITS:
        (sparse / f"vggsound_{s}.txt").write_text("".join(i + "\n" for i in vgg[s]))
    _write_extractor_weights(root / "weights")
    return root


def _view(root: Path, at: Path) -> Path:
    """A copy of ``root`` whose files are links to root's (remove one to take an input away)."""
    shutil.copytree(root, at, symlinks=True, copy_function=os.symlink)
    return at


def _reproduce(data_root: Path, tmp_path: Path, *extra: str) -> int:
    return main(["reproduce", "--profile", "paper", "--only", "table2", "--data-root", str(data_root), "--gpus", "2",
                 "--runs-root", str(tmp_path / "runs"), "--figures-root", str(tmp_path / "figs"), *extra,
                 "--set", *TINY])


def _first_test_clip(root: Path) -> str:
    return D._read_lines(root / "lrs3" / "lrs3_test.txt")[0]


REMOVALS = {  # kind -> (path under the data root, what the error names)
    "annotation CSV": ("vggsound_sparse/vggsound_sparse.csv", "annotation CSV {p} is missing"),
    "split list": ("lrs3/lrs3_valid.txt", "split list {p} is missing"),
    "offset CSV": ("lrs3_no_face_crop/fixed_offsets/test_size21_crop2_min-2.00_max2.00.csv",
                   "fixed-offset CSV {p} is missing"),
    "test clip": ("lrs3/{clip}.mp4", "official test clips are missing"),
    "weights file": (f"weights/{AUDIO_2S}", "{p} does not exist"),
}


@pytest.mark.parametrize("kind", list(REMOVALS))
def test_a_missing_input_stops_reproduce_before_anything_trains(kind, official_root, tmp_path, capsys):
    root = _view(official_root, tmp_path / "data")
    rel, says = REMOVALS[kind]
    rel = rel.format(clip=_first_test_clip(root))
    (root / rel).unlink()
    assert _reproduce(root, tmp_path) == 2
    out, err = capsys.readouterr()
    assert err.startswith("paperlib reproduce: the paper profile cannot start: ") and err.count("\n") == 1, err
    path = str((root / rel).resolve().parent / Path(rel).name)
    assert says.format(p=path) in err, err
    if kind == "test clip":
        assert _first_test_clip(root) in err and "1 of 2" in err
    assert "[inputs] what the runs will read" in out and "! " in out  # the table, the problem marked
    assert not (tmp_path / "runs" / "campaign").exists()  # nothing started


def test_flags_allow_missing_clips_and_regenerated_protocol_and_say_so(official_root, tmp_path, capsys):
    root = _view(official_root, tmp_path / "data")
    (root / "lrs3" / f"{_first_test_clip(root)}.mp4").unlink()
    (root / "lrs3" / "lrs3_valid.txt").unlink()
    for p in (root / "lrs3" / "fixed_offsets").glob("valid_*"):
        p.unlink()
    keys = ["sparsesync/dense-crop/c21"]
    with pytest.raises(FileNotFoundError) as e:
        C.check_inputs(keys, "paper", data_root=str(root), overrides=TINY)
    assert "split list" in str(e.value) and "fixed-offset CSV" in str(e.value) and "test clips" in str(e.value)
    capsys.readouterr()
    C.check_inputs(keys, "paper", data_root=str(root), overrides=TINY, show=True, regenerate_protocol=True,
                   allow_missing_clips=True)
    table = capsys.readouterr().out
    assert "1 of 2 listed test clips on disk; 1 dropped" in table
    assert "an 8:1:1 split by video id is made instead (not the official split)" in table
    assert "generated when the run starts (seed 1338; not the official windows)" in table and "0 problem(s)" in table


def test_general_validates_and_tests_at_fixed_offsets_in_one_pass():
    specs = PL.plan("paper")
    general = RUN.resolve_spec(specs["sparsesync/general/c21"], "paper", data_root="/d")
    assert (general.data.dataset, general.data.fixed_offsets, general.data.iter_times) == ("vggsound", True, 1)
    sparse = RUN.resolve_spec(specs["sparsesync/sparse/c21"], "paper", data_root="/d")
    assert (sparse.data.fixed_offsets, sparse.data.iter_times) == (False, 25)  # the README's VGGSound-Sparse test
    # Table 7 tests the general run on VGGSound-Sparse, as every sparse run
    test = RUN.test_data_config(specs["sparsesync/general/c21"], "paper", data_root="/d", cfg=general)
    assert (test.dataset, test.fixed_offsets, test.iter_times) == ("vggsound_sparse", False, 25)


def test_a_bad_test_clip_is_an_error_naming_it_never_another_clip(official_root, tmp_path):
    root = _view(official_root, tmp_path / "data") / "lrs3"
    clip = _first_test_clip(root.parent)
    (root / f"{clip}.mp4").unlink()
    (root / f"{clip}.mp4").write_bytes(b"not a video")
    cfg = D.DataConfig(dataset="lrs3", root=str(root), resize_short=32)
    geo = D.Geometry(clip_sec=2.0, crop=32, n_fft=128, hop=128)
    ds = D.build_dataset(cfg, geo, "test")
    with pytest.raises(RuntimeError, match=f"clip {clip} cannot be read.*never replaced"):
        ds[0]
    assert ds[1]["id"] != clip  # the other clip is read as usual


# ---------------------------------------------------------------------------------------------------------------------
# end to end through torchrun


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_paper_run_on_the_official_layout_through_torchrun(official_root, tmp_path, capsys):
    runs = tmp_path / "runs"
    key = "sparsesync/dense-crop/c21"
    assert main(["campaign", "--profile", "paper", "--keys", key, "--data-root", str(official_root), "--gpus", "2",
                 "--runs-root", str(runs), "--set", *TINY]) == 0, capsys.readouterr().err[-3000:]
    out = capsys.readouterr().out
    assert "[inputs] what the runs will read" in out and "0 problem(s)" in out
    assert "59447 entries, 0 of the listed clips removed" in out and "2 of 2 listed test clips on disk" in out
    (hroot,) = list((runs / "campaign" / "paper").iterdir())
    (run,) = [p for p in hroot.iterdir() if (p / "results.json").is_file()]
    res = json.loads((run / "results.json").read_text())
    assert res["world_size"] == 2 and res["steps"] == 2
    assert (run / "checkpoints" / "best.pt").is_file()
    log = (hroot / "train.log").read_text()
    assert "torch.distributed.run --standalone --nproc_per_node 2" in log and "== test pass" in log
    print("\n" + next(line for line in log.splitlines() if line.startswith("== test pass")))
    test = json.loads((run / "test_detail.json").read_text())["test"]
    with open(official_root / "lrs3" / "fixed_offsets" / D.fixed_offsets_name("test", 21, 2.0, 2.0)) as f:
        rows = {r["path"]: (float(r["offset_sec"]), float(r["vstart_sec"])) for r in csv.DictReader(f)}
    assert {it["id"]: (it["offset_sec"], it["v_start_sec"]) for it in test["items"]} == rows  # the CSV's windows
    assert (test["n"], test["n_windows"], test["n_clips"], test["clips_listed"]) == (2, 2, 2, 2)
    assert test["test_data"]["official_windows"] is True and test["eval_s"] > 0
    # checkpoint mode scores the same windows and reports them the same way (windows and distinct clips)
    got = C.evaluate_checkpoint(run / "checkpoints" / "best.pt", key, "paper", data_root=str(official_root),
                                runs_root=str(tmp_path / "ckpt"), device="cpu", overrides=TINY, progress=False)
    assert (got["n"], got["n_windows"], got["n_clips"], got["clips_listed"]) == (2, 2, 2, 2)
    assert [(i["id"], i["offset_sec"], i["v_start_sec"]) for i in got["items"]] == \
        [(i["id"], i["offset_sec"], i["v_start_sec"]) for i in test["items"]]
    assert C.coverage_note(got) == "2 of 2 listed test clips, official fixed windows, 2 windows scored"


def test_cut_off_weights_and_unparseable_files_are_named(official_root, tmp_path):
    """Present is not enough: a weights file cut off mid-download, a CSV that is not ytid,start,label,split and a
    fixed-offset CSV without its header are each a problem naming the file."""
    from paperlib.model.weights import weights_file_problem

    root = _view(official_root, tmp_path / "data")
    audio = root / "weights" / AUDIO_2S
    whole = audio.read_bytes()
    assert weights_file_problem(audio) is None
    audio.unlink()
    audio.write_bytes(whole[: len(whole) // 2])  # a download cut in half: the zip directory at the end is gone
    assert "not a torch file" in weights_file_problem(audio)
    (root / "vggsound_sparse" / "vggsound_sparse.csv").unlink()
    (root / "vggsound_sparse" / "vggsound_sparse.csv").write_text("<html>rate limited</html>\n")
    offsets = root / "lrs3" / "fixed_offsets" / D.fixed_offsets_name("valid", 21, 2.0, 2.0)
    offsets.unlink()
    offsets.write_text("pretrain/x/00001;0.2;1.0\n")
    with pytest.raises(FileNotFoundError) as e:
        C.check_inputs(["sparsesync/sparse/c21"], "paper", data_root=str(root), overrides=TINY)
    err = str(e.value)
    assert f"{audio.resolve().parent / AUDIO_2S} (" in err and "not a torch file" in err
    assert f"annotation CSV {(root / 'vggsound_sparse').resolve() / 'vggsound_sparse.csv'} cannot be read" in err
    assert f"fixed-offset CSV {(root / 'lrs3').resolve() / 'fixed_offsets' / offsets.name} cannot be read" in err
