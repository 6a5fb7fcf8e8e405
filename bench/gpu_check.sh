#!/usr/bin/env bash
# The GPU recipe in one go, on one H100 or H200: the training throughput table (fp32 eager,
# bf16, bf16 + torch.compile for each architecture at preset size, batch 64, peak memory) and a
# time-boxed learning check at preset size (the WaveGAN preset's recipe on the demo splits),
# written with the device name to bench/results/gpu_check-<device>-<date>.md (and to $OUT when
# that is set).
#
#   bench/gpu_check.sh          # on the GPU machine, from a fresh copy of the repository
#   bench/gpu_check.sh --toy    # the same parts at toy size on a CPU (about 30 s)
#
# EXPECTED DURATION: 9.5 minutes on one H100/H200, start-up and compilation included (never
# over 10: every part runs under `timeout` inside a 570 s budget). About 0.5 min for the
# environment check and the demo splits, at most 4 min for the throughput table (WaveGAN 120 s,
# BERGAN/MelGAN 60 s, SpecGAN 60 s; 6 warm-up + 6 timed steps per mode), and the learning check
# gets the rest, 4.5-5 min: its training budget is what is left minus 100 s for start-up and
# scoring (about 3 min of WaveGAN training, bf16, + compile where the table shows it pays).
#
# Nothing is installed from the network. Missing packages are named in the results file;
# soundfile and jsonschema get stand-ins (bench/compat.py; the metrics need no librosa), and without
# madmom / Rubber Band the demo bars are rendered straight onto the grid (bench/demo_splits.py).
# Wheels in $GPU_CHECK_WHEELS (a folder) are installed offline (pip --no-index) first.
#
# Environment: PYTHON (default: .venv/bin/python if present, else python3), GPU_CHECK_TOY=1
# (same as --toy), GPU_CHECK_BUDGET_S (570), GPU_CHECK_WORK_DIR (scratch, default a new folder
# under /tmp), GPU_CHECK_RESULTS_DIR (default bench/results), GPU_CHECK_SPLITS (default
# data/splits when it holds train.npz, else built in the scratch folder).
set -euo pipefail

EXPECTED="9.5 min on one H100/H200 (budget 570 s, at most 10 min); --toy: about 30 s on a quiet 2-core CPU"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

TOY="${GPU_CHECK_TOY:-0}"
ARGS="$*"
for arg in "$@"; do
  case "$arg" in
    --toy) TOY=1 ;;
    -h | --help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (known: --toy)" >&2; exit 2 ;;
  esac
done

BUDGET="${GPU_CHECK_BUDGET_S:-570}"
START=$SECONDS
if [[ -n "${PYTHON:-}" ]]; then
  PY="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
  PY=.venv/bin/python
else
  PY=python3
fi
WORK="${GPU_CHECK_WORK_DIR:-$(mktemp -d /tmp/bargan-gpu-check.XXXXXX)}"
RESULTS_DIR="${GPU_CHECK_RESULTS_DIR:-$REPO/bench/results}"
mkdir -p "$WORK" "$RESULTS_DIR"
: >"$WORK/status.tsv"
: >"$WORK/env.txt"
export PYTHONUNBUFFERED=1 PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg
export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-$WORK/inductor-cache}"
MODE_NAME="GPU"
[[ "$TOY" == 1 ]] && MODE_NAME="toy (CPU)"
RESULTS=""

echo "bench/gpu_check.sh, $MODE_NAME mode: expected duration $EXPECTED"
echo "scratch folder $WORK; python $PY"

note() { echo "$*" | tee -a "$WORK/env.txt"; }
elapsed() { echo $((SECONDS - START)); }
remaining() { echo $((BUDGET - (SECONDS - START))); }

# run_part NAME LIMIT_S COMMAND...: stdout -> NAME.out, stderr -> NAME.log (both echoed), the
# exit status and seconds -> status.tsv; never stops the script.
run_part() {
  local name="$1" limit="$2" t0=$SECONDS rc=0
  shift 2
  if ((limit < 10)); then
    echo "== $name: skipped, ${limit} s left in the budget"
    printf '%s\t%s\t%s\n' "$name" 125 0 >>"$WORK/status.tsv"
    return 0
  fi
  echo "== $name (at most ${limit} s, $(elapsed) s so far): $*"
  timeout --kill-after=10 "$limit" "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" || rc=$?
  tail -n 30 "$WORK/$name.out" || true
  if ((rc != 0)); then
    echo "-- $name: exit $rc; last lines of its log:"
    tail -n 15 "$WORK/$name.log" || true
  fi
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" >>"$WORK/status.tsv"
  return 0
}

slug() { tr '[:upper:]' '[:lower:]' <<<"$1" | sed -E 's/[^a-z0-9]+/-/g; s/^-+|-+$//g'; }

write_report() {
  local rc=$? title device_slug stamp
  trap - EXIT INT TERM
  set +e
  device_slug="$(slug "${DEVICE_NAME:-unknown}")"
  [[ "$TOY" == 1 ]] && device_slug="toy-${device_slug}"
  stamp="$(date -u +%Y%m%d-%H%M)"
  RESULTS="$RESULTS_DIR/gpu_check-${device_slug:-unknown}-$stamp.md"
  title="GPU check: ${DEVICE_NAME:-unknown device}, $(date -u '+%Y-%m-%d %H:%M') UTC"
  [[ "$TOY" == 1 ]] && title="GPU check (TOY MODE, CPU): ${DEVICE_NAME:-cpu}, $(date -u '+%Y-%m-%d %H:%M') UTC"
  local toy_flag=()
  [[ "$TOY" == 1 ]] && toy_flag=(--toy)
  if ! timeout 60 "$PY" bench/gpu_report.py --work-dir "$WORK" --out "$RESULTS" \
      --json-out "${RESULTS%.md}.throughput.json" \
      --title "$title" --expected "$EXPECTED" --command "bench/gpu_check.sh${ARGS:+ $ARGS}" \
      "${toy_flag[@]}" >/dev/null 2>"$WORK/report.log"; then
    {  # the report script itself failed: the raw material, so nothing is lost
      echo "# $title"
      echo
      echo "bench/gpu_report.py failed ($(tail -n 1 "$WORK/report.log")); raw results follow."
      echo "Expected duration: $EXPECTED"
      echo
      echo '```'
      cat "$WORK/env.txt" "$WORK/status.tsv"
      for f in "$WORK"/*.out "$WORK"/*.log; do
        [[ -f "$f" ]] && { echo "--- $(basename "$f")"; tail -n 60 "$f"; }
      done
      echo '```'
    } >"$RESULTS"
  fi
  echo
  echo "results -> $RESULTS ($(elapsed) s in all)"
  if [[ -n "${OUT:-}" && -d "${OUT:-}" ]]; then
    if [[ "$(cd "$(dirname "$RESULTS")" && pwd)" != "$(cd "$OUT" && pwd)" ]]; then
      cp "$RESULTS" "${RESULTS%.md}.throughput.json" "$OUT/" 2>/dev/null
      echo "copied to \$OUT/$(basename "$RESULTS")"
    fi
    tar -czf "$OUT/gpu_check-logs.tar.gz" -C "$WORK" \
      --exclude=splits --exclude=inductor-cache --exclude='*.pt' . 2>/dev/null || true
  fi
  local failed
  failed="$(awk -F'\t' '$2 != 0' "$WORK/status.tsv" | wc -l)"
  if ((rc == 0 && failed > 0)); then rc=1; fi
  exit "$rc"
}
trap write_report EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# --------------------------------------------------------------------------- the machine
DEVICE_NAME="cpu"
if [[ "$TOY" != 1 ]] && command -v nvidia-smi >/dev/null 2>&1; then
  smi="$(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1 || true)"
  if [[ -n "$smi" ]]; then
    DEVICE_NAME="$(cut -d, -f1 <<<"$smi" | xargs)"
    note "device: $smi (nvidia-smi)"
  fi
fi
note "host: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | xargs || uname -m), $(nproc) cores"
if commit="$(git rev-parse --short HEAD 2>/dev/null)"; then
  git diff --quiet HEAD -- 2>/dev/null || commit="$commit (with uncommitted changes)"
  note "commit: $commit"
else
  note "commit: unknown (not a git checkout)"
fi

if [[ -n "${GPU_CHECK_WHEELS:-}" ]] && compgen -G "$GPU_CHECK_WHEELS/*.whl" >/dev/null; then
  if timeout 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$WORK/site" \
      "$GPU_CHECK_WHEELS"/*.whl >"$WORK/wheels.log" 2>&1; then
    export PYTHONPATH="$PYTHONPATH:$WORK/site"
    note "wheels: installed offline from $GPU_CHECK_WHEELS"
  else
    note "wheels: offline install from $GPU_CHECK_WHEELS FAILED (see wheels.log)"
  fi
fi

# What Python has: the required packages stop the check when missing (said so in the results),
# the optional ones get stand-ins or the direct demo renderer.
env_rc=0
timeout 120 "$PY" - "$TOY" >"$WORK/python.txt" 2>"$WORK/environment.log" <<'EOF' || env_rc=$?
import importlib, platform, sys
toy = sys.argv[1] == "1"
required = ["numpy", "scipy", "pandas", "yaml", "sklearn", "tqdm", "torch", "torchaudio"]
optional = ["librosa", "soundfile", "jsonschema", "madmom", "pyrubberband"]
missing = []
for name in required + optional:
    try:
        importlib.import_module(name)
    except Exception as err:  # ImportError, or a broken install
        missing.append((name, type(err).__name__))
need = [n for n, _ in missing if n in required]
print(f"python: {platform.python_version()} ({sys.executable})")
if "torch" not in need:
    import torch
    cuda = torch.cuda.is_available()
    print(f"torch: {torch.__version__}, CUDA {torch.version.cuda}, "
          f"device: {torch.cuda.get_device_name() if cuda else 'none'}")
    if cuda:
        p = torch.cuda.get_device_properties(0)
        print(f"torch device: {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs")
    print(f"cudnn.benchmark: on while training (train_gan sets it); TF32: PyTorch defaults in the "
          f"throughput table (convolutions {torch.backends.cudnn.allow_tf32}, matrix products "
          f"{torch.backends.cuda.matmul.allow_tf32}), on in the learning check (--tf32, with bf16)")
opt = [n for n, _ in missing if n in optional]
print("optional packages missing: " + (", ".join(opt) if opt else "none")
      + (" (stand-ins: bench/compat.py; demo splits rendered on the grid)" if opt else ""))
if need:
    print("REQUIRED PACKAGES MISSING: " + ", ".join(need)
          + " -- nothing can be installed here from the network; put their wheels in a folder "
          "and set GPU_CHECK_WHEELS to it")
    sys.exit(3)
if not toy and not torch.cuda.is_available():
    print("NO CUDA DEVICE: this is the GPU recipe (use --toy to try it on a CPU)")
    sys.exit(4)
EOF
tee -a "$WORK/env.txt" <"$WORK/python.txt"
if ((env_rc != 0)); then
  printf '%s\t%s\t%s\n' environment "$env_rc" "$(elapsed)" >>"$WORK/status.tsv"
  echo "environment check failed (exit $env_rc): see above; writing the results file"
  exit "$env_rc"
fi
if [[ "$DEVICE_NAME" == cpu && "$TOY" != 1 ]]; then
  DEVICE_NAME="$("$PY" -c 'import torch; print(torch.cuda.get_device_name())' 2>/dev/null || echo unknown)"
fi
printf '%s\t%s\t%s\n' environment 0 "$(elapsed)" >>"$WORK/status.tsv"

# --------------------------------------------------------------------------- the splits
SPLITS="${GPU_CHECK_SPLITS:-}"
if [[ "$TOY" == 1 ]]; then
  SPLITS="$WORK/splits"
  run_part splits 120 "$PY" bench/demo_splits.py --out-dir "$SPLITS" --method direct --toy
elif [[ -z "$SPLITS" && -f data/splits/train.npz ]]; then
  SPLITS=data/splits
  note "splits: data/splits (already built)"
elif [[ -z "$SPLITS" ]]; then
  SPLITS="$WORK/splits"
  run_part splits "$(( $(remaining) < 150 ? $(remaining) - 60 : 150 ))" \
    "$PY" bench/demo_splits.py --out-dir "$SPLITS" --work-dir "$WORK/demo" --method auto
fi
if [[ -f "$SPLITS/info.json" ]]; then
  note "splits: $SPLITS, $("$PY" -c 'import json,sys; i=json.load(open(sys.argv[1])); print(i.get("counts"), i.get("built_by", "built by the pipeline stages"))' "$SPLITS/info.json" 2>/dev/null || echo '?')"
fi

# --------------------------------------------------------------------------- throughput
# WaveGAN first (its speed-up is the target), each architecture in its own process and time box
# so a slow compilation costs only its own row; results are written after each measurement.
if [[ "$TOY" == 1 ]]; then  # one process, short bars, no compilation (a CPU compile takes minutes)
  run_part throughput 90 "$PY" bench/train_throughput.py --archs wavegan melgan specgan \
    --skip-gpu --cpu-batch 2 --cpu-model-dim 2 --steps 1 --length 4096 \
    --cpu-modes "fp32 eager" "bf16 eager" --json "$WORK/throughput-all.json"
else
  for spec in wavegan:90 melgan:110 specgan:60; do
    arch="${spec%%:*}" limit="${spec##*:}"
    left=$(( $(remaining) - 200 ))  # keep at least 200 s for the learning check
    run_part "throughput-$arch" "$(( left < limit ? left : limit ))" \
      "$PY" bench/train_throughput.py --archs "$arch" --skip-cpu --gpu-batch 64 --gpu-steps 6 \
      --json "$WORK/throughput-$arch.json"
  done
fi

# --------------------------------------------------------------------------- learning check
if [[ ! -f "$SPLITS/train.npz" ]]; then
  echo "no splits at $SPLITS: learning check skipped"
  printf '%s\t%s\t%s\n' learning 126 0 >>"$WORK/status.tsv"
elif [[ "$TOY" == 1 ]]; then
  run_part learning 120 "$PY" bench/learning_check.py --splits-dir "$SPLITS" --configs wavegan \
    --device cpu --model-dim 2 --batch-size 2 --latent-dim 8 --max-steps 2 --minutes 1 \
    --bars 6 --threads 2 --json "$WORK/learning.json"
else
  # compile only where the throughput table showed it works and pays for its compilation time
  compile=()
  if "$PY" - "$WORK/throughput-wavegan.json" <<'EOF' 2>/dev/null; then compile=(--compile); fi
import json, sys
rows = json.load(open(sys.argv[1]))["gpu"]["rows"]["wavegan"]
eager, fast = rows.get("bf16 eager", {}), rows.get("bf16+compile", {})
ok = not eager.get("error") and not fast.get("error") and eager.get("bars_per_sec")
sys.exit(0 if ok and fast["bars_per_sec"] > 1.5 * eager["bars_per_sec"] else 1)
EOF
  limit=$(( $(remaining) - 15 ))
  minutes="$(awk -v s="$limit" 'BEGIN { m = (s - 100) / 60; if (m < 0.5) m = 0.5; printf "%.2f", m }')"
  note "learning check: WaveGAN preset at preset size, bf16${compile[0]:+ + compile}, $minutes min of training"
  run_part learning "$limit" "$PY" bench/learning_check.py --splits-dir "$SPLITS" \
    --configs wavegan --size preset --device cuda --amp --tf32 "${compile[@]}" \
    --minutes "$minutes" --json "$WORK/learning.json"
fi
