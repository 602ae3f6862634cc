"""paperlib: a reproducible replication of SparseSync (Iashin, Xie, Rahtu, Zisserman; BMVC 2022).

"Sparse in Space and Time: Audio-visual Synchronisation with Trainable Selectors".

Layers, bottom to top (a module imports only from its own layer and the ones below):
    core      geometry of a clip and the offset grid, typed configs, atomic files, provenance, PyAV media I/O
    data      dataset layouts, windows and offsets, the paper's transforms, re-encoding, the synthetic benchmark
    model     SparseSync, the no-selector transformer, AVST_dec, backbones, weight files and checkpoints
    engine    run configuration and presets, training (AMP, DDP, resume, fine-tune), evaluation, the plateau recipe
    studies   codec leakage (Sec. 4), memory (Fig. 4), selector attention (Figs 5/8), offset prediction
    paper     the paper's numbers, the training campaign, tables, verdicts, artefacts and the report
    commands  ``python -m paperlib <command>`` (the only place that parses command lines)
"""

__version__ = "0.2.0"
