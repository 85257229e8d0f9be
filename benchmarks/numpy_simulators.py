"""numpy versions of nsbi's built-in simulators (gaussian2d, spin3d, lepton; docs/simulators.md): the
peer baseline.

Written the way a physicist vectorises a simulator in a notebook: one np.random.Generator, whole arrays
drawn at once, masks for the branches. theta comes from each simulator's default proposal (uniform over
the domain, discrete hypotheses with equal probability), as nsbi's Proposal::default_for draws it.
Every function returns float64 arrays of shape (n, n_parameters) or (n, n_observables), the layout nsbi
writes to dataset.h5.

Import this module after pinning numpy to one thread (simulate_throughput.py does): the draws below are
single-threaded anyway, but the comparison is "per core" and must stay so.
"""

import numpy as np

PI = np.pi


# --- gaussian2d (section 1): x ~ N((0, mu2), [[1, rho12], [rho12, 1]]) ------------------------------------

def propose_gaussian2d(rng, n):
    return np.column_stack([rng.uniform(-1.0, 1.0, n), rng.uniform(-0.99, 0.99, n)])


def simulate_gaussian2d(rng, theta):
    mu2, rho = theta[:, 0], theta[:, 1]
    z1, z2 = rng.standard_normal((2, len(theta)))
    return np.column_stack([z1, mu2 + rho * z1 + np.sqrt(1.0 - rho * rho) * z2])


# --- spin3d (section 2): H0 correlated Gaussian + flat x3, H1 shifted Gaussian + modulated x3 ------------

def propose_spin3d(rng, n):
    return rng.integers(0, 2, n).astype(np.float64)[:, np.newaxis]


def simulate_spin3d(rng, theta):
    n = len(theta)
    spin1 = theta[:, 0] >= 0.5
    z1, z2 = rng.standard_normal((2, n))
    x1 = np.where(spin1, 0.25 + z1, z1)
    x2 = np.where(spin1, 1.5 * z2, 0.5 * z1 + np.sqrt(0.75) * z2)
    x3 = np.empty(n)
    x3[~spin1] = rng.uniform(-PI, PI, n - np.count_nonzero(spin1))
    # H1: density (1 + 0.3 sin 4 x3) / 2pi by rejection from the flat envelope, redrawing only the rejected.
    todo = np.flatnonzero(spin1)
    while todo.size:
        candidate = rng.uniform(-PI, PI, todo.size)
        accept = rng.uniform(size=todo.size) * 1.3 < 1.0 + 0.3 * np.sin(4.0 * candidate)
        x3[todo[accept]] = candidate[accept]
        todo = todo[~accept]
    return np.column_stack([x1, x2, x3])


# --- lepton (section 3): A -> mu nu, theta = (m, spin) -------------------------------------------------

def propose_lepton(rng, n):
    return np.column_stack([rng.uniform(400.0, 1000.0, n), rng.integers(0, 2, n).astype(np.float64)])


def simulate_lepton(rng, theta):
    n = len(theta)
    m = theta[:, 0]
    spin1 = theta[:, 1] >= 0.5
    pt_raw = rng.gamma(2.0, m / 5.0)
    alpha = np.clip(0.8 - 0.3 * (m - 400.0) / 600.0, 0.4, 0.8)
    met_raw = alpha * pt_raw * rng.normal(1.0, 0.2, n) + rng.gamma(2.0, 0.0375 * m)
    met_raw = np.maximum(met_raw, 0.0)
    muon_phi = rng.uniform(-PI, PI, n)
    muon_eta = rng.normal(0.0, 1.0 + (m - 400.0) / 600.0)
    delta_phi = np.empty(n)
    n_spin1 = np.count_nonzero(spin1)
    delta_phi[spin1] = rng.vonmises(PI, 2.5, n_spin1)
    delta_phi[~spin1] = rng.uniform(-PI, PI, n - n_spin1)
    met_phi = np.mod(muon_phi + delta_phi + PI, 2.0 * PI) - PI  # wrap into [-pi, pi)
    muon_pt = pt_raw * rng.normal(1.0, 0.05, n)
    met = met_raw * rng.normal(1.0, 0.08, n)
    return np.column_stack([muon_pt, muon_eta, muon_phi, met, met_phi])


SIMULATORS = {
    "gaussian2d": (propose_gaussian2d, simulate_gaussian2d),
    "spin3d": (propose_spin3d, simulate_spin3d),
    "lepton": (propose_lepton, simulate_lepton),
}


def simulate_block(rng, name, n):
    """theta from the default proposal and x from the simulator for n events: what one nsbi block does."""
    propose, simulate = SIMULATORS[name]
    theta = propose(rng, n)
    return theta, simulate(rng, theta)
