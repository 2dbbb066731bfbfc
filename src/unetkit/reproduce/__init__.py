"""Each paper's key experiment, sized for a CPU, writing a report whose numbers come from the run.

An experiment module has a ``run(out, *, budget, verbose)`` function and ``OUTPUTS``, the names it
writes into ``out``; :func:`run_into` runs it so that an earlier report is never lost: it is
refused unless ``overwrite``, and even then replaced only once the new report is complete.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unetkit.errors import InputError

EXPERIMENTS = {"shift": "unetkit.reproduce.shift", "spoco": "unetkit.reproduce.spoco",
               "scale": "unetkit.reproduce.scale", "hpunet": "unetkit.reproduce.hpunet"}


def get_experiment(name: str) -> Callable[..., dict[str, Any]]:
    """The ``run`` function of an experiment; ``KeyError`` lists the known names."""
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; available: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name]).run  # type: ignore[no-any-return]


def run_into(name: str, out: str | Path, *, overwrite: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Run experiment ``name`` and put its report into ``out``; returns the experiment's results.

    The report is built in a hidden temporary folder next to ``out`` and its files are moved into
    ``out`` only when the experiment has finished. Files of an earlier report in ``out`` (the
    experiment's ``OUTPUTS``) are refused with :class:`InputError` unless ``overwrite``; other
    files in ``out`` are never touched.
    """
    from unetkit.utils.atomic import atomic_target, remove_stale_temporaries, temporary_sibling

    run = get_experiment(name)
    outputs = tuple(getattr(importlib.import_module(EXPERIMENTS[name]), "OUTPUTS", ()))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder; choose another --out")
    existing = [n for n in outputs if (out / n).exists()]
    if existing and not overwrite:
        raise InputError(f"--out {out} already holds a report ({', '.join(existing)}); pass --overwrite to replace it "
                         "once the new one is complete, or choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out.parent, out.name)  # left by a killed earlier run
    scratch = temporary_sibling(out)
    try:
        results = run(scratch, **kwargs)
        out.mkdir(exist_ok=True)
        for entry in sorted(scratch.iterdir()):
            with atomic_target(out / entry.name) as tmp:
                os.replace(entry, tmp)
    finally:
        if scratch.exists():
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
    return results
