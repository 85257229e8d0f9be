#!/usr/bin/python3
"""scripts/nsbi_model.py (numpy) against nsbi's C++ log r on the files test_model_file_python_fixture wrote.

Usage: test_nsbi_model.py FIXTURE_DIR SCRIPT. The issue's acceptance bound is |numpy - C++| <= 1e-5 for every
row, for the ensemble and each member; it is checked through the module and through the command line.
"""

import importlib.util
import subprocess
import sys

import numpy as np

TOLERANCE = 1e-5


def main(directory, script):
    spec = importlib.util.spec_from_file_location("nsbi_model", script)
    nsbi_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nsbi_model)

    with open(f"{directory}/cases.txt") as f:
        cases = f.read().split()
    failures = []
    activations = set()
    residual_cases = 0
    for case in cases:
        model_path, events_path = f"{directory}/model_{case}.h5", f"{directory}/events_{case}.csv"
        expected = np.loadtxt(f"{directory}/expected_{case}.csv", delimiter=",", skiprows=1, ndmin=2)
        model = nsbi_model.load(model_path)
        activations.add(next(name for name, f in nsbi_model.ACTIVATIONS.items() if f is model.activation))
        residual_cases += model.residual
        x, theta = nsbi_model.read_events(events_path, model)
        results = {"ensemble": model.log_ratio(x, theta)}
        for k in range(len(model.members)):
            results[f"member {k}"] = model.log_ratio(x, theta, member=k)
        cli = subprocess.run([sys.executable, script, model_path, events_path, "--member", "1"],
                             capture_output=True, text=True, check=True)
        results["command line, member 1"] = np.array(cli.stdout.split(), dtype=np.float64)
        references = {"ensemble": expected[:, 0], "command line, member 1": expected[:, 2]}
        references.update({f"member {k}": expected[:, 1 + k] for k in range(len(model.members))})

        if expected.shape[1] != 1 + len(model.members) or np.ptp(expected[:, 0]) < 0.1:
            failures.append(f"{case}: the fixture is degenerate (shape {expected.shape})")
        for name, reference in references.items():
            same_rows = len(results[name]) == len(reference)
            deviation = np.max(np.abs(results[name] - reference)) if same_rows else np.inf
            print(f"{case:13s} {name:24s} max |numpy - C++| = {deviation:.2e}")
            if not deviation <= TOLERANCE:
                failures.append(f"{case}, {name}: {deviation:.3e} > {TOLERANCE}")
    if activations != set(nsbi_model.ACTIVATIONS):
        failures.append(f"the fixture covers the activations {sorted(activations)} only")
    if residual_cases == 0:
        failures.append("the fixture has no residual network")
    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
