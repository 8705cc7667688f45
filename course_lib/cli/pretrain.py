"""Train the course's reference models and ship them in ``data/checkpoints/``.

Command line::

    python -m course_lib pretrain --list                 # the recipes
    python -m course_lib pretrain beta_vae --profile quick
    python -m course_lib pretrain                        # every reference model
    python -m course_lib pretrain NAME --steps 8000 --keep-state     # keep the final state ...
    python -m course_lib pretrain NAME --steps 16000 --extend-from 8000  # ... to continue it later

Each model is trained with :func:`course_lib.checkpoints.train_recipe` on its recipe
(:data:`course_lib.checkpoints.RECIPES`, steps from the profile, ``--seed``/``--steps``/
``-p NAME VALUE`` change it and are recorded), scored, and written in float16 with its manifest
entry: the recipe, the metrics (MIG, discrete estimator, on ``--metric-images`` dSprites images
encoded by the float16 weights that ship; final loss terms), sha256, size, and where it was
trained (device name, torch version, seconds, date).

Exit status: 0 when every model asked for shipped (or for ``--list``, ``--peek``,
``--rescore``), :data:`EXIT_STOPPED` (3) when a run stopped before its last step (``--minutes``,
``--stop-at``, SIGTERM or Ctrl-C) and was saved to be resumed, 2 for bad input. A script can
loop ``until python -m course_lib pretrain NAME --resume --minutes 60; do …; done``.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
import torch

from .. import checkpoints as ck
from .. import profiles
from ..train import (
    TrainingStopped,
    atomic_write,
    atomic_write_text,
    choose_device,
    load_checkpoint,
    stop_on_signals,
)
from .arguments import device_name, non_negative_int, positive_float, positive_int
from .run import parse_value

#: Exit status of a run that stopped before its last step and was saved, resumable.
EXIT_STOPPED = 3

METRIC_SEED = 1234


@torch.no_grad()
def encode_means(model, images_of, n: int, *, batch: int = 1024, device=None) -> np.ndarray:
    """Posterior means μ(x) (N×D) of ``n`` images given in chunks by ``images_of(start, stop)``;
    for an InfoGAN, Q's reading (``representation``: categories, then continuous means)."""
    device = device or next(model.parameters()).device
    out = []
    for start in range(0, n, batch):
        x = images_of(start, min(n, start + batch)).to(device)
        codes = model.encode(x)[0] if hasattr(model, "encode") else model.representation(x)
        out.append(codes.float().cpu())
    return torch.cat(out).numpy()


def score(model, n: int = 10_000, seed: int = METRIC_SEED) -> dict:
    """MIG (discrete, 20 bins) of ``model``'s posterior means (an InfoGAN: Q's reading, its
    categories and continuous means) on ``n`` random dSprites images."""
    from ..data import DSprites
    from ..metrics import mig

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


@torch.no_grad()
def score_renderer(model, data: str, n: int = 10_000, seed: int = METRIC_SEED, classifier=None) -> dict:
    """The sprite rulers (:func:`course_lib.quality.sprite_rulers`, read by ``classifier``, by
    default the shipped factor classifier) of an ID-GAN's samples G(s, c), c ~ q(c|x) of ``n``
    real images of its data, and of its step-1 β-VAE's decodes of the same codes; against another
    ``n`` real images."""
    from ..data import DSprites
    from ..quality import sprite_rulers

    if classifier is None:
        classifier = ck.load_or_train("factor_classifier", profile="quick", progress=False).model.eval()
    ds, ranges = DSprites(), ck.data_ranges(data)
    g = torch.Generator().manual_seed(seed)
    x = ds.images(ds.sample_classes(n, g, class_ranges=ranges))
    real = ds.images(ds.sample_classes(n, g, class_ranges=ranges))
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)  # c ~ q(c|x) draws from the global generator
    c = model.sample_codes(x)
    s = torch.randn(n, model.noise_dim, generator=g)
    samples = torch.cat([model.generate(c[i:i + 1000], s[i:i + 1000]) for i in range(0, n, 1000)])
    decodes = torch.cat([torch.sigmoid(model.vae.decode(c[i:i + 1000])) for i in range(0, n, 1000)])
    model.train(was_training)
    out = {}
    for name, images in (("samples", samples), ("vae_decodes", decodes), ("real", x)):
        out.update({f"{name}_{k}": round(float(v), 4)
                    for k, v in sprite_rulers(classifier, real, images).items()})
    return {**out, "metric_images": int(n), "metric_seed": seed}


def score_digits(model) -> dict:
    """An InfoGAN on the digits: the accuracy of its categorical code on the training and the
    test split, each category matched to the digit it names most often (Hungarian matching)."""
    from ..data.mnist import load_mnist
    from ..models.gan import matched_accuracy

    was_training = model.training
    model.eval()
    out = {}
    for split, train in (("train", True), ("test", False)):
        images, labels = load_mnist(train=train, source="digits", verbose=False)
        out[f"matched_accuracy_{split}"] = round(float(matched_accuracy(model.predict_codes(images)[0][:, 0],
                                                                        labels)[0]), 4)
    model.train(was_training)
    return out


UNFINISHED = "unfinished"
#: Where ``--keep-state`` keeps the full state of a finished run, for ``--extend-from``.
KEPT = "finished"
CHECKPOINT_EVERY = 1_000


def run_path(recipe: dict, folder=None) -> Path:
    """Where the resumable state of an unfinished run of ``recipe`` is kept:
    ``<checkpoint folder>/unfinished/<key>.pt`` (weights, optimisers, step, RNG, history and the
    wall time of every segment of the run)."""
    return ck.checkpoint_dir(folder) / UNFINISHED / f"{ck.entry_key(recipe)}.pt"


def kept_path(recipe: dict, folder=None) -> Path:
    """Where ``keep_state=True`` keeps the full state of a finished run of ``recipe``:
    ``<checkpoint folder>/finished/<key>.pt``, from which ``extend_from`` continues it."""
    return ck.checkpoint_dir(folder) / KEPT / f"{ck.entry_key(recipe)}.pt"


def start_extension(name: str, recipe: dict, extend_from: int, folder=None, *, profile=None,
                    log=print, **overrides) -> Path:
    """Make the unfinished run of ``recipe`` from the kept final state of the same recipe with
    ``extend_from`` steps (``keep_state=True``): a copy of it, so that the continued run is the
    uninterrupted run of ``recipe["steps"]`` steps in its weights (training is indexed by step;
    nothing in a recipe depends on the run's length but its end). Its history keeps the shorter
    run's log interval (steps // 100 of the shorter run unless ``--log-every`` was given), and so
    do the ``final_*`` metrics, which average the last logged window: they equal the longer
    run's only when both log at the same interval. The manifest or record entry's
    ``trained_on["log_every"]`` says which interval was used. The kept state stays, to be
    extended again to another length. Returns the path of the unfinished run."""
    import shutil

    if not 0 < extend_from < recipe["steps"]:
        raise ValueError(f"extend_from must be a step count between 0 and the run's {recipe['steps']:,} "
                         f"steps, got {extend_from!r}")
    shorter = ck.recipe(name, profile, **{**overrides, "steps": int(extend_from)})
    source, target = kept_path(shorter, folder), run_path(recipe, folder)
    if target.exists():
        raise ValueError(f"an unfinished run of {ck.entry_key(recipe)} is already saved in {target}: "
                         f"continue it with --resume instead of --extend-from")
    if not source.exists():
        raise FileNotFoundError(f"no kept state of {ck.entry_key(shorter)} in {source}: only a run "
                                f"trained with --keep-state can be extended")
    state = load_checkpoint(source)
    if int(state["step"]) != int(extend_from):
        raise ValueError(f"{source} is at step {int(state['step']):,}, not at the end of its "
                         f"{extend_from:,}-step run: expected a finished run's state")
    with open(source, "rb") as src:
        atomic_write(target, lambda fh: shutil.copyfileobj(src, fh))
    log(f"{ck.entry_key(recipe)}: extending the finished {extend_from:,}-step run kept in {source}")
    return target


def this_machine(device) -> dict:
    """Who trains a segment: host name, device, torch and Python versions."""
    return {"host": platform.node(), "device": ck.describe_device(device),
            "device_type": torch.device(device).type, "torch": str(torch.__version__),
            "python": platform.python_version()}


def score_recipe(model, recipe: dict, metric_images: int) -> dict:
    """The manifest's metrics of a model of ``recipe``: the digits InfoGAN's matched accuracy,
    ID-GAN's sprite rulers, or MIG on ``metric_images`` dSprites images (0: none)."""
    if recipe["data"] == ck.DIGITS:
        return score_digits(model)
    if not metric_images:
        return {}
    if hasattr(model, "sample_codes"):  # ID-GAN: how its samples look, beside its β-VAE's
        return score_renderer(model, recipe["data"], metric_images)
    if hasattr(model, "encode") or hasattr(model, "predict_codes"):
        return score(model, metric_images)
    return {}


def peek(name: str, *, profile=None, metric_images=3_000, folder=None, **overrides) -> dict | None:
    """The metrics of the unfinished run of a recipe at its last saved step (``--peek``), to
    follow a long run without stopping it; None when no run of that recipe is unfinished."""
    recipe = ck.recipe(name, profile, **overrides)
    path = run_path(recipe, folder)
    if not path.exists():
        return None
    from ..train import load_model

    model = load_model(path, device="cpu")
    return {"step": int(load_checkpoint(path)["step"]), **score_recipe(model, recipe, metric_images)}


def rescore(name: str, *, profile=None, metric_images=10_000, folder=None, **overrides) -> dict:
    """Score the shipped model of a recipe again with today's metrics and rulers (after a change
    of the factor classifier, say) and update its manifest entry (:func:`ck.update_metrics`);
    nothing is trained. Returns the new metrics; a recipe with nothing shipped is an error."""
    recipe = ck.recipe(name, profile, **overrides)
    found = ck.find_shipped(recipe, folder)
    if found is None:
        raise FileNotFoundError(f"no shipped model of recipe {ck.entry_key(recipe)} to rescore: train it with "
                                f"`python -m course_lib pretrain {name}` first")
    key, _ = found
    model = ck.load_shipped(key, device="cpu", folder=folder)
    metrics = score_recipe(model, recipe, metric_images)
    ck.update_metrics(key, metrics, folder)
    return metrics


def describe_entry(key: str, entry: dict) -> str:
    """One line on a shipped model for ``pretrain --list``: size, steps, wall time, segments,
    machines and its metrics (MIG with its value per factor, or the other metrics)."""
    trained, metrics = entry.get("trained_on", {}), dict(entry.get("metrics", {}))
    steps = trained.get("total_steps", entry["recipe"]["steps"])
    parts = [_mig_text(metrics)] if "mig" in metrics else []
    for shown in ("mig", "mig_per_factor"):
        metrics.pop(shown, None)
    parts += [f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in metrics.items()
              if k not in ("metric_seed",)]
    if entry.get("rescored"):
        parts.append(f"metrics rescored {entry['rescored']}")
    return (f"shipped {key}: {entry['bytes']:,} bytes ({entry.get('dtype', 'float32')}), {steps:,} steps, "
            f"{ck.describe_training(trained)}; " + ("; ".join(parts) or "no metrics"))


#: Where the README keeps the table of shipped models that :func:`shipped_table` writes.
TABLE_BEGIN = "<!-- shipped models: python -m course_lib pretrain --list --markdown -->"
TABLE_END = "<!-- end of shipped models -->"


def _mig_text(metrics: dict) -> str:
    """'MIG 0.250 (shape 0.10, scale 0.20, …)' from a manifest entry's metrics (the factor with
    no value, colour, left out)."""
    from ..data.dsprites import FACTOR_NAMES

    per = metrics.get("mig_per_factor") or []
    return f"MIG {metrics['mig']:.3f}" + (" (" + ", ".join(
        f"{n} {v:.2f}" for n, v in zip(FACTOR_NAMES, per) if v is not None) + ")" if per else "")


def _table_scores(metrics: dict) -> str:
    """The scores column of :func:`shipped_table`: MIG with its value per factor (on the images
    the manifest names), the sample rulers of a renderer, the matched accuracy of a digits InfoGAN."""
    parts = []
    if metrics.get("mig") is not None:
        parts.append(_mig_text(metrics))
    if "samples_ffd" in metrics:
        parts.append(f"factor Fréchet distance {metrics['samples_ffd']:,.0f} (the β-VAE's decodes "
                     f"{metrics['vae_decodes_ffd']:,.0f}, real images {metrics['real_ffd']:,.0f}); shape named for "
                     f"{metrics['samples_shape_named']:.0%} of samples (real {metrics['real_shape_named']:.1%})")
    if "matched_accuracy_test" in metrics:
        parts.append(f"categorical code ↔ digit, matched accuracy {metrics['matched_accuracy_test']:.3f} held out "
                     f"({metrics['matched_accuracy_train']:.3f} on the training images)")
    return "; ".join(parts) or "—"


def shipped_table(manifest: dict) -> str:
    """A markdown table of the shipped models (``manifest``: key → entry, as in the manifest's
    ``checkpoints``), one row each in key order: steps × batch, seed, where and how long it
    trained (:func:`~course_lib.checkpoints.describe_training`), size and scores. The README
    keeps it between :data:`TABLE_BEGIN` and :data:`TABLE_END` (a test checks that it is current)."""
    rows = ["| model (manifest key) | steps × batch | seed | trained | size | scores |",
            "|---|---|---|---|---|---|"]
    for key in sorted(manifest):
        entry = manifest[key]
        recipe, trained = entry["recipe"], entry.get("trained_on", {})
        steps = trained.get("total_steps", recipe["steps"])
        rows.append(f"| `{key}` | {steps:,} × {recipe['batch_size']} | {recipe['seed']} | "
                    f"{ck.describe_training(trained)} | {entry['bytes'] / 1e6:.1f} MB | "
                    f"{_table_scores(entry.get('metrics', {}))} |")
    return "\n".join(rows)


def refresh_readme_table(folder=None, readme=None) -> bool:
    """Rewrite the README's table of shipped models (between :data:`TABLE_BEGIN` and
    :data:`TABLE_END`) from the manifest of ``folder``, when ``folder`` is the repository's
    checkpoint folder and the README has the table; True when the file changed. Called after
    a model ships or is rescored, so that the README never lags the manifest."""
    from ..config import PACKAGE_PARENT, REPOSITORY_CHECKPOINTS

    readme = Path(readme) if readme is not None else PACKAGE_PARENT / "README.md"
    if ck.checkpoint_dir(folder).resolve() != REPOSITORY_CHECKPOINTS.resolve() or not readme.is_file():
        return False
    with ck.folder_lock(folder):  # the manifest read and the README written by one run at a time
        text = readme.read_text(encoding="utf-8")
        if TABLE_BEGIN not in text or TABLE_END not in text:
            return False
        head, rest = text.split(TABLE_BEGIN, 1)
        tail = rest.split(TABLE_END, 1)[1]
        table = shipped_table(ck.read_manifest(folder)["checkpoints"])
        new = f"{head}{TABLE_BEGIN}\n{table}\n{TABLE_END}{tail}"
        if new == text:
            return False
        atomic_write_text(readme, new)
    return True


def pretrain_one(name: str, *, profile=None, device=None, metric_images=10_000, folder=None,
                 progress=True, log=print, resume=False, checkpoint_every=CHECKPOINT_EVERY,
                 stop_at=None, time_limit=None, log_every=None, keep_state=False,
                 extend_from=None, **overrides) -> dict | None:
    """Train, score and ship one reference model; returns its manifest entry.

    The run saves its full state (:func:`run_path`) every ``checkpoint_every`` steps. With
    ``stop_at`` (a step) or ``time_limit`` (seconds) it stops early, saves, and returns None;
    ``resume=True`` continues it later, on this or another machine, exactly where it stopped.
    The shipped entry's ``trained_on`` records the total steps and wall time, every segment
    (host, device, steps, seconds) and the number of resumptions; the unfinished state is then
    deleted, or with ``keep_state`` moved to :func:`kept_path`. ``extend_from`` (a step count)
    continues such a kept run of the same recipe with fewer steps to this recipe's steps
    (:func:`start_extension`); its segments count in this run's.
    """
    recipe = ck.recipe(name, profile, **overrides)
    key = ck.entry_key(recipe)
    path = run_path(recipe, folder)
    if extend_from is not None:
        start_extension(name, recipe, extend_from, folder, profile=profile, log=log, **overrides)
        resume = True
    previous, start = [], 0
    if path.exists():
        if not resume:
            raise ValueError(f"an unfinished run of {key} is saved in {path}: continue it with "
                             f"--resume (resume=True), or delete that file to start anew")
        state = load_checkpoint(path)
        extra = state.get("extra") or {}
        previous, start = list(extra.get("segments", [])), int(state["step"])
        if log_every is not None and extra.get("log_every") not in (None, log_every):
            raise ValueError(f"{path} logs every {extra['log_every']} steps, not {log_every}: "
                             f"resume it without --log-every")
        log_every = extra.get("log_every", log_every)
        log(f"{key}: resuming at step {start:,} of {recipe['steps']:,} "
            f"(segment {len(previous) + 1}, {sum(s['seconds'] for s in previous):.0f} s so far)")
    log_every = int(log_every or max(1, recipe["steps"] // 100))
    log(f"{name}: {recipe['model']} {recipe['config']}, {recipe['steps']} steps at batch "
        f"{recipe['batch_size']}, lr {recipe['lr']}, seed {recipe['seed']}")
    used_device = choose_device(device)
    segment = {**this_machine(used_device), "from_step": start, "started": ck.now()}

    def record(step, seconds):
        return {"log_every": log_every, "segments": previous + [
            {**segment, "to_step": int(step), "seconds": round(float(seconds), 1)}]}

    result = ck.train_recipe(recipe, device=used_device, progress=progress, checkpoint=path,
                             checkpoint_every=checkpoint_every, stop_at=stop_at,
                             time_limit=time_limit, log_every=log_every, checkpoint_extra=record)
    if not result.finished:
        log(f"  stopped at step {result.steps:,} of {recipe['steps']:,}; the run is saved in "
            f"{path}: continue it with `python -m course_lib pretrain {name} --resume` and the "
            f"same options")
        return None
    segments = record(result.steps, result.seconds)["segments"] if start < recipe["steps"] else previous
    seconds = sum(s["seconds"] for s in segments)
    model = result.model.cpu()
    shipped = type(model)(**model.config())
    shipped.load_state_dict({k: v.half().float() if v.is_floating_point() else v
                             for k, v in model.state_dict().items()})
    metrics = score_recipe(shipped, recipe, metric_images)
    for key_ in ("loss", "recon", "kl"):
        if key_ in result.history:
            metrics[f"final_{key_}"] = round(float(result.history.last(key_)), 3)
    machines = []
    for s in segments:
        who = {k: s[k] for k in ("host", "device", "device_type", "torch")}
        if who not in machines:
            machines.append(who)
    last = segments[-1] if segments else segment
    images = recipe["steps"] * recipe["batch_size"]
    trained_on = {"device": last["device"], "device_type": last["device_type"],
                  "torch": last["torch"], "python": last["python"],
                  "seconds": round(seconds, 1), "hours": round(seconds / 3600, 2),
                  "images_per_second": round(images / seconds, 1) if seconds > 0 else None,
                  "total_steps": recipe["steps"], "resumptions": max(0, len(segments) - 1),
                  "log_every": log_every, "machines": machines, "segments": segments, "date": ck.now()}
    if ck.RECIPES[name].get("ship") == "record":
        for key_ in ("q_cont", "q_cont_mse", "q_cat"):
            if key_ in result.history:
                metrics[f"final_{key_}"] = round(float(result.history.last(key_)), 5)
        entry = ck.write_record(recipe, history=result.history, metrics=metrics,
                                trained_on=trained_on, folder=folder)
        _retire(path, recipe, folder, keep_state, log)
        log(f"  recorded {key} in {ck.RECORDS} (weights not shipped) after {seconds:.0f} s in "
            f"{len(segments)} segment(s); " + ", ".join(f"{k} {v}" for k, v in metrics.items()))
        return {**entry, "bytes": 0}
    entry = ck.write_shipped(model, recipe, history=result.history, metrics=metrics,
                             trained_on=trained_on, folder=folder)
    _retire(path, recipe, folder, keep_state, log)
    scores = ", ".join(f"{k} {v}" for k, v in metrics.items() if not isinstance(v, list))
    log(f"  wrote {entry['file']} ({entry['bytes'] / 1e6:.2f} MB) after {seconds:.0f} s in "
        f"{len(segments)} segment(s); {scores}")
    return entry


def _retire(path: Path, recipe: dict, folder, keep_state: bool, log) -> None:
    """The state of a run that has shipped: deleted, or kept for ``extend_from``."""
    if not path.exists():
        return
    if keep_state:
        kept = kept_path(recipe, folder)
        kept.parent.mkdir(parents=True, exist_ok=True)
        path.replace(kept)
        log(f"  kept the final state in {kept}: continue the run to more steps with "
            f"--steps N --extend-from {recipe['steps']}")
    else:
        path.unlink()


def main(argv=None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description="Train the reference models and write them (float16) with a "
        "manifest to data/checkpoints/. Long runs save their state every --checkpoint-every "
        "steps and continue with --resume. Exit status 3: a run stopped before its last step "
        "(--minutes, --stop-at, SIGTERM) and was saved, to be resumed.")
    parser.add_argument("names", nargs="*", help=f"models to train (default: all of "
                                                 f"{', '.join(ck.RECIPES)})")
    parser.add_argument("--profile", default=None,
                        help=f"one of {', '.join(profiles.PROFILES)}: the number of steps "
                             f"(default: ${profiles.ENV_VAR}, else {profiles.DEFAULT_PROFILE})")
    parser.add_argument("--device", type=device_name, default=None,
                        help="auto (default), cpu, cuda, ...")
    parser.add_argument("--seed", type=non_negative_int, default=None,
                        help="override the recipe's seed")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="override the profile's steps")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="override a model keyword, e.g. -p beta 8")
    parser.add_argument("--metric-images", type=non_negative_int, default=None,
                        help="dSprites images for the metrics in the manifest (default 10,000; "
                             "with --peek 3,000; 0: none)")
    parser.add_argument("--out", default=None,
                        help="checkpoint folder (default: data/checkpoints of the repository)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the unfinished run saved in <out>/unfinished/ (started "
                             "anew when there is none)")
    parser.add_argument("--checkpoint-every", type=positive_int, default=CHECKPOINT_EVERY,
                        help=f"save the run's state every this many steps (default {CHECKPOINT_EVERY})")
    parser.add_argument("--stop-at", type=positive_int, default=None,
                        help="stop after this step, save, and leave the run to --resume")
    parser.add_argument("--minutes", type=positive_float, default=None,
                        help="stop after this many minutes of training, save, and leave the run "
                             "to --resume")
    parser.add_argument("--keep-state", action="store_true",
                        help="when the run finishes, keep its full state in <out>/finished/ (not "
                             "only the shipped weights), so that --extend-from can continue it")
    parser.add_argument("--extend-from", type=positive_int, default=None, metavar="STEPS",
                        help="continue the finished run of the same recipe with STEPS steps, kept "
                             "by --keep-state, to --steps")
    parser.add_argument("--log-every", type=positive_int, default=None,
                        help="log the loss terms every this many steps (default: steps / 100)")
    parser.add_argument("--list", action="store_true", help="print the recipes and exit")
    parser.add_argument("--markdown", action="store_true",
                        help="with --list: print only the README's markdown table of the shipped models")
    parser.add_argument("--peek", action="store_true",
                        help="score the unfinished run of each model at its last saved step "
                             "(on --metric-images images, default here 3,000) and exit")
    parser.add_argument("--rescore", action="store_true",
                        help="score the shipped model of each recipe again with today's metrics "
                             "(after a change of the rulers) and update the manifest; trains nothing")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    profile = profiles.check_profile(args.profile) if args.profile else profiles.default_profile()
    out = ck.checkpoint_dir(args.out)
    if out.exists() and not out.is_dir():
        parser.error(f"--out {args.out} is a file: expected a folder for the checkpoints")
    if args.markdown and not args.list:
        parser.error("--markdown goes with --list (the table of shipped models)")
    if args.list:
        manifest = ck.read_manifest(args.out)["checkpoints"]
        if args.markdown:
            print(shipped_table(manifest))
            return 0
        for name in ck.RECIPES:
            print(f"{name} ({profile}): {ck.recipe(name, profile)}")
        for key, entry in manifest.items():
            print(describe_entry(key, entry))
        for path in sorted((out / UNFINISHED).glob("*.pt")):
            print(f"unfinished {path.stem}: step {load_checkpoint(path)['step']:,} "
                  f"(continue with --resume)")
        for path in sorted((out / KEPT).glob("*.pt")):
            print(f"kept {path.stem}: finished at step {load_checkpoint(path)['step']:,} "
                  f"(continue to more steps with --steps N --extend-from STEPS)")
        return 0
    names = args.names or list(ck.RECIPES)

    if args.peek:
        metric_images = 3_000 if args.metric_images is None else args.metric_images
        overrides_ = {k: parse_value(v) for k, v in args.parameter}
        overrides_.update({k: v for k, v in (("seed", args.seed), ("steps", args.steps)) if v is not None})
        for name in names:
            if name not in ck.RECIPES:
                parser.error(f"unknown reference model {name!r}: expected one of {sorted(ck.RECIPES)}")
            found = peek(name, profile=profile, metric_images=metric_images, folder=args.out, **overrides_)
            print(f"{name}: " + ("no unfinished run of this recipe" if found is None else
                                 ", ".join(f"{k} {v}" for k, v in found.items())))
        return 0

    overrides = {k: parse_value(v) for k, v in args.parameter}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.steps is not None:
        overrides["steps"] = args.steps
    for name in names:  # every recipe is checked before anything trains
        if name not in ck.RECIPES:
            parser.error(f"unknown reference model {name!r}: expected one of {sorted(ck.RECIPES)}")
        try:
            ck.recipe(name, profile, **overrides)
        except ValueError as err:
            parser.error(str(err))
    if args.extend_from is not None:
        if args.steps is None or args.extend_from >= args.steps:
            parser.error(f"--extend-from {args.extend_from} needs --steps larger than it (the "
                         f"length of the continued run)")
        if args.resume:
            parser.error("--extend-from starts the continued run; to continue it after a stop, "
                         "use --resume without --extend-from")
    if args.rescore:
        if not args.names:
            parser.error("--rescore needs the names of the models to score again")
        metric_images = 10_000 if args.metric_images is None else args.metric_images
        for name in names:
            try:
                found = rescore(name, profile=profile, metric_images=metric_images, folder=args.out, **overrides)
            except FileNotFoundError as err:
                parser.error(str(err))
            print(f"{name}: rescored, " + ", ".join(f"{k} {v}" for k, v in found.items()))
        code = 0
    else:
        with stop_on_signals():  # SIGTERM or Ctrl-C: save the unfinished run where it is, then stop
            try:
                code = _pretrain_all(names, profile, args, overrides)
            except TrainingStopped as err:  # stopped while training a model that this one starts from
                print(f"stopped before the model was built: {err}")
                code = EXIT_STOPPED
    if refresh_readme_table(args.out):   # a model shipped or was rescored
        print("README.md: the table of shipped models is updated")
    return code


def _pretrain_all(names, profile, args, overrides) -> int:
    from ..models import MODELS

    total = 0
    for name in names:
        if ck.RECIPES[name]["model"] not in MODELS:
            print(f"{name}: model {ck.RECIPES[name]['model']!r} is not in this course_lib; skipped")
            continue
        entry = pretrain_one(name, profile=profile, device=args.device,
                             metric_images=10_000 if args.metric_images is None else args.metric_images,
                             folder=args.out,
                             progress=not args.no_progress, resume=args.resume,
                             checkpoint_every=args.checkpoint_every, stop_at=args.stop_at,
                             time_limit=None if args.minutes is None else 60 * args.minutes,
                             log_every=args.log_every, keep_state=args.keep_state,
                             extend_from=args.extend_from, **overrides)
        if entry is None:   # stopped before its last step, saved: resume it later
            return EXIT_STOPPED
        total += entry["bytes"]
    manifest = ck.read_manifest(args.out)["checkpoints"]
    size = sum(e["bytes"] for e in manifest.values())
    print(f"shipped checkpoints: {len(manifest)} files, {size / 1e6:.2f} MB in all "
          f"(this run wrote {total / 1e6:.2f} MB) in {ck.checkpoint_dir(args.out)}")
    return 0
