"""Virtual environments with today's PyPI packages for the benchmarks' baselines (PyTorch, sbi).

The peers a user would pick instead of nsbi come from PyPI, not from Debian: PyTorch with its CUDA wheels
takes about 6 GB, so each environment is created once in a cache folder outside the repository and reused
by every later run. The folder is $NSBI_BENCH_CACHE, else $XDG_CACHE_HOME/nsbi-benchmarks, else
~/.cache/nsbi-benchmarks. An environment is rebuilt only when its requirement list changes (a stamp file
inside it records the list it was built from).

Environments see the system's site packages (Debian's numpy and h5py), so the baselines read nsbi's HDF5
files with the same h5py the other scripts use; pip installs only what the requirements add or upgrade.

Usage from a benchmark script (run with /usr/bin/python3):
    python = pypi_env.ensure("torch", pypi_env.TORCH)
    subprocess.run([python, __file__, "--worker", ...])
"""

import json
import os
import subprocess
import sys
from pathlib import Path

# The PyTorch every comparison is anchored on: today's release from PyPI (issue 16), the same pin for every
# script so that they share one environment.
TORCH = ["torch==2.15.0"]


def cache_root():
    """The folder that holds the environments (created on first use)."""
    if os.environ.get("NSBI_BENCH_CACHE"):
        return Path(os.environ["NSBI_BENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nsbi-benchmarks"


def _run(command):
    print("pypi_env:", " ".join(command), flush=True)
    result = subprocess.run(command)
    if result.returncode != 0:
        sys.exit(f"pypi_env: '{' '.join(command)}' failed with exit code {result.returncode}")


def ensure(name, requirements, no_deps=()):
    """Returns the Python interpreter of environment `name` holding `requirements` (pip specifiers),
    creating or updating it first when its stamp differs. `no_deps` are installed without their
    dependencies (packages whose pins conflict with the others but whose data or modules are needed)."""
    root = cache_root() / name
    python = root / "bin" / "python"
    stamp_path = root / "nsbi-requirements.json"
    wanted = {"requirements": list(requirements), "no_deps": list(no_deps)}
    if python.exists() and stamp_path.exists() and json.loads(stamp_path.read_text()) == wanted:
        return str(python)
    root.parent.mkdir(parents=True, exist_ok=True)
    if not python.exists():
        _run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(root)])
    _run([str(python), "-m", "pip", "install", "--upgrade", *requirements])
    if no_deps:
        _run([str(python), "-m", "pip", "install", "--no-deps", *no_deps])
    stamp_path.write_text(json.dumps(wanted))
    return str(python)


def versions(python, modules):
    """{module: version} as the environment's interpreter reports them, for the results files."""
    code = ("import importlib, json, sys; print(json.dumps({m: importlib.import_module(m).__version__ "
            "for m in sys.argv[1:]}))")
    out = subprocess.run([python, "-c", code, *modules], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"pypi_env: cannot import {modules} in {python}:\n{out.stderr}")
    return json.loads(out.stdout)


def torch_build():
    """What the PyTorch of the running interpreter is built with, for the results files: its version, the
    oneDNN (MKL-DNN) it bundles and the CPU capability its kernels dispatch to (torch.__config__.show() has
    the whole build summary). Call it in the environment's interpreter (a worker), where torch imports."""
    import re

    import torch
    config = torch.__config__.show()
    onednn = re.search(r"(?:MKL-DNN|oneDNN)\s+(v[\w.]+)", config)
    return {"torch": torch.__version__, "onednn": onednn.group(1) if onednn else None,
            "mkldnn_available": torch.backends.mkldnn.is_available(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
