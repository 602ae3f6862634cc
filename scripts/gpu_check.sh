#!/usr/bin/env bash
# One-shot GPU check of performance (training step, MFU, loader) and Figure 4 memory, on a machine with one CUDA GPU.
#
#   scripts/gpu_check.sh [OUTDIR] [--cpu-smoke]
#
# Within ~8 minutes it runs, each step guarded (a failing step prints its error and the next one runs):
#   1. environment + measured bf16 matmul ceiling (8192^3) next to the datasheet peak used for MFU;
#   2. benchmark 1 (bench/train_step.py): paper-size training step, eager settings (fp32 / fp16+GradScaler / bf16,
#      SDPA backends, channels_last_3d, fused Adam) -> train_step.json;
#   3. Figure 4: peak training memory of the selector stack vs the no-selector transformer measured on CUDA beside the
#      CPU estimator of paperlib.studies.memory, with their agreement -> fig4_memory.json;
#   4. a short real training at paper geometry on a few fixed synthetic batches through paperlib.engine.train's loop
#      (the loss must fall) -> train_check.json;
#   5. benchmark 2 (bench/input_pipeline.py) when PyAV imports, else skipped with a message -> input_pipeline.json;
#   6. benchmark 1 with torch.compile (and its own fp16-eager baseline, same process) -> train_step_compile.json.
# Everything goes to OUTDIR ($OUT when set, else runs/gpu_check-<UTC stamp>), with the full log in gpu_check.log.
# It installs nothing; it runs the repository copy with PYTHONPATH=<repo> and the machine's python3 (or $PYTHON).
# --cpu-smoke: the same steps at tiny sizes on the CPU (used here to check the script end to end, in seconds).
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SMOKE=0
OUTDIR=""
for arg in "$@"; do
  case "$arg" in
    --cpu-smoke) SMOKE=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ {print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    *) OUTDIR="$arg" ;;
  esac
done
if [ -z "$OUTDIR" ]; then OUTDIR="${OUT:-$ROOT/runs/gpu_check-$(date -u +%Y%m%d-%H%M%S)}"; fi
mkdir -p "$OUTDIR" || { echo "gpu_check: cannot create $OUTDIR" >&2; exit 2; }
OUTDIR="$(cd "$OUTDIR" && pwd)"
PY="${PYTHON:-python3}"
if [ -x "$ROOT/.venv/bin/python" ] && [ -z "${PYTHON:-}" ] && ! command -v nvidia-smi >/dev/null 2>&1; then
  PY="$ROOT/.venv/bin/python"  # a development checkout without a GPU: use the project's venv
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
cd "$ROOT" || exit 2
exec > >(tee -a "$OUTDIR/gpu_check.log") 2>&1

TOTAL_BUDGET=${GPU_CHECK_BUDGET_S:-470}   # seconds for all steps together (the device call gets ~540 s)
T0=$SECONDS
declare -A STATUS
step() {  # step NAME LIMIT_S command...
  local name=$1 limit=$2; shift 2
  local left=$(( TOTAL_BUDGET - (SECONDS - T0) ))
  if [ "$left" -lt 20 ]; then
    echo "=== [$name] skipped: only ${left}s of the budget left"; STATUS[$name]="skipped"; return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== [$name] start $(date -u +%T), limit ${limit}s"
  local t=$SECONDS
  timeout -k 5 "$limit" "$@"
  local rc=$?
  local how="ok"; [ $rc -ne 0 ] && how="FAILED rc=$rc"; [ $rc -eq 124 ] && how="TIMED OUT after ${limit}s"
  echo "=== [$name] $how in $(( SECONDS - t ))s"
  STATUS[$name]="$how"
}

if [ $SMOKE -eq 1 ]; then
  DEV=(--device cpu --smoke); L_ENV=60; L_B1=120; L_MEM=120; L_TRAIN=120; L_B2=180; L_COMP=60
  COMPILE_SETTINGS="fp32,bf16-eager"; TRAIN_STEPS=30
else
  DEV=(--device cuda); L_ENV=40; L_B1=150; L_MEM=90; L_TRAIN=90; L_B2=90; L_COMP=300
  COMPILE_SETTINGS="fp16-eager,bf16-cl-fused,bf16-cl-fused-compile"; TRAIN_STEPS=60
fi
CLIPS="${TMPDIR:-/tmp}/gpu_check_clips_$$"  # prepared clips + shards: outside OUTDIR, removed at the end
echo "gpu_check: out=$OUTDIR python=$PY smoke=$SMOKE budget=${TOTAL_BUDGET}s"

step env "$L_ENV" "$PY" - "$OUTDIR" "$SMOKE" <<'PYEOF'
import json, os, sys, time, torch
out, smoke = sys.argv[1], sys.argv[2] == "1"
info = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available(), "cpu_count": os.cpu_count()}
try:
    import av
    info["av"] = av.__version__
except ImportError as e:
    info["av"] = None
    print(f"PyAV not importable here ({e}): decode-dependent steps will be skipped")
if torch.cuda.is_available() and not smoke:
    p = torch.cuda.get_device_properties(0)
    info |= {"gpu": p.name, "gpu_mem_gib": round(p.total_memory / 2**30, 1), "sms": p.multi_processor_count,
             "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
    n = 8192
    g = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16, generator=g)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16, generator=g)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(10):
        a @ b
    e.record()
    torch.cuda.synchronize()
    info["bf16_matmul_tflops_measured"] = 2 * n**3 * 10 / (s.elapsed_time(e) / 1e3) / 1e12
from bench.common import device_peak_tflops
info["peak_used_for_mfu"] = device_peak_tflops("cuda" if torch.cuda.is_available() and not smoke else "cpu", "bf16")
print(json.dumps(info, indent=1))
json.dump(info, open(os.path.join(out, "env.json"), "w"), indent=1)
PYEOF

step bench1-eager "$L_B1" "$PY" -m bench.train_step "${DEV[@]}" --out "$OUTDIR" --max-seconds $(( L_B1 - 30 ))

step fig4-memory "$L_MEM" "$PY" -m bench.memory_check "${DEV[@]}" --out "$OUTDIR"

step train-check "$L_TRAIN" "$PY" -m bench.train_step "${DEV[@]}" --out "$OUTDIR" --loss-check "$TRAIN_STEPS" --engine

if "$PY" -c "import av" 2>/dev/null; then
  STEP_JSON="$OUTDIR/train_step.json"; [ $SMOKE -eq 1 ] && STEP_JSON="$OUTDIR/train_step-smoke.json"
  step bench2-input "$L_B2" "$PY" -m bench.input_pipeline $([ $SMOKE -eq 1 ] && echo --smoke) --out "$OUTDIR" \
    --step-json "$STEP_JSON" --clips-dir "$CLIPS"
else
  echo "=== [bench2-input] skipped: PyAV (av) is not importable with $PY; benchmark 2 needs decoding"
  STATUS[bench2-input]="skipped (no PyAV)"
fi

step bench1-compile "$L_COMP" "$PY" -m bench.train_step "${DEV[@]}" --out "$OUTDIR" --name train_step_compile \
  --settings "$COMPILE_SETTINGS" --warmup 3

rm -rf "$CLIPS"
echo
echo "=== gpu_check summary ($(( SECONDS - T0 ))s, out=$OUTDIR)"
for k in env bench1-eager fig4-memory train-check bench2-input bench1-compile; do
  printf '  %-16s %s\n' "$k" "${STATUS[$k]:-not run}"
done
grep -h '^\[bench ' "$OUTDIR/gpu_check.log" | grep -- '->' || true
