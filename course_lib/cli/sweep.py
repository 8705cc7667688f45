"""Run a notebook over a grid of parameters, on this machine or on a Ray cluster.

Command line::

    python -m course_lib sweep 03_beta_vae -p BETA 1 4 16 -p SEED 0 1 2 --profile smoke
    python -m course_lib sweep 03_beta_vae -p BETA 1 4 --workers 2          # 2 at a time
    python -m course_lib sweep 03_beta_vae -p BETA 1 4 --backend ray --address auto

Every combination of the ``-p NAME VALUE...`` lists (values are Python literals, as for
``python -m course_lib run``) runs the notebook once through papermill with those parameters
(and ``PROFILE``). Under ``runs/sweeps/<name>/`` (name: ``--name``, default the notebook's
stem) each run gets a folder ``NAME-VALUE_NAME-VALUE/`` holding the executed notebook and
``result.json`` (status ``ok`` or ``failed`` with the error's last line, seconds, parameters,
the headline figures of :func:`course_lib.report.headline`). The sweep then gathers
``results.csv``, ``results.json`` (one row per run, one column per parameter and headline) and
``results.png`` (the first numeric headline against the first parameter).

A failed run is reported and does not stop the others (exit status 1 at the end). Running the
same sweep again skips the runs whose ``result.json`` says ``ok`` under the same completion key
(:func:`completion_key`: the profile, every parameter and the notebook's text) and runs the
others, e.g. every run after a change of ``--profile`` or of the notebook (it says so).
Every parameter must be one of the notebook's (its cell tagged ``parameters``), and the headline
names are recorded without the parameters' values (see :mod:`course_lib.report`), so that each
figure is one column of the table.

Backends:

- ``local`` (default): ``--workers`` worker processes on this machine (default 1: one run at a
  time; on a GPU machine one per GPU, ``CUDA_VISIBLE_DEVICES`` set per worker).
- ``ray``: one Ray task per run (``num_cpus=1``, ``--gpus-per-run`` GPUs). ``--address`` is
  passed to ``ray.init`` (``auto`` for the cluster this machine belongs to; none: a local Ray).
  The notebook's text travels with the task and the executed notebook comes back with the
  result, so the workers need only the course installed (``pip install 'course_lib[ray]'``),
  not a shared file system. Ray is an optional extra: ``pip install -e '.[ray]'``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import hashlib
import itertools
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from .. import profiles
from ..config import repo_root, runs_dir
from .run import (
    _NAME_RE,
    argument,
    check_folder,
    check_parameters,
    check_timeout,
    execute_notebook,
    find_notebooks,
    parse_value,
)

RESULT_FILE = "result.json"
BACKENDS = ("local", "ray")


# -- the grid --------------------------------------------------------------------------------
def grid(parameters: dict[str, list]) -> list[dict]:
    """Every combination of the parameter lists, the last parameter varying fastest.

    ``grid({"beta": [1, 4], "seed": [0, 1]})`` → 4 dicts ``{"beta": 1, "seed": 0}``, ...
    """
    for name, values in parameters.items():
        if not _NAME_RE.match(name):
            raise ValueError(f"parameter name {name!r} is not a Python identifier")
        if name == "PROFILE":
            raise ValueError("set the profile with --profile, not -p PROFILE")
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"parameter {name!r} needs at least one value")
        if len(set(map(repr, values))) != len(values):
            raise ValueError(f"parameter {name!r} repeats a value: {list(values)}")
    names = list(parameters)
    return [dict(zip(names, combo)) for combo in itertools.product(*parameters.values())]


def run_id(params: dict) -> str:
    """Folder name of one run: ``beta-4_seed-0`` (characters outside [A-Za-z0-9.+-] → ``_``)."""
    if not params:
        return "default"
    parts = [f"{k}-{v}" for k, v in params.items()]
    return re.sub(r"[^A-Za-z0-9.+=-]", "_", "_".join(parts)).strip("_") or "run"


def completion_key(profile: str, params: dict, notebook_sha256: str) -> str:
    """What decides a run's result: the profile, every parameter (its name and its value as
    Python writes it, so that 1, 1.0 and '1' differ) and the notebook's text (its sha256); a
    rerun skips a complete run only under the same key."""
    data = {"profile": profile, "parameters": {k: repr(v) for k, v in params.items()},
            "notebook_sha256": notebook_sha256}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _why_again(previous: dict, profile: str, params: dict, notebook_sha256: str) -> str:
    """Why a complete run in the same folder does not count for this sweep."""
    if previous.get("profile") != profile:
        return f"made under profile {previous.get('profile')}, not {profile}"
    if previous.get("notebook_sha256") not in (None, notebook_sha256):
        return "made with another version of the notebook"
    if "key" not in previous:
        return "made by an older course_lib, which did not record its completion key"
    return f"made with other parameters: {previous.get('parameters')}"


# -- checks of the command line ----------------------------------------------------------------
def check_name(name) -> str:
    """``name`` if it is a single plain folder name (the sweep's folder, made under --out)."""
    text = str(name)
    if text in ("", ".", "..") or "/" in text or "\\" in text or text != text.strip() \
            or Path(text).is_absolute():
        raise ValueError(f"expected a single folder name for the sweep (no '/', '..' or "
                         f"absolute path), got {text!r}")
    return text


def check_workers(value) -> int:
    """``value`` as the number of local runs at a time: a positive whole number."""
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if isinstance(value, bool) or number < 1:
        raise ValueError(f"expected a positive whole number of runs at a time for the workers, "
                         f"got {value!r}")
    return number


def check_gpus(value) -> float:
    """``value`` as the GPUs that each Ray task reserves: a number >= 0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise ValueError(f"expected a number >= 0 of GPUs per run, got {value!r}")
    return number


# -- one run (executes in a worker: a local process or a Ray task) ---------------------------
def run_task(task: dict) -> dict:
    """Execute one notebook run; never raises for a failure inside the notebook.

    ``task``: {"notebook_name", "notebook_text", "parameters", "timeout", "gpu"}. Returns the
    result dict (``status``, ``error``, ``seconds``, ``headlines``, ``host``) with the executed
    notebook's text under ``"executed"`` (None if papermill wrote nothing).
    """
    import platform

    logging.getLogger("papermill").setLevel(logging.ERROR)
    if task.get("gpu") is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(task["gpu"])
    with tempfile.TemporaryDirectory(prefix="course-sweep-") as tmp:
        tmp = Path(tmp)
        src = tmp / "in" / task["notebook_name"]
        out = tmp / "out" / task["notebook_name"]
        src.parent.mkdir()
        src.write_text(task["notebook_text"], encoding="utf-8")
        result = execute_notebook(src, out, dict(task["parameters"]), timeout=task.get("timeout"),
                                  progress=False)
        executed = out.read_text(encoding="utf-8") if out.exists() else None
    return {"status": result.status, "error": result.error, "seconds": result.seconds,
            "headlines": result.headlines, "host": platform.node(), "executed": executed}


# -- backends ----------------------------------------------------------------------------------
def _local(tasks, workers, on_done):
    if workers <= 1 or len(tasks) <= 1:
        for key, task in tasks:
            on_done(key, _safe(task))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    gpus = _gpu_count()
    for i, (_, task) in enumerate(tasks):
        if gpus:
            task["gpu"] = i % gpus
    with ProcessPoolExecutor(max_workers=workers,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_task, task): key for key, task in tasks}
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - the worker itself died
                result = _failure(exc)
            on_done(futures[future], result)


def _ray(tasks, address, gpus_per_run, on_done):
    try:
        import ray
    except ImportError as err:
        raise ImportError("the ray backend needs Ray: pip install -e '.[ray]'") from err
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    remote = ray.remote(num_cpus=1, num_gpus=gpus_per_run)(run_task)
    pending = {remote.remote(task): key for key, task in tasks}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            key = pending.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a task that crashed or was lost
                result = _failure(exc)
            on_done(key, result)


def _safe(task):
    try:
        return run_task(task)
    except Exception as exc:  # noqa: BLE001 - a failed task is reported in the summary, not raised
        return _failure(exc)


def _failure(exc):
    text = str(exc).strip().splitlines()
    return {"status": "failed", "error": f"{type(exc).__name__}: {text[-1] if text else ''}",
            "seconds": 0.0, "headlines": [], "host": None, "executed": None}


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a broken CUDA set-up counts as no GPU
        return 0


# -- the sweep -------------------------------------------------------------------------------
def run_sweep(notebook, parameters: dict[str, list], *, profile: str | None = None,
              name: str | None = None, out: Path | str | None = None, backend: str = "local",
              workers: int = 1, address: str | None = None, gpus_per_run: float = 0,
              timeout: float | None = None, root: Path | str | None = None, log=print) -> dict:
    """Run ``notebook`` for every combination of ``parameters``; see the module docstring.

    Returns the summary: {"name", "folder", "rows" (one dict per run), "failed", "skipped",
    "seconds", "csv", "json", "plot"}.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: expected one of {BACKENDS}")
    workers, gpus_per_run = check_workers(workers), check_gpus(gpus_per_run)
    timeout = check_timeout(timeout)
    profile = profiles.check_profile(profile) if profile else profiles.default_profile()
    root = Path(root) if root is not None else repo_root()
    path = find_notebooks([notebook], root)[0]
    name = check_name(name or path.stem)
    folder = check_folder((Path(out) if out is not None else runs_dir(root) / "sweeps") / name,
                          "sweep")
    combos = grid(parameters)
    check_parameters([path], parameters, log=log)
    folder.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8")
    notebook_sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    by_key = {run_id(p): p for p in combos}
    if len(by_key) != len(combos):
        raise ValueError("two combinations of the parameters share one folder name; use values "
                         "that read differently (e.g. not both 1 and '1')")
    keys = {key: completion_key(profile, p, notebook_sha256) for key, p in by_key.items()}
    started = time.perf_counter()

    results, tasks, skipped = {}, [], []
    for params in combos:
        key = run_id(params)
        previous = _read_result(folder / key / RESULT_FILE)
        if previous is not None and previous.get("status") == "ok":
            if previous.get("key") == keys[key]:
                results[key] = previous
                skipped.append(key)
                continue
            log(f"  {key}: the complete run there was "
                f"{_why_again(previous, profile, params, notebook_sha256)}: it runs again")
        tasks.append((key, {"notebook_name": path.name, "notebook_text": text,
                            "parameters": {"PROFILE": profile, **params}, "timeout": timeout}))
    log(f"sweep {name}: {len(combos)} runs of {path.name} (profile {profile}), "
        f"{len(skipped)} already complete, {len(tasks)} to run on {backend}"
        + (f" with {workers} workers" if backend == "local" else ""))

    def on_done(key, result):
        run_dir = folder / key
        run_dir.mkdir(parents=True, exist_ok=True)
        executed = result.pop("executed", None)
        if executed is not None:
            (run_dir / path.name).write_text(executed, encoding="utf-8")
        record = {"run": key, "parameters": by_key[key], "profile": profile,
                  "notebook": path.name, "notebook_sha256": notebook_sha256, "key": keys[key],
                  **result,
                  "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        (run_dir / RESULT_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        results[key] = record
        tail = f"ok in {record['seconds']:.1f} s" if record["status"] == "ok" else \
            f"FAILED: {record['error']}"
        log(f"  [{len(results)}/{len(combos)}] {key}: {tail}")

    if tasks:
        if backend == "local":
            _local(tasks, workers, on_done)
        else:
            _ray(tasks, address, gpus_per_run, on_done)
    rows = [_row(results[run_id(p)], p) for p in combos]
    seconds = time.perf_counter() - started
    csv_path, json_path = _write_table(folder, name, rows, parameters, profile, seconds)
    plot_path = _plot(folder, rows, list(parameters))
    failed = [r for r in rows if r["status"] != "ok"]
    return {"name": name, "folder": folder, "rows": rows, "failed": failed, "skipped": skipped,
            "seconds": seconds, "csv": csv_path, "json": json_path, "plot": plot_path}


def _read_result(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _row(record: dict, params: dict) -> dict:
    row = {"run": record["run"], **params, "status": record["status"],
           "seconds": record.get("seconds"), "error": record.get("error") or ""}
    for h in record.get("headlines", []):
        row[h["name"]] = h["value"]
    return row


def _columns(rows):
    columns = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    return columns


def _write_table(folder, name, rows, parameters, profile, seconds):
    columns = _columns(rows)
    csv_path, json_path = folder / "results.csv", folder / "results.json"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (json.dumps(v) if isinstance(v, (list, dict)) else v)
                             for k, v in row.items()})
    data = {"name": name, "profile": profile, "parameters": parameters,
            "seconds": round(seconds, 2), "failed": sum(r["status"] != "ok" for r in rows),
            "rows": rows}
    json_path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return csv_path, json_path


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _plot(folder, rows, param_names):
    """The first numeric headline (one that every run reported, if any) against the first
    parameter, one line per setting of the other parameters."""
    fixed = {"run", "status", "seconds", "error", *param_names}
    metrics = [c for c in _columns(rows) if c not in fixed
               and any(_is_number(r.get(c)) for r in rows)]
    ok = [r for r in rows if r["status"] == "ok"]
    shared = [c for c in metrics if all(_is_number(r.get(c)) for r in ok)]
    metrics = shared or metrics  # prefer a figure that every run reported
    if not metrics or not param_names:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    metric, xname = metrics[0], param_names[0]
    others = param_names[1:]
    groups: dict = {}
    for r in rows:
        if r["status"] == "ok" and _is_number(r.get(metric)):
            label = ", ".join(f"{k}={r[k]}" for k in others) or metric
            groups.setdefault(label, []).append((r[xname], r[metric]))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    numeric_x = all(_is_number(x) for pts in groups.values() for x, _ in pts)
    for label, pts in groups.items():
        xs = [x for x, _ in pts] if numeric_x else [str(x) for x, _ in pts]
        ax.plot(xs, [y for _, y in pts], "o-", label=label)
    ax.set_xlabel(xname)
    ax.set_ylabel(metric)
    if groups and len(groups) <= 12:
        ax.legend(fontsize=7)
    ax.set_title(f"{folder.name}: {metric}")
    fig.tight_layout()
    path = folder / "results.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv=None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description="Run a notebook for every combination of parameter values "
        "(papermill); results, a table and a plot under runs/sweeps/<name>/.")
    parser.add_argument("notebook", help="notebook path or name, e.g. 03_beta_vae")
    parser.add_argument("-p", "--parameter", nargs="+", action="append", default=[],
                        metavar="NAME VALUE", help="a parameter and its values, e.g. -p BETA 1 4 16")
    parser.add_argument("--profile", default=None,
                        help=f"one of {', '.join(profiles.PROFILES)} (default: "
                             f"${profiles.ENV_VAR}, else {profiles.DEFAULT_PROFILE})")
    parser.add_argument("--name", type=argument(check_name), default=None,
                        help="sweep name: a folder name under --out (default: the "
                             "notebook's stem)")
    parser.add_argument("--out", type=argument(check_folder), default=None,
                        help="folder of the sweeps (default: runs/sweeps/ in the repository)")
    parser.add_argument("--backend", choices=BACKENDS, default="local")
    parser.add_argument("--workers", type=argument(check_workers), default=1,
                        help="local backend: runs at a time (default 1)")
    parser.add_argument("--address", default=None,
                        help="ray backend: the cluster's address ('auto', 'ray://host:10001'); "
                             "default: start Ray on this machine")
    parser.add_argument("--gpus-per-run", type=argument(check_gpus), default=0,
                        help="ray backend: GPUs each run reserves (default 0)")
    parser.add_argument("--timeout", type=argument(check_timeout), default=None,
                        help="whole seconds allowed per cell (default: no limit)")
    args = parser.parse_args(argv)
    parameters = {}
    for item in args.parameter:
        if len(item) < 2:
            raise ValueError(f"-p {item[0]} needs at least one value, e.g. -p {item[0]} 1 4")
        if item[0] in parameters:
            raise ValueError(f"parameter {item[0]!r} is given twice")
        parameters[item[0]] = [parse_value(v) for v in item[1:]]
    logging.getLogger("papermill").setLevel(logging.ERROR)
    summary = run_sweep(args.notebook, parameters, profile=args.profile, name=args.name,
                        out=args.out, backend=args.backend, workers=args.workers,
                        address=args.address, gpus_per_run=args.gpus_per_run,
                        timeout=args.timeout)
    rows = summary["rows"]
    print()
    print(f"{len(rows)} runs, {len(summary['failed'])} failed, {len(summary['skipped'])} "
          f"skipped (already complete); {summary['seconds']:.1f} s")
    for row in rows:
        extra = {k: v for k, v in row.items() if k not in ("run", "status", "seconds", "error")}
        print(f"  {row['run']}: {row['status']} {extra}" + (f" {row['error']}" if row["error"] else ""))
    print(f"Table: {summary['csv']} and {summary['json'].name}"
          + (f"; plot: {summary['plot'].name}" if summary["plot"] else ""))
    return 0 if not summary["failed"] else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
