"""paperlib: a reproducible replication of SparseSync (Iashin, Xie, Rahtu, Zisserman; BMVC 2022).

"Sparse in Space and Time: Audio-visual Synchronisation with Trainable Selectors".

Modules (flat, read leaves to root):
    config      typed dataclass configs, presets, ``key=value`` overrides
    media       PyAV decoding / encoding / probing (knows nothing of labels)
    data        offsets on the class grid, the paper's transforms, dataset adapters, ``prepare``
    synthetic   the built-in synthetic audio-visual benchmark with ground truth
    model       SparseSync, the no-selector transformer, AVST_dec, backbones, ``build_model``
    checkpoints paperlib checkpoints and the safe loader/converter for official ones
    train       the training engine (AMP, DDP, resume, fine-tune)
    evaluate    metrics and evaluation
    predict     offset prediction on arbitrary videos
    leakage     the codec-leakage (start-time) probe of Sec. 4
    runs        run directories and provenance
"""

__version__ = "0.1.0"
