"""Training speed and memory of the β-VAE, and several seeds at once.

``python -m course_lib bench speed``
    For the β-VAE (Burgess architecture, z = 10) at batch 64 and 256 on the CPU (and on CUDA
    when present): images/s through :func:`course_lib.train.train` (dSprites rendered on the
    device every step, logging, NaN checks) and through a bare loop on the same model (one fixed
    batch already on the device; forward, backward, Adam step, nothing else); their ratio is the
    pipeline's efficiency (target ≥ 0.9 on a CPU, ≥ 0.8 on a GPU). Then the bare loop's
    variants: channels_last on/off, CPU threads, and with ``--compile`` torch.compile (on CUDA
    also bfloat16 autocast and CUDA graphs through ``mode="reduce-overhead"``). Then peak memory
    (host RSS; CUDA ``max_memory_allocated``) of a training run and of full-data scoring
    (encoding all 737,280 dSprites images in chunks + discrete MIG), each in a fresh process.
    Last, the full protocol (300,000 steps at batch 64) extrapolated from a measured slice.

``python -m course_lib bench multiseed``
    Aggregate images/s of N copies trained at once by :func:`course_lib.multiseed.train_many`
    for N ∈ {1, 4, 8, 16}, against N separate runs of ``train`` (which add up to the rate of
    one run); the ratio is the speed-up (GPU target: ≥ 4 at N = 8).

Every figure is the best of ``--repeats`` timings after a warm-up; the machine may be shared,
so the lines also state the device and the thread count.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import resource
import sys
import time

import torch

from .arguments import device_name, positive_int

PROTOCOL_STEPS = 300_000
DSPRITES_IMAGES = 737_280


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _device_name(device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.machine()}, {torch.get_num_threads()} threads"


def _model(device, seed=0):
    from ..models import BetaVAE

    torch.manual_seed(seed)
    return BetaVAE(num_latents=10).to(device)


@contextlib.contextmanager
def channels_last(enabled: bool, model):
    """channels_last on (the course's default) or off (contiguous weights and activations)."""
    if enabled:
        yield
        return
    from ..models import nets

    saved = nets.channels_last
    nets.channels_last = lambda x: x.contiguous()
    model.to(memory_format=torch.contiguous_format)
    try:
        yield
    finally:
        nets.channels_last = saved
        model.to(memory_format=torch.channels_last)


@contextlib.contextmanager
def threads(n: int | None):
    saved = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def bare_step_fn(model, opt, *, amp: bool = False):
    """One update on a fixed batch: forward, backward, Adam step."""
    from ..models.base import amp_dtype

    device_type = next(model.parameters()).device.type
    dtype = amp_dtype(device_type)  # bfloat16, or float16 on a GPU without bfloat16 (T4)
    scaler = torch.amp.GradScaler(device_type, enabled=amp and dtype == torch.float16)

    def step(x):
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type, dtype=dtype, enabled=amp):
            loss = model.loss_terms(x)["loss"]
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss.detach()

    return step


def bare_loop(model, batch_size: int, steps: int, *, repeats: int = 2, amp=False,
              compile_mode: str | None = None, warmup: int = 2) -> tuple[float, float]:
    """(best images/s, seconds of warm-up incl. compilation) of the bare loop on ``model``."""
    device = next(model.parameters()).device
    from ..data import DSprites

    ds = DSprites()
    x = ds.images(ds.sample_classes(batch_size, torch.Generator(device=device).manual_seed(0),
                                    device))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    step = bare_step_fn(model, opt, amp=amp)
    if compile_mode is not None:
        model.loss_terms = torch.compile(model.loss_terms, mode=compile_mode)
    t0 = time.perf_counter()
    try:
        for _ in range(warmup):
            step(x)
        _sync(device)
        warm = time.perf_counter() - t0
        best = 0.0
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(steps):
                loss = step(x)
            float(loss)
            _sync(device)
            best = max(best, steps * batch_size / (time.perf_counter() - t0))
    finally:
        if compile_mode is not None:
            del model.loss_terms
    return best, warm


def loop_throughput(model, batch_size: int, steps: int, *, repeats: int = 2) -> tuple[float, float]:
    """(best images/s, seconds per step) of ``course_lib.train.train`` on dSprites."""
    from ..data import DSprites
    from ..train import train

    ds = DSprites()
    device = next(model.parameters()).device
    train(model, ds, steps=2, batch_size=batch_size, device=device, progress=False)  # warm-up
    best = 0.0
    for _ in range(repeats):
        result = train(model, ds, steps=steps, batch_size=batch_size, device=device,
                       progress=False)
        best = max(best, result.images_per_second)
    return best, batch_size / best


# -- memory, each measured in a fresh process ---------------------------------------------------
def _rss_mb() -> float:
    """Peak resident set size of this process so far, MB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _child_baseline(_device) -> dict:
    import course_lib.models  # what every run imports
    import course_lib.train  # noqa: F401 - imported for its import time, like course_lib.models

    return {"rss_mb": _rss_mb()}


def _child_train(device, batch_size, steps) -> dict:
    from ..data import DSprites
    from ..train import choose_device, train

    device = choose_device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = _rss_mb()
    model = _model(device)
    result = train(model, DSprites(), steps=steps, batch_size=batch_size, device=device,
                   progress=False)
    out = {"rss_mb": _rss_mb(), "before_mb": before, "seconds": result.seconds}
    if device.type == "cuda":
        out["cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def _child_score(device, images, chunk) -> dict:
    from ..data import DSprites
    from ..metrics import mig
    from ..train import choose_device

    device = choose_device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    ds = DSprites()
    model = _model(device).eval()
    before = _rss_mb()
    t0 = time.perf_counter()
    codes = torch.empty(images, model.num_latents)
    with torch.no_grad():
        for start in range(0, images, chunk):
            index = torch.arange(start, min(images, start + chunk), device=device)
            classes = ds.index_to_classes(index)
            codes[start:start + len(index)] = model.encode(ds.images(classes))[0].cpu()
    encode_s = time.perf_counter() - t0
    factors = ds.index_to_classes(torch.arange(images)).numpy()
    score = mig(codes.numpy(), factors).score
    out = {"rss_mb": _rss_mb(), "before_mb": before, "encode_seconds": encode_s,
           "mig_seconds": time.perf_counter() - t0 - encode_s, "mig": float(score)}
    if device.type == "cuda":
        out["cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def in_fresh_process(fn, *args) -> dict:
    """Run ``fn(*args)`` in a new Python process (its peak RSS is its own)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


# -- the commands -------------------------------------------------------------------------------
def bench_speed(args) -> int:
    from ..train import choose_device

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and not args.cpu_only else [])
    if args.device not in (None, "auto"):
        devices = [str(choose_device(args.device))]
    print(f"β-VAE (Burgess, z=10) training speed; torch {torch.__version__}, Python "
          f"{platform.python_version()}")
    slice_rate = {}
    for device in devices:
        print(f"\n[{device}] {_device_name(device)}")
        print(f"  {'batch':>5}  {'train() img/s':>14}  {'bare loop img/s':>16}  {'ratio':>6}")
        for bs in args.batch_sizes:
            model = _model(device)
            bare, _ = bare_loop(model, bs, args.steps, repeats=args.repeats)
            looped, _ = loop_throughput(model, bs, args.steps, repeats=args.repeats)
            slice_rate[(device, bs)] = looped
            target = 0.9 if device == "cpu" else 0.8
            print(f"  {bs:>5}  {looped:>14,.1f}  {bare:>16,.1f}  {looped / bare:>6.3f}"
                  f"  (target ≥ {target})")
        if args.variants:
            print("  bare-loop variants at batch 64:")
            bs = 64
            rows = []
            for cl in (True, False):
                model = _model(device)
                with channels_last(cl, model):
                    rows.append((f"channels_last {'on' if cl else 'off'}",
                                 *bare_loop(model, bs, args.steps, repeats=args.repeats)))
            if device == "cpu":
                for n in sorted({1, torch.get_num_threads()}):
                    with threads(n):
                        rows.append((f"{n} thread{'s' if n > 1 else ''}",
                                     *bare_loop(_model(device), bs, args.steps,
                                                repeats=args.repeats)))
            else:
                rows.append(("bf16 autocast", *bare_loop(_model(device), bs, args.steps,
                                                         repeats=args.repeats, amp=True)))
            if args.compile:
                modes = [None] if device == "cpu" else [None, "reduce-overhead"]
                for mode in modes:
                    label = "torch.compile" + (f" {mode} (CUDA graphs)" if mode else "")
                    try:
                        rows.append((label, *bare_loop(_model(device), bs, args.steps,
                                                       repeats=args.repeats,
                                                       compile_mode=mode or "default")))
                    except Exception as exc:  # noqa: BLE001 - e.g. no C++ compiler
                        print(f"    {label}: failed ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:120]})")
            for label, ips, warm in rows:
                print(f"    {label:<40} {ips:>10,.1f} images/s  (warm-up {warm:.1f} s)")
    if args.memory:
        device = devices[-1]
        print(f"\nPeak memory, each in a fresh process on {device}:")
        base = in_fresh_process(_child_baseline, device)
        print(f"  Python + torch + course_lib imported:   host RSS {base['rss_mb']:8.0f} MB")
        tr = in_fresh_process(_child_train, device, 64, args.memory_steps)
        extra = f", CUDA {tr['cuda_mb']:.0f} MB" if "cuda_mb" in tr else ""
        print(f"  training, batch 64, {args.memory_steps} steps:        host RSS "
              f"{tr['rss_mb']:8.0f} MB (+{tr['rss_mb'] - tr['before_mb']:.0f} MB over the peak "
              f"before it){extra}")
        sc = in_fresh_process(_child_score, device, args.scoring_images, args.chunk)
        extra = f", CUDA {sc['cuda_mb']:.0f} MB" if "cuda_mb" in sc else ""
        print(f"  scoring {args.scoring_images:,} images (chunks of {args.chunk}) + MIG: host RSS "
              f"{sc['rss_mb']:8.0f} MB (+{sc['rss_mb'] - sc['before_mb']:.0f} MB){extra}; "
              f"encoding {sc['encode_seconds']:.1f} s "
              f"({args.scoring_images / sc['encode_seconds']:,.0f} images/s), MIG "
              f"{sc['mig_seconds']:.1f} s")
    print("\nFull protocol (300,000 steps at batch 64), extrapolated from the train() slice of "
          f"{args.steps} steps:")
    for device in devices:
        rate = slice_rate.get((device, 64))
        if rate:
            seconds = PROTOCOL_STEPS * 64 / rate
            print(f"  {device} ({_device_name(device)}): {seconds / 3600:.2f} h "
                  f"({seconds / 60:,.0f} min; target on an H100: ≤ 10 min)")
    return 0


def bench_multiseed(args) -> int:
    from ..data import DSprites
    from ..multiseed import train_many
    from ..train import choose_device, train

    device = choose_device(args.device)
    ds = DSprites()
    bs, steps = args.batch_size, args.steps
    print(f"Several seeds at once: β-VAE, batch {bs} per copy, {steps} steps, {device} "
          f"({_device_name(device)})")
    single = 0.0
    train(_model(device), ds, steps=2, batch_size=bs, device=device, progress=False)
    for _ in range(args.repeats):
        single = max(single, train(_model(device), ds, steps=steps, batch_size=bs, device=device,
                                   progress=False).images_per_second)
    print(f"  one run of train():                 {single:10,.1f} images/s "
          "(N separate runs in a row: the same aggregate)")
    for n in args.copies:
        best = 0.0
        models = [_model(device, seed=i) for i in range(n)]
        train_many(models, ds, seeds=list(range(n)), steps=2, batch_size=bs, device=device,
                   progress=False)
        for _ in range(args.repeats):
            models = [_model(device, seed=i) for i in range(n)]
            res = train_many(models, ds, seeds=list(range(n)), steps=steps, batch_size=bs,
                             device=device, progress=False)
            best = max(best, res[0].images_per_second)
        print(f"  N = {n:2d} at once (train_many):       {best:10,.1f} images/s aggregate, "
              f"speed-up {best / single:5.2f}× over N separate runs")
    return 0


def main(argv=None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    p = sub.add_parser("speed", help="train() vs bare loop, variants, memory, protocol time")
    p.add_argument("--batch-sizes", type=positive_int, nargs="+", default=[64, 256])
    p.add_argument("--steps", type=positive_int, default=20, help="steps per timing (default 20)")
    p.add_argument("--repeats", type=positive_int, default=2)
    p.add_argument("--device", type=device_name, default="auto", help="auto: the CPU, and CUDA when present")
    p.add_argument("--cpu-only", action="store_true")
    p.add_argument("--no-variants", dest="variants", action="store_false")
    p.add_argument("--compile", action="store_true", help="also time torch.compile (slow to "
                   "compile on a CPU)")
    p.add_argument("--no-memory", dest="memory", action="store_false")
    p.add_argument("--memory-steps", type=positive_int, default=50)
    p.add_argument("--scoring-images", type=positive_int, default=DSPRITES_IMAGES)
    p.add_argument("--chunk", type=positive_int, default=4096)
    p = sub.add_parser("multiseed", help="N copies at once vs N separate runs")
    p.add_argument("--copies", type=positive_int, nargs="+", default=[1, 4, 8, 16])
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--steps", type=positive_int, default=10)
    p.add_argument("--repeats", type=positive_int, default=1)
    p.add_argument("--device", type=device_name, default="auto")
    for p in sub.choices.values():
        p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return {"speed": bench_speed, "multiseed": bench_multiseed}[args.what](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
