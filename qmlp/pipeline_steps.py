"""Stop and resume a compile: the steps of ``qmlp.hwgen.pipeline`` wrapped so that each saves
its IR (``OUT/intermediate/<NN>_<step>.json``) and the build's progress
(``OUT/intermediate/progress.json``: steps done, options), cut after ``--stop-after STEP``, or
continued from a stopped OUT (``--start-from OUT``). The steps themselves are untouched."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .hwgen.pipeline import BuildState, CompileOptions, Step, build_steps, step_board
from .ir import load, replace, save, verify

__all__ = ["INTERMEDIATE", "PROGRESS", "step_key", "recorded", "resume"]

INTERMEDIATE = "intermediate"
PROGRESS = "progress.json"


def step_key(name: str) -> str:
    """A step's name as the options spell it: ``write IR`` -> ``write-ir``."""
    return name.lower().replace(" ", "-")


def _options_json(options: CompileOptions) -> dict[str, Any]:
    data = asdict(options)
    for key in ("model", "out", "folding"):
        if data[key] is not None:
            data[key] = str(Path(data[key]).resolve())
    return data


def _record(state: BuildState, name: str, changed: bool) -> None:
    folder = state.work_dir / INTERMEDIATE
    folder.mkdir(exist_ok=True)
    progress_path = folder / PROGRESS
    progress = json.loads(progress_path.read_text()) if progress_path.is_file() else {"completed": []}
    progress["completed"].append(step_key(name))
    progress["options"] = _options_json(state.options)
    if changed and state.df is not None:
        save(state.df, folder / f"{len(progress['completed']):02d}_{step_key(name)}.json")
    progress_path.write_text(json.dumps(progress, indent=2) + "\n")


def recorded(options: CompileOptions, steps: list[tuple[str, Step]] | None,
             stop_after: str | None) -> list[tuple[str, Step]]:
    """``steps`` (default: the full build) with every step recording itself, cut after
    ``stop_after`` (ConfigError naming the choices when it is not one of them)."""
    steps = build_steps(options) if steps is None else steps
    if stop_after is not None:
        keys = [step_key(name) for name, _ in steps]
        choices = [k for k in keys if k not in ("board", "resume")]
        if step_key(stop_after) not in choices:
            raise ConfigError(f"--stop-after {stop_after}: not a step of this build; choose one of {', '.join(choices)}")
        steps = steps[: keys.index(step_key(stop_after)) + 1]

    def wrap(name: str, step: Step) -> Step:
        def run(state: BuildState) -> BuildState:
            new = step(state)
            if name != "resume":
                _record(new, name, changed=new.df is not state.df)
            return new
        run.__doc__ = step.__doc__
        return run

    return [(name, wrap(name, step)) for name, step in steps]


def resume(start_from: Path, out: Path | None) -> tuple[CompileOptions, list[tuple[str, Step]]]:
    """The options and remaining steps of the stopped build in ``start_from``: the board step,
    a step restoring OUT's files and its latest saved IR, then every step not done yet."""
    progress_path = start_from / INTERMEDIATE / PROGRESS
    if not progress_path.is_file():
        raise ConfigError(f"--start-from {start_from}: no {INTERMEDIATE}/{PROGRESS}; pass the OUT of a compile run "
                          "with --stop-after")
    progress = json.loads(progress_path.read_text())
    saved = progress["options"]
    names = {f.name for f in fields(CompileOptions)}
    values = {k: (Path(v) if k in ("model", "out", "folding") and v is not None else v)
              for k, v in saved.items() if k in names}
    options = CompileOptions(**{**values, "out": out if out is not None else start_from})
    irs = sorted((start_from / INTERMEDIATE).glob("[0-9][0-9]_*.json"))
    done = list(progress["completed"])

    def step_resume(state: BuildState) -> BuildState:
        """Copy the stopped OUT into the new build and continue from its latest IR."""
        shutil.copytree(start_from, state.work_dir, dirs_exist_ok=True)
        if not irs:
            return replace(state, notes=(f"nothing to restore from {start_from}",))
        df = load(irs[-1])
        verify(df)
        return replace(state, df=df, notes=(f"{irs[-1].name} from {start_from} (done: {', '.join(done)})",))

    remaining = [(name, step) for name, step in build_steps(options) if step_key(name) not in done]
    if not remaining:
        raise ConfigError(f"--start-from {start_from}: every step is done already")
    return options, [("board", step_board), ("resume", step_resume), *[s for s in remaining if s[0] != "board"]]
