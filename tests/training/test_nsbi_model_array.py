#!/usr/bin/python3
"""scripts/nsbi_model.py with a model of an array observable (an image of shape [1, 2, 2]): x given as images
[N, 1, 2, 2] and flattened [N, 4] gives the same log r as a tabular model with the same weights and four named
observables, which is checked against a hand-computed one-layer network; read_events refuses the array model.

Usage: test_nsbi_model_array.py SCRIPT (writes its two small model files in a temporary folder).
"""

import importlib.util
import sys
import tempfile

import h5py
import numpy as np


def write_model(path, observable_names, observable_shape, weights):
    """A complete one-member model.h5 (docs/formats.md, "Model"): 4 observable values and 1 parameter, one
    hidden tanh layer of 3 units."""
    with h5py.File(path, "w") as f:
        f.attrs.update({"format": "nsbi-model", "format_version": 1, "complete": 1, "n_members": 1,
                        "observable_names": observable_names, "parameter_names": ["t"]})
        if observable_shape:
            f.attrs["observable_shape"] = np.array(observable_shape, dtype=np.float64)
        arch = f.create_group("architecture")
        arch.attrs.update({"hidden": [3.0], "activation": "tanh",
                           "input_order": [*observable_names, "t"]})
        f["standardization/mean"] = np.array([0.5, -1.0, 2.0, 0.0, 0.25])
        f["standardization/scale"] = np.array([2.0, 1.0, 0.5, 4.0, 1.0])
        for l, (weight, bias) in enumerate(weights):
            f[f"members/0/layer_{l}/weight"] = weight.astype(np.float32)
            f[f"members/0/layer_{l}/bias"] = bias.astype(np.float32)


def main(script):
    spec = importlib.util.spec_from_file_location("nsbi_model", script)
    nsbi_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nsbi_model)
    rng = np.random.default_rng(3)
    # float32-exact weights, so that the hand computation below uses the stored values.
    weights = [(rng.normal(size=(3, 5)).astype(np.float32), rng.normal(size=3).astype(np.float32)),
               (rng.normal(size=(1, 3)).astype(np.float32), rng.normal(size=1).astype(np.float32))]
    failures = []
    with tempfile.TemporaryDirectory() as directory:
        write_model(f"{directory}/image.h5", ["image"], [1, 2, 2], weights)
        write_model(f"{directory}/tabular.h5", ["a", "b", "c", "d"], [], weights)
        image = nsbi_model.load(f"{directory}/image.h5")
        tabular = nsbi_model.load(f"{directory}/tabular.h5")
        images = rng.normal(size=(7, 1, 2, 2))
        theta = rng.normal(size=(7, 1))
        flat = images.reshape(7, 4)
        inputs = (np.hstack([flat, theta]) - [0.5, -1.0, 2.0, 0.0, 0.25]) / [2.0, 1.0, 0.5, 4.0, 1.0]
        hidden = np.tanh(inputs @ weights[0][0].astype(np.float64).T + weights[0][1])
        expected = (hidden @ weights[1][0].astype(np.float64).T + weights[1][1])[:, 0]
        if image.observable_shape != (1, 2, 2) or image.n_observables != 4:
            failures.append(f"shape {image.observable_shape}, {image.n_observables} values")
        for name, got in [("images", image.log_ratio(images, theta)), ("flattened", image.log_ratio(flat, theta)),
                          ("tabular", tabular.log_ratio(flat, theta))]:
            deviation = np.max(np.abs(got - expected))
            print(f"{name:10s} max |nsbi_model - by hand| = {deviation:.2e}")
            if not deviation <= 1e-12:  # the same float64 operations up to summation order
                failures.append(f"{name}: {deviation:.3e}")
        with open(f"{directory}/events.csv", "w") as f:
            f.write("image,t\n1,2\n")
        try:
            nsbi_model.read_events(f"{directory}/events.csv", image)
            failures.append("read_events accepted a CSV file for an array model")
        except ValueError as error:
            if "array of shape [1, 2, 2]" not in str(error):
                failures.append(f"read_events: unclear error: {error}")
    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
