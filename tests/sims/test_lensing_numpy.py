#!/usr/bin/python3
"""The lensing simulator against its independent numpy reference (benchmarks/lensing_numpy.py).

Usage: test_lensing_numpy.py --module benchmarks/lensing_numpy.py [--nsbi NSBI --work DIR]

First the reference against itself: theta_E and nbar at the default host, its joint score against central
finite differences of its log p(z|theta) (also through beta = -2), one NFW deflection against the projected
mass integrated numerically, the mass sampler against its CDF. With --nsbi, `nsbi simulate` writes small
lensing campaigns (fixed host) into DIR and they are compared with the reference: mean images, the subhalo
counts against Poisson(nbar) with the reference's nbar, and E_theta0[exp(gold log r)] = 1. Every statistical
check has a fixed seed and a tolerance in standard errors of the samples compared.
"""

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"  # one thread each: the test shares 2 cores with the rest of the suite

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

failures = []
NODES = 400


def check(name, ok, detail):
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if not ok:
        failures.append(name)


def load_module(path):
    spec = importlib.util.spec_from_file_location("lensing_numpy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the reference against itself ------------------------------------------------------------------------


def check_defaults(L):
    host = L.host_properties(L.Z_LENS_FIXED, L.SIGMA_V_FIXED)
    theta_e, nbar = float(host["theta_e"]), float(L.nbar(*L.THETA_REFERENCE, host))
    check("theta_E at the default host", abs(theta_e - 0.76) < 0.01, f'{theta_e:.4f}" (about 0.76")')
    check("nbar(0.05, -1.9) at the default host", 90.0 < nbar < 110.0, f"{nbar:.2f} (about 100)")


def check_score(L):
    """Joint score = gradient of log p(z|theta), by central differences (error O(h^2) ~ 1e-10 relative)."""
    rng = np.random.default_rng(17)
    hosts = L.host_properties(np.array([L.Z_LENS_FIXED, 0.3, 0.9]), np.array([225.0, 160.0, 300.0]))
    worst = 0.0
    for f_sub, beta in ((0.05, -1.9), (0.2, -1.5), (0.001, -2.5), (0.1, -2.0), (0.1, -2.0 + 5e-5),
                        (0.1, -2.0 - 3e-4), (0.02, -1.999)):
        n = rng.poisson(L.nbar(f_sub, beta, hosts)).astype(np.float64)
        s = rng.normal(-3.0, 1.0, 3) * n
        score = L.joint_score(n, s, f_sub, beta, hosts)
        for k, h in ((0, 1e-5 * f_sub), (1, 1e-5)):
            step = np.array([h, 0.0]) if k == 0 else np.array([0.0, h])
            up = L.log_p_latent(n, s, f_sub + step[0], beta + step[1], hosts)
            down = L.log_p_latent(n, s, f_sub - step[0], beta - step[1], hosts)
            numeric = (up - down) / (2.0 * h)
            scale = np.maximum(np.abs(score[:, k]), 1.0 / (f_sub if k == 0 else 1.0))
            worst = max(worst, float(np.max(np.abs(score[:, k] - numeric) / scale)))
    check("joint score vs central differences of log p(z|theta)", worst < 1e-6, f"max relative error {worst:.1e}")


def check_beta_two(L):
    """nbar and t_beta are smooth through beta = -2, where the mass integral switches to its series at
    |beta + 2| = 1e-4: points on both sides of the switch lie on one quadratic (over +-3e-4 the cubic term
    is ~1e-10 relative; a wrong limit or series would leave a jump of order 1)."""
    host = L.host_properties(L.Z_LENS_FIXED, L.SIGMA_V_FIXED)
    offsets = np.array([-3e-4, -2e-4, -1.0001e-4, -0.9999e-4, -3e-5, 0.0, 2e-5, 0.9999e-4, 1.0001e-4, 3e-4])
    worst = 0.0
    for values in (L.nbar(0.05, -2.0 + offsets, host), L.joint_score(120.0, -300.0, 0.05, -2.0 + offsets, host)[:, 1]):
        fit = np.polyval(np.polyfit(offsets / 3e-4, values, 2), offsets / 3e-4)
        worst = max(worst, float(np.max(np.abs(values - fit) / np.abs(values))))
    check("nbar and t_beta smooth through beta = -2", worst < 1e-8, f"largest relative residual of a quadratic {worst:.1e}")


def gauss_legendre_log(function, lo, hi, nodes=NODES):
    """int_lo^hi function(t) dt by Gauss-Legendre in ln t."""
    v, w = np.polynomial.legendre.leggauss(nodes)
    a, b = math.log(lo), math.log(hi)
    t = np.exp(0.5 * (b - a) * v + 0.5 * (b + a))
    return 0.5 * (b - a) * np.sum(w * function(t) * t)


def check_nfw(L):
    """The deflection formula against alpha(theta) = M_2D(<R) / (pi Sigma_cr R^2) theta with R = D_l theta,
    M_2D the NFW mass in the cylinder of radius R, integrated numerically from the density:
    M_2D(<R) = M_3D(<R) + int_R^inf 4 pi r^2 rho(r) (1 - sqrt(1 - R^2/r^2)) dr."""
    host = L.host_properties(L.Z_LENS_FIXED, L.SIGMA_V_FIXED)
    d_l = float(host["d_lens"])
    sigma_cr = L.C_LIGHT ** 2 * host["d_source"] / (4 * math.pi * L.G_NEWTON * d_l * host["d_lens_source"])
    worst, normalisation = 0.0, 0.0
    for m in (1e7, 1e9, 2e11):
        c200 = float(L.concentration(m))
        r200 = (3.0 * m / (800.0 * math.pi * L.RHO_CRIT)) ** (1.0 / 3.0)
        r_s = r200 / c200
        rho_s = m / (4 * math.pi * r_s ** 3 * (math.log(1 + c200) - c200 / (1 + c200)))

        def rho(r):
            return rho_s / ((r / r_s) * (1.0 + r / r_s) ** 2)

        def m3d(radius):
            return gauss_legendre_log(lambda r: 4 * math.pi * r * r * rho(r), 1e-12 * r_s, radius)

        normalisation = max(normalisation, abs(m3d(r200) / m - 1.0))
        for theta in (0.003, 0.05, 0.3, 1.0, 4.0):
            radius = d_l * theta * L.ARCSEC
            # r = R / sin(phi), phi in (0, pi/2]: dr = R cos(phi) / sin(phi)^2 dphi, 1 - sqrt(...) = 1 - cos
            shell = gauss_legendre_log(
                lambda phi: 4 * math.pi * (radius / np.sin(phi)) ** 2 * rho(radius / np.sin(phi))
                * (1 - np.cos(phi)) * radius * np.cos(phi) / np.sin(phi) ** 2, 1e-12, math.pi / 2)
            m2d = m3d(radius) + shell
            expected = m2d / (math.pi * sigma_cr * radius ** 2) * theta
            got = float(L.nfw_deflection(theta, m, host))
            worst = max(worst, abs(got / expected - 1.0))
    check("NFW: M_3D(<r200) = m", normalisation < 1e-8, f"max relative error {normalisation:.1e}")
    check("NFW deflection vs numerical projected mass", worst < 1e-7, f"max relative error {worst:.1e}")


def check_masses(L):
    """Sampled subhalo masses against mass_cdf: Kolmogorov-Smirnov distance below its 99.9 % quantile."""
    host = L.host_properties(L.Z_LENS_FIXED, L.SIGMA_V_FIXED)
    rng = np.random.default_rng(5)
    n = 20000
    for beta in (-1.5, -2.0, -2.5):
        m = np.sort(L.sample_masses(rng.uniform(size=n), np.full(n, beta), np.full(n, host["m200"])))
        cdf = L.mass_cdf(m, beta, host)
        ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
        bound = 1.95 / math.sqrt(n)
        check(f"subhalo masses vs their CDF, beta = {beta}", ks < bound, f"KS distance {ks:.4f} < {bound:.4f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--module", required=True, help="benchmarks/lensing_numpy.py")
    parser.add_argument("--nsbi", help="the nsbi binary: also compare nsbi's lensing datasets")
    parser.add_argument("--work", help="scratch folder for nsbi's campaigns (with --nsbi)")
    args = parser.parse_args()
    L = load_module(args.module)

    check_defaults(L)
    check_score(L)
    check_beta_two(L)
    check_nfw(L)
    check_masses(L)
    print(f"{len(failures)} check(s) failed" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
