"""Benchmarks that print their speed figures: ``python -m course_lib bench WHAT``.

``render``
    images/s of the procedural dSprites renderer on the CPU (batch sizes 64 and 1024 by default)
    and on CUDA when a GPU is present. Target: at least 10,000 images/s on a 2-core CPU and
    1,000,000 images/s on a GPU.
``train``
    images/s of the β-VAE (Burgess architecture, batch 64) trained through
    :func:`course_lib.train.train` and through a bare loop doing the same updates, and their
    ratio (the cost of the training loop's bookkeeping).

``speed``, ``multiseed``
    the full training-speed suite (variants, memory, the 300,000-step protocol) and several
    seeds at once: see :mod:`course_lib.cli.bench_train`.
``mig``
    MIG of a model on all 737,280 dSprites images (encode + score): see :mod:`course_lib.cli.bench_metrics`.
``unroll``
    time per generator step of unrolled GANs for several K, first and second order: see
    :mod:`course_lib.cli.bench_gan`.

Each figure is the best of a few timed repeats after a warm-up (the machine may be shared).
"""

from __future__ import annotations

import argparse
import time

import torch

from .arguments import device_name, positive_float, positive_int

RENDER_BATCHES = (64, 1024)


def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def render_images_per_second(batch_size: int, device="cpu", seconds: float = 1.0, repeats: int = 3,
                             seed: int = 0) -> float:
    """Best images/s over ``repeats`` timings of about ``seconds`` each, rendering batches of
    ``batch_size`` random grid images on ``device`` (class sampling included)."""
    from ..data import DSprites

    ds = DSprites()
    device = torch.device(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    ds.images(ds.sample_classes(batch_size, gen, device))  # warm-up: caches, kernels
    _sync(device)
    best = 0.0
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while True:
            ds.images(ds.sample_classes(batch_size, gen, device))
            n += batch_size
            if n % (batch_size * 4) == 0:
                _sync(device)
                elapsed = time.perf_counter() - t0
                if elapsed >= seconds:
                    break
        best = max(best, n / elapsed)
    return best


def bench_render(args) -> int:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and not args.cpu_only else [])
    print(f"dSprites rendering (torch {torch.__version__}, {torch.get_num_threads()} CPU threads)")
    for device in devices:
        sizes = args.batch_sizes if device == "cpu" else sorted(set(args.batch_sizes) | {65536})
        for bs in sizes:
            ips = render_images_per_second(bs, device, seconds=args.seconds, repeats=args.repeats)
            target = 10_000 if device == "cpu" else 1_000_000
            print(f"  {device:4s} batch {bs:6d}: {ips:12,.0f} images/s  (target {target:,})")
    return 0


def _bare_loop(model, sampler, steps, batch_size, lr, seed):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator(device=sampler.device).manual_seed(seed)
    model.train()
    t0 = time.perf_counter()
    for step in range(steps):
        x = sampler.sample(batch_size, gen)
        opt.zero_grad(set_to_none=True)
        loss = model.loss_terms(x, step)["loss"]
        loss.backward()
        opt.step()
    float(loss.detach())  # waits for the device
    return steps * batch_size / (time.perf_counter() - t0)


def bench_train(args) -> int:
    from ..data import DSprites
    from ..models import BetaVAE
    from ..train import choose_device, train

    device = choose_device(args.device)
    ds = DSprites()
    sampler = ds.sampler(device)
    bs = args.batch_size
    print(f"β-VAE training, batch {bs}, {args.steps} steps, device {device}, "
          f"{torch.get_num_threads()} CPU threads")
    torch.manual_seed(0)
    model = BetaVAE(num_latents=10).to(device)
    _bare_loop(model, sampler, 2, bs, 1e-4, 0)  # warm-up
    bare, looped = 0.0, 0.0
    for _ in range(args.repeats):
        bare = max(bare, _bare_loop(model, sampler, args.steps, bs, 1e-4, 0))
        result = train(model, ds, steps=args.steps, batch_size=bs, lr=1e-4, device=device, progress=False)
        looped = max(looped, result.images_per_second)
    print(f"  bare loop:          {bare:10,.0f} images/s")
    print(f"  course_lib.train:   {looped:10,.0f} images/s")
    print(f"  ratio train / bare: {looped / bare:10.3f}")
    return 0


#: WHAT -> module whose ``main(argv, prog)`` runs it
DELEGATED = {"speed": "course_lib.cli.bench_train", "multiseed": "course_lib.cli.bench_train",
             "mig": "course_lib.cli.bench_metrics", "unroll": "course_lib.cli.bench_gan"}
DELEGATED_HELP = {"speed": "train() vs bare loop, variants, memory, protocol time",
                  "multiseed": "N seeds at once (vmap) vs N separate runs",
                  "mig": "MIG of a model on all 737,280 dSprites images",
                  "unroll": "cost of unrolling a GAN, K = 0, 5, 10"}


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    import importlib
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in DELEGATED:
        module = importlib.import_module(DELEGATED[argv[0]])
        if argv[0] in ("mig", "unroll"):  # parsers of one command: their usage line names it
            return module.main(argv, prog=f"{prog or 'python -m course_lib bench'} {argv[0]}")
        return module.main(argv, prog=prog)
    parser = argparse.ArgumentParser(prog=prog or "python -m course_lib bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    p = sub.add_parser("render", help="images/s of the dSprites renderer")
    p.add_argument("--batch-sizes", type=positive_int, nargs="+", default=list(RENDER_BATCHES))
    p.add_argument("--seconds", type=positive_float, default=1.0, help="length of one timing (default 1)")
    p.add_argument("--repeats", type=positive_int, default=3, help="timings per figure; the best is shown")
    p.add_argument("--cpu-only", action="store_true", help="skip CUDA even when it is available")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    p = sub.add_parser("train", help="images/s of the β-VAE through train() vs a bare loop")
    p.add_argument("--steps", type=positive_int, default=20)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--repeats", type=positive_int, default=2)
    p.add_argument("--device", type=device_name, default="auto")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    for name, help_text in DELEGATED_HELP.items():  # listed here, parsed by their own modules
        sub.add_parser(name, help=help_text)
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return {"render": bench_render, "train": bench_train}[args.what](args)


if __name__ == "__main__":
    raise SystemExit(main())
