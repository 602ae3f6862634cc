"""The built-in synthetic audio-visual benchmark with ground truth, mirroring the paper's settings (Sec. 5).

Settings (Table 2 of the paper):
    ``dense-crop``  "dense in time and space" (LRS3 face crop): one large talker fills the frame; its mouth opening
                    follows the envelope of a speech-like sound (harmonic source, pitch contour, formant-like
                    filtering, 3-6 Hz syllable amplitude modulation, fricative bursts, mild noise).
    ``dense-wide``  "dense in time, sparse in space" (LRS3 without face crop): the same kind of talker, small, at a
                    random place in a cluttered frame with moving (some pulsating) distractors and, in 30% of the
                    clips, a second talker whose mouth moves with speech nobody hears. With the same seed, dense-crop
                    and dense-wide clips share their audio and talker (as LRS3's two variants share their videos).
    ``sparse``      "sparse in time and space" (VGGSound-Sparse): one of 8 event classes (``SPARSE_CLASSES``); a small
                    object (its box covers at most ~5% of the frame) performs 0-3 actions per clip, each a
                    class-specific motion that reaches its contact instant exactly when a class-specific impulsive
                    sound starts. Distractors: silent moving shapes, a silently bouncing ball, in half of the clips a
                    silent decoy object of a random class doing its action, off-screen sounds with no visual,
                    stationary hum and ambient noise.

Every clip is 10 s, 25 fps, 16 kHz mono, H.264 yuv420p (CRF 10, as the official re-encoding) + AAC in mp4, written
with ``paperlib.core.media.write_video``; square frames of ``size`` px (256 is the paper geometry; 64-128 for CPU runs).

Layouts are the real datasets' (what ``paperlib.data.datasets``'s adapters read):
    dense   ``<root>/pretrain/<vid>/<clip>.mp4`` + ``<root>/lrs3_{train,valid,test}.txt`` (ids
            ``pretrain/<vid>/<clip>``), split 80/10/10 by "video" (one talker per video, ``clips_per_video`` clips),
            as LRS3 is split by YouTube id.
    sparse  ``<root>/video/<ytid>_<startms>_<endms>.mp4`` + ``<root>/vggsound_sparse.csv`` (no header,
            ``ytid,start,label,split``, split train/test) + ``<root>/picked_sparse_classes.csv`` (tab-separated,
            header ``class\tis_sparse``). ``<root>/vggsound_sparse_{train,valid,test}.txt`` give the 80/10/10 split;
            its train and valid rows are ``train`` in the CSV.
Plus ``<root>/sidecar/<clip id>.json`` (ground truth, ``load_sidecar``) and ``<root>/synth.json`` (manifest).

Ground truth: event onsets (s; for dense clips the syllable onsets), classes, the sound source's box per frame (dense:
the lips; ``[0, 0, 0, 0]`` when the source is invisible), off-screen sound onsets. ``has_cue`` is the oracle: is there
an event (or a syllable) inside both the visual and the audio window, with a margin, that makes the offset
identifiable? ``oracle_fraction`` over test items is the analogue of the paper's ~70% human oracle on VGGSound-Sparse.
``xcorr_baseline`` is a non-learned offset classifier on decoded windows (the signal is in the data).

Shortcut hygiene: every random process is stationary (random phases, renewal processes started before the clip,
event times uniform over the whole clip, distractor paths with random phases); no fades, no start transients, no
frame counter. Clip ``i`` draws from ``numpy.random.default_rng([seed, i])``, so content does not depend on workers.
What remains is what real data have too: H.264 puts its only key frame at frame 0 (libx264 defaults, as ``prepare``)
and AAC frames start at sample 0.

Deviations: the data are synthetic by design; square frames (LRS3 "no face crop" is 16:9); the mouth opening follows
the audio envelope with zero lag (real lips lead the voice by tens of ms); geometric primitives instead of faces and
objects. AAC priming is trimmed by the mp4 edit list when decoding with PyAV/FFmpeg, so sidecar times are decoded times
(onsets measured in decoded audio agree within 1 ms; tests/test_synthetic.py).

Modules: ``config`` (``SynthConfig``, settings, clip ids), ``signals`` (stationary random processes, speech-like audio,
event sounds), ``drawing`` (parts, compositing, rendering), ``scenes`` (dense and sparse scenes, ``generate_clip``),
``dataset`` (layouts, sidecars, split lists, manifest, ``generate``), ``oracle`` (``has_cue``, ``oracle_fraction``,
``sample_items``, ``xcorr_baseline``), ``examples`` (``render_examples``). The public names are importable from this
package.
"""

from paperlib.data.synthetic.config import DENSE_EVENT_PROBS, SETTINGS, SPARSE_CLASSES, SynthConfig, clip_id
from paperlib.data.synthetic.dataset import generate, load_sidecar, sidecar_path, video_path, write_clip, write_lists
from paperlib.data.synthetic.examples import render_examples
from paperlib.data.synthetic.oracle import has_cue, oracle_fraction, sample_items, xcorr_baseline
from paperlib.data.synthetic.scenes import generate_clip

__all__ = ["SETTINGS", "SPARSE_CLASSES", "DENSE_EVENT_PROBS", "SynthConfig", "clip_id", "video_path", "sidecar_path",
           "load_sidecar", "generate_clip", "write_clip", "write_lists", "generate", "has_cue", "oracle_fraction",
           "sample_items", "xcorr_baseline", "render_examples"]
