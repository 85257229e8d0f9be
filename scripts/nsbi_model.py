#!/usr/bin/python3
"""Evaluate log r(x | theta, theta0) from an nsbi model.h5 with numpy and h5py alone.

The file format is documented in docs/formats.md ("Model"); this module is that documentation as code.

    import nsbi_model
    model = nsbi_model.load("model.h5")
    log_r = model.log_ratio(x, theta)           # x [N, D] or [N, shape...], theta [N, P] or one point [P]
    log_r_k = model.log_ratio(x, theta, member=k)

Command line: nsbi_model.py MODEL.h5 EVENTS.csv [--member K] prints log r for every row of a CSV file whose
header names the model's observables and parameters (any order, extra columns ignored). A model of an array
observable (an image: the attribute observable_shape) takes x as [N, shape...] or flattened row-major [N, D];
CSV holds tabular events only, so read_events (and the command line) refuse such a model.

The math is float64 on the stored float32 weights (converted exactly), so this gives the network's value up
to float64 rounding. nsbi's C++ evaluation runs the same network in float32 and differs from it by float32
rounding only: at most 6e-6 for a 4 x 512 relu network with |log r| <= 7, under 1e-6 for 3 x 64 networks
(tests/kernels/test_nsbi_model.py checks |numpy - C++| <= 1e-5). Computing in float32 here would not agree
better: numpy sums in another order, so it would add its own float32 rounding to nsbi's.
"""

import argparse
import sys

import h5py
import numpy as np


def _sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))  # 1 / (1 + e^-z) without overflow


ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0.0),
    "silu": lambda z: z * _sigmoid(z),
    "tanh": np.tanh,
    "softplus": lambda z: np.logaddexp(0.0, z),  # log(1 + e^z) without overflow
}


class Model:
    """One model.h5: an ensemble of K networks on the standardised inputs (observables, then parameters)."""

    def __init__(self, path):
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != "nsbi-model" or f.attrs.get("complete") != 1:
                raise ValueError(f"{path}: not a complete nsbi model file")
            if f.attrs["format_version"] != 1:
                raise ValueError(f"{path}: format_version {f.attrs['format_version']}, this script reads 1")
            arch = f["architecture"].attrs
            self.observable_names = list(f.attrs["observable_names"])
            # An array observable's shape (empty for tabular x); its D values come first, flattened row-major.
            self.observable_shape = tuple(int(n) for n in f.attrs.get("observable_shape", []))
            self.n_observables = (int(np.prod(self.observable_shape)) if self.observable_shape
                                  else len(self.observable_names))
            self.parameter_names = list(f.attrs["parameter_names"])
            self.input_order = list(arch["input_order"])
            self.activation = ACTIVATIONS[arch["activation"]]
            # Residual blocks: hidden layers past the first add their input (absent: a plain MLP).
            self.residual = int(arch.get("residual", 0)) == 1
            self.mean = f["standardization/mean"][:]
            self.scale = f["standardization/scale"][:]
            n_layers = len(arch["hidden"]) + 1
            # members[k] = [(W_0, b_0), ..., (W_L, b_L)] with W_l [out, in], as float64.
            self.members = [
                [(f[f"members/{k}/layer_{l}/weight"][:].astype(np.float64),
                  f[f"members/{k}/layer_{l}/bias"][:].astype(np.float64)) for l in range(n_layers)]
                for k in range(f.attrs["n_members"])
            ]

    def member_log_ratios(self, x, theta):
        """log r of every member, [N, K]."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.n_observables)
        theta = np.broadcast_to(np.asarray(theta, dtype=np.float64), (len(x), len(self.parameter_names)))
        a = (np.hstack([x, theta]) - self.mean) / self.scale  # columns in input_order: x, then theta
        return np.stack([self._logit(layers, a) for layers in self.members], axis=1)

    def _logit(self, layers, a):
        for l, (weight, bias) in enumerate(layers[:-1]):
            a = (a if self.residual and l > 0 else 0.0) + self.activation(a @ weight.T + bias)
        weight, bias = layers[-1]
        return (a @ weight.T + bias)[:, 0]

    def log_ratio(self, x, theta, member=None):
        """log r of one member, or of the ensemble: log mean_k exp(log r_k), by log-sum-exp."""
        logits = self.member_log_ratios(x, theta)
        if member is not None:
            return logits[:, member]
        largest = logits.max(axis=1)
        return largest + np.log(np.mean(np.exp(logits - largest[:, None]), axis=1))


def load(path):
    try:
        return Model(path)
    except (OSError, KeyError) as error:  # not HDF5, truncated, or a dataset missing
        raise ValueError(f"{path}: not a readable nsbi model ({error})") from None


def read_events(path, model):
    """The CSV's observable and parameter columns, chosen by the header's names."""
    if model.observable_shape:
        raise ValueError(f"{path}: the model's observable '{model.observable_names[0]}' is an array of shape "
                         f"{list(model.observable_shape)}, which a CSV file cannot hold: call "
                         "log_ratio(x, theta) with x [N, shape...] from Python")
    with open(path) as f:
        header = [name.strip() for name in f.readline().split(",")]
        rows = np.loadtxt(f, delimiter=",", ndmin=2)
    missing = [n for n in model.input_order if n not in header]
    if missing:
        raise ValueError(f"{path}: no column for {', '.join(missing)}")

    def columns(names):
        return rows[:, [header.index(n) for n in names]]

    return columns(model.observable_names), columns(model.parameter_names)


def main(argv):
    parser = argparse.ArgumentParser(description="Print log r(x | theta, theta0) for each row of a CSV file.")
    parser.add_argument("model", help="model.h5 written by nsbi train")
    parser.add_argument("events", help="CSV file, header naming the observables and parameters")
    parser.add_argument("--member", type=int, help="one ensemble member instead of the ensemble")
    args = parser.parse_args(argv)
    try:
        model = load(args.model)
        x, theta = read_events(args.events, model)
    except (OSError, ValueError) as error:
        sys.exit(f"nsbi_model.py: {error}")
    for value in model.log_ratio(x, theta, member=args.member):
        print(f"{value:.12g}")


if __name__ == "__main__":
    main(sys.argv[1:])
