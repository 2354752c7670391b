"""The driver of ``qmlp explore``: expand the spec, skip what the store already holds, hand the
rest to Ray, write every result the moment it arrives, then check the Pareto front and report.

Phases, in order (each resumes from the store):

1. successive halving (``search.method: halving``): every rung but the last trains the surviving
   configurations for fewer epochs; the best ``1/eta`` by validation accuracy go on, the rest are
   stored as ``pruned`` with the accuracy and the cut that stopped them;
2. trials: train, export, lower, verify, accuracy, estimate at every target (``trial.run_trial``);
3. designs: targets a finished trial has not been estimated at yet (a spec that gained a board);
4. front: per board, the Pareto designs (most accurate first, up to ``front.max_designs``) get a
   full compile folder, Yosys and the RTL check (``trial.check_design``, 4 GB requested);
5. report (``report.write_report``): summary, plots, and the chosen design's folder copied to
   ``OUT/best/<board>/``.
"""

from __future__ import annotations

import io
import json
import math
import sys
import tarfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..errors import ConfigError
from . import engine, trial
from .files import scratch, swap_in
from .pareto import fronts_by_board
from .spec import ExploreSpec, Target, TrialConfig, fail, fps_label, read_spec
from .store import STORE_NAME, Store

__all__ = ["SweepOptions", "run_sweep", "default_out", "Progress"]


@dataclass(frozen=True)
class SweepOptions:
    spec: Path
    out: Path | None = None  # default build/explore/<spec stem>
    address: str | None = None  # None: a local Ray for this command
    cpus: int | None = None  # local Ray only; default: the machine's cores
    retry_failed: bool = False
    command: str = ""


def default_out(spec_path: Path) -> Path:
    return Path("build") / "explore" / spec_path.stem


class Progress:
    """The live line: trials done / running / failed / pruned and the best design so far.
    On a terminal it rewrites one line; otherwise (a log file, a pipe) it prints a line per event."""

    def __init__(self, total: int, log: Callable[[str], None], tty: bool) -> None:
        self.total, self.log, self.tty = total, log, tty
        self.done = self.failed = self.pruned = self.running = self.skipped = 0
        self.best = ""
        self._shown = ""

    def text(self) -> str:
        parts = [f"{self.done}/{self.total} trials done", f"{self.running} running", f"{self.failed} failed"]
        if self.pruned:
            parts.append(f"{self.pruned} pruned")
        return "explore: " + ", ".join(parts) + (f"; best {self.best}" if self.best else "")

    def show(self, event: str = "") -> None:
        line = self.text()
        if self.tty:
            sys.stderr.write("\r\033[K" + (event + "\n\033[K" if event else "") + line)
            sys.stderr.flush()
        elif event or line != self._shown:
            self.log(f"{event}\n{line}" if event else line)
        self._shown = line

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


class _Driver:
    def __init__(self, spec: ExploreSpec, store: Store, out: Path, cluster: engine.Cluster, progress: Progress,
                 retry_failed: bool) -> None:
        self.spec, self.store, self.out, self.cluster, self.progress = spec, store, out, cluster, progress
        self.retry = retry_failed
        self.ran = 0  # trials run (not skipped) by this invocation

    # --- helpers ----------------------------------------------------------------------------------

    def _finished(self, row: dict[str, Any] | None) -> bool:
        return row is not None and (row["status"] != "failed" or not self.retry)

    def _collect(self, tasks: dict[Any, Any], on_result: Callable[[Any, Any], None]) -> None:
        """Wait for ``tasks`` (ObjectRef -> item); ``on_result(item, result)`` for each."""
        slots = engine.capacity(self.cluster, self.spec.resources.trial_cpus)
        self.progress.running = min(len(tasks), slots)
        self.progress.show()

        def tick(pending: int) -> None:
            self.progress.running = min(pending, slots)
            self.progress.show()

        with closing(engine.as_completed(tasks, tick=tick)) as results:
            for item, result, pending in results:
                self.progress.running = min(pending, slots)
                on_result(item, result)

    def _trial_submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        res = self.spec.resources
        return engine.submit(fn, *args, cpus=res.trial_cpus, memory_gb=res.trial_memory_gb)

    def update_best(self) -> None:
        designs = self.store.joined_designs()
        if designs:
            top = max(designs, key=lambda d: (d["accuracy"], -d["lut"]))
            self.progress.best = (f"{top['accuracy']:.3%} {top['weights']} a{top['acts']} {top['hidden']} "
                                  f"{top['board']} {fps_label(top['target_fps'])} ~{top['lut']:,} LUT")

    # --- phase 1: successive halving --------------------------------------------------------------

    def halving(self, candidates: tuple[TrialConfig, ...]) -> tuple[TrialConfig, ...]:
        """Run the rungs before the last; return the configurations that reach the last rung."""
        epochs = self.spec.rung_epochs()
        survivors = candidates
        for rung, rung_epochs in enumerate(epochs[:-1]):
            stored, trials = self.store.by_key("rungs"), self.store.by_key("trials")
            todo = [c for c in survivors if not self._finished(stored.get(c.with_epochs(rung_epochs).key))
                    and not self._finished(trials.get(c.key))]
            tasks = {self._trial_submit(trial.train_rung, c.with_epochs(rung_epochs)): c for c in todo}

            def record(cfg: TrialConfig, result: Any, rung: int = rung, n: int = rung_epochs) -> None:
                row = result if isinstance(result, dict) else {
                    "key": cfg.with_epochs(n).key, "status": "failed", "reason": f"worker: {trial.one_line(result)}"}
                self.store.write("rungs", [{**row, "trial": cfg.key, "rung": rung, "epochs": n}])
                self.progress.show(f"  rung {rung + 1}/{len(epochs)} ({n} epochs) {cfg.label}: "
                                   + (f"validation {row['val_accuracy']:.3%}" if row["status"] == "done"
                                      else f"FAILED {row['reason']}"))

            self._collect(tasks, record)
            survivors = self._cut(survivors, rung, rung_epochs, len(epochs))
        return survivors

    def _cut(self, survivors: tuple[TrialConfig, ...], rung: int, epochs: int, rungs: int) -> tuple[TrialConfig, ...]:
        """Keep the best ceil(n / eta) by validation accuracy (ties by key); store the rest as pruned."""
        stored, trials = self.store.by_key("rungs"), self.store.by_key("trials")

        def score(cfg: TrialConfig) -> float:
            row = stored.get(cfg.with_epochs(epochs).key)
            return row["val_accuracy"] if row and row["status"] == "done" else -1.0

        ranked = sorted(survivors, key=lambda c: (-score(c), c.key))
        keep = math.ceil(len(ranked) / self.spec.search.eta)
        cut = score(ranked[keep - 1])
        pruned = []
        for cfg in ranked[keep:]:
            if trials.get(cfg.key, {}).get("status") in ("done", "pruned"):
                continue
            row = stored.get(cfg.with_epochs(epochs).key) or {}
            reason = (f"successive halving: rung {rung + 1}/{rungs} ({epochs} epochs) failed: {row.get('reason')}"
                      if row.get("status") == "failed" else
                      f"successive halving: rung {rung + 1}/{rungs} ({epochs} epochs) validation accuracy "
                      f"{score(cfg):.4%}, below the cut {cut:.4%}")
            pruned.append({**self._trial_columns(cfg), "status": "pruned", "reason": reason,
                           "val_accuracy": row.get("val_accuracy")})
        if pruned:
            self.store.write("trials", pruned)
        self.progress.pruned = sum(1 for r in self.store.rows("trials") if r["status"] == "pruned")
        self.progress.show(f"  rung {rung + 1}/{rungs}: {keep} of {len(ranked)} go on (cut at {cut:.3%})")
        return tuple(sorted(ranked[:keep], key=lambda c: survivors.index(c)))

    # --- phase 2: trials ----------------------------------------------------------------------------

    @staticmethod
    def _trial_columns(cfg: TrialConfig) -> dict[str, Any]:
        return {"key": cfg.key, "dataset": cfg.dataset, "weights": cfg.weights, "acts": cfg.acts,
                "input_bits": cfg.input_bits, "hidden": cfg.topology, "epochs": cfg.epochs,
                "config": json.dumps(cfg.to_json(), sort_keys=True)}

    def trials(self, configs: tuple[TrialConfig, ...]) -> None:
        stored = self.store.by_key("trials")
        todo = [c for c in configs if not self._finished(stored.get(c.key))]
        tasks = {self._trial_submit(trial.run_trial, c, self.spec.targets, self.spec.verify_samples): c for c in todo}
        self._collect(tasks, self._record_trial)

    def _record_trial(self, cfg: TrialConfig, result: Any) -> None:
        """Files first (a temporary folder renamed into place), then one transaction for the
        trial and its designs: a row in the store always has its files."""
        if not isinstance(result, dict):  # the worker died (out of memory, killed): Ray's error
            result = {"trial": {"key": cfg.key, "status": "failed", "reason": f"worker: {trial.one_line(result)}"},
                      "designs": [], "files": {}}
        row = {**self._trial_columns(cfg), **result["trial"]}
        if result["files"]:
            self._write_folder(self.out / "trials" / cfg.key, result["files"])
        self.store.write("trials", [row], also=[("designs", d) for d in result["designs"]])
        self.ran += 1
        if row["status"] == "done":
            self.progress.done += 1
            self.update_best()
            fits = sum(1 for d in result["designs"] if d["status"] == "done")
            event = (f"  done   {cfg.label}: accuracy {row['accuracy']:.3%}, {fits}/{len(result['designs'])} "
                     f"designs fit ({row['seconds']:.0f} s)")
        else:
            self.progress.failed += 1
            event = f"  FAILED {cfg.label}: {row['reason']}"
        self.progress.show(event)

    @staticmethod
    def _write_folder(folder: Path, files: dict[str, bytes]) -> None:
        tmp = scratch(folder)
        tmp.mkdir()
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        swap_in(tmp, folder)

    # --- phase 3: designs for targets added after the trial ran -----------------------------------

    def designs(self, configs: tuple[TrialConfig, ...]) -> None:
        trials, designs = self.store.by_key("trials"), self.store.by_key("designs")
        tasks = {}
        for cfg in configs:
            if trials.get(cfg.key, {}).get("status") != "done":
                continue
            missing = tuple(t for t in self.spec.targets if not self._finished(designs.get(t.key(cfg.key))))
            model = self.out / "trials" / cfg.key / "model.onnx"
            if missing and model.is_file():
                tasks[self._trial_submit(trial.estimate_model, model.read_bytes(), cfg.key, missing)] = (cfg, missing)

        def record(item: tuple[TrialConfig, tuple[Target, ...]], result: Any) -> None:
            cfg, missing = item
            rows = result if isinstance(result, list) else [
                {"key": t.key(cfg.key), "trial": cfg.key, "board": t.board, "target_fps": str(t.fps),
                 "status": "failed", "reason": f"worker: {trial.one_line(result)}"} for t in missing]
            self.store.write("designs", rows)
            self.progress.show(f"  estimated {cfg.label} at {', '.join(t.label for t in missing)}")

        self._collect(tasks, record)

    # --- phase 4: Yosys and the RTL check on the front -------------------------------------------

    def front(self) -> None:
        spec, targets = self.spec, {}
        for config in spec.grid():
            for target in spec.targets:
                targets[target.key(config.key)] = target
        tasks = {}
        for board, front in fronts_by_board(self.store.joined_designs()).items():
            ranked = sorted(front, key=lambda d: (-d["accuracy"], d["lut"], d["key"]))[:spec.front.max_designs]
            for design in ranked:
                done = design["check_status"] is not None and (design["check_status"] == "done" or not self.retry)
                model = self.out / "trials" / design["trial"] / "model.onnx"
                if done or design["key"] not in targets or not model.is_file():
                    continue
                ref = engine.submit(trial.check_design, model.read_bytes(), targets[design["key"]], design["key"],
                                    spec.front, cpus=spec.resources.trial_cpus, memory_gb=spec.resources.front_memory_gb)
                tasks[ref] = design
        if tasks:
            self.progress.show(f"  Pareto front: compiling and checking {len(tasks)} design(s) "
                               f"(Yosys: {spec.front.synth}, RTL: {spec.front.rtl})")
        self._collect(tasks, self._record_check)

    def _record_check(self, design: dict[str, Any], result: Any) -> None:
        if not isinstance(result, dict):
            result = {"row": {"key": design["key"], "check_status": "failed",
                              "check_reason": f"worker: {trial.one_line(result)}"}, "tar": b""}
        row = dict(result["row"])
        if result["tar"]:
            folder = self.out / "designs" / design["key"]
            tmp = scratch(folder)
            with tarfile.open(fileobj=io.BytesIO(result["tar"]), mode="r:gz") as archive:
                archive.extractall(tmp, filter="data")  # "data": no links out, no devices, no absolute paths
            swap_in(tmp, folder)
            row["folder"] = folder.relative_to(self.out).as_posix()
        self.store.write("designs", [row])
        what = "ok" if row["check_status"] == "done" else f"FAILED {row['check_reason']}"
        lut = f", Yosys {row['synth_lut']:,} LUT" if row.get("synth_lut") is not None else ""
        rtl = (f", RTL {'==' if row['rtl_ok'] else '!='} simulator on {row['rtl_samples']} vectors"
               if row.get("rtl_ok") is not None else "")
        self.progress.show(f"  checked {design['weights']} a{design['acts']} {design['hidden']} {design['board']} "
                           f"{fps_label(design['target_fps'])}: {what}{lut}{rtl} ({row['check_seconds']:.0f} s)")

def _prepare_out(out: Path) -> None:
    """OUT must be new, empty, or a folder this command wrote (it holds explore.sqlite)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"-o {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / STORE_NAME).is_file():
        raise ConfigError(f"-o {out}: not empty and holds no {STORE_NAME}; give a new or empty folder "
                          "(qmlp explore only resumes its own output folders)")
    out.mkdir(parents=True, exist_ok=True)


def _check_same_data(store: Store, spec: ExploreSpec, out: Path) -> None:
    last = store.last_run()
    if last is None or not last["spec"]:
        return
    before = json.loads(last["spec"])["base"]
    if (before["dataset"], before["data_id"]) != (spec.base.dataset, spec.base.data_id):
        raise ConfigError(f"-o {out}: holds a sweep on dataset {before['dataset']!r} (other data than this spec's); "
                          "give this spec its own output folder")


def _check_fits_cluster(spec: ExploreSpec, cluster: engine.Cluster) -> None:
    """A task asking for more than the cluster has would wait in Ray's queue for ever: refuse it."""
    res = spec.resources
    for field, wanted, have, unit in (("trial_cpus", res.trial_cpus, cluster.cpus, "CPUs"),
                                      ("trial_memory_gb", res.trial_memory_gb, cluster.memory_gb, "GB"),
                                      ("front_memory_gb", res.front_memory_gb, cluster.memory_gb, "GB")):
        if wanted > have:
            raise fail(f"resources.{field}", f"{wanted:g} {unit} per task, but the Ray cluster offers {have:.1f} "
                       f"{unit} for tasks; lower it or add resources", spec.source)


def run_sweep(options: SweepOptions, *, log: Callable[[str], None] = print, tty: bool | None = None) -> Path:
    """The whole ``qmlp explore SPEC``; returns the output folder. KeyboardInterrupt propagates
    after the pending Ray tasks are cancelled; the store then holds every finished result."""
    from .report import PLOTS, write_report

    spec = read_spec(options.spec)
    out = options.out or default_out(options.spec)
    _prepare_out(out)
    configs = spec.trials()
    started = time.monotonic()
    with Store(out / STORE_NAME) as store:
        _check_same_data(store, spec, out)
        run_id = store.start_run({"spec": json.dumps(spec.to_json()), "spec_path": str(options.spec),
                                  "command": options.command, "qmlp_version": __version__})
        status, driver = "interrupted", None
        try:
            with engine.ray_cluster(options.address, options.cpus) as cluster:
                _check_fits_cluster(spec, cluster)
                log(f"explore: {len(configs)} configurations of {len(spec.grid())} ({spec.search.method}), "
                    f"{len(spec.targets)} target(s); {cluster.describe()}; results in {out / STORE_NAME}")
                progress = Progress(len(configs), log, sys.stderr.isatty() if tty is None else tty)
                stored = store.by_key("trials")
                progress.done = sum(1 for c in configs if stored.get(c.key, {}).get("status") == "done")
                progress.failed = sum(1 for c in configs if stored.get(c.key, {}).get("status") == "failed"
                                      and not options.retry_failed)
                progress.pruned = sum(1 for c in configs if stored.get(c.key, {}).get("status") == "pruned")
                if progress.done or progress.failed or progress.pruned:
                    log(f"explore: resuming: {progress.done + progress.failed + progress.pruned} trial(s) "
                        "already in the store are skipped")
                driver = _Driver(spec, store, out, cluster, progress, options.retry_failed)
                driver.update_best()
                final = driver.halving(configs) if spec.rung_epochs() else configs
                driver.trials(final)
                driver.designs(final)
                driver.front()
                progress.running = 0
                progress.show()
                progress.close()
            status = "complete"
        except BaseException as error:
            status = "interrupted" if isinstance(error, KeyboardInterrupt) else "stopped by an error"
            raise
        finally:
            store.end_run(run_id, status, time.monotonic() - started, driver.ran if driver else 0)
            if status != "complete" and driver is not None:  # (not for a spec refused before any trial)
                log(f"explore: {status}; every finished trial is in {out / STORE_NAME}: "
                    "run the same command again to resume")
    files = write_report(out)
    for folder in files[len(PLOTS) + 1:]:
        log(f"explore: best design for {folder.name}: {folder}/")
    log(f"explore: wrote {', '.join(str(f) for f in files[:len(PLOTS) + 1])} in {time.monotonic() - started:.0f} s")
    return out
