#!/usr/bin/env bash
# The MODELS.md training step in mmgrad (bench_clip_step) and in PyTorch
# (bench/torch_clip_step.py, Debian's python3-torch) side by side, with the speed and memory
# ratios.
#
#   bench/compare_torch.sh [--preset clip-tiny|clip-b32] [--batch N] [--steps N]
#                          [--threads N] [--rounds N] [--core NAME] [--wait-idle SECONDS]
#
# Both sides run with the same thread count (mmgrad's pool, torch.set_num_threads, and
# OpenBLAS's own threads via OPENBLAS_NUM_THREADS / OMP_NUM_THREADS) and on the same OpenBLAS
# kernel: OPENBLAS_CORETYPE is exported (SkylakeX on AVX-512 CPUs, Haswell on AVX2 ones, or
# --core), and the script checks that both processes report that core (torch's float32 GEMMs
# go to the system libblas.so.3, which is OpenBLAS here; torch.__config__.show() says
# BLAS_INFO=generic).
#
# Two settings, each side by side:
#  - "as installed": nothing else set.
#  - "tuned": OPENBLAS_THREAD_TIMEOUT=4 for both (OpenBLAS's idle workers stop spinning
#    almost at once instead of holding a core for ~2^28 cycles after each GEMM, which fights
#    the other thread pool: mmgrad's, or torch's OpenMP one), and for torch also
#    OMP_WAIT_POLICY=PASSIVE (its OpenMP workers sleep instead of spinning) and glibc malloc
#    told to keep freed memory (GLIBC_TUNABLES mmap/trim thresholds; mmgrad's caching host
#    allocator does this itself, glibc by default returns every large tensor to the kernel
#    and faults it back in on the next step). On small VMs the spinning costs torch more
#    than 2x.
# Each run is repeated --rounds times, alternating; the table takes each run's fastest
# round (the least disturbed by other work on the machine), and the CPU share that other
# processes used during each run is printed as a noise warning; --wait-idle S waits (up to S
# seconds) before each run until the machine has been idle for 3 s. About 3 minutes for
# clip-tiny at the defaults on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

preset=clip-tiny batch=0 steps=5 threads=$(nproc) rounds=2 core="" wait_idle=0
while [ $# -gt 0 ]; do
  case "$1" in
    --preset) preset=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --core) core=$2; shift 2 ;;
    --wait-idle) wait_idle=$2; shift 2 ;;
    *) echo "usage: $0 [--preset P] [--batch N] [--steps N] [--threads N] [--rounds N] [--core NAME]" \
            "[--wait-idle SECONDS]" >&2; exit 2 ;;
  esac
done

if ! /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then
  echo "compare_torch: /usr/bin/python3 cannot import torch (apt-get install --no-install-recommends python3-torch," \
       "or scripts/setup.sh --with-torch)" >&2
  exit 1
fi
# A CPU-only build: a build with the CUDA backend loads the CUDA libraries into every
# process, about 150 MiB of resident memory that a CPU comparison should not carry.
bench_build=${MMGRAD_BENCH_BUILD:-build-cpu}
if [ ! -f "$bench_build/build.ninja" ]; then scripts/setup.sh "$bench_build" -Dcuda=disabled -Dtests=false; fi
ninja -C "$bench_build" bench/bench_clip_step >/dev/null

if [ -z "$core" ]; then
  flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
  has() { [[ " $flags " == *" $1 "* ]]; }
  if has avx512f && has avx512bw && has avx512dq && has avx512vl; then core=SkylakeX
  elif has avx2 && has fma; then core=Haswell
  fi
fi
if [ -n "$core" ]; then export OPENBLAS_CORETYPE=$core; fi
export OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads MMGRAD_NUM_THREADS=$threads

BENCH_BUILD=$bench_build exec /usr/bin/python3 - "$preset" "$batch" "$steps" "$threads" "$rounds" "${core:-}" "$wait_idle" <<'PY'
import os, re, resource, subprocess, sys, time

preset, batch, steps, threads, rounds, core, wait_idle = sys.argv[1:8]
batch, rounds, wait_idle = int(batch), max(1, int(rounds)), float(wait_idle)
common = ["--preset", preset, "--steps", steps] + (["--batch", str(batch)] if batch > 0 else [])
mmgrad_cmd = [os.environ["BENCH_BUILD"] + "/bench/bench_clip_step"] + common
torch_cmd = ["/usr/bin/python3", "bench/torch_clip_step.py", "--threads", threads] + common
timeout = {"OPENBLAS_THREAD_TIMEOUT": "4"}
torch_tuned = {**timeout, "OMP_WAIT_POLICY": "PASSIVE",
               "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184"}
# name -> (command, extra environment)
runs = {
    "mmgrad": (mmgrad_cmd, {}),
    "torch": (torch_cmd, {}),
    "mmgrad tuned": (mmgrad_cmd, timeout),
    "torch tuned": (torch_cmd, torch_tuned),
}
settings = [("as installed", "mmgrad", "torch"), ("tuned", "mmgrad tuned", "torch tuned")]


def busy_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[:3]) + sum(v[5:8]), sum(v[:8])  # user nice system + irq softirq steal; all


def wait_until_idle():
    """Up to wait_idle seconds: until less than 5% of the CPU time of a 3 s window was busy."""
    start = time.time()
    while time.time() - start < wait_idle:
        b0, t0 = busy_jiffies()
        time.sleep(3)
        b1, t1 = busy_jiffies()
        if (b1 - b0) < 0.05 * max(1, t1 - t0):
            if time.time() - start > 4:
                print(f"# waited {time.time() - start:.0f} s for the machine to be idle", flush=True)
            return
    print(f"# the machine was still busy after {wait_idle:.0f} s; running anyway", flush=True)


def run(name):
    cmd, extra = runs[name]
    if wait_idle > 0:
        wait_until_idle()
    hz = os.sysconf("SC_CLK_TCK")
    b0, t0 = busy_jiffies()
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(cmd, env={**os.environ, **extra}, capture_output=True, text=True)
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    b1, t1 = busy_jiffies()
    if p.returncode != 0:
        sys.exit(f"compare_torch: {' '.join(cmd)} failed:\n{p.stdout}{p.stderr}")
    ours = (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime) * hz
    other = max(0.0, (b1 - b0) - ours) / max(1, t1 - t0)  # share of all CPUs' time
    m = re.search(r"^RESULT (.*)$", p.stdout, re.M)
    if not m:
        sys.exit(f"compare_torch: no RESULT line from {' '.join(cmd)}:\n{p.stdout}{p.stderr}")
    res = dict(kv.split("=", 1) for kv in m.group(1).split())
    res["other_cpu"] = other
    m = re.search(r"core (\w+)", p.stdout)
    res["core"] = m.group(1) if m else "?"
    env = " ".join(f"{k}={v}" for k, v in extra.items())
    print(f"## {name}: {env + ' ' if env else ''}{' '.join(cmd)}")
    print("\n".join(l for l in p.stdout.splitlines() if not l.startswith("RESULT")))
    print(f"# other processes used {100 * other:.0f}% of the machine's CPU time during this run"
          + ("  <-- noisy" if other > 0.05 else ""), flush=True)
    return res


print(f"# OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')} OPENBLAS_NUM_THREADS={threads} "
      f"OMP_NUM_THREADS={threads} MMGRAD_NUM_THREADS={threads}; {rounds} round(s), fastest round per run", flush=True)
results = {k: [] for k in runs}
for _ in range(rounds):
    for name in runs:
        results[name].append(run(name))

problems = []
cores = {res["core"] for rs in results.values() for res in rs}
if (core and cores != {core}) or len(cores) != 1:
    problems.append(f"the runs report different OpenBLAS cores: {sorted(cores)} (wanted {core or 'one'})")
for key in ("gflop_per_step", "params", "batch", "threads"):
    vals = {res[key] for rs in results.values() for res in rs}
    if len(vals) != 1:
        problems.append(f"{key} differs between the runs: {sorted(vals)}")

best = {k: min(rs, key=lambda r: float(r["ms_per_step"])) for k, rs in results.items()}
mm = best["mmgrad"]
print()
print(f"# {preset}, batch {mm['batch']}, {mm['params']} parameters, {float(mm['gflop_per_step']):.2f} GFLOP per step, "
      f"{threads} threads, OpenBLAS core {'/'.join(sorted(cores))}")
w = 14
print(f"{'':<22}" + "".join(f"{a:>{w}}{b:>{w}}{'torch/mmgrad':>{w}}" for _, a, b in settings))
print(f"{'':<22}" + "".join(f"{'(' + label + ')':>{3 * w}}" for label, _, _ in settings))


def row(label, key, fmt):
    s = f"{label:<22}"
    for _, a, b in settings:
        va, vb = (float(best[x][key]) if key in best[x] else None for x in (a, b))
        s += f"{fmt.format(va) if va is not None else '-':>{w}}{fmt.format(vb) if vb is not None else '-':>{w}}"
        s += f"{vb / va:>{w}.2f}" if va and vb else f"{'-':>{w}}"
    print(s)


row("ms/step", "ms_per_step", "{:.1f}")
row("samples/s", "samples_per_s", "{:.1f}")
row("model GFLOP/s", "model_gflops", "{:.1f}")
row("sgemm GFLOP/s", "sgemm_gflops", "{:.1f}")
row("peak RSS (MiB)", "peak_rss_mib", "{:.0f}")
for label, a, b in settings:
    ra, rb = best[a], best[b]
    print(f"{label}: mmgrad is {float(rb['ms_per_step']) / float(ra['ms_per_step']):.2f}x as fast as PyTorch "
          f"(ms/step torch / mmgrad); peak RSS torch / mmgrad = "
          f"{float(rb['peak_rss_mib']) / float(ra['peak_rss_mib']):.2f} (torch's libraries alone: "
          f"{float(rb['import_rss_mib']):.0f} MiB after import); mmgrad model/sgemm GFLOP/s = "
          f"{float(ra['model_gflops']) / float(ra['sgemm_gflops']):.2f}")
print("tuned = " + " ".join(f"{k}={v}" for k, v in timeout.items()) + " for both; torch also " +
      " ".join(f"{k}={v}" for k, v in torch_tuned.items() if k not in timeout))
noisy = [f"{k} round {i + 1}: {100 * r['other_cpu']:.0f}%" for k, rs in results.items() for i, r in enumerate(rs)
         if r["other_cpu"] > 0.05]
if noisy:
    print("# warning: other processes were busy during: " + ", ".join(noisy))
if problems:
    print("compare_torch: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
PY
