"""Train the course's reference models and ship them in ``data/checkpoints/``.

Command line::

    python -m course_lib pretrain --list                 # the recipes
    python -m course_lib pretrain beta_vae --profile quick
    python -m course_lib pretrain                        # every reference model

Each model is trained with :func:`course_lib.checkpoints.train_recipe` on its recipe
(:data:`course_lib.checkpoints.RECIPES`, steps from the profile, ``--seed``/``--steps``/
``-p NAME VALUE`` change it and are recorded), scored, and written in float16 with its manifest
entry: the recipe, the metrics (MIG, discrete estimator, on ``--metric-images`` dSprites images
encoded by the float16 weights that ship; final loss terms), sha256, size, and where it was
trained (device name, torch version, seconds, date).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from . import checkpoints as ck
from . import profiles
from .run import parse_value

METRIC_SEED = 1234


@torch.no_grad()
def encode_means(model, images_of, n: int, *, batch: int = 1024, device=None) -> np.ndarray:
    """Posterior means μ(x) (N×D) of ``n`` images given in chunks by ``images_of(start, stop)``."""
    device = device or next(model.parameters()).device
    out = []
    for start in range(0, n, batch):
        x = images_of(start, min(n, start + batch)).to(device)
        out.append(model.encode(x)[0].float().cpu())
    return torch.cat(out).numpy()


def score(model, n: int = 10_000, seed: int = METRIC_SEED) -> dict:
    """MIG (discrete, 20 bins) of ``model``'s posterior means on ``n`` random dSprites images."""
    from .data import DSprites
    from .metrics import mig

    ds = DSprites()
    g = torch.Generator().manual_seed(seed)
    classes = ds.sample_classes(n, g)
    was_training = model.training
    model.eval()
    codes = encode_means(model, lambda a, b: ds.images(classes[a:b]), n)
    model.train(was_training)
    result = mig(codes, classes.numpy(), factor_names=ds.factor_names)
    return {"mig": round(float(result.score), 4),
            "mig_per_factor": [None if not np.isfinite(v) else round(float(v), 4)
                               for v in result.per_factor],
            "metric_images": int(n), "metric_seed": seed}


def pretrain_one(name: str, *, profile=None, device=None, metric_images=10_000, folder=None,
                 progress=True, log=print, **overrides) -> dict:
    """Train, score and ship one reference model; returns its manifest entry."""
    recipe = ck.recipe(name, profile, **overrides)
    log(f"{name}: {recipe['model']} {recipe['config']}, {recipe['steps']} steps at batch "
        f"{recipe['batch_size']}, lr {recipe['lr']}, seed {recipe['seed']}")
    start = time.perf_counter()
    result = ck.train_recipe(recipe, device=device, progress=progress)
    seconds = time.perf_counter() - start
    model = result.model.cpu()
    shipped = type(model)(**model.config())
    shipped.load_state_dict({k: v.half().float() if v.is_floating_point() else v
                             for k, v in model.state_dict().items()})
    metrics = score(shipped, metric_images) if metric_images else {}
    for key in ("loss", "recon", "kl"):
        if key in result.history:
            metrics[f"final_{key}"] = round(float(result.history.last(key)), 3)
    trained_on = {"device": ck.describe_device(result.device), "device_type":
                  torch.device(result.device).type, "torch": torch.__version__,
                  "python": platform.python_version(), "seconds": round(seconds, 1),
                  "images_per_second": round(float(result.images_per_second), 1),
                  "date": ck.now()}
    entry = ck.write_shipped(model, recipe, history=result.history, metrics=metrics,
                             trained_on=trained_on, folder=folder)
    log(f"  wrote {entry['file']} ({entry['bytes'] / 1e6:.2f} MB) in {seconds:.0f} s; "
        f"MIG {metrics.get('mig', float('nan')):.3f}")
    return entry


def main(argv=None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description="Train the reference models and write them (float16) with a "
        "manifest to data/checkpoints/.")
    parser.add_argument("names", nargs="*", help=f"models to train (default: all of "
                                                 f"{', '.join(ck.RECIPES)})")
    parser.add_argument("--profile", default=None,
                        help=f"one of {', '.join(profiles.PROFILES)}: the number of steps "
                             f"(default: ${profiles.ENV_VAR}, else {profiles.DEFAULT_PROFILE})")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda, ...")
    parser.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    parser.add_argument("--steps", type=int, default=None, help="override the profile's steps")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="override a model keyword, e.g. -p beta 8")
    parser.add_argument("--metric-images", type=int, default=10_000,
                        help="dSprites images for the MIG in the manifest (0: none)")
    parser.add_argument("--out", default=None,
                        help="checkpoint folder (default: data/checkpoints of the repository)")
    parser.add_argument("--list", action="store_true", help="print the recipes and exit")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    profile = profiles.check_profile(args.profile) if args.profile else profiles.default_profile()
    if args.list:
        manifest = ck.read_manifest(args.out)["checkpoints"]
        for name in ck.RECIPES:
            print(f"{name} ({profile}): {ck.recipe(name, profile)}")
        for key, entry in manifest.items():
            print(f"shipped {key}: {entry['bytes']:,} bytes, MIG {entry['metrics'].get('mig')}, "
                  f"trained on {entry['trained_on'].get('device')}")
        return 0
    names = args.names or list(ck.RECIPES)
    from .models import MODELS

    overrides = {k: parse_value(v) for k, v in args.parameter}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.steps is not None:
        overrides["steps"] = args.steps
    total = 0
    for name in names:
        if name not in ck.RECIPES:
            raise ValueError(f"unknown reference model {name!r}: expected one of {sorted(ck.RECIPES)}")
        if ck.RECIPES[name]["model"] not in MODELS:
            print(f"{name}: model {ck.RECIPES[name]['model']!r} is not in this course_lib; skipped")
            continue
        entry = pretrain_one(name, profile=profile, device=args.device,
                             metric_images=args.metric_images, folder=args.out,
                             progress=not args.no_progress, **overrides)
        total += entry["bytes"]
    manifest = ck.read_manifest(args.out)["checkpoints"]
    size = sum(e["bytes"] for e in manifest.values())
    print(f"shipped checkpoints: {len(manifest)} files, {size / 1e6:.2f} MB in all "
          f"(this run wrote {total / 1e6:.2f} MB) in {ck.checkpoint_dir(args.out)}")
    return 0
