"""Codec leakage: predicting where a trim starts from compression artefacts (paper Sec. 4.1, 7.1; Table 1, Figs 6-7).

A 10-s clip is trimmed to 5 s starting on a 0.1-s grid within its first 5 s: 50 classes (chance 2 % Acc@1, 10 % Acc@5).
Without artefacts the start cannot be read from the trim; with them (MPEG-4 Part 2 key frames every 12 frames, the AAC
frame grid at high sampling rates) a classifier learns it, and a synchronisation model could cheat the same way.

Public API (one function per artefact, each returning data; plots write png/pdf):
- ``table1(profile, out_dir) -> DataFrame``: generates the 7 rows with real codecs (PyAV/FFmpeg), trains the start-time
  classifier per row, returns ``row | paper_acc1 | paper_acc5 | acc1 | acc5 | ...``. Every number is saved under
  ``out_dir`` (``config.json``, ``env.json``, ``rows/<row>/{result.json,metrics.jsonl}``, ``table1.csv``); rows are
  cached by config hash, so an interrupted run resumes.
- ``fig6_first_differences(out_dir, ...) -> dict``: first-difference images (H.264 vs mpeg4 vs ProRes), the per-frame
  mean absolute first difference and its periodogram (mpeg4 peaks at period 12). ``plot_fig6``.
- ``fig7_curves(out_dir) -> DataFrame``: Acc@1 per epoch per row, read back from the files. ``plot_fig7``.
- ``probe(folder, modality, budget) -> dict``: the start-time probe on a user's files, with a verdict.
- command line (:mod:`paperlib.commands.leakage`): ``python -m paperlib leakage probe DIR --modality audio|video
  [--budget] [--json]`` and ``python -m paperlib leakage table1 --profile mini --out DIR`` (and ``fig6``).

Data (Table 1): audio rows are white noise generated at the row's rate, saved as PCM wav (the lossless row) and
transcoded (decoded, re-encoded) to AAC in .m4a with FFmpeg's native encoder at its default bit rate (PyAV leaves it
unset: ~71 kb/s mono measured at 44.1 and 22.05 kHz). The 22.05-kHz lossless row is the PCM source of the 22.05-kHz AAC
row. Video rows are procedurally rendered footage (1/f textures, a panning camera with an AR(1) shake, moving textured
objects, a slow lighting drift, sensor noise and a static caption bar as in Fig. 6) written as ProRes (``prores_ks``,
intra-only: the ProRes row) and transcoded to ``mpeg4`` and H.264 (``libx264`` defaults: CRF 23, scene-cut key frames).

The probe (``probe``) takes one clip per file, from the file's start (the leak is relative to each file's encoding
start, as in the clip datasets a sync model reads): 10 s, or, when files are shorter, the 20th-percentile duration
rounded down to an even number of 0.1-s steps (>= 2 s), with L/2/0.1 classes; shorter or unreadable files are skipped
and listed with the reason. Clips are split 80/20 by file.

Decoding (``paperlib.core.media.read_audio``/``read_video``): audio at its native rate, placed by frame pts (the AAC
priming removed by the mp4 edit list stays aligned: lag 0) and cut to exactly the clip length; video frames chosen by
timestamp on the 10-fps grid, the short side scaled to ``video_size`` and the centre square kept (grey: BT.601 luma).
Every trim must sample its source frames identically, or the sampling itself leaks the start: 10 fps taken from 25-fps
video alternates gaps of 2 and 3 frames with a phase set by the start's parity, which any motion reveals. So the
10-fps timestamp grid is used only when the folder's (most common) frame rate is an integer multiple of 10 fps (Table
1's 10-fps sources: unchanged); otherwise frames are read at the native rate and every ``floor(rate/10 + 1/2)``-th one
is kept, and the start grid is that many frames (25 fps: stride 3, grid and frame period 0.12 s, 8.33 fps; 10-s clips
then have round(5 / 0.12) = 42 classes, 42-frame trims). Files at another rate are used when the grid is a whole
number of their frames, else skipped with the reason (:class:`VideoGrid`); the report's ``video_grid`` and
``step_seconds`` give the grid used.

Deviations (stated in the table's ``classifier`` column):
- Source footage: the paper's MJPEG-AoT ProRes videos (Vimeo) are not available; rendered footage replaces them.
- mpeg4 bit rate: FFmpeg's CLI default is GOP 12 and 200 kb/s. PyAV's encoder context also has ``gop_size`` 12 but
  leaves the bit rate unset; we pass GOP 12 explicitly and scale the 200 kb/s to our pixel rate at the bits per pixel it
  gives at 1280x720, 25 fps (an assumption about the paper's footage), since 200 kb/s at 64x64 would be near lossless.
  At 64x64 this (356 b/s) and PyAV's unset rate both end at the encoder's coarsest quantiser (~5.7 kb/s measured).
- Classifier: the paper's ResNet18 (spatial average pooling + linear head; 1-channel log-spectrogram of the 5-s trim;
  for video the 50 RGB frames at 10 fps stacked along channels in temporal order, 150 input channels, so the order is
  visible) is kept for the ``paper`` size (not run at that size here: no GPU). It did not learn within CPU minutes,
  so ``smoke``/``mini`` use position-aware classifiers that keep fine time resolution and have no temporal pooling:
  audio, 1-D convolutions over time with frequency bands as channels on the first ``audio_window_seconds`` of the trim
  and a linear head over time; video, a small CNN shared over the consecutive-frame differences of grey frames, with a
  linear head over the ordered transitions.
- Training samples one random start class per training clip per pass (``trims_per_clip`` passes per epoch); the test
  set is held-out clips with fixed, balanced start classes. Reported numbers are from the last epoch (no selection).

Verdict: one-sided exact binomial test of the held-out Acc@1 against chance 1/n_classes (H0: p = 1/n_classes, H1: p >
1/n_classes, level ``alpha``, default 0.01), treating held-out trims as independent. The modulo indicator of Sec. 7.1 is
the fraction of top-5 predictions whose class is congruent to the true class modulo ``period`` (12: GOP 12 at 10 fps),
with its chance level sum_r n_r^2 / N^2 (n_r classes in residue r) for predictions unrelated to the truth.

Modules: ``config`` (``ProbeConfig``, ``Table1Config``, profiles, budgets, rows), ``metrics`` (accuracies, modulo
indicator, verdict, periodograms), ``encoding`` (rendered footage, white noise, transcoding, decoding), ``features``
(per-clip features, the video grid, ``load_clips``), ``classifier`` (the classifiers, ``train_probe``), ``records``
(JSON files, environment), ``table`` (Table 1), ``figures`` (Figs 6-7), ``folder_probe`` (``probe``, its report).
The public names are importable from this package.
"""


from paperlib.studies.leakage.classifier import (AudioPositionNet, ResNet18StartTime, VideoPositionNet,
                                                 balanced_test_items, build_classifier, split_clips, train_probe)
from paperlib.studies.leakage.config import (AUDIO_EXTS, MPEG4_REFERENCE_BITS_PER_PIXEL, PROBE_BUDGETS, PROFILES, ROWS,
                                             VERDICT_LEAK, VERDICT_NONE, VIDEO_EXTS, ProbeConfig, RowSpec,
                                             Table1Config, probe_config, table1_config)
from paperlib.studies.leakage.encoding import (media_duration, mpeg4_bit_rate, render_clip, transcode_audio,
                                               transcode_video, white_noise)
from paperlib.studies.leakage.features import (ClipSet, VideoGrid, audio_features, load_clips, video_features,
                                               video_grid)
from paperlib.studies.leakage.figures import fig6_first_differences, fig7_curves, plot_fig6, plot_fig7
from paperlib.studies.leakage.folder_probe import choose_clip_seconds, format_report, list_media, probe
from paperlib.studies.leakage.metrics import (binomial_verdict, fft_periodogram, first_difference_profile,
                                              folded_periodogram, modulo_chance, modulo_congruence, n_classes_for,
                                              topk_accuracy)
from paperlib.studies.leakage.records import env_info
from paperlib.studies.leakage.table import (generate_audio_rate, generate_video_rows, load_table1, row_config_hash,
                                            run_row, table1, table1_frame, table1_orderings)

__all__ = [
    "AUDIO_EXTS", "MPEG4_REFERENCE_BITS_PER_PIXEL", "PROBE_BUDGETS", "PROFILES", "ROWS", "VERDICT_LEAK", "VERDICT_NONE",
    "VIDEO_EXTS", "ProbeConfig", "RowSpec", "Table1Config", "probe_config", "table1_config",
    "binomial_verdict", "fft_periodogram", "first_difference_profile", "folded_periodogram", "modulo_chance",
    "modulo_congruence", "n_classes_for", "topk_accuracy",
    "media_duration", "mpeg4_bit_rate", "render_clip", "transcode_audio", "transcode_video", "white_noise",
    "ClipSet", "VideoGrid", "audio_features", "load_clips", "video_features", "video_grid",
    "AudioPositionNet", "ResNet18StartTime", "VideoPositionNet", "balanced_test_items", "build_classifier",
    "split_clips", "train_probe",
    "env_info",
    "generate_audio_rate", "generate_video_rows", "load_table1", "row_config_hash", "run_row", "table1",
    "table1_frame", "table1_orderings",
    "fig6_first_differences", "fig7_curves", "plot_fig6", "plot_fig7",
    "choose_clip_seconds", "format_report", "list_media", "probe",
]
