"""Four sbibm tasks written in numpy for benchmarks/sbibm_comparison.py: priors, simulators and the parameter
coordinates nsbi works in. Written from the definitions of the sbibm package (Lueckmann et al. 2021); only
sbibm's data files are read (observations, reference posteriors, bernoulli_glm's design matrix).

Every simulated row draws its noise from its own Philox stream keyed by (seed, row index), so a row does not
depend on how the rows are batched or on how many processes simulate them (docs/external_simulators.md).

nsbi's priors are independent per parameter. Three tasks have such priors (uniform boxes, an isotropic normal)
and nsbi works in their θ directly. bernoulli_glm's prior is a correlated normal N(0, Σ): nsbi works in
whitened coordinates u ~ N(0, I) with θ = L u (L the Cholesky factor of Σ); the simulator maps u to θ before
simulating and the posterior samples are mapped back the same way. The Jacobian of the map is constant, so
the posterior of u maps to the posterior of θ exactly.
"""

import numpy as np

# sbibm's noise scales are variances: its precision matrices are inverse(scale * I).
LINEAR_VARIANCE = 0.1


class Task:
    """One task: name, dimension, the box nsbi's θ lives in, and the priors and simulator in nsbi's θ."""

    def __init__(self, name, dim, low, high, prior_kind, prior_sd=None, data_dim=None):
        self.name = name
        self.dim = dim
        self.data_dim = data_dim or dim
        self.low = low  # the box of nsbi's θ: the simulator's domain, the proposal's and the prior's
        self.high = high
        self.prior_kind = prior_kind  # uniform or normal (mean 0, sd prior_sd, truncated to the box)
        self.prior_sd = prior_sd
        self.design = None  # bernoulli_glm: the design matrix [100, 10] and the prior's Cholesky factor
        self.chol = None

    def parameter_names(self):
        return [f"theta_{i + 1}" for i in range(self.dim)]

    def observable_names(self):
        return [f"x_{i + 1}" for i in range(self.data_dim)]

    def nsbi_prior(self):
        """The proposal (and prior) entry of every parameter of nsbi's config."""
        if self.prior_kind == "uniform":
            entry = f"{{kind: uniform, min: {self.low}, max: {self.high}}}"
        else:
            entry = f"{{kind: normal, mean: 0, sd: {self.prior_sd!r}, min: {self.low}, max: {self.high}}}"
        return {name: entry for name in self.parameter_names()}

    def sample_prior(self, rng, n):
        """θ in the task's own coordinates, n draws of its prior (for the sbi side)."""
        if self.prior_kind == "uniform":
            return rng.uniform(self.low, self.high, size=(n, self.dim))
        u = rng.standard_normal((n, self.dim))
        return self.to_task(u * self.prior_sd)

    def prior_covariance(self):
        """Σ of a normal prior in the task's coordinates (for the sbi side)."""
        if self.chol is not None:
            return self.chol @ self.chol.T
        return self.prior_sd ** 2 * np.eye(self.dim)

    def to_task(self, theta):
        """Maps nsbi's θ [n, dim] to the task's θ (the identity but for bernoulli_glm)."""
        return theta if self.chol is None else theta @ self.chol.T

    def simulate(self, theta, first_index, seed):
        """x [n, data_dim] for the task's θ [n, dim], row i from the stream (seed, first_index + i)."""
        n = len(theta)
        x = np.empty((n, self.data_dim))
        for i in range(n):
            rng = np.random.Generator(np.random.Philox(key=seed, counter=[first_index + i, 0, 0, 0]))
            x[i] = self._one(theta[i], rng)
        return x

    def _one(self, theta, rng):
        if self.name == "gaussian_mixture":
            # Equal mixture of N(θ, I) and N(θ, 0.01 I).
            scale = 1.0 if rng.uniform() < 0.5 else 0.1
            return theta + scale * rng.standard_normal(self.dim)
        if self.name in ("gaussian_linear", "gaussian_linear_uniform"):
            return theta + np.sqrt(LINEAR_VARIANCE) * rng.standard_normal(self.dim)
        # bernoulli_glm: spikes y_t ~ Bernoulli(σ(X θ)_t) over 100 steps; the summary is X^T y (the spike
        # count and the spike-triggered sums of the stimulus at lags 0 to 8, which is what sbibm's
        # convolution computes).
        rate = 1.0 / (1.0 + np.exp(-(self.design @ theta)))
        spikes = (rng.uniform(size=len(rate)) < rate).astype(float)
        return self.design.T @ spikes


def bernoulli_prior_covariance(dim=10):
    """Σ of bernoulli_glm's prior: its precision is 0.5 on the offset and FᵀF on the filter, F = D² +
    diag(√(i/M)) with D the first-difference matrix (a smoothness prior on the filter)."""
    m = dim - 1
    d = np.eye(m) - np.eye(m, k=-1)
    f = d @ d + np.diag(np.sqrt(np.arange(m) / m))
    precision = np.zeros((dim, dim))
    precision[0, 0] = 0.5
    precision[1:, 1:] = f.T @ f
    return np.linalg.inv(precision)


def make(name, design=None):
    """The task `name`; bernoulli_glm needs sbibm's design matrix [100, 10] (design_matrix.pt as numpy)."""
    if name == "gaussian_mixture":
        return Task(name, 2, -10.0, 10.0, "uniform")
    if name == "gaussian_linear_uniform":
        return Task(name, 10, -1.0, 1.0, "uniform")
    if name == "gaussian_linear":
        # N(0, 0.1 I) truncated to ±3 (9.5 standard deviations: no draw is ever lost).
        return Task(name, 10, -3.0, 3.0, "normal", prior_sd=float(np.sqrt(LINEAR_VARIANCE)))
    if name == "bernoulli_glm":
        # Whitened: u ~ N(0, I) truncated to ±6 (a mass of 2e-8 per parameter is cut).
        task = Task(name, 10, -6.0, 6.0, "normal", prior_sd=1.0)
        if design is None:
            raise ValueError("bernoulli_glm needs sbibm's design matrix")
        task.design = np.asarray(design, dtype=float)
        task.chol = np.linalg.cholesky(bernoulli_prior_covariance())
        return task
    raise ValueError(f"unknown task {name!r}")


TASKS = ["gaussian_mixture", "gaussian_linear_uniform", "bernoulli_glm", "gaussian_linear"]
