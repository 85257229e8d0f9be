#!/usr/bin/python3
"""Runs every example campaign at reduced sizes with two nsbi builds and checks that their outputs are the
same bits: every dataset and attribute of every HDF5 file and every number of every JSON summary, except
the records of when, where, by what and from which config a file was made (listed below).

Usage: compare_builds.py OLD_BUILD NEW_BUILD [--keep DIR] [--report FILE] [--np N] [--only NAME]...
                         [--examples DIR] [--old-set OVERRIDE]... [--new-set OVERRIDE]...

Each build folder's jobs/nsbi runs `nsbi run` on each examples/<name>.yaml (the stages of its `pipeline`), with
the example's reductions of the REDUCED table below, into DIR/old/<name> and DIR/new/<name> (a temporary folder,
removed at the end, without --keep). The examples come from each build's own source tree (CMakeCache.txt's
CMAKE_HOME_DIRECTORY), so an example whose keys were renamed along with the code runs under each build as that
build's tree writes it; --examples DIR uses DIR for both. Each campaign runs in the folder above its examples/,
where a relative simulator command (examples/external/...) is found.

Overrides (--old-set/--new-set, repeatable) are appended to the --set list of one build only, after the
reductions, to compare across a renamed key: `key=value` applies to every example, `name:key=value` to the
example `name` only, and `@FILE` reads such overrides from FILE, one per line (blank lines and # comments are
skipped). Example: --old-set train.hidden=[16,16] --new-set train.network.head.hidden=[16,16], across the
rename of train.hidden to train.network.head.hidden.

What is compared, in every file of both campaign folders (a file present on one side only is a difference):
  *.h5    every group and dataset (present on both sides, same dtype and shape, the same raw bytes: NaNs
          compare by their bit patterns) and every attribute of the root, groups and datasets (same dtype and
          bytes for numbers, same text for strings), except SKIPPED_ATTRIBUTES; the attribute `summary` (the
          model's copy of train.json) is compared as a JSON summary below.
  *.json  every number, boolean and null, at the same key path, except keys matching SKIPPED_JSON_KEYS
          (measurements of time, memory and speed, and the digest of a text that holds paths); strings are
          not compared (paths, dates, versions, the text of the config).
  other   compared byte for byte.
Exit code: 0 when both builds produced the same bits, 1 on any difference, 2 when a run failed (its output is
printed) or on a usage error. The JSON report (--report, default benchmarks/results/compare_builds.json) lists
each run, each file's counts of compared items, the names of the attributes compared, and every difference.
"""

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

# Per example: the --set overrides that make it small (a few seconds a stage on 2 cores). Keys are those of
# docs/config.md; edit here when a key is renamed in both trees, or use --old-set/--new-set when only one is.
COMMON = ["simulate.n_samples=8192", "simulate.block_size=2048", "train.epochs=2",
          "train.diagnostics.n_events=200", "train.diagnostics.grid_points=2", "infer.posterior_samples=500"]
TOYS = ["calibrate.n_toys=20", "calibrate.toys_per_item=10", "coverage.n_toys=20", "coverage.toys_per_item=10",
        "test.n_toys=400", "test.toys_per_item=100"]
REDUCED = {
    "quickstart": ["simulate.reference.n_samples=8192", "infer.grid.mu2.points=9", "infer.grid.rho12.points=7",
                   "calibrate.grid.mu2.points=3", "calibrate.grid.rho12.points=3"],
    "spin_test": [],
    "lepton_mass": ["infer.grid.m.points=13", "calibrate.grid.m.points=3"],
    "lepton_spin": [],
    "particle_chain": ["infer.grid.kappa.points=9", "infer.grid.lambda.points=7",
                       "calibrate.grid.kappa.points=3", "calibrate.grid.lambda.points=3"],
    "external_simulator": ["infer.grid.mu.points=13", "calibrate.grid.mu.points=3"],
}

# HDF5 attributes not compared, and why: each records how a file was made, not what it holds.
SKIPPED_ATTRIBUTES = {
    "config": "the resolved campaign YAML: holds campaign.dir, which differs between the two runs",
    "identity": "YAML of what decides a file: holds the model's path and creation time (results.h5) and the "
                "datasets' paths (checkpoints); the values it decides are compared instead",
    "nsbi_version": "the version and git commit of the build",
    "created": "the time the file was made",
    "host": "the host name",
    "command": "the command line (the build's path and the campaign folder)",
    "command_line": "the command line (the build's path and the campaign folder)",
    "resumed": "times and commands of resumed runs",
}
# JSON keys (fnmatch patterns on the last key of a path) whose numbers are not compared.
SKIPPED_JSON_KEYS = ["*seconds*", "*per_second*", "*_share", "*rss*", "created", "nsbi_version",
                     "identity_digest"]
MAX_LISTED = 20  # differences printed per file (the report has them all)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]) + "\n\n" + skipped_text())
    parser.add_argument("old_build", type=Path)
    parser.add_argument("new_build", type=Path)
    parser.add_argument("--keep", type=Path, help="keep the runs in DIR/old/<name> and DIR/new/<name> "
                        "(DIR must not exist or be empty)")
    parser.add_argument("--report", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "compare_builds.json")
    parser.add_argument("--np", type=int, default=2, help="MPI ranks of every run (default 2)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these examples")
    parser.add_argument("--examples", type=Path, help="the examples folder of both builds")
    parser.add_argument("--old-set", action="append", default=[], metavar="OVERRIDE")
    parser.add_argument("--new-set", action="append", default=[], metavar="OVERRIDE")
    return parser.parse_args()


def skipped_text():
    lines = ["HDF5 attributes not compared:"]
    lines += [f"  {name:13} {why}" for name, why in SKIPPED_ATTRIBUTES.items()]
    lines.append("JSON keys not compared: " + ", ".join(SKIPPED_JSON_KEYS) + " (times, speeds, memory, the "
                 "digest of the identity text)")
    return "\n".join(lines)


def usage_error(message):
    print(f"compare_builds: {message}", file=sys.stderr)
    sys.exit(2)


def examples_dir(build, forced):
    """The examples folder a build's runs use: --examples, or its source tree's (from CMakeCache.txt)."""
    if forced:
        return forced.resolve()
    cache = build / "CMakeCache.txt"
    if not cache.is_file():
        usage_error(f"{cache}: missing (not a configured build folder); give --examples DIR")
    for line in cache.read_text().splitlines():
        if line.startswith("CMAKE_HOME_DIRECTORY:"):
            return Path(line.split("=", 1)[1]) / "examples"
    usage_error(f"{cache}: no CMAKE_HOME_DIRECTORY; give --examples DIR")


def parse_overrides(items, names):
    """{example: [key=value, ...]} from --old-set/--new-set items; '*' holds those for every example."""
    lines = []
    for item in items:
        if item.startswith("@"):
            text = Path(item[1:]).read_text()
            lines += [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        else:
            lines.append(item)
    result = {"*": []}
    for line in lines:
        head, sep, _ = line.partition("=")
        if not sep:
            usage_error(f"override '{line}': expected key=value, name:key=value or @FILE")
        name, colon, key = head.partition(":")
        if colon and name not in names:
            usage_error(f"override '{line}': no example '{name}' (examples: {', '.join(names)})")
        result.setdefault(name if colon else "*", []).append(line[len(name) + 1:] if colon else line)
    return result


def run_campaign(build, config, out_dir, overrides, ranks):
    """nsbi run CONFIG of one build into out_dir; returns (exit code, seconds, output)."""
    command = ["mpirun", "-np", str(ranks), "--oversubscribe", str((build / "jobs" / "nsbi").resolve()), "run",
               str(config), "--output", str(out_dir)]
    for override in overrides:
        command += ["--set", override]
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    start = time.time()
    result = subprocess.run(command, cwd=config.parent.parent, env=env, capture_output=True, text=True)
    return result.returncode, time.time() - start, " ".join(command), result.stdout + result.stderr


def same_bits(a, b):
    """Whether two numpy values have the same dtype, shape and bytes (strings and objects: equal values)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind in "OSU":
        return a.tolist() == b.tolist()
    return a.tobytes() == b.tobytes()


def describe(value):
    value = np.asarray(value)
    text = f"{value.dtype}{list(value.shape)}"
    if value.size <= 4:
        text += " " + repr(value.tolist())[:80]
    return text


def compare_json_values(a, b, path, counts, differences):
    """Compares the numbers, booleans and nulls of two parsed JSON values, recursively."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if any(fnmatch.fnmatch(key, pattern) for pattern in SKIPPED_JSON_KEYS):
                continue
            if key not in a or key not in b:
                differences.append(f"{path}/{key}: only in {'new' if key not in a else 'old'}")
                continue
            compare_json_values(a[key], b[key], f"{path}/{key}", counts, differences)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            differences.append(f"{path}: {len(a)} elements in old, {len(b)} in new")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            compare_json_values(x, y, f"{path}[{i}]", counts, differences)
    elif isinstance(a, str) and isinstance(b, str):
        return
    else:
        counts["json_values"] += 1
        numbers = all(isinstance(v, float) for v in (a, b))
        if not (np.float64(a).tobytes() == np.float64(b).tobytes() if numbers else
                (type(a) is type(b) and a == b)):
            differences.append(f"{path}: old {a!r}, new {b!r}")


def compare_attributes(old, new, path, counts, differences, names):
    for name in sorted(set(old.attrs) | set(new.attrs)):
        if name in SKIPPED_ATTRIBUTES:
            counts["attributes_skipped"] += 1
            continue
        names.add(name)
        where = f"{path}@{name}"
        if name not in old.attrs or name not in new.attrs:
            differences.append(f"{where}: only in {'new' if name not in old.attrs else 'old'}")
            continue
        a, b = old.attrs[name], new.attrs[name]
        if name == "summary":
            compare_json_values(json.loads(a), json.loads(b), where, counts, differences)
            continue
        counts["attributes"] += 1
        if not same_bits(a, b):
            differences.append(f"{where}: old {describe(a)}, new {describe(b)}")


def compare_hdf5(old_path, new_path, counts, differences, attribute_names):
    with h5py.File(old_path, "r") as old, h5py.File(new_path, "r") as new:
        objects = {}
        for side, f in (("old", old), ("new", new)):
            names = [""]
            f.visit(names.append)
            for name in names:
                objects.setdefault(name, set()).add(side)
        for name in sorted(objects):
            path = "/" + name
            if objects[name] != {"old", "new"}:
                differences.append(f"{path}: only in {next(iter(objects[name]))}")
                continue
            a, b = old[path], new[path]
            if isinstance(a, h5py.Dataset) != isinstance(b, h5py.Dataset):
                differences.append(f"{path}: a dataset on one side, a group on the other")
                continue
            if isinstance(a, h5py.Dataset):
                counts["datasets"] += 1
                counts["values"] += int(a.size)
                x, y = a[()], b[()]
                if not same_bits(x, y):
                    differences.append(f"{path}: old {describe(x)}, new {describe(y)}" +
                                       mismatch_count(x, y))
            else:
                counts["groups"] += 1
            compare_attributes(a, b, path, counts, differences, attribute_names)


def mismatch_count(x, y):
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape or x.dtype != y.dtype or x.dtype.kind in "OSU" or x.size == 0:
        return ""
    unequal = x.reshape(-1).view(np.uint8).reshape(x.size, -1) != y.reshape(-1).view(np.uint8).reshape(y.size, -1)
    return f" ({int(unequal.any(axis=1).sum())} of {x.size} elements differ)"


def compare_folders(old_dir, new_dir):
    """{relative file: {"counts", "differences", "attributes_compared"}} for every file under either folder."""
    files = sorted({p.relative_to(d).as_posix() for d in (old_dir, new_dir) for p in d.rglob("*") if p.is_file()})
    result = {}
    for rel in files:
        counts = dict.fromkeys(["groups", "datasets", "values", "attributes", "attributes_skipped",
                                "json_values", "bytes"], 0)
        differences = []
        attribute_names = set()
        old_file, new_file = old_dir / rel, new_dir / rel
        if not old_file.is_file() or not new_file.is_file():
            differences.append(f"only in {'old' if old_file.is_file() else 'new'}")
        elif rel.endswith(".h5"):
            compare_hdf5(old_file, new_file, counts, differences, attribute_names)
        elif rel.endswith(".json"):
            compare_json_values(json.loads(old_file.read_text()), json.loads(new_file.read_text()), "",
                                counts, differences)
        else:
            counts["bytes"] = old_file.stat().st_size
            if old_file.read_bytes() != new_file.read_bytes():
                differences.append("the bytes differ")
        result[rel] = {"counts": {k: v for k, v in counts.items() if v}, "differences": differences}
        if attribute_names:
            result[rel]["attributes_compared"] = sorted(attribute_names)
    return result


def counts_text(counts):
    labels = {"datasets": "datasets", "values": "values", "attributes": "attrs", "json_values": "json numbers",
              "bytes": "bytes"}
    return ", ".join(f"{counts[k]} {label}" for k, label in labels.items() if counts.get(k))


def main():
    args = parse_args()
    builds = {"old": args.old_build.resolve(), "new": args.new_build.resolve()}
    for side, build in builds.items():
        if not (build / "jobs" / "nsbi").is_file():
            usage_error(f"{build}/jobs/nsbi: missing ({side} build)")
    examples = {side: examples_dir(build, args.examples) for side, build in builds.items()}
    names = sorted(p.stem for p in examples["new"].glob("*.yaml"))
    for name in names:
        if name not in REDUCED:
            usage_error(f"{examples['new']}/{name}.yaml has no entry in REDUCED (benchmarks/compare_builds.py): "
                        "add its reductions there")
    for name in args.only:
        if name not in names:
            usage_error(f"--only {name}: no such example (examples: {', '.join(names)})")
    names = [n for n in names if not args.only or n in args.only]
    extra = {"old": parse_overrides(args.old_set, names), "new": parse_overrides(args.new_set, names)}

    if args.keep:
        if args.keep.exists() and any(args.keep.iterdir()):
            usage_error(f"--keep {args.keep}: exists and is not empty; choose a new folder")
        root = args.keep.resolve()
    else:
        root = Path(tempfile.mkdtemp(prefix="compare_builds."))
    report = {"old_build": str(builds["old"]), "new_build": str(builds["new"]), "mpi_ranks": args.np,
              "skipped_attributes": SKIPPED_ATTRIBUTES, "skipped_json_keys": SKIPPED_JSON_KEYS,
              "examples": {}}
    failed = False
    try:
        for name in names:
            entry = report["examples"][name] = {"runs": {}}
            for side in ("old", "new"):
                config = examples[side] / f"{name}.yaml"
                if not config.is_file():
                    usage_error(f"{config}: missing ({side} tree)")
                overrides = COMMON + TOYS + REDUCED[name] + extra[side]["*"] + extra[side].get(name, [])
                code, seconds, command, output = run_campaign(builds[side], config, root / side / name,
                                                              overrides, args.np)
                entry["runs"][side] = {"command": command, "exit_code": code, "seconds": round(seconds, 1)}
                print(f"{name:20} {side}: exit {code}, {seconds:6.1f} s", flush=True)
                if code != 0:
                    print(output[-4000:], file=sys.stderr)
                    if not args.keep:
                        print("(rerun with --keep DIR to keep the campaign folders)", file=sys.stderr)
                    failed = True
            if not failed:
                entry["files"] = compare_folders(root / "old" / name, root / "new" / name)
            else:
                break
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    print(f"\n{'example':20} {'file':18} {'result':10} compared")
    total = 0
    for name, entry in report["examples"].items():
        for rel, item in entry.get("files", {}).items():
            n = len(item["differences"])
            total += n
            print(f"{name:20} {rel:18} {'same' if n == 0 else f'{n} DIFF':10} {counts_text(item['counts'])}")
            for line in item["differences"][:MAX_LISTED]:
                print(f"    {line}")
            if n > MAX_LISTED:
                print(f"    ... {n - MAX_LISTED} more in the report")
    report["differences"] = total
    report["identical"] = total == 0 and not failed
    os.makedirs(args.report.resolve().parent, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.report}")
    if failed:
        print("a run failed: not every example was compared", file=sys.stderr)
        return 2
    print("identical: every compared value has the same bits" if total == 0 else f"{total} difference(s)")
    return 0 if total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
