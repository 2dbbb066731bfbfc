"""Kill a training process with SIGKILL mid-run, resume it, and compare with an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

# runs the CLI after optional imports (e.g. a module that registers a test task)
_PROGRAM = "import sys, importlib; [importlib.import_module(m) for m in sys.argv[1].split(',') if m]; " \
           "from unetkit.cli import main; sys.exit(main(sys.argv[2:]))"


def train_cmd(config: Path | None, resume: Path | None = None, *, imports: str = "") -> list[str]:
    """``unetkit train -c CONFIG`` or ``unetkit train --resume RUN`` in a fresh interpreter."""
    args = ["--resume", str(resume)] if resume else ["-c", str(config)]
    return [sys.executable, "-c", _PROGRAM, imports, "train", *args]


def _env(extra_path: Path | None) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), *filter(None, [env.get("PYTHONPATH")])])
    return env


def kill_and_resume(cfg: dict, tmp_path: Path, *, kill_after: int, imports: str = "",
                    extra_path: Path | None = None) -> tuple[Path, Path]:
    """Train ``cfg`` twice into ``tmp_path/ref`` and ``tmp_path/killed``; SIGKILL the second once
    its ``last.pt`` is at step >= ``kill_after``, resume it to the end. Returns the two run folders.

    Asserts that the kill happened before the end and that both runs finished.
    """
    env = _env(extra_path)
    for name in ("ref", "killed"):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({**cfg, "out": str(tmp_path / name)}))
    ref = subprocess.run(train_cmd(tmp_path / "ref.yaml", imports=imports), env=env, capture_output=True, text=True,
                         timeout=300)
    assert ref.returncode == 0, ref.stderr
    proc = subprocess.Popen(train_cmd(tmp_path / "killed.yaml", imports=imports), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = tmp_path / "killed" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    killed_at = None
    while time.monotonic() < deadline and proc.poll() is None:
        if last.is_file():
            try:
                step = torch.load(last, weights_only=True)["step"]
            except Exception:  # noqa: BLE001 -- being replaced right now; look again
                step = -1
            if step >= kill_after:
                proc.send_signal(signal.SIGKILL)
                killed_at = step
                break
        time.sleep(0.05)
    proc.wait(timeout=60)
    iterations = cfg["training"]["iterations"]
    assert killed_at is not None and killed_at < iterations, "the process finished before it could be killed"
    assert proc.returncode == -signal.SIGKILL
    assert torch.load(last, weights_only=True)["step"] >= killed_at  # the checkpoint left behind is complete
    resumed = subprocess.run(train_cmd(None, tmp_path / "killed", imports=imports), env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert not list((tmp_path / "killed" / "checkpoints").glob(".*.tmp"))  # interrupted writes are cleaned
    return tmp_path / "ref", tmp_path / "killed"


def assert_identical_tensors(a: object, b: object, where: str = "") -> None:
    """Nested dicts / lists of tensors and plain values are equal bitwise."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys {sorted(a)} vs {sorted(b)}"
        for k in a:
            assert_identical_tensors(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} vs {b!r}"


def assert_same_run(ref: Path, other: Path) -> None:
    """Weights, optimizer state, task state and the metrics log of two run folders are identical."""
    a = torch.load(ref / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(other / "checkpoints" / "last.pt", weights_only=True)
    for key in ("model", "optimizer", "task", "step"):
        assert_identical_tensors(a.get(key), b.get(key), key)
    log_a = [json.loads(x) for x in (ref / "metrics.jsonl").read_text().splitlines()]
    log_b = [json.loads(x) for x in (other / "metrics.jsonl").read_text().splitlines()]
    assert_identical_tensors(log_a, log_b, "metrics.jsonl")
