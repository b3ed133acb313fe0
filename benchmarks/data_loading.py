"""One epoch of data loading: inline featurisation vs a pickle of samples vs molplat's store vs ADIOS2.

    .venv/bin/python benchmarks/data_loading.py --set qm9 --repeats 3
    .venv/bin/python benchmarks/data_loading.py --set qm9x30 --repeats 3 \
        --variants store-0,store-2,inline-0,inline-2 --epoch-batches 2000 --keep
    .venv/bin/python benchmarks/data_loading.py --set smiles --repeats 3 \
        --variants inline-0,pickle-0,store-0,adios-0,adiosgraph-0
    .venv/bin/python benchmarks/data_loading.py --report /tmp/molplat-data-loading/results-qm9-130831.json

``qm9`` is full QM9 (130,831 molecules, molplat-qm9's ``subset="full"``); ``qm9x30`` is
QM9 repeated 30 times with seeded 0.01 Å jitter (3,924,930 graphs, PCQM4Mv2's size; see
``repeated_qm9.py``). Representation: molplat's adjacency_list at ``--cutoff`` (5 Å).
``smiles`` is QM9's SMILES column with its HOMO-LUMO gap (molplat-smiles' ``smiles_csv``,
``subset="qm9"``) as ``molecular_graph`` bond graphs with RDKit atom and bond features
(needs molplat-smiles; its SMILES parse is cached by the dataset on first use).

Variants (``--variants KIND-WORKERS,...``), each measured in a fresh child process
(``--variant``) so that its memory is its own, one epoch of shuffled batches of 64 through
a torch DataLoader with the core's SampleCollator, ``num_workers`` 0 or 2:

- ``inline``: ``FeaturizingSamples`` (``[data] in_memory = false``): featurise every
  structure each epoch; "load" builds the dataset object. For ``smiles``, inline is the
  conventional SMILES loader: every sample's SMILES is parsed by RDKit and turned into its
  graph (``molplat_smiles.structure_from_smiles``) in ``__getitem__``, every epoch.
- ``pickle``: the featurised Sample objects pickled once to one file, as a user would
  without the store; "load" is ``pickle.load`` of the file.
- ``store``: ``SampleStore.build`` once (time and size reported); "load" is
  ``SampleStore.open`` with digest checks, as a run opens it.
- ``adios``: the same samples in molplat-adios's ADIOS2 store (``[data] store_format =
  "adios"``), written by ``--build-workers`` writer processes; "load" is its ``open`` with
  digest checks. Needs molplat-adios installed. Parts are read whole into memory while
  they fit the backend's ``cache_mb`` (1024 MB per process, its default) and sliced there;
  ``adiosgraph`` reads the same store with ``cache_mb = 0``: one ADIOS selection per field
  and graph, the reader before this option existed. ``--adios-from-store`` writes the
  ADIOS store from the samples of the core store (identical samples, no second featurising).

Memory: the child's own peak RSS (``VmHWM``) with its anonymous and file-backed parts
(sampled peaks), the largest peak RSS of its DataLoader workers (``RUSAGE_CHILDREN``: a
max over workers, not a sum), and the peak proportional set size summed over the child and
its workers, sampled every 0.25 s (shared pages counted once). Time: wall seconds, and the
CPU seconds of the child and its workers (steadier on a shared machine). The 1-minute load
average is printed beside every run.

``--epoch-batches N`` times only the first N batches of the shuffled epoch (over the whole
set) and scales to the epoch: for qm9x30, where a full epoch per run and variant would take
hours on 2 CPUs. A pickle of qm9x30 cannot be loaded in 24 GiB: there the pickle variant
runs on the first 130,831 graphs and its rows are scaled to the whole set, marked "est.".
Large files live under ``--workdir`` (outside the repository) and are deleted at the end
unless ``--keep``; ``--reuse`` measures again with a kept store and pickle.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
QM9_SIZE = 130_831


# --------------------------------------------------------------------------- memory
def _status_kb(pid: int | str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class MemorySampler(threading.Thread):
    """Sampled peaks: the proportional set size of this process and its children together, and
    this process's anonymous and file-backed resident memory (which of the two makes its RSS)."""

    def __init__(self, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.interval, self._done = interval, threading.Event()
        self.peaks_kb = {"pss_all": 0, "RssAnon": 0, "RssFile": 0}

    def run(self) -> None:
        me = os.getpid()
        while not self._done.is_set():
            self._sample(me)
            self._done.wait(self.interval)

    def _sample(self, me: int) -> None:
        now = {"pss_all": sum(_pss_kb(p) for p in [me, *_children(me)]),
               "RssAnon": _status_kb(me, "RssAnon"), "RssFile": _status_kb(me, "RssFile")}
        self.peaks_kb = {k: max(v, now[k]) for k, v in self.peaks_kb.items()}

    def stop(self) -> dict[str, float]:
        self._done.set()
        self.join()
        self._sample(os.getpid())
        return {k: v / 1024 for k, v in self.peaks_kb.items()}


# --------------------------------------------------------------------------- data
class SmilesPerSample:
    """QM9's SMILES, each parsed by RDKit into its bond graph when asked: the conventional loader."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> Any:
        from molplat_smiles.dataset import structure_from_smiles

        row = self.dataset[i]  # slices of the cached arrays: the SMILES, id and gap only are used
        molecule = structure_from_smiles(row.smiles, id=row.id)
        molecule.targets = dict(row.targets)
        return molecule


def _dataset(name: str) -> Any:
    if name == "qm9":
        from molplat_qm9.dataset import QM9

        return QM9(subset="full")
    if name == "smiles":
        from molplat_smiles.dataset import SmilesCSV

        return SmilesCSV(subset="qm9")
    sys.path.insert(0, str(HERE))
    from repeated_qm9 import RepeatedQM9

    return RepeatedQM9(copies=30, sigma=0.01, seed=0)


def _representation(args: argparse.Namespace) -> Any:
    if args.set == "smiles":
        from molplat_smiles.representation import MolecularGraph

        return MolecularGraph()
    from molplat.representations.adjacency_list import AdjacencyList

    return AdjacencyList(cutoff=args.cutoff)


def _setup(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from molplat.models.heads import Head, Heads

    return _dataset(args.set), _representation(args), Heads((Head("gap"),))


_SIZES: dict[str, int] = {"qm9": QM9_SIZE, "qm9x30": 30 * QM9_SIZE}


def _set_size(name: str) -> int:
    if name not in _SIZES:  # smiles: the SMILES RDKit reads (the dataset leaves out those it cannot)
        _SIZES[name] = len(_dataset(name))
    return _SIZES[name]


def _count(args: argparse.Namespace, dataset_size: int | None = None) -> int:
    full = _set_size(args.set) if dataset_size is None else dataset_size
    return min(args.limit or full, full)


def _pickle_count(args: argparse.Namespace) -> int:
    """How many graphs the pickle holds: all of qm9, the first copy of QM9 in qm9x30."""
    return min(_count(args), QM9_SIZE)


def _store_key(args: argparse.Namespace) -> str:
    from molplat.data.store import store_key

    representation = ({"name": "smiles:molecular_graph"} if args.set == "smiles" else
                      {"name": "molplat:adjacency_list", "cutoff": args.cutoff, "max_neighbors": None})
    return store_key({"name": "benchmark:" + args.set, "count": _count(args)}, representation,
                     {"heads": [["gap", "graph"]], "forces": False})


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    folder = Path(args.workdir) / (f"{args.set}-{_count(args)}" + ("" if args.set == "smiles" else f"-cutoff{args.cutoff:g}"))
    return folder / "store", folder / "samples.pkl"


def _adios_dir(args: argparse.Namespace) -> Path:
    return _paths(args)[0].parent / "adios"


def _featurized(args: argparse.Namespace, count: int):
    import numpy as np

    from molplat.data.sources import FeaturizingSamples, iterate

    dataset, representation, heads = _setup(args)
    return iterate(FeaturizingSamples(dataset, np.arange(count), representation, heads), args.build_workers)


def _store_format() -> int:
    from molplat.data.store import STORE_FORMAT

    return STORE_FORMAT


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (the DataLoader workers)."""
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def _disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- child: one measurement
def child(args: argparse.Namespace) -> dict[str, Any]:
    """Build or measure one variant in this process; returns what the parent tabulates."""
    import numpy as np
    import torch

    from molplat.data.samples import SampleCollator, SampleList
    from molplat.data.sources import FeaturizingSamples, StoreSamples
    from molplat.data.store import SampleStore

    sampler = MemorySampler()
    sampler.start()
    result: dict[str, Any] = {"variant": args.variant, "workers": args.workers, "loadavg_start": os.getloadavg()[0],
                              "baseline_rss_mb": _status_kb("self", "VmRSS") / 1024}
    store_dir, pickle_path = _paths(args)
    start, load_cpu = time.perf_counter(), _cpu_seconds()
    if args.variant == "build-store":
        SampleStore.build(store_dir, _featurized(args, _count(args)), _store_key(args))
        result.update(seconds=time.perf_counter() - start, bytes=_disk_bytes(store_dir), count=_count(args))
    elif args.variant == "build-adios":
        from molplat_adios.store import AdiosBackend

        if args.adios_from_store:  # the core store's samples: identical, without featurising again
            store = SampleStore.open(store_dir, _store_key(args), verify=False)
            if store is None:
                raise SystemExit(f"--adios-from-store: no store in {store_dir}; build it first")
            samples = (store[i] for i in range(len(store)))
        else:
            samples = _featurized(args, _count(args))
        AdiosBackend().build(_adios_dir(args), samples, _store_key(args), workers=args.build_workers)
        result.update(seconds=time.perf_counter() - start, bytes=_disk_bytes(_adios_dir(args)), count=_count(args),
                      from_store=bool(args.adios_from_store))
    elif args.variant == "build-pickle":
        samples = list(_featurized(args, _pickle_count(args)))
        with open(pickle_path, "wb") as handle:
            pickle.dump(samples, handle, protocol=pickle.HIGHEST_PROTOCOL)
        result.update(seconds=time.perf_counter() - start, bytes=_disk_bytes(pickle_path), count=len(samples))
    else:
        if args.variant == "inline":
            dataset, representation, heads = _setup(args)
            if args.set == "smiles":
                dataset = SmilesPerSample(dataset)
            source = FeaturizingSamples(dataset, np.arange(_count(args, len(dataset))), representation, heads)
        elif args.variant == "pickle":
            representation = _representation(args)
            start, load_cpu = time.perf_counter(), _cpu_seconds()
            with open(pickle_path, "rb") as handle:
                source = SampleList(pickle.load(handle))
        elif args.variant in ("adios", "adiosgraph"):
            from molplat_adios.store import AdiosBackend

            representation = _representation(args)
            start, load_cpu = time.perf_counter(), _cpu_seconds()
            backend = AdiosBackend() if args.variant == "adios" else AdiosBackend(cache_mb=0)
            store = backend.open(_adios_dir(args), _store_key(args))
            if store is None:
                raise SystemExit(f"no ADIOS store in {_adios_dir(args)}; run without --variant to build it")
            source = StoreSamples(store, np.arange(len(store)))
        else:
            representation = _representation(args)
            begin = time.perf_counter()
            SampleStore.open(store_dir, _store_key(args), verify=False)
            result["open_sizes_only_s"] = time.perf_counter() - begin
            start, load_cpu = time.perf_counter(), _cpu_seconds()
            store = SampleStore.open(store_dir, _store_key(args))
            if store is None:
                raise SystemExit(f"no store in {store_dir}; run without --variant to build it")
            source = StoreSamples(store, np.arange(len(store)))
        result["load_s"] = time.perf_counter() - start
        result["load_cpu_s"] = _cpu_seconds() - load_cpu
        result["rss_after_load_mb"] = _status_kb("self", "VmRSS") / 1024
        loader = torch.utils.data.DataLoader(source, batch_size=args.batch_size, shuffle=True,
                                             generator=torch.Generator().manual_seed(args.seed),
                                             num_workers=args.workers, collate_fn=SampleCollator(representation))
        begin, graphs, atoms, batches, cpu = time.perf_counter(), 0, 0, 0, _cpu_seconds()
        for batch in loader:
            graphs += batch["num_graphs"]
            atoms += int(batch["natoms"].sum())
            batches += 1
            if batches == args.epoch_batches:
                break
        seconds = time.perf_counter() - begin
        del loader  # joins the workers, so their CPU time is counted below
        result["epoch_cpu_s"] = (_cpu_seconds() - cpu) * len(source) / graphs
        result.update(epoch_s=seconds * len(source) / graphs, count=graphs, atoms=atoms,
                      measured_s=seconds, partial=graphs < len(source))
        result["total_s"] = result["load_s"] + result["epoch_s"]
    result["peak_rss_mb"] = _status_kb("self", "VmHWM") / 1024
    result["worker_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    peaks = sampler.stop()
    result.update(peak_pss_mb=peaks["pss_all"], peak_anon_mb=peaks["RssAnon"], peak_file_mb=peaks["RssFile"])
    result["loadavg_end"] = os.getloadavg()[0]
    return result


# --------------------------------------------------------------------------- parent: orchestration
def _run_child(args: argparse.Namespace, variant: str, workers: int = 0) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--set", args.set, "--workdir", args.workdir,
               "--cutoff", str(args.cutoff), "--batch-size", str(args.batch_size), "--seed", str(args.seed),
               "--build-workers", str(args.build_workers), "--variant", variant, "--workers", str(workers)]
    if args.limit:
        command += ["--limit", str(args.limit)]
    if args.epoch_batches:
        command += ["--epoch-batches", str(args.epoch_batches)]
    if args.adios_from_store:
        command += ["--adios-from-store"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{variant} (workers {workers}) failed:\n{done.stderr[-3000:]}")
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def _cpu(run: dict[str, Any]) -> str:
    """CPU seconds of load + epoch, the child and its workers together (steadier than wall time on a busy machine)."""
    return f"{run['load_cpu_s'] + run['epoch_cpu_s']:.1f}" if "epoch_cpu_s" in run else ""


def _span(values: list[float], digits: int = 1) -> str:
    low, high = min(values), max(values)
    return f"{low:.{digits}f}" if f"{low:.{digits}f}" == f"{high:.{digits}f}" else f"{low:.{digits}f}-{high:.{digits}f}"


def _scaled(run: dict[str, Any], factor: float) -> dict[str, Any]:
    """A pickle run on a prefix, scaled to the whole set (times and memory above the baseline grow linearly)."""
    if factor == 1:
        return run
    out = dict(run, estimated=True)
    for key in ("load_s", "epoch_s", "total_s", "load_cpu_s", "epoch_cpu_s"):
        if key in run:
            out[key] = run[key] * factor
    for key in ("peak_rss_mb", "peak_pss_mb", "peak_anon_mb", "worker_peak_rss_mb"):
        out[key] = run["baseline_rss_mb"] + (run[key] - run["baseline_rss_mb"]) * factor
    return out


def parent(args: argparse.Namespace) -> None:
    variants = [(kind, int(w)) for kind, w in (v.split("-") for v in args.variants.split(","))]
    store_dir, pickle_path = _paths(args)
    store_dir.parent.mkdir(parents=True, exist_ok=True)
    count, pickled = _count(args), _pickle_count(args)
    factor = count / pickled
    free = shutil.disk_usage(store_dir.parent).free
    print(f"set {args.set}: {count} graphs, {_described(args)}, batch {args.batch_size}; "
          f"workdir {store_dir.parent} ({free / 1e9:.0f} GB free); {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)

    prepared: dict[str, dict[str, Any]] = {}
    for kind, path in (("store", store_dir), ("pickle", pickle_path), ("adios", _adios_dir(args))):
        if any(k == kind or (kind == "adios" and k == "adiosgraph") for k, _ in variants):
            record = store_dir.parent / f"built-{kind}.json"
            if args.reuse and record.is_file() and path.exists():
                prepared[kind] = dict(json.loads(record.read_text()), reused=True)
            else:
                prepared[kind] = _run_child(args, f"build-{kind}")
                record.write_text(json.dumps(prepared[kind]))
            info = prepared[kind]
            print(f"{kind} {'reused' if info.get('reused') else 'written'}: {info['seconds']:.0f} s, "
                  f"{info['bytes'] / 1e9:.2f} GB, {info['count']} graphs", flush=True)

    runs: list[dict[str, Any]] = []
    for repeat in range(1, args.repeats + 1):
        for kind, workers in variants:
            run = _run_child(args, kind, workers)
            run.update(repeat=repeat, kind=kind)
            if kind == "pickle":
                run = _scaled(run, factor)
            runs.append(run)
            print(f"  repeat {repeat} {kind} w{workers}: load {run['load_s']:.1f} s, epoch {run['epoch_s']:.1f} s, "
                  f"peak RSS {run['peak_rss_mb']:.0f} MB (workers {run['worker_peak_rss_mb']:.0f} MB), "
                  f"load average {run['loadavg_start']:.2f}{' (est.)' if run.get('estimated') else ''}", flush=True)

    _report(args, prepared, runs, count, pickled, factor)
    results = Path(args.workdir) / f"results-{args.set}-{count}.json"
    results.write_text(json.dumps({"args": vars(args), "prepared": prepared, "runs": runs}, indent=1))
    print(f"\nraw results: {results}")
    if not args.keep:
        shutil.rmtree(store_dir.parent)
        print(f"deleted {store_dir.parent}")


def _described(args: argparse.Namespace) -> str:
    return "molecular_graph (RDKit bonds)" if args.set == "smiles" else f"adjacency_list cutoff {args.cutoff:g} Å"


def _report(args, prepared, runs, count, pickled, factor) -> None:
    from tabulate import tabulate

    print(f"\n## {args.set}: {count:,} graphs, {_described(args)}, batch {args.batch_size}, "
          f"{args.repeats} repeats, store format {_store_format()}\n")
    if args.epoch_batches:
        print(f"epoch s: the first {args.epoch_batches} batches of each shuffled epoch, timed and scaled to "
              f"the whole epoch (scaled; peak memory is over those batches)\n")
    rows = []
    for kind, info in prepared.items():
        scale = factor if kind == "pickle" else 1
        grown = info["baseline_rss_mb"] + (info["peak_rss_mb"] - info["baseline_rss_mb"]) * scale
        rows.append([f"{kind}{' (est.)' if scale != 1 else ''}", round(info["count"] * scale),
                     f"{info['seconds'] * scale:.0f}", f"{info['bytes'] * scale / 1e9:.2f}", f"{grown:.0f}",
                     f"{info['worker_peak_rss_mb']:.0f}", f"{info['loadavg_start']:.2f}"])
    print(tabulate(rows, ["written once", "graphs", "seconds", "GB on disk", "peak RSS MB", "worker peak MB",
                          "load avg"], tablefmt="github", intfmt=","))
    if factor != 1 and "pickle" in prepared:
        print(f"(pickle rows marked est.: measured on the first {pickled:,} graphs and scaled by {factor:g})")

    print("\nEvery run (load average = 1-minute value when the run started -> ended):\n")
    rows = [[r["repeat"], f"{r['kind']}{' (est.)' if r.get('estimated') else ''}", r["workers"],
             f"{r['loadavg_start']:.2f} -> {r['loadavg_end']:.2f}", f"{r['load_s']:.2f}", f"{r['epoch_s']:.1f}",
             f"{r['total_s']:.1f}", _cpu(r), f"{r['peak_rss_mb']:.0f}", f"{r['peak_anon_mb']:.0f} / {r['peak_file_mb']:.0f}",
             f"{r['worker_peak_rss_mb']:.0f}", f"{r['peak_pss_mb']:.0f}"]
            for r in runs]
    print(tabulate(rows, ["repeat", "variant", "workers", "load avg", "load s", "epoch s", "load+epoch s",
                          "CPU s", "peak RSS MB", "anon / file MB", "worker peak RSS MB", "peak PSS MB (all)"],
                   tablefmt="github"))

    print("\nRange over the repeats (min-max):\n")
    rows, by = [], {}
    for r in runs:
        by.setdefault((r["kind"], r["workers"]), []).append(r)
    for (kind, workers), group in by.items():
        rows.append([f"{kind}{' (est.)' if group[0].get('estimated') else ''}", workers,
                     _span([r["load_s"] for r in group], 2), _span([r["epoch_s"] for r in group]),
                     _span([r["total_s"] for r in group]),
                     _span([r["load_cpu_s"] + r["epoch_cpu_s"] for r in group]) if "epoch_cpu_s" in group[0] else "",
                     f"{count / statistics.median(r['epoch_s'] for r in group):,.0f}",
                     _span([r["peak_rss_mb"] for r in group], 0), _span([r["peak_anon_mb"] for r in group], 0),
                     _span([r["peak_file_mb"] for r in group], 0), _span([r["worker_peak_rss_mb"] for r in group], 0),
                     _span([r["peak_pss_mb"] for r in group], 0),
                     " ".join(f"{r['loadavg_start']:.1f}" for r in group)])
    print(tabulate(rows, ["variant", "workers", "load s", "epoch s", "load+epoch s", "CPU s", "graphs/s (median)",
                          "peak RSS MB", "anon MB", "file MB", "worker peak RSS MB", "peak PSS MB",
                          "load avg per run"], tablefmt="github"))
    for workers in sorted({w for _, w in by}):
        if ("pickle", workers) in by and ("store", workers) in by:
            pairs = list(zip(by[("pickle", workers)], by[("store", workers)]))
            load = [p["load_s"] / s["load_s"] for p, s in pairs]
            total = [p["total_s"] / s["total_s"] for p, s in pairs]
            line = f"\nworkers {workers}: pickle / store, per repeat: load {_span(load)}x, load + epoch {_span(total, 2)}x"
            if all("epoch_cpu_s" in r for pair in pairs for r in pair):
                cpu = [(p["load_cpu_s"] + p["epoch_cpu_s"]) / (s["load_cpu_s"] + s["epoch_cpu_s"]) for p, s in pairs]
                line += f"; CPU seconds of load + epoch {_span(cpu, 2)}x"
            print(line)
    opens = [r["open_sizes_only_s"] for r in runs if "open_sizes_only_s" in r]
    if opens:
        print(f"store open without digest checks (verify=False): {_span(opens, 3)} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("qm9", "qm9x30", "smiles"), default="qm9")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default="inline-0,inline-2,pickle-0,pickle-2,store-0,store-2",
                        help="comma-separated KIND-WORKERS, KIND in inline, pickle, store, adios, adiosgraph "
                             "(the last two need molplat-adios)")
    parser.add_argument("--workdir", default="/tmp/molplat-data-loading",
                        help="where the store and pickle are written (outside the repository)")
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--build-workers", type=int, default=2, help="featurisation workers when building")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N graphs (a quick trial)")
    parser.add_argument("--keep", action="store_true", help="keep the store and pickle")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse a store and pickle kept by an earlier --keep run (their build rows are that run's)")
    parser.add_argument("--epoch-batches", type=int, default=0,
                        help="time only the first N batches of the shuffled epoch and scale to the whole epoch")
    parser.add_argument("--adios-from-store", action="store_true",
                        help="write the ADIOS store from the core store's samples (build the store first)")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--report", metavar="RESULTS_JSON", help="print the tables of an earlier run's raw results")
    args = parser.parse_args()
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        args = argparse.Namespace(**{**vars(args), **saved["args"]})
        count, pickled = _count(args), _pickle_count(args)
        _report(args, saved["prepared"], saved["runs"], count, pickled, count / pickled)
    elif args.variant:
        print("RESULT " + json.dumps(child(args)), flush=True)
    else:
        parent(args)


if __name__ == "__main__":
    main()
