"""The cost of unrolling: seconds per generator step of an unrolled GAN, for K ∈ {0, 5, 10},
first and second order (``python -m course_lib bench unroll``).

A "generator step" here is the whole :meth:`training_step` (the generator update through K
unrolled discriminator steps, then one real discriminator step), timed after warm-up and
averaged over ``--repeats`` steps. Prints one line per setting and a table; the figures depend
on the machine and its load, so the table also states the device and the thread count.

Usage::

    python -m course_lib.cli.bench_gan --ks 0 5 10 --arch mlp --repeats 20
    python -m course_lib.cli.bench_gan --arch conv32 --batch 64 --device cuda
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from .arguments import device_name, non_negative_int, positive_int


def time_generator_step(unroll_steps: int, first_order: bool, *, arch: str = "mlp", batch: int = 512,
                        replicas: int = 1, repeats: int = 20, warmup: int = 3, device="cpu",
                        seed: int = 0) -> float:
    """Mean seconds of one ``training_step`` of an :class:`~course_lib.models.UnrolledGAN`.

    ``arch="mlp"``: the toy set-up of notebook 06 (2-D data, 128 hidden units);
    ``"conv32"``: the 32×32 MNIST networks with a batch of ``batch`` images.
    """
    from ..models import UnrolledGAN
    from ..train import choose_device

    device = choose_device(device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    torch.manual_seed(seed)
    if arch == "mlp":
        model = UnrolledGAN(unroll_steps=unroll_steps, first_order=first_order, arch="mlp", noise_dim=16,
                            hidden=128, layers=2, d_layers=1, replicas=replicas)
        x = torch.randn(replicas * batch, 2, generator=gen)
    else:
        model = UnrolledGAN(unroll_steps=unroll_steps, first_order=first_order, arch=arch, width=32)
        size = 32 if arch == "conv32" else 64
        x = torch.rand(batch, 1, size, size, generator=gen)
    model.to(device)
    x = x.to(device)
    opts = model.configure_optimizers(1e-4)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for i in range(warmup):
        model.training_step(x, i, opts)
    sync()
    t0 = time.perf_counter()
    for i in range(repeats):
        model.training_step(x, i, opts)
    sync()
    return (time.perf_counter() - t0) / repeats


def run(ks=(0, 5, 10), *, arch="mlp", batch=512, replicas=1, repeats=20, device="cpu", printer=print) -> list[dict]:
    """Time every (K, order) pair; returns rows ``{"K", "order", "ms", "ratio"}`` (ratio to K = 0)."""
    rows, base = [], None
    for K in ks:
        for first in ((False,) if K == 0 else (True, False)):
            sec = time_generator_step(K, first, arch=arch, batch=batch, replicas=replicas, repeats=repeats,
                                      device=device)
            if K == 0:
                base = sec
            row = {"K": K, "order": "-" if K == 0 else ("first" if first else "second"), "ms": 1000 * sec,
                   "ratio": sec / base if base else float("nan")}
            rows.append(row)
            printer(f"K={K:<3d} {row['order']:>6s} order: {row['ms']:8.2f} ms per generator step "
                    f"({row['ratio']:.1f}× K=0)")
    return rows


def main(argv=None, prog=None) -> int:
    p = argparse.ArgumentParser(prog=prog or "python -m course_lib bench unroll", description=__doc__.split("\n\n")[0])
    p.add_argument("--ks", type=non_negative_int, nargs="+", default=[0, 5, 10], help="unrolling steps K to time")
    p.add_argument("--arch", choices=("mlp", "conv32", "conv64"), default="mlp")
    p.add_argument("--batch", type=positive_int, default=512, help="samples per step (per replica)")
    p.add_argument("--replicas", type=positive_int, default=1, help="independent toy GANs trained side by side (mlp)")
    p.add_argument("--repeats", type=positive_int, default=20)
    p.add_argument("--device", type=device_name, default="cpu", help='"cpu", "cuda", "auto"')
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's choice)")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["unroll"]:
        argv = argv[1:]
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from ..train import choose_device

    device = choose_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"unrolled GAN ({args.arch}, batch {args.batch}, replicas {args.replicas}) on {name}, "
          f"torch {torch.__version__}")
    run(args.ks, arch=args.arch, batch=args.batch, replicas=args.replicas, repeats=args.repeats, device=device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
