"""Benchmark: MIG of a model on all 737,280 dSprites images (encode + score).

``python -m course_lib bench mig`` (or ``python -m course_lib.cli.bench_metrics``) prints the time
to render and encode every image, the time of the discrete MIG on the codes, images per second
and the peak resident memory. Targets: at most 3 minutes on the 2-core CPU, at most
10 s on a GPU. Memory stays bounded: images exist one batch at a time, and the MIG's
histograms are built with ``np.bincount`` (no N×N matrix).

``--chunks`` times something else: encoding 10,000 pre-rendered images in one forward pass
against chunks (:func:`course_lib.metrics.encode_images`).

Options: ``--device`` (auto/cpu/cuda), ``--batch-size``, ``--n`` (a random subset instead of the
whole grid, for a quick check), ``--bf16`` (encode under bfloat16 autocast), ``--checkpoint`` (a
trained model saved by the course; default: a freshly initialised Burgess β-VAE with 10 latents,
which encodes exactly as fast).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import torch

from ..metrics import encode_dataset, mig
from .arguments import device_name, non_negative_int, positive_int


def _peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0**2 if sys.platform == "darwin" else 1024.0)


def _fresh_beta_vae(num_latents: int, seed: int):
    from ..models import build_model

    # Seed the initialisation without touching the caller's global random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model("beta_vae", num_latents=num_latents)


def bench_mig_full(model=None, device=None, *, batch_size: int = 1024, n: int | None = None,
                   num_latents: int = 10, seed: int = 0, dataset=None, autocast=None,
                   out=print) -> dict:
    """Time the discrete MIG of ``model`` on dSprites: render + encode every image, then score.

    Args:
        model: any course model with ``encode``; default a freshly initialised β-VAE
            (Burgess architecture, ``num_latents`` latents, initialised from ``seed``).
        device: "auto" (default: CUDA if available, else CPU), "cpu", "cuda", ...
        batch_size: images rendered and encoded at once.
        n: encode ``n`` random images instead of the whole grid (for a quick check).
        dataset: a data set with the DSprites interface (default ``DSprites()``).
        autocast: e.g. ``torch.bfloat16`` to encode under autocast (see ``encode_dataset``).
        out: where the report lines go (``print``).

    Returns:
        dict with ``images``, ``encode_s``, ``mig_s``, ``total_s`` (wall-clock seconds),
        ``cpu_s`` (CPU time of this process; with one thread it is what the wall time would be
        on an idle core, with several it also counts threads waiting on each other),
        ``images_per_s``, ``peak_rss_mib``, ``mig`` (the
        score), ``device`` (and ``peak_gpu_mib`` on CUDA).
    """
    from ..data import DSprites
    from ..train import choose_device

    dev = choose_device(device)
    ds = dataset if dataset is not None else DSprites()
    if model is None:
        model = _fresh_beta_vae(num_latents, seed)
        name = f"freshly initialised beta_vae ({num_latents} latents)"
    else:
        name = type(model).__name__
    model = model.to(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    # warm-up batch (first-call allocations, kernel selection), not timed
    encode_dataset(model, ds, n=min(batch_size, 256), batch_size=batch_size, device=dev, seed=seed,
                   autocast=autocast)

    c0 = time.process_time()
    t0 = time.perf_counter()
    enc = encode_dataset(model, ds, n=n, batch_size=batch_size, device=dev, seed=seed,
                         autocast=autocast)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t1 = time.perf_counter()
    result = mig(enc.mu, enc.classes, factor_names=getattr(ds, "factor_names", None))
    t2 = time.perf_counter()
    c2 = time.process_time()

    images = enc.mu.shape[0]
    report = {
        "images": images,
        "device": str(dev),
        "encode_s": t1 - t0,
        "mig_s": t2 - t1,
        "total_s": t2 - t0,
        "cpu_s": c2 - c0,
        "images_per_s": images / (t2 - t0),
        "peak_rss_mib": _peak_rss_mib(),
        "mig": result.score,
        "threads": torch.get_num_threads(),
    }
    if dev.type == "cuda":
        report["peak_gpu_mib"] = torch.cuda.max_memory_allocated(dev) / 1024.0**2
    precision = f"autocast {autocast}" if autocast is not None else "float32"
    out(f"MIG benchmark: {name} on {images:,} dSprites images, device {dev} "
        f"({report['threads']} CPU threads), batch {batch_size}, {precision}")
    out(f"  render + encode {report['encode_s']:.2f} s, MIG {report['mig_s']:.2f} s, "
        f"total {report['total_s']:.2f} s = {report['images_per_s']:,.0f} images/s")
    out(f"  CPU time {report['cpu_s']:.1f} s over {report['threads']} thread(s); wall time well "
        f"above CPU time / threads means the cores were shared (a single-thread run, "
        f"OMP_NUM_THREADS=1, gives the cleanest per-image CPU cost)")
    extra = f", peak GPU memory {report['peak_gpu_mib']:.0f} MiB" if "peak_gpu_mib" in report else ""
    out(f"  peak RSS {report['peak_rss_mib']:.0f} MiB{extra}; MIG = {result.score:.4f} "
        f"({'; '.join(result.notes)})")
    return report


def bench_encode_chunks(model=None, device=None, *, n: int = 10_000, sizes=None, repeats: int = 3,
                        seed: int = 0) -> dict[int, float]:
    """Seconds to encode ``n`` pre-rendered dSprites images with :func:`course_lib.metrics.encode_images`
    in chunks of each of ``sizes`` (default: all ``n`` at once, 1,024, 256 and 128); the best of
    ``repeats`` timings, printed and returned as ``{chunk: seconds}``. Rendering is left out: it
    is the same for every chunk size."""
    from ..data import DSprites
    from ..metrics import encode_images
    from ..train import choose_device

    device = choose_device(device or "auto")
    model = (model or _fresh_beta_vae(10, seed)).to(device)
    ds = DSprites()
    images = ds.images(ds.sample_classes(n, torch.Generator().manual_seed(seed)).to(device))
    sizes = tuple(sizes or (n, 1024, 256, 128))
    encode_images(model, images[:256], batch_size=128)   # warm-up
    seconds = {}
    for size in sizes:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            encode_images(model, images, batch_size=size)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - t0)
        seconds[size] = best
    threads = torch.get_num_threads()
    print(f"encode {n:,} pre-rendered images in chunks, device {device} ({threads} CPU threads), best of {repeats}:")
    for size, t in seconds.items():
        ratio = t / min(seconds.values())
        print(f"  chunks of {size:>6,}: {t:6.2f} s = {n / t:>8,.0f} images/s ({ratio:.1f}× the fastest)")
    return seconds


def main(argv=None, prog: str | None = None) -> int:
    """Command line: ``python -m course_lib bench mig [--device D] [--batch-size B] [--n N]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["mig"]:
        argv = argv[1:]
    parser = argparse.ArgumentParser(prog=prog or "python -m course_lib.cli.bench_metrics",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", type=device_name, default="auto", help="auto (default), cpu, cuda, cuda:N, mps")
    parser.add_argument("--batch-size", type=positive_int, default=1024)
    parser.add_argument("--bf16", action="store_true",
                        help="encode under bfloat16 autocast (about 2x faster on AVX-512 CPUs)")
    parser.add_argument("--n", type=positive_int, default=None,
                        help="encode N random images instead of all 737,280")
    parser.add_argument("--checkpoint", default=None, help="a model checkpoint saved by the course")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--chunks", action="store_true",
                        help="instead: time encoding N (default 10,000) pre-rendered images at once and in "
                             "chunks of 1,024, 256 and 128 (the chunk size of course_lib.metrics.encode_images)")
    args = parser.parse_args(argv)
    from ..models.base import amp_dtype
    from ..train import choose_device

    model = None
    if args.checkpoint:
        from ..train import load_model

        model = load_model(args.checkpoint)
    if args.chunks:
        bench_encode_chunks(model, args.device, n=args.n or 10_000, seed=args.seed)
        return 0
    bench_mig_full(model, args.device, batch_size=args.batch_size, n=args.n, seed=args.seed,
                   autocast=amp_dtype(choose_device(args.device)) if args.bf16 else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
