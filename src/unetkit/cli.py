"""The ``unetkit`` command: ``train``, ``predict``, ``segment``, ``evaluate``, ``demo``.

Errors caused by input (missing files, bad axes or sizes, unknown config keys) are printed as
one ``unetkit: error: ...`` line, without a traceback, and the exit status is 2. Other
file-system errors (permission denied, disk full, a file where a folder is needed) are printed
the same way with exit status 1. Warnings are one ``unetkit: warning: ...`` line each. Ctrl-C
and SIGTERM stop with a line saying what was kept (exit status 130 and 143).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from unetkit import __version__
from unetkit.errors import InputError, MissingFileError, UnetkitError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="unetkit", description="U-Net segmentation: train, predict, evaluate.")
    p.add_argument("--version", action="version", version=f"unetkit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a model from a YAML config", description=(
        "Train from a YAML config; key=value arguments override config entries (e.g. training.iterations=500)."))
    t.add_argument("-c", "--config", type=Path, help="YAML config (see configs/)")
    t.add_argument("--resume", type=Path, metavar="RUN", help="continue the run in this folder from its last checkpoint")
    t.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")

    pr = sub.add_parser("predict", help="segment images with a trained run")
    pr.add_argument("-m", "--model", type=Path, required=True, metavar="RUN", help="run folder written by train")
    pr.add_argument("-i", "--input", required=True, help="image file (file.h5:key for HDF5/Zarr) or folder")
    pr.add_argument("-o", "--output", required=True, help="output file, or folder when the input is a folder")
    pr.add_argument("--axes", help="axes of the input files, e.g. YX, CYX, ZYX (default: inferred)")
    pr.add_argument("--checkpoint", choices=["best", "last"], default="best")
    pr.add_argument("--output-type", choices=["labels", "probabilities", "logits"], default=None,
                    help="labels (default), probabilities or logits; with --scheduler the default is logits "
                         "(raw network outputs, C[Z]YX float32), and labels / probabilities add a blockwise pass")
    pr.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    pr.add_argument("--overwrite", action="store_true",
                    help="replace existing output files (FILE.h5:KEY / STORE.zarr:KEY: only that dataset)")
    pr.add_argument("--tile-shape", type=_shape, metavar="N[,N...]",
                    help="network input tile, e.g. 252,252 (default: the largest that fits --memory-budget); "
                         "an invalid one is refused with the nearest valid sizes, one whose estimated memory "
                         "exceeds --memory-budget or the available memory with the estimate")
    pr.add_argument("--memory-budget", type=float, default=1024, metavar="MiB",
                    help="activation memory per batch of tiles (default 1024 MiB)")
    pr.add_argument("--batch-size", type=int, default=1, help="tiles per forward pass (default 1)")
    pr.add_argument("--scheduler", metavar="ADDRESS|local", default=None,
                    help="predict with dask.distributed: 'local' starts a LocalCluster of --workers processes, "
                         "tcp://host:port uses a running scheduler. Needs a Zarr/HDF5 input stored in [C][Z]YX "
                         "order and a .zarr/.ome.zarr output; the result equals the in-process one bitwise. Workers run "
                         "on the CPU unless --device cuda is given")
    pr.add_argument("--workers", type=int, default=None, metavar="N",
                    help="worker processes of --scheduler local (default 2; one torch thread each)")

    sg = sub.add_parser("segment", help="instance labels from an embedding run (predict embeddings, then cluster)",
                        description=(
        "Predict embeddings of one image with the exact tiling of a run of task embedding or spoco, then cluster "
        "them into instance labels (uint16, uint32 above 65535 objects). Embeddings larger than --memory-budget are "
        "kept in a temporary file beside the output and clustered in overlapping blocks whose labels are merged "
        "across block borders. With --scheduler the networks run as Dask tasks (as `predict --scheduler`) and "
        "blockwise clustering runs one Dask task per block, each reading its block from temporary Zarr stores "
        "beside the output; whole-image clustering (embeddings within --cluster-budget) always runs in this "
        "process."))
    sg.add_argument("-m", "--model", type=Path, required=True, metavar="RUN", help="run folder written by train")
    sg.add_argument("-i", "--input", required=True, help="image file (file.h5:key for HDF5/Zarr)")
    sg.add_argument("-o", "--output", required=True, help="label file to write (file.h5:key for HDF5/Zarr)")
    sg.add_argument("--method", default="mws", choices=["mws", "mean-shift", "hdbscan", "consistency"],
                    help="mws: mutex watershed (delta_d of the run, default); mean-shift (the run's bandwidth); "
                         "hdbscan; consistency: SPOCO's consistency clustering (spoco runs: needs the momentum "
                         "network g of the checkpoint)")
    fg = sg.add_mutually_exclusive_group()
    fg.add_argument("--mask", metavar="FG", help="foreground mask: a label image of the image's spatial shape, "
                                                "nonzero = foreground; other pixels get 0")
    fg.add_argument("--mask-run", type=Path, metavar="RUN",
                    help="foreground mask predicted by a run of task semantic on the same image (foreground = "
                         "predicted class > 0; its own normalisation and default tiling); other pixels get 0")
    sg.add_argument("--axes", help="axes of the input file, e.g. YX, CYX, ZYX (default: inferred)")
    sg.add_argument("--checkpoint", choices=["best", "last"], default="best",
                    help="checkpoint of the run, and of --mask-run (default best)")
    sg.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    sg.add_argument("--memory-budget", type=float, default=1024, metavar="MiB",
                    help="activation memory per tile (default 1024 MiB), and the default --cluster-budget")
    sg.add_argument("--cluster-budget", type=float, default=None, metavar="MiB",
                    help="largest embeddings clustered at once (default: --memory-budget); larger ones are "
                         "clustered blockwise, in blocks whose clustering needs about this much")
    sg.add_argument("--overlap", type=int, default=None, metavar="PX",
                    help="blockwise clustering: overlap of neighbouring blocks in pixels (default 32)")
    sg.add_argument("--scheduler", default=None, metavar="local|ADDRESS",
                    help="run on dask.distributed: 'local' (a LocalCluster of --workers processes) or a scheduler "
                         "address such as tcp://host:8786; the input must be a Zarr or HDF5 image in [C][Z]YX "
                         "order and the workers must see the output's folder. Tiles and (blockwise) blocks run as "
                         "tasks, the labels equal the in-process ones; whole-image clustering stays in this process")
    sg.add_argument("--workers", type=int, default=None, metavar="N",
                    help="worker processes of --scheduler local (default 2; one torch thread each)")
    sg.add_argument("--min-size", type=int, default=None, metavar="PX",
                    help="objects of fewer pixels become background (default: the run's task.min_size, 50); "
                         "also HDBSCAN's smallest cluster; 0 keeps every object")
    sg.add_argument("--overwrite", action="store_true", help="replace an existing output")

    ev = sub.add_parser("evaluate", help="compare predictions with ground truth, or test a run on rescaled images",
                        description="Score prediction files (-p, -g), or with --scales a trained semantic run "
                                    "(-m, -i, -g) on its test images rescaled by each factor: mean IoU and scale "
                                    "consistency per factor.")
    ev.add_argument("-p", "--pred", type=Path, help="prediction file or folder (not with --scales)")
    ev.add_argument("-g", "--gt", required=True, type=Path, help="ground-truth file or folder (paired by file name)")
    ev.add_argument("--scales", metavar="default|F1,F2,...",
                    help="evaluate the run -m on the images -i rescaled by these zoom factors ('default': "
                         "2^linspace(-2, 2, 17), 0.25..4); --metrics, --foreground and --num-classes do not apply")
    ev.add_argument("-m", "--model", type=Path, metavar="RUN", help="with --scales: run folder written by train")
    ev.add_argument("-i", "--input", type=Path, help="with --scales: image file or folder (paired with -g by name)")
    ev.add_argument("--figure", type=Path, help="with --scales: plot IoU and consistency vs factor here (PNG)")
    ev.add_argument("--checkpoint", choices=["best", "last"], default="best", help="with --scales (default best)")
    ev.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"], help="with --scales")
    ev.add_argument("--metrics", default="iou,dice",
                    help="comma-separated: iou, dice (class ids); sbd, dic, abs_dic, seg_acc, mean_seg_acc, arand, "
                         "voi (instance labels as they are: --foreground and --num-classes do not apply)")
    ev.add_argument("--foreground", action="store_true", help="binarise both: any non-zero label is foreground")
    ev.add_argument("--num-classes", type=int, default=None, help="number of classes (default: inferred)")
    ev.add_argument("-o", "--output", type=Path, help="write the results as JSON here (a new file)")
    ev.add_argument("--overwrite", action="store_true", help="replace an existing -o file")

    sp = sub.add_parser("sample", help="draw segmentations of an image from a probabilistic run (hpunet, probunet)",
                        description="Draw N segmentations of one image from a trained hpunet or probunet run and "
                                    "write them with their per-pixel mean, standard deviation and entropy into "
                                    "the folder -o.")
    sp.add_argument("-m", "--model", type=Path, required=True, metavar="RUN", help="run folder written by train")
    sp.add_argument("-i", "--input", required=True, help="image file (file.h5:key for HDF5/Zarr)")
    sp.add_argument("-n", "--samples", type=int, default=None, metavar="N",
                    help="number of samples (default: the run's task.samples, 16)")
    sp.add_argument("-o", "--output", type=Path, required=True,
                    help="output folder: samples.tif, mean.tif, std.tif, entropy.tif, samples.png")
    sp.add_argument("--mean-scales", default="", metavar="K[,K...]|all",
                    help="latent scales fixed to their prior mean instead of sampled (0 = most global); e.g. "
                         "1,2,3 samples the most global scale only. Default: none (all sampled)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the latent noise (default 0)")
    sp.add_argument("--axes", help="axes of the input file, e.g. YX, CYX, ZYX (default: inferred)")
    sp.add_argument("--checkpoint", choices=["best", "last"], default="best")
    sp.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    sp.add_argument("--tile-shape", type=_shape, metavar="N[,N...]",
                    help="network input tile (default: the whole image if N samples fit --memory-budget); with "
                         "several tiles each tile draws its own latents, so samples are not coherent across tiles")
    sp.add_argument("--memory-budget", type=float, default=1024, metavar="MiB",
                    help="activation memory for the N samples of one tile (default 1024 MiB)")
    sp.add_argument("--no-figure", action="store_true", help="do not draw samples.png")
    sp.add_argument("--overwrite", action="store_true", help="replace the files of an earlier sample in -o")

    rp = sub.add_parser("reproduce", help="run a paper's key experiment on the CPU and write a report")
    rp.add_argument("experiment", choices=["shift", "spoco", "scale", "hpunet"],
                    help="shift: shift equivariance and tile-and-stitch; spoco: sparse object supervision; "
                         "scale: SEU-Net against U-Net on unseen scales; hpunet: HPU-Net against the "
                         "probabilistic U-Net on ambiguous synthetic images")
    rp.add_argument("--out", type=Path, default=None, help="report folder (default unetkit-reproduce/EXPERIMENT)")
    rp.add_argument("--budget", choices=["full", "smoke"], default="full",
                    help="full: the report's sizes (minutes); smoke: a seconds-long check of the pipeline")
    rp.add_argument("--overwrite", action="store_true",
                    help="replace an earlier report in --out (only once the new one is complete)")

    d = sub.add_parser("demo", help="train and evaluate on built-in synthetic data (about two minutes on a CPU)")
    d.add_argument("--out", type=Path, default=Path("unetkit-demo"), help="folder for data, run and results")
    d.add_argument("--iterations", type=int, default=None,
                   help="training iterations, >= 1 (default: sized for ~2 min)")
    d.add_argument("--seed", type=int, default=0)
    return p


def _cmd_train(args: argparse.Namespace) -> int:
    from unetkit.training import Trainer, load_config

    if args.resume is not None:
        if args.config is not None:
            raise InputError("use either -c CONFIG (new run) or --resume RUN (continue), not both")
        cfg_path = args.resume / "config.yaml"
        if not cfg_path.is_file():
            raise MissingFileError(f"cannot resume: {args.resume} has no config.yaml")
        cfg = load_config(cfg_path, [*args.overrides, f"out={args.resume}"])
        trainer = Trainer(cfg, resume=True)
    else:
        if args.config is None:
            raise InputError("train needs -c CONFIG (a YAML file, see configs/) or --resume RUN")
        cfg = load_config(args.config, args.overrides)
        _check_run_folder(Path(cfg.out))
        trainer = Trainer(cfg)

    def kept() -> str:  # said when Ctrl-C or SIGTERM stops the run
        last = trainer.ckpt_dir / "last.pt"
        if last.is_file():
            return (f"the run folder {trainer.run_dir} keeps its last checkpoint {last}; continue with "
                    f"`unetkit train --resume {trainer.run_dir}`")
        return f"no checkpoint had been written yet in {trainer.run_dir}"

    args.kept = kept  # set before anything is printed: a signal may come at once
    if list(trainer.input_shape) != list(cfg.data.patch_shape):
        print(f"note: data.patch_shape {list(cfg.data.patch_shape)} is not a valid input size for this model; "
              f"using the nearest valid size {list(trainer.input_shape)}")
    print(f"training {cfg.model.name} ({cfg.model.ndim}-D, padding={trainer.model.padding}) on {trainer.device}: "
          f"{len(trainer.train_samples)} training / {len(trainer.val_samples)} validation images, "
          f"patches {trainer.input_shape} -> {trainer.output_shape}")

    result = trainer.fit()
    shown = ", ".join(f"{k}={v:.4f}" for k, v in result.final_metrics.items())
    print(f"done: {result.iterations} iterations in {result.seconds:.0f} s; {shown or 'no validation data'}")
    print(f"run folder: {result.run_dir}")
    return 0


def _check_run_folder(out: Path) -> None:
    """Before any data are loaded: ``out`` must be (or be creatable as) a folder holding no run files."""
    from unetkit.training.trainer import check_new_run_folder

    if (out / "checkpoints" / "last.pt").is_file():
        return  # the trainer refuses it, pointing to --resume
    check_new_run_folder(out)


def _cmd_predict(args: argparse.Namespace) -> int:
    from unetkit.data.io import list_images, parse_location
    from unetkit.inference.files import predict_file
    from unetkit.runs import load_run, select_device

    if args.batch_size < 1 or not (math.isfinite(args.memory_budget) and args.memory_budget > 0):
        raise InputError(f"--batch-size must be >= 1 and --memory-budget a finite number of MiB > 0; got "
                         f"{args.batch_size} and {args.memory_budget}")
    tiling = {"tile_shape": args.tile_shape, "memory_budget": int(args.memory_budget * 2**20),
              "batch_size": args.batch_size}
    if args.scheduler is not None:
        return _predict_on_cluster(args, tiling)
    if args.workers is not None:
        raise InputError("--workers is for --scheduler local; add --scheduler local to predict with N workers")
    args.output_type = args.output_type or "labels"
    device = select_device(args.device, setting="--device")
    cfg, model, task = load_run(args.model, args.checkpoint, map_location=device)
    model.to(device)
    src, key = parse_location(args.input)
    if src.is_dir() and key is None and not src.name.endswith(".zarr"):
        out_dir = Path(args.output)
        if out_dir.exists() and not out_dir.is_dir():
            raise InputError(f"the input {src} is a folder, so the output must be a folder too; "
                             f"{out_dir} is a file")
        files = list_images(src)
        targets = [out_dir / f"{_stem(f)}.tif" for f in files]
        _refuse_colliding_outputs(files, targets)
        existing = [t for t in targets if t.exists()]
        if existing and not args.overwrite:  # refuse before any work, not halfway through
            shown = ", ".join(t.name for t in existing[:5]) + (" ..." if len(existing) > 5 else "")
            raise InputError(f"{len(existing)} output file(s) already exist in {out_dir} ({shown}); "
                             "pass --overwrite to replace them")
        from tqdm.auto import tqdm

        pairs = list(zip(files, targets))
        for f, target in tqdm(pairs, desc="predict", unit="image", disable=not sys.stderr.isatty()):
            predict_file(model, task, cfg, f, target, axes=args.axes, output_type=args.output_type,
                         overwrite=args.overwrite, **tiling)
        print(f"wrote {len(files)} predictions to {out_dir}")
    else:
        predict_file(model, task, cfg, args.input, args.output, axes=args.axes, output_type=args.output_type,
                     overwrite=args.overwrite, progress=True, **tiling)
        print(f"wrote {args.output}")
    return 0


def _cmd_segment(args: argparse.Namespace) -> int:
    from unetkit.data.io import parse_location
    from unetkit.inference.segment import segment_file
    from unetkit.runs import checkpoint_path, load_run, select_device

    for name, value in (("--memory-budget", args.memory_budget), ("--cluster-budget", args.cluster_budget)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InputError(f"{name} must be a finite number of MiB > 0; got {value}")
    if args.overlap is not None and args.overlap < 0:
        raise InputError(f"--overlap must be >= 0 pixels, got {args.overlap}")
    src, _ = parse_location(args.input)
    if not src.exists():
        raise MissingFileError(f"input {args.input} does not exist")
    if args.mask is not None and not parse_location(args.mask)[0].exists():
        raise MissingFileError(f"mask {args.mask} does not exist")
    if args.mask_run is not None and not args.mask_run.is_dir():
        raise MissingFileError(f"--mask-run {args.mask_run} is not a run folder")
    if args.scheduler is None and args.workers is not None:
        raise InputError("--workers is for --scheduler local; add --scheduler local to segment with N workers")
    workers = 2 if args.workers is None else args.workers
    if workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    device = select_device(args.device, setting="--device")
    cfg, model, task = load_run(args.model, args.checkpoint, map_location=device)
    model.to(device)
    if args.method == "consistency" and checkpoint_path(args.model, args.checkpoint).name != "last.pt":
        warnings.warn("--method consistency: the momentum network g is kept in checkpoints/last.pt only, so f comes "
                      "from best.pt and g from last.pt; pass --checkpoint last for a pair of the same step")
    _, info = segment_file(model, task, cfg, args.input, args.output, method=args.method, mask=args.mask,
                           mask_run=args.mask_run, mask_checkpoint=args.checkpoint,
                           scheduler=args.scheduler, workers=workers,
                           worker_device="cpu" if args.device == "auto" else args.device,
                           axes=args.axes, overwrite=args.overwrite,
                           checkpoint=checkpoint_path(args.model, "last"),  # g is task state of last.pt only
                           memory_budget=int(args.memory_budget * 2**20),
                           cluster_budget=None if args.cluster_budget is None else int(args.cluster_budget * 2**20),
                           overlap=args.overlap, min_size=args.min_size, progress=True)
    how = f"blockwise, blocks {'x'.join(map(str, info['block_shape']))}" if info["blockwise"] else "whole image"
    if args.scheduler is not None:
        how += ", on dask"
    print(f"wrote {args.output}: {info['objects']} objects ({args.method}, {how}; objects under "
          f"{info['min_size']} px dropped)")
    return 0


def _refuse_colliding_outputs(files: list[Path], targets: list[Path]) -> None:
    """Inputs that would write the same output (``a.tif``, ``a.tiff``, ``a.png`` -> ``a.tif``) are refused up front."""
    by_target: dict[Path, list[Path]] = {}
    for f, t in zip(files, targets):
        by_target.setdefault(t, []).append(f)
    clashes = {t: fs for t, fs in by_target.items() if len(fs) > 1}
    if clashes:
        shown = "; ".join(f"{', '.join(f.name for f in fs)} -> {t.name}" for t, fs in list(clashes.items())[:3])
        more = f" (and {len(clashes) - 3} more)" if len(clashes) > 3 else ""
        raise InputError(f"{sum(len(fs) for fs in clashes.values())} input files share a name and would write the same "
                         f"output: {shown}{more}; rename or move all but one of each (outputs are named after the "
                         "input without its suffix)")


def _predict_on_cluster(args: argparse.Namespace, tiling: dict) -> int:
    """``predict --scheduler``: one Zarr/HDF5 image, tiles as dask tasks (same tiling), Zarr output."""
    from unetkit.data.io import is_chunked_target, parse_location
    from unetkit.inference.dask import predict_file_dask

    src, _ = parse_location(args.input)
    if src.is_dir() and not src.name.lower().endswith(".zarr"):
        raise InputError(f"--scheduler predicts one Zarr or HDF5 image, not a folder ({src}); "
                         "drop --scheduler to predict a folder in-process")
    if not is_chunked_target(args.input):
        raise InputError(f"--scheduler reads the input tile by tile and needs a Zarr or HDF5 image; got {args.input}")
    workers = 2 if args.workers is None else args.workers
    if workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    device = "cpu" if args.device == "auto" else args.device
    out = predict_file_dask(args.model, args.input, args.output, axes=args.axes,
                            output_type=args.output_type or "logits", checkpoint=args.checkpoint,
                            scheduler=args.scheduler, workers=workers, device=device,
                            overwrite=args.overwrite, progress=True, **tiling)
    print(f"wrote {out}")
    return 0


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.zarr", ".ome.tif", ".ome.tiff"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from unetkit.metrics.evaluate import evaluate_paths

    if args.scales is not None:
        return _evaluate_scales(args)
    scale_only = [flag for flag, v in (("-m", args.model), ("-i", args.input), ("--figure", args.figure)) if v]
    if scale_only:
        raise InputError(f"{', '.join(scale_only)} only apply with --scales; add --scales default (or factors "
                         "like 0.5,1,2) to evaluate a run on rescaled images")
    if args.pred is None:
        raise InputError("evaluate needs -p PRED and -g GT (prediction and ground-truth files or folders), or "
                         "--scales with -m RUN -i IMAGES -g LABELS")
    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if args.output is not None:
        _check_output_file(args.output, args.overwrite, args.pred, args.gt)
    result = evaluate_paths(args.pred, args.gt, metrics=names, foreground=args.foreground,
                            num_classes=args.num_classes)
    keys = result["keys"]
    width = max([len(r["name"]) for r in result["images"]] + [5])
    cols = [max(8, len(k)) for k in keys]
    print("  ".join([f"{'image':<{width}}", *[f"{k:>{c}}" for k, c in zip(keys, cols)]]))
    for r in result["images"]:
        print("  ".join([f"{r['name']:<{width}}", *[f"{r[k]:{c}.4f}" for k, c in zip(keys, cols)]]))
    print("  ".join([f"{'mean':<{width}}", *[f"{result['mean'][k]:{c}.4f}" for k, c in zip(keys, cols)]]))
    if args.output:
        from unetkit.utils.atomic import atomic_write_text

        atomic_write_text(args.output, json.dumps(result, indent=2))  # checked before the scores were computed
        print(f"wrote {args.output}")
    return 0


def _parse_factors(text: str) -> tuple[float, ...]:
    """``--scales``: ``'default'`` or comma-separated factors like ``0.5,1,2``."""
    from unetkit.data.rescale import DEFAULT_SCALE_FACTORS, check_factors

    if text.strip().lower() == "default":
        return DEFAULT_SCALE_FACTORS
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--scales {text!r} must be 'default' or comma-separated factors > 0 like 0.5,1,2") from None
    return check_factors(values)


def _evaluate_scales(args: argparse.Namespace) -> int:
    """``evaluate --scales``: a trained run on rescaled test images, a table per factor."""
    import numpy as np

    from unetkit.data.io import pair_images_labels, read_labels
    from unetkit.inference.files import open_source
    from unetkit.metrics.scales import evaluate_scales, plot_scale_curves
    from unetkit.runs import load_run, select_device

    if args.pred is not None:
        raise InputError("-p is not used with --scales (the run -m predicts the images -i); leave it out")
    missing = [flag for flag, v in (("-m RUN", args.model), ("-i IMAGES", args.input)) if v is None]
    if missing:
        raise InputError(f"--scales needs {' and '.join(missing)} (a trained run and the test images, paired with "
                         "the labels -g by file name)")
    factors = _parse_factors(args.scales)
    outputs = [(flag, p) for flag, p in (("-o", args.output), ("--figure", args.figure)) if p is not None]
    if len(outputs) == 2 and args.output.resolve() == args.figure.resolve():
        raise InputError(f"-o and --figure are the same file {args.output}; give two different files")
    for flag, path in outputs:
        try:
            _check_output_file(path, args.overwrite, args.input, args.gt)
        except InputError as exc:
            raise InputError(str(exc).replace("-o ", f"{flag} ", 1)) from None
    device = select_device(args.device, setting="--device")
    cfg, model, task = load_run(args.model, args.checkpoint, map_location=device)
    if args.input.is_dir() and not args.input.name.endswith(".zarr"):
        files = pair_images_labels(args.input, args.gt)
    else:
        files = [(args.input, args.gt)]
    images, labels = [], []
    for image_path, label_path in files:
        array, _ = open_source(image_path, None, ndim=cfg.model.ndim, channels=cfg.model.in_channels)
        images.append(np.asarray(array))
        labels.append(read_labels(label_path)[0])
    result = evaluate_scales(model, task, cfg, images, labels, factors, names=[p.name for p, _ in files])
    result["run"] = str(args.model)
    keys = [k for k in result["rows"][0] if k != "factor"]
    print(f"{len(images)} image(s), run {args.model}")
    print("  ".join([f"{'factor':>8}", *[f"{k:>11}" for k in keys]]))
    for row in result["rows"]:
        print("  ".join([f"{row['factor']:8.4g}", *[f"{row[k]:11.4f}" for k in keys]]))
    if args.output:
        from unetkit.utils.atomic import atomic_write_text

        atomic_write_text(args.output, json.dumps(result, indent=2))
        print(f"wrote {args.output}")
    if args.figure:
        plot_scale_curves({args.model.name: result}, args.figure)
        print(f"wrote {args.figure}")
    return 0


def _check_output_file(output: Path, overwrite: bool, *inputs: Path) -> None:
    """``evaluate -o``: never replace an input, and another existing file only with --overwrite."""
    if output.is_dir():
        raise InputError(f"-o {output} is a folder; give a file name such as {output / 'scores.json'}")
    from unetkit.data.io.paths import supported_suffix

    for given in inputs:
        if not (output.exists() and given.exists()):
            continue
        same = output.resolve() == given.resolve()
        inside = given.is_dir() and output.resolve().parent == given.resolve() and supported_suffix(output.name)
        if same or inside:
            raise InputError(f"-o {output} is one of the files being evaluated ({given}); write the scores elsewhere")
    if output.exists() and not overwrite:
        raise InputError(f"-o {output} already exists; pass --overwrite to replace it, or choose another file")


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from unetkit.reproduce import run_into

    out = args.out or Path("unetkit-reproduce") / args.experiment
    run_into(args.experiment, out, overwrite=args.overwrite, budget=args.budget)
    print(f"report: {out / 'report.md'}")
    return 0



def _shape(text: str) -> tuple[int, ...]:
    """``'252,252'`` -> (252, 252) for ``--tile-shape``."""
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of integers like 252,252") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r} must be positive integers like 252,252")
    return values


def _mean_scales(text: str, latent_scales: int) -> tuple[int, ...]:
    """``--mean-scales``: ``''`` -> (), ``'all'`` -> every scale, ``'1,2'`` -> (1, 2) (checked by the sampler)."""
    text = text.strip()
    if text == "all":
        return tuple(range(latent_scales))
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"--mean-scales {text!r} is not a list of scale indices like 1,2 (or 'all'); the model has "
                         f"{latent_scales} latent scale(s), 0 (most global) to {latent_scales - 1}") from None


def _cmd_sample(args: argparse.Namespace) -> int:
    from unetkit.data.io import parse_location
    from unetkit.inference.sampling import check_probabilistic, sample_file
    from unetkit.runs import load_run, select_device

    if args.samples is not None and args.samples < 1:
        raise InputError(f"-n must be >= 1 sample, got {args.samples}")
    if not (math.isfinite(args.memory_budget) and args.memory_budget > 0):
        raise InputError(f"--memory-budget must be a finite number of MiB > 0; got {args.memory_budget}")
    if not parse_location(args.input)[0].exists():
        raise MissingFileError(f"input {args.input} does not exist")
    device = select_device(args.device, setting="--device")
    cfg, model, _ = load_run(args.model, args.checkpoint, map_location=device)
    model.to(device)
    check_probabilistic(model)
    n = args.samples if args.samples is not None else int(getattr(cfg.task, "samples", 16))
    summary = sample_file(model, cfg, args.input, args.output, n,
                          mean_scales=_mean_scales(args.mean_scales, model.latent_scales), seed=args.seed,
                          axes=args.axes, overwrite=args.overwrite, tile_shape=args.tile_shape,
                          memory_budget=int(args.memory_budget * 2**20), figure=not args.no_figure, progress=True)
    tiles = "one tile" if summary.n_tiles == 1 else f"{summary.n_tiles} tiles (latents drawn per tile)"
    print(f"wrote {n} samples, their mean, standard deviation and entropy to {args.output} ({tiles})")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from unetkit.demo import run_demo

    if args.iterations is not None and args.iterations < 1:
        raise InputError(f"--iterations must be >= 1, got {args.iterations} (leave it out for the default, "
                         "sized for about two minutes)")
    run_demo(args.out, iterations=args.iterations, seed=args.seed)
    return 0


COMMANDS = {"train": _cmd_train, "predict": _cmd_predict, "segment": _cmd_segment, "evaluate": _cmd_evaluate, "demo": _cmd_demo,
            "reproduce": _cmd_reproduce, "sample": _cmd_sample}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that unfinished outputs are cleaned up the same way."""


_SIGNALLED: list[int] = []
"""Signals received while a command runs: an exception that library code made of the
interruption (a callback from compiled code, e.g. pydantic's, may wrap it in its own error)
still ends as an interruption."""


def _on_signal(signum: int, frame: object) -> None:
    _SIGNALLED.append(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    """Warnings on one line, ``unetkit: warning: ...`` (not Python's two-line format with a source line)."""
    text = " ".join(str(message).split())
    print(f"unetkit: warning: {text}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``unetkit`` command; returns the exit status.

    Exit status: 0 done, 2 bad input (one ``unetkit: error:`` line), 1 other file-system
    errors, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM). An interrupted or terminated
    command keeps everything already written and discards its unfinished outputs.
    """
    args = _parser().parse_args(argv)
    _SIGNALLED.clear()
    previous = {}
    try:  # SIGTERM (kill, a batch scheduler's time limit) stops like Ctrl-C
        for sig in (signal.SIGTERM, signal.SIGINT):
            if signal.getsignal(sig) is not signal.SIG_IGN:  # a signal the caller ignores stays ignored
                previous[sig] = signal.signal(sig, _on_signal)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return COMMANDS[args.command](args)
        except Exception as exc:
            if _SIGNALLED:  # the signal arrived inside a callback that wrapped it: still an interruption
                raise (Terminated() if signal.SIGTERM in _SIGNALLED else KeyboardInterrupt()) from exc
            raise
    except UnetkitError as exc:
        print(f"unetkit: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # file-system trouble not caught as input errors above
        where = f": '{exc.filename}'" if exc.filename else ""
        print(f"unetkit: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        how, status = ("terminated (SIGTERM)", 143) if isinstance(exc, Terminated) else ("interrupted", 130)
        note = getattr(args, "kept", None)
        kept = note() if note else "files already written (checkpoints, finished outputs) are kept"
        print(f"unetkit: {how}; {kept}; unfinished outputs were discarded", file=sys.stderr)
        return status
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: a handler set outside Python, which cannot be put back
                signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
