"""The paper's numbers (percent), as printed in Tables 1-7 of Iashin et al., BMVC 2022, with the paper's wording.

The one copy in this package: the artefact functions take their paper columns from here, and
``scripts/build_notebooks.py`` renders the notebooks' introductory tables from here.
"""

from __future__ import annotations

from dataclasses import dataclass

# Table 1 (Sec. 4): start-time prediction from a 5-s trim of a 10-s clip, 50 classes on a 0.1-s grid.
TABLE1_CHANCE = (2.0, 10.0)  # "Chance performance is 2 and 10 %" (Acc@1, Acc@5)
# row key (as in paperlib.studies.leakage.ROWS) -> (codec, Acc@1, Acc@5)
TABLE1: dict[str, tuple[str, float, float]] = {
    "mpeg4": ("MPEG-4 Part 2 (mpeg4)", 27.2, 77.1),
    "h264": ("MPEG-4 Part 10 (H.264)", 2.5, 11.9),
    "prores": ("ProRes", 2.7, 13.4),
    "aac44100": ("AAC @ 44100Hz", 86.7, 100.0),
    "aac22050": ("AAC @ 22050Hz", 23.0, 74.3),
    "aac16000": ("AAC @ 16000Hz", 6.3, 19.3),
    "pcm22050": ("Lossless @ 22050Hz", 2.9, 14.6),
}

# Table 2 (Sec. 5.1): Acc@1 on 3 classes, Acc@1 with +-1 class tolerance on 21 classes, 5-s inputs.
# (variant, setting, classes) -> accuracy; settings: dense-crop = LRS3 (Face crop), dense-wide = LRS3 (W/o face
# crop), sparse = VGGSound-Sparse
TABLE2: dict[tuple[str, str, int], float] = {
    ("avst_dec", "dense-crop", 3): 98.4, ("avst_dec", "dense-crop", 21): 89.8,
    ("avst_dec", "dense-wide", 3): 95.8, ("avst_dec", "dense-wide", 21): 83.1,
    ("avst_dec", "sparse", 3): 52.2, ("avst_dec", "sparse", 21): 29.3,
    ("sparsesync", "dense-crop", 3): 96.4, ("sparsesync", "dense-crop", 21): 95.6,
    ("sparsesync", "dense-wide", 3): 95.5, ("sparsesync", "dense-wide", 21): 96.9,
    ("sparsesync", "sparse", 3): 60.3, ("sparsesync", "sparse", 21): 44.3,
}
TABLE2_MODELS = {"avst_dec": "AVST_dec", "sparsesync": "Ours"}  # the table's row names
TABLE2_SETTINGS = {"dense-crop": "LRS3 (Face crop)", "dense-wide": "LRS3 (W/o face crop)", "sparse": "VGGSound-Sparse"}
ORACLE_SPARSE_3CLS = 70.0  # human oracle on 240 VGGSound-Sparse videos, 3 classes (Table 2 footnote)


@dataclass(frozen=True)
class AblationRow:
    """A row of Table 5 (Table 3 is its VGGSound-Sparse Acc@1 +-1 column)."""

    name: str  # what the row ablates, in our words
    ablated: str | None  # the paper's column (TABLE5_COLUMNS) marked with a cross; None: the full model
    acc: dict[str, tuple[float, float]]  # setting (dense-wide = LRS3 No face crop, sparse) -> (Acc@1, Acc@1 +-1 cls)


# Tables 3 and 5 (Sec. 5.2, 7.2): 21 classes, 5-s inputs.
TABLE5_COLUMNS = ("Selectors", "Sync Model pre-trained on LRS3", "Pre-trained Feature Extractors",
                  "Unfrozen Feature Extractors")
TABLE5_SETTINGS = {"dense-wide": "LRS3 (No face crop)", "sparse": "VGGSound-Sparse"}
TABLE5: tuple[AblationRow, ...] = (
    AblationRow("no selectors", "Selectors", {"dense-wide": (78.3, 97.2), "sparse": (21.2, 40.1)}),
    AblationRow("sync model not pre-trained on dense data", "Sync Model pre-trained on LRS3", {"sparse": (5.0, 12.1)}),
    AblationRow("feature extractors not pre-trained", "Pre-trained Feature Extractors",
                {"dense-wide": (76.6, 94.1), "sparse": (16.0, 29.6)}),
    AblationRow("frozen feature extractors", "Unfrozen Feature Extractors",
                {"dense-wide": (38.6, 69.7), "sparse": (14.7, 33.5)}),
    AblationRow("full model", None, {"dense-wide": (80.7, 96.9), "sparse": (26.7, 44.3)}),
)

# Table 4 (Sec. 5.2): VGGSound-Sparse; classes -> {input length (s): Acc@1 (3 classes) / Acc@1 +-1 cls (21)}
TABLE4: dict[int, dict[int, float]] = {3: {2: 55.6, 3: 59.4, 4: 60.8, 5: 60.3, 6: 61.2, 7: 62.9},
                                       21: {3: 36.8, 4: 43.0, 5: 44.2, 6: 45.6, 7: 46.5}}

# Table 6 (Sec. 7.2): LRS3 (No face crop), 21 classes; depth -> (Params. (M), Acc@1, Acc@1 +-1 cls)
TABLE6: dict[int, tuple[float, float, float]] = {1: (31.2, 61.7, 89.2), 2: (42.8, 78.0, 95.7),
                                                 3: (55.3, 80.7, 96.9), 6: (89.0, 81.1, 97.5)}

# Table 7 (Sec. 7.2): pre-trained on LRS3 ('No Face Crop'), tested on VGGSound-Sparse, 21 classes.
# fine-tuned on (sparse = VGGSound-Sparse, general = VGGSound) -> (Acc@1, Acc@1 +-1 cls)
TABLE7: dict[str, tuple[float, float]] = {"sparse": (26.7, 44.3), "general": (33.5, 51.2)}
TABLE7_PRETRAINED = "LRS3 ('No Face Crop')"
TABLE7_DATASETS = {"sparse": "VGGSound-Sparse", "general": "VGGSound"}
