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
    t_beta = L.joint_score(120.0, -300.0, 0.05, -2.0 + offsets, host)[:, 1]
    for values in (L.nbar(0.05, -2.0 + offsets, host), t_beta):
        fit = np.polyval(np.polyfit(offsets / 3e-4, values, 2), offsets / 3e-4)
        worst = max(worst, float(np.max(np.abs(values - fit) / np.abs(values))))
    check("nbar and t_beta smooth through beta = -2", worst < 1e-8,
          f"largest relative residual of a quadratic {worst:.1e}")


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


# --- nsbi against the reference -------------------------------------------------------------------------

THETA0 = (0.05, -1.9)
OFFSET = (0.1, -0.05)  # a fixed source offset off both axes: mean images that tell x from y and their signs
# name: (theta of the dataset, theta of the reference dataset, host quantities fixed (values), rows, reference
# rows). The two near campaigns give E_theta0[exp(log r)] at their theta; "drawn" has the host drawn per image.
CAMPAIGNS = {
    "near_low": ((0.04, -1.95), THETA0, {"source_offset": (0.0, 0.0)}, 200, 1000),
    "near_high": ((0.07, -1.85), THETA0, {"source_offset": (0.0, 0.0)}, 200, 1000),
    "far": ((0.2, -1.5), (0.001, -2.5), {"source_offset": OFFSET}, 600, 400),
    "drawn": (THETA0, None, None, 400, 0),
}
SIMULATE_SECONDS = 60  # per campaign (each takes a few seconds): 4 of them stay within the CTest TIMEOUT
PULL = 4.0  # standard errors: ~30 pulls with fixed seeds, each false alarm at 6e-5 for a normal pull


def campaign_yaml(name, seed, work):
    theta, reference, fixed, rows, reference_rows = CAMPAIGNS[name]
    simulator = "{name: lensing}"
    if fixed is not None:
        x, y = fixed["source_offset"]
        simulator = ("{name: lensing, fixed: [lens_redshift, velocity_dispersion, source_offset], "
                     f"source_offset_x: {x}, source_offset_y: {y}}}")
    text = f"""campaign: {{seed: {seed}, dir: {work}/{name}}}
simulator: {simulator}
simulate:
  n_samples: {rows}
  block_size: 200
  proposal: {{f_sub: {{kind: fixed, value: {theta[0]}}}, beta: {{kind: fixed, value: {theta[1]}}}}}
"""
    if reference is not None:
        text += f"""  gold: true
  reference: {{theta: {{f_sub: {reference[0]}, beta: {reference[1]}}}, n_samples: {reference_rows}}}
"""
    return text


def descendants(pid):
    """The ids of every process below pid (from /proc)."""
    children = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def run_nsbi(nsbi, work):
    """Simulates every campaign with nsbi on 2 ranks (each within SIMULATE_SECONDS: a hung simulator fails the
    test instead of hanging the suite); returns {name: {"data"/"reference": arrays}}."""
    import h5py

    os.makedirs(work, exist_ok=True)
    mpiexec = os.environ.get("MPIEXEC", "mpiexec")
    out = {}
    for seed, name in enumerate(CAMPAIGNS, start=101):
        config = f"{work}/{name}.yaml"
        with open(config, "w") as f:
            f.write(campaign_yaml(name, seed, work))
        process = subprocess.Popen([mpiexec, "-np", "2", "--oversubscribe", nsbi, "simulate", config, "--force"])
        try:
            code = process.wait(timeout=SIMULATE_SECONDS)
        except subprocess.TimeoutExpired:
            for pid in [process.pid] + descendants(process.pid):
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            process.wait()
            raise SystemExit(f"FAIL nsbi simulate {config} did not finish in {SIMULATE_SECONDS} s")
        if code != 0:
            raise SystemExit(f"FAIL nsbi simulate {config} exited with {code}")
        out[name] = {}
        for part, file in (("data", "dataset.h5"), ("reference", "reference.h5")):
            if part == "reference" and CAMPAIGNS[name][1] is None:
                continue
            with h5py.File(f"{work}/{name}/{file}", "r") as h5:
                rows = {"x": h5["x"][...], "theta": h5["theta"][...]}
                if "gold" in h5:
                    rows.update(log_r=h5["gold/log_r"][...], score=h5["gold/score"][...],
                                gold_theta=h5["gold/theta"][...] if "theta" in h5["gold"] else rows["theta"],
                                theta0=h5["gold/log_r"].attrs["theta0"])
                out[name][part] = rows
    return out


PIXELS = (np.arange(64) + 0.5) * 0.1 - 3.2  # pixel centres (arcsec); rows are y, columns x
RADIUS = np.hypot(*np.meshgrid(PIXELS, PIXELS)).ravel()
RING = (RADIUS > 0.5) & (RADIUS < 1.1)  # the Einstein ring's pixels at the default host


def radial_profiles(images):
    """[N, 16]: each image's mean in annuli 0.2" wide about the lens (the last one takes the corners)."""
    index = np.minimum((RADIUS / 0.2).astype(int), 15)
    annuli = np.zeros((RADIUS.size, 16))
    annuli[np.arange(RADIUS.size), index] = 1.0 / np.bincount(index)[index]
    return images.reshape(len(images), -1) @ annuli


def coarse_cells(images):
    """[N, 16]: each image's mean in 4 x 4 cells of 16 x 16 pixels (1.6" square): with a source off both
    axes they tell x from y and their signs."""
    return images.reshape(len(images), 4, 16, 4, 16).mean(axis=(2, 4)).reshape(len(images), 16)


def chi2_two_samples(a, b):
    """chi^2 of the difference of the column means of two independent samples (rows: draws) with the
    covariance of that difference estimated from the samples (columns are strongly correlated: the host
    moves every pixel); returns (chi^2, dof, the normal pull of chi^2_dof by Wilson-Hilferty)."""
    difference = a.mean(axis=0) - b.mean(axis=0)
    covariance = np.cov(a, rowvar=False) / len(a) + np.cov(b, rowvar=False) / len(b)
    chi2 = float(difference @ np.linalg.solve(covariance, difference))
    dof = a.shape[1]
    pull = ((chi2 / dof) ** (1.0 / 3.0) - (1.0 - 2.0 / (9.0 * dof))) / math.sqrt(2.0 / (9.0 * dof))
    return chi2, dof, pull


def ring_excess_variance(images, poisson):
    """Mean over the ring's pixels of the variance of the expected counts across images (subtracting the
    Poisson variance, the mean, for observed images), with its standard error from 20 batches."""
    flat = images.reshape(len(images), -1)[:, RING]
    values = []
    for batch in np.array_split(flat, 20):
        excess = batch.var(axis=0, ddof=1) - (batch.mean(axis=0) if poisson else 0.0)
        values.append(excess.mean())
    return float(np.mean(values)), float(np.std(values, ddof=1) / math.sqrt(len(values)))


def pull_check(name, value, expected, error):
    pull = (value - expected) / error
    check(name, abs(pull) < PULL, f"{value:.5g} vs {expected:.5g} +- {error:.2g} ({pull:+.2f} sigma)")


def check_images(L, nsbi):
    """Mean images (radial profiles and all pixels) and the ring's variance, nsbi against numpy's expected
    images (no noise: the same mean, lower variance)."""
    rng = np.random.default_rng(29)
    fixed = dict(L.FIXED_HOST)
    cases = (("theta0, fixed host", nsbi["near_low"]["reference"], THETA0, fixed, 1000),
             ("(0.2, -1.5), offset source", nsbi["far"]["data"], (0.2, -1.5), dict(fixed, source_offset=OFFSET), 600),
             ("(0.001, -2.5), offset source", nsbi["far"]["reference"], (0.001, -2.5),
              dict(fixed, source_offset=OFFSET), 200),
             ("theta0, drawn host", nsbi["drawn"]["data"], THETA0, L.DRAWN_HOST, 400))
    for label, rows, theta, host, n in cases:
        theirs = rows["x"].astype(np.float64)
        check(f"{label}: nsbi's theta", np.all(rows["theta"] == np.array(theta)), str(rows["theta"][0]))
        check(f"{label}: nsbi's image shape", theirs.shape[1:] == (1, 64, 64), str(theirs.shape))
        ours = L.simulate(rng, theta, n, host, expected=True)[0]
        chi2, dof, pull = chi2_two_samples(radial_profiles(theirs), radial_profiles(ours))
        check(f"{label}: mean radial profile", pull < PULL, f"chi2 {chi2:.1f} / {dof} ({pull:+.2f} sigma)")
        chi2, dof, pull = chi2_two_samples(coarse_cells(theirs), coarse_cells(ours))
        check(f"{label}: mean image in 1.6\" cells", pull < PULL, f"chi2 {chi2:.1f} / {dof} ({pull:+.2f} sigma)")
        if label.startswith("theta0, fixed") or label.startswith("(0.2"):
            (a, da), (b, db) = ring_excess_variance(theirs, True), ring_excess_variance(ours, False)
            pull_check(f"{label}: ring variance beyond Poisson (subhalo deflections)", a, b, math.hypot(da, db))


def latents_from_gold(L, rows, host):
    """(n, S) of each row from nsbi's gold score at the row's theta: t_f = (n - nbar)/f_sub gives n, t_beta
    then gives S = sum ln(m/m0), both through the reference's formulas."""
    f_sub, beta = rows["theta"][:, 0], rows["theta"][:, 1]
    n = L.nbar(f_sub, beta, host) + f_sub * rows["score"][:, 0]
    count = np.round(n)
    zero_s = L.joint_score(count, 0.0, f_sub, beta, host)[:, 1]  # t_beta is S plus a function of n
    return n, count, rows["score"][:, 1] - zero_s


def mean_log_mass(beta, host):
    """E[ln(m/m0)] of one subhalo mass, dn/dm ~ m^beta on [m_min, 0.01 M200] (integrated by parts)."""
    g = beta + 1.0
    lo, hi = math.log(1e7 / 1e9), math.log(0.01 * float(host["m200"]) / 1e9)
    return (math.exp(g * hi) * hi - math.exp(g * lo) * lo) / (math.exp(g * hi) - math.exp(g * lo)) - 1.0 / g


def check_gold(L, nsbi):
    """Subhalo counts against Poisson(nbar) with the reference's nbar; the masses' mean log; nsbi's log r
    against the reference's log p(z|theta) on the recovered latents; E_theta0[exp(log r)] = 1."""
    host = L.host_properties(L.Z_LENS_FIXED, L.SIGMA_V_FIXED)
    for name, parts in nsbi.items():
        for part, rows in parts.items():
            if "score" not in rows:
                continue
            theta = tuple(rows["theta"][0])
            label = f"{name} {part} at {theta}"
            n, count, s = latents_from_gold(L, rows, host)
            nbar = float(L.nbar(*theta, host))
            worst = float(np.max(np.abs(n - count)))
            check(f"{label}: n = nbar + f_sub t_f is a whole number", worst < 1e-6 * nbar,
                  f"max distance {worst:.1e} (nbar {nbar:.3f}: nsbi's and numpy's nbar agree)")
            pull_check(f"{label}: mean subhalo count", count.mean(), nbar, math.sqrt(nbar / len(count)))
            # sample variance of a Poisson sample: variance (nbar + 2 nbar^2)/N
            pull_check(f"{label}: variance of the subhalo count", count.var(ddof=1), nbar,
                       math.sqrt((nbar + 2 * nbar * nbar) / len(count)))
            log_m = np.log(L.sample_masses(np.random.default_rng(3).uniform(size=100000), theta[1], host["m200"]) / 1e9)
            pull_check(f"{label}: mean ln(m/m0) of the subhalos", s.sum() / count.sum(),
                       mean_log_mass(theta[1], host), log_m.std() / math.sqrt(count.sum()))
            theta_g, theta0 = rows["gold_theta"], rows["theta0"]
            ours = (L.log_p_latent(count, s, theta_g[:, 0], theta_g[:, 1], host)
                    - L.log_p_latent(count, s, theta0[0], theta0[1], host))
            worst = float(np.max(np.abs(ours - rows["log_r"])))
            check(f"{label}: nsbi's gold log r = numpy's on (n, S)", worst < 1e-6, f"max |difference| {worst:.1e}")
            if part == "reference" and tuple(theta0) == THETA0:
                weight = np.exp(rows["log_r"])
                pull_check(f"E_theta0[exp(log r(theta={tuple(theta_g[0])}, theta0))]", weight.mean(), 1.0,
                           weight.std(ddof=1) / math.sqrt(len(weight)))


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
    if args.nsbi:
        nsbi = run_nsbi(args.nsbi, args.work)
        check_images(L, nsbi)
        check_gold(L, nsbi)
    print(f"{len(failures)} check(s) failed" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
