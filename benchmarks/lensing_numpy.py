#!/usr/bin/python3
"""numpy reference of nsbi's strong-lensing simulator `lensing` (docs/simulators.md): the independent
implementation the C++ simulator is checked against, and the peer baseline of its throughput.

float64 throughout, vectorised over a block of B images at once (arrays [B, ...]); the subhalos of a block
are laid out flat (image by image, ragged counts) and their deflections summed back per image by a matrix
product with the image-membership matrix. The PSF is applied by FFT (circular convolution with the 7x7
kernel), the noise by numpy's Generator. numpy is pinned to one thread: this module sets the thread
variables before it imports numpy, so import it before anything else imports numpy.

Importable: `simulate(rng, theta, n_images)` returns the images and their latents; `nbar`, `log_p_latent`,
`joint_score`, `nfw_deflection` and `host_properties` are the formulas the simulator and its gold use.

Command line:
  lensing_numpy.py simulate --theta F_SUB BETA --n N [--seed S] [--fixed NAME[=VALUE] ...] [--expected] --out F.npz
  lensing_numpy.py time [--theta F_SUB BETA] [--fixed ...] [--n N] [--blocks 1,2,4,...]   # ms per image by B
"""

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

# --- constants: Mpc, M_sun, km/s, arcsec ------------------------------------------------------------------

C_LIGHT = 299792.458  # km/s
G_NEWTON = 4.30091e-9  # Mpc (km/s)^2 / M_sun
H0 = 67.74  # km/s/Mpc
OMEGA_M = 0.3075
RHO_CRIT = 3.0 * H0 ** 2 / (8.0 * np.pi * G_NEWTON)  # M_sun / Mpc^3 at z = 0, used for every r200
ARCSEC = np.pi / (180.0 * 3600.0)  # radians
CONCENTRATION = (37.5153, -1.5093, 1.636e-2, 3.66e-4, -2.89237e-5, 5.32e-7)
Z_SOURCE = 1.5

# host population, and the values it is fixed at
LOG_Z_LENS_MEAN, LOG_Z_LENS_SIGMA = -0.25, 0.25
SIGMA_V_MEAN, SIGMA_V_SIGMA = 225.0, 50.0
OFFSET_SIGMA = 0.2
Z_LENS_FIXED, SIGMA_V_FIXED = 10.0 ** -0.25, 225.0
DRAWN_HOST = {}  # as nsbi by default: every host quantity drawn per image
FIXED_HOST = {"lens_redshift": Z_LENS_FIXED, "velocity_dispersion": SIGMA_V_FIXED, "source_offset": (0.0, 0.0)}

# subhalo population
M_MIN, M_PIVOT = 1e7, 1e9
M_MAX_FRACTION = 0.01
BETA_SERIES = 1e-4  # |beta + 2| below which the mass-integral factors use their series about beta = -2

# source, sky, exposure, pixels, PSF
SERSIC_RADIUS, SERSIC_B1 = 0.2, 1.67839
SOURCE_FLUX = 10.0 ** (-0.4 * (23.0 - 25.5))  # counts / s
SERSIC_AMPLITUDE = SOURCE_FLUX / (3.8 * np.pi * SERSIC_RADIUS ** 2)
SKY = 10.0 ** (-0.4 * (22.5 - 25.5))  # counts / s / arcsec^2
EXPOSURE, PIXEL = 1610.0, 0.1
N_PIXELS = 64
PIXEL_CENTRES = (np.arange(N_PIXELS) + 0.5) * PIXEL - 0.5 * N_PIXELS * PIXEL
PSF_SIGMA = 0.18 / 2.3548
PSF_HALF_WIDTH = 3

THETA_NAMES = ("f_sub", "beta")
THETA_REFERENCE = (0.05, -1.9)

# --- cosmology ----------------------------------------------------------------------------------------------

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(64)


def comoving_distance(z):
    """chi(z) = (c/H0) int_0^z dz'/E(z') in Mpc, flat LCDM, elementwise (64-point Gauss-Legendre)."""
    z = np.asarray(z, dtype=np.float64)
    zp = 0.5 * z[..., None] * (_GL_NODES + 1.0)
    inverse_e = 1.0 / np.sqrt(OMEGA_M * (1.0 + zp) ** 3 + (1.0 - OMEGA_M))
    return (C_LIGHT / H0) * 0.5 * z * (inverse_e @ _GL_WEIGHTS)


# --- halos ---------------------------------------------------------------------------------------------------


def concentration(m):
    """c200 of a halo of mass m (M_sun): the polynomial in ln(m h), h = 0.7."""
    log_m = np.log(np.asarray(m) * 0.7)
    return sum(c * log_m ** i for i, c in enumerate(CONCENTRATION))


def nfw_scale(m, d_lens):
    """(c200, r_s in Mpc, theta_s in arcsec) of a halo of mass m (M200, M_sun) at angular distance d_lens."""
    c200 = concentration(m)
    r200 = np.cbrt(3.0 * m / (4.0 * np.pi * 200.0 * RHO_CRIT))
    r_s = r200 / c200
    return c200, r_s, r_s / d_lens / ARCSEC


def nfw_projection(x):
    """ln(x/2) + F(x), F(x) = arctanh(sqrt(1-x^2))/sqrt(1-x^2) below 1, arctan(sqrt(x^2-1))/sqrt(x^2-1)
    above: the projected NFW mass within x = R/r_s in units of 4 pi rho_s r_s^3."""
    x = np.asarray(x, dtype=np.float64)
    x2 = x * x
    f = np.empty_like(x2)
    inside = x2 <= 1.0
    f[inside] = _projection_inside(x2[inside])
    s = np.sqrt(x2[~inside] - 1.0)
    f[~inside] = np.arctan(s) / s
    return np.log(0.5 * x) + f


def _projection_inside(x2):
    """F(x) for x^2 <= 1 from x^2: arctanh(s)/s, s = sqrt(1 - x^2), written as log1p(s (1 + s/(1+x)) / x)/s,
    which keeps its precision as x -> 0 (s -> 1) and as x -> 1 (s floored: F(1) = 1, the limit)."""
    s = np.sqrt(np.maximum(1.0 - x2, 1e-300))
    x = np.sqrt(x2)
    return np.log1p(s * (1.0 + s / (1.0 + x)) / x) / s


def sigma_crit(d_lens, d_source, d_lens_source):
    """Critical surface density c^2 D_s / (4 pi G D_l D_ls) in M_sun / Mpc^2."""
    return C_LIGHT ** 2 * d_source / (4.0 * np.pi * G_NEWTON * d_lens * d_lens_source)


def nfw_strength(m, d_lens, sig_crit):
    """(4 kappa_s theta_s in arcsec, theta_s in arcsec) of NFW halos of mass m: the deflection at
    x = R/r_s is 4 kappa_s theta_s [ln(x/2) + F(x)] / x."""
    c200, r_s, theta_s = nfw_scale(m, d_lens)
    rho_s = m / (4.0 * np.pi * r_s ** 3 * (np.log1p(c200) - c200 / (1.0 + c200)))
    kappa_s = rho_s * r_s / sig_crit
    return 4.0 * kappa_s * theta_s, theta_s


def nfw_deflection(radius, m, host):
    """Deflection magnitude (arcsec) of an NFW subhalo of mass m at angular distance radius (arcsec) from its
    centre, in the lens plane of host (a dict from host_properties)."""
    strength, theta_s = nfw_strength(m, host["d_lens"], host["sigma_crit"])
    x = radius / theta_s
    return strength * nfw_projection(x) / x


# --- host and the subhalo population --------------------------------------------------------------------------


def host_properties(z_lens, sigma_v):
    """Everything the subhalos, the lens equation and the gold need of a host (arrays broadcast together):
    distances, theta_E (arcsec), M200 (M_sun), the host's NFW theta_s (arcsec), Sigma_cr, and F_ROI, the
    host's projected-mass fraction within 2 theta_E."""
    z_lens, sigma_v = np.broadcast_arrays(np.asarray(z_lens, np.float64), np.asarray(sigma_v, np.float64))
    chi_l, chi_s = comoving_distance(z_lens), comoving_distance(Z_SOURCE)
    d_lens, d_source = chi_l / (1.0 + z_lens), chi_s / (1.0 + Z_SOURCE)
    d_lens_source = (chi_s - chi_l) / (1.0 + Z_SOURCE)
    theta_e = 4.0 * np.pi * (sigma_v / C_LIGHT) ** 2 * d_lens_source / d_source / ARCSEC
    m200 = 1e12 * 10.0 ** (0.09 + 3.48 * np.log10(sigma_v / 100.0))
    _, _, theta_s = nfw_scale(m200, d_lens)
    return {"z_lens": z_lens, "sigma_v": sigma_v, "d_lens": d_lens, "d_source": d_source,
            "d_lens_source": d_lens_source, "theta_e": theta_e, "m200": m200, "theta_s": theta_s,
            "sigma_crit": sigma_crit(d_lens, d_source, d_lens_source),
            "f_roi": nfw_projection(2.0 * theta_e / theta_s)}


def _mass_integrals(beta, m200):
    """(A, A'/A, B, d ln B / d beta) of the mass integrals in units of M_PIVOT: a = m_min/m0, b = m_max/m0,
    A = a^(beta+1) - b^(beta+1), B = (b^(beta+2) - a^(beta+2))/(beta+2), continuous through beta = -2."""
    ln_a = np.log(M_MIN / M_PIVOT)
    ln_b = np.log(M_MAX_FRACTION * m200 / M_PIVOT)
    g1 = beta + 1.0
    pa, pb = np.exp(g1 * ln_a), np.exp(g1 * ln_b)
    a_int = pa - pb
    a_log_derivative = (pa * ln_a - pb * ln_b) / a_int
    # With e = beta + 2, L = ln(b/a), y = e L: B = a^e L expm1(y)/y and
    # d ln B/d beta = ln a + L [1/(1 - exp(-y)) - 1/y], both with series for small |y|.
    e = beta + 2.0
    span = ln_b - ln_a
    y = e * span
    small = np.abs(e) < BETA_SERIES
    y_safe = np.where(small, 1.0, y)
    h = np.where(small, 1.0 + y * (0.5 + y / 6.0), np.expm1(y_safe) / y_safe)
    g = np.where(small, 0.5 + y / 12.0, 1.0 / -np.expm1(-y_safe) - 1.0 / y_safe)
    b_int = np.exp(e * ln_a) * span * h
    return a_int, a_log_derivative, b_int, ln_a + span * g


def nbar(f_sub, beta, host):
    """Expected number of subhalos within 2 theta_E of host (a dict from host_properties)."""
    a_int, _, b_int, _ = _mass_integrals(beta, host["m200"])
    return host["f_roi"] * f_sub * (host["m200"] / M_PIVOT) * a_int / ((-beta - 1.0) * b_int)


def mass_cdf(m, beta, host):
    """P(mass <= m) of one subhalo of host: dn/dm proportional to m^beta on [m_min, 0.01 M200]."""
    g1 = beta + 1.0
    lo, hi = M_MIN ** g1, (M_MAX_FRACTION * host["m200"]) ** g1
    m = np.clip(m, M_MIN, M_MAX_FRACTION * host["m200"])
    return (m ** g1 - lo) / (hi - lo)


def sample_masses(u, beta, m200):
    """Subhalo masses (M_sun) by inverse CDF from uniforms u (same shape as beta and m200)."""
    g1 = beta + 1.0
    lo, hi = (M_MIN / M_PIVOT) ** g1, (M_MAX_FRACTION * m200 / M_PIVOT) ** g1
    return M_PIVOT * (lo + u * (hi - lo)) ** (1.0 / g1)


def log_p_latent(n, s, f_sub, beta, host):
    """log p(z|theta) up to a theta-independent constant: the Poisson count n and the masses through
    S = sum_i ln(m_i/m0)."""
    a_int = _mass_integrals(beta, host["m200"])[0]
    expected = nbar(f_sub, beta, host)
    return n * np.log(expected) - expected + n * (np.log(-beta - 1.0) - np.log(a_int)) + beta * s


def joint_score(n, s, f_sub, beta, host):
    """(t_f, t_beta) = gradient of log p(z|theta) in (f_sub, beta), stacked on the last axis."""
    a_int, a_log_derivative, _, b_log_derivative = _mass_integrals(beta, host["m200"])
    expected = nbar(f_sub, beta, host)
    d_log_nbar = -1.0 / (beta + 1.0) + a_log_derivative - b_log_derivative
    t_f = (n - expected) / f_sub
    t_beta = (n - expected) * d_log_nbar + n * (1.0 / (beta + 1.0) - a_log_derivative) + s
    return np.stack(np.broadcast_arrays(t_f, t_beta), axis=-1)


# --- images --------------------------------------------------------------------------------------------------


def _psf_transform():
    """rfft2 of the 7x7 Gaussian PSF (7 taps per axis at whole-pixel offsets, normalised to sum 1) wrapped
    onto the 64x64 periodic grid."""
    offsets = np.arange(-PSF_HALF_WIDTH, PSF_HALF_WIDTH + 1)
    taps = np.exp(-(PIXEL * offsets) ** 2 / (2.0 * PSF_SIGMA ** 2))
    taps /= taps.sum()
    kernel = np.zeros((N_PIXELS, N_PIXELS))
    kernel[np.ix_(offsets % N_PIXELS, offsets % N_PIXELS)] = np.outer(taps, taps)
    return np.fft.rfft2(kernel)


PSF_FFT = _psf_transform()
_PIXEL_X = np.tile(PIXEL_CENTRES, N_PIXELS)  # flattened row-major: row = y, column = x
_PIXEL_Y = np.repeat(PIXEL_CENTRES, N_PIXELS)
SUBHALO_CHUNK = 16  # subhalos whose [chunk, 4096] arrays are evaluated at once (fastest of 4..128: cache)


def draw_hosts(rng, b, fixed):
    """z_l, sigma_v and the source offset [b, 2] of b images: each quantity named in `fixed` (a dict of
    lens_redshift, velocity_dispersion, source_offset to their values, see FIXED_HOST) is held at its value,
    the others are drawn per image."""
    if "lens_redshift" in fixed:
        z_lens = np.full(b, float(fixed["lens_redshift"]))
    else:
        z_lens = np.empty(b)
        todo = np.arange(b)
        while todo.size:  # z_l = 10^N(-0.25, 0.25), redrawn until <= 1
            z = 10.0 ** rng.normal(LOG_Z_LENS_MEAN, LOG_Z_LENS_SIGMA, todo.size)
            z_lens[todo] = z
            todo = todo[z > 1.0]
    if "velocity_dispersion" in fixed:
        sigma_v = np.full(b, float(fixed["velocity_dispersion"]))
    else:
        sigma_v = np.empty(b)
        todo = np.arange(b)
        while todo.size:  # sigma_v ~ N(225, 50) km/s, redrawn until > 0
            v = rng.normal(SIGMA_V_MEAN, SIGMA_V_SIGMA, todo.size)
            sigma_v[todo] = v
            todo = todo[v <= 0.0]
    if "source_offset" in fixed:
        offset = np.tile(np.asarray(fixed["source_offset"], np.float64), (b, 1))
    else:
        offset = rng.normal(0.0, OFFSET_SIGMA, (b, 2))
    return z_lens, sigma_v, offset


def subhalo_deflections(owner, x, y, m, host, n_images):
    """Summed deflection (alpha_x, alpha_y), each [n_images, 4096], of the subhalos at (x, y) of mass m
    belonging to image owner (flat arrays over the block's subhalos, sorted by owner)."""
    strength, theta_s = nfw_strength(m, host["d_lens"][owner], host["sigma_crit"][owner])
    # alpha_i = strength G(x)/x along (p - s_i)/r with G(x) = ln(x/2) + F(x), x = r/theta_s, so
    # alpha_i = coef_i (p - s_i) with coef_i = strength theta_s G / r^2. Everything from r^2 alone:
    # 2 G = ln(x^2/4) + 2 F(x), x^2 = r^2/theta_s^2 (nfw_projection, arranged for in-place arrays).
    half_strength = (0.5 * strength * theta_s)[:, None]
    inverse_area = (1.0 / theta_s ** 2)[:, None]
    weight = np.zeros((3, n_images, N_PIXELS * N_PIXELS))  # per image: sum coef, sum x_i coef, sum y_i coef
    shape = (min(SUBHALO_CHUNK, len(m)), N_PIXELS * N_PIXELS)
    r2, u, g, f = (np.empty(shape) for _ in range(4))
    bounds = np.searchsorted(owner, np.arange(n_images + 1))  # image i owns subhalos bounds[i]:bounds[i+1]
    with np.errstate(invalid="ignore"):  # NaN from sqrt(x^2 - 1) below x = 1 and 0/0 at 1: replaced below
        for start in range(0, len(m), SUBHALO_CHUNK):
            stop = min(start + SUBHALO_CHUNK, len(m))
            r2_, u_, g_, f_ = r2[:stop - start], u[:stop - start], g[:stop - start], f[:stop - start]
            np.subtract(_PIXEL_X, x[start:stop, None], out=u_)
            np.multiply(u_, u_, out=r2_)
            np.subtract(_PIXEL_Y, y[start:stop, None], out=u_)
            np.multiply(u_, u_, out=u_)
            np.add(r2_, u_, out=r2_)
            np.multiply(r2_, inverse_area[start:stop], out=u_)  # x^2
            np.multiply(u_, 0.25, out=g_)
            np.log(g_, out=g_)
            # F = arctan(s)/s, s = sqrt(x^2 - 1), above x = 1; below (the few pixels within theta_s of a
            # subhalo) as in nfw_projection
            inside = np.flatnonzero(u_ <= 1.0)
            f_inside = _projection_inside(u_.flat[inside])
            np.subtract(u_, 1.0, out=u_)
            np.sqrt(u_, out=f_)
            np.arctan(f_, out=u_)
            np.divide(u_, f_, out=f_)
            f_.flat[inside] = f_inside
            np.add(g_, f_, out=g_)
            np.add(g_, f_, out=g_)
            np.divide(g_, r2_, out=g_)
            np.multiply(g_, half_strength[start:stop], out=g_)  # coef
            # sum_i coef_i (p - s_i) per image = p sum_i coef_i - sum_i s_i coef_i: three vector-matrix
            # products per image present in this chunk
            for image in range(owner[start], owner[stop - 1] + 1):
                lo, hi = max(bounds[image], start), min(bounds[image + 1], stop)
                coef = g_[lo - start:hi - start]
                weight[0, image] += np.ones(hi - lo) @ coef
                weight[1, image] += x[lo:hi] @ coef
                weight[2, image] += y[lo:hi] @ coef
    return _PIXEL_X * weight[0] - weight[1], _PIXEL_Y * weight[0] - weight[2]


def simulate_block(rng, f_sub, beta, fixed, expected=False):
    """B images at parameters f_sub[B], beta[B]. Returns (images [B, 64, 64] float64: Poisson counts, or
    with expected=True the PSF-convolved expected counts without noise; latents: dict of n [B], s [B]
    (sum of ln(m/m0)), and the host's z_lens, sigma_v, offset [B, 2])."""
    b = len(f_sub)
    z_lens, sigma_v, offset = draw_hosts(rng, b, fixed)
    host = host_properties(z_lens, sigma_v)
    n = rng.poisson(nbar(f_sub, beta, host))
    owner = np.repeat(np.arange(b), n)
    masses = sample_masses(rng.uniform(size=owner.size), beta[owner], host["m200"][owner])
    radius = 2.0 * host["theta_e"][owner] * np.sqrt(rng.uniform(size=owner.size))
    angle = 2.0 * np.pi * rng.uniform(size=owner.size)
    sub_x, sub_y = radius * np.cos(angle), radius * np.sin(angle)
    alpha_x, alpha_y = subhalo_deflections(owner, sub_x, sub_y, masses, host, b)
    # lens equation with the SIS host at the origin, source plane position relative to the source centre
    r = np.sqrt(_PIXEL_X * _PIXEL_X + _PIXEL_Y * _PIXEL_Y)
    host_scale = host["theta_e"][:, None] / r
    bx = _PIXEL_X * (1.0 - host_scale) - alpha_x - offset[:, :1]
    by = _PIXEL_Y * (1.0 - host_scale) - alpha_y - offset[:, 1:]
    source = SERSIC_AMPLITUDE * np.exp(-SERSIC_B1 * (np.sqrt(bx * bx + by * by) / SERSIC_RADIUS - 1.0))
    mu = ((source + SKY) * (EXPOSURE * PIXEL * PIXEL)).reshape(b, N_PIXELS, N_PIXELS)
    blurred = np.fft.irfft2(np.fft.rfft2(mu) * PSF_FFT, s=(N_PIXELS, N_PIXELS))
    images = blurred if expected else rng.poisson(blurred).astype(np.float64)
    s = np.bincount(owner, weights=np.log(masses / M_PIVOT), minlength=b)
    return images, {"n": n, "s": s, "z_lens": z_lens, "sigma_v": sigma_v, "offset": offset}


DEFAULT_BLOCK = 8


def simulate(rng, theta, n_images, fixed=DRAWN_HOST, block=DEFAULT_BLOCK, expected=False):
    """n_images images at theta (2 numbers, or [n_images, 2]) in blocks of `block`: (images, latents) as
    simulate_block returns them, concatenated."""
    theta = np.broadcast_to(np.asarray(theta, np.float64), (n_images, 2))
    parts = [simulate_block(rng, theta[i:i + block, 0], theta[i:i + block, 1], fixed, expected)
             for i in range(0, n_images, block)]
    images = np.concatenate([p[0] for p in parts])
    latents = {key: np.concatenate([p[1][key] for p in parts]) for key in parts[0][1]}
    return images, latents


def time_blocks(blocks, n_images, theta=THETA_REFERENCE, fixed=DRAWN_HOST, repetitions=3, seed=1):
    """Best-of-repetitions milliseconds per image (with noise) for each block size; theta: 2 numbers or
    [n_images, 2]."""
    result = {}
    for block in blocks:
        best = np.inf
        for _ in range(repetitions):
            rng = np.random.default_rng(seed)
            start = time.perf_counter()
            simulate(rng, theta, n_images, fixed, block)
            best = min(best, time.perf_counter() - start)
        result[block] = 1e3 * best / n_images
    return result


def parse_fixed(items):
    """--fixed NAME[=VALUE] items (source_offset=X,Y) as draw_hosts takes them; a bare name: its default."""
    fixed = {}
    for item in items:
        name, _, value = item.partition("=")
        if name not in FIXED_HOST:
            raise SystemExit(f"--fixed: '{name}' is none of {', '.join(FIXED_HOST)}")
        if not value:
            fixed[name] = FIXED_HOST[name]
        elif name == "source_offset":
            fixed[name] = [float(v) for v in value.split(",")]
            if len(fixed[name]) != 2:
                raise SystemExit(f"--fixed: source_offset takes two numbers X,Y, not '{value}'")
        else:
            fixed[name] = float(value)
    return fixed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("simulate", help="images at one theta into an .npz (x, n, s, host)")
    run.add_argument("--theta", type=float, nargs=2, default=THETA_REFERENCE, metavar=("F_SUB", "BETA"))
    run.add_argument("--n", type=int, required=True)
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--fixed", nargs="*", default=[], metavar="NAME[=VALUE]",
                     help="host quantities held fixed (the others are drawn): lens_redshift, "
                          "velocity_dispersion, source_offset=X,Y; a bare name holds the default")
    run.add_argument("--expected", action="store_true", help="PSF-convolved expected counts, no noise")
    run.add_argument("--block", type=int, default=DEFAULT_BLOCK)
    run.add_argument("--out", required=True)
    timing = commands.add_parser("time", help="ms per image for each block size, one JSON line")
    timing.add_argument("--theta", type=float, nargs=2, default=THETA_REFERENCE, metavar=("F_SUB", "BETA"))
    timing.add_argument("--fixed", nargs="*", default=[], metavar="NAME[=VALUE]", help="as for simulate")
    timing.add_argument("--n", type=int, default=64)
    timing.add_argument("--blocks", default="1,2,4,8,16,32")
    args = parser.parse_args()
    if args.command == "simulate":
        images, latents = simulate(np.random.default_rng(args.seed), args.theta, args.n, parse_fixed(args.fixed),
                                   args.block, args.expected)
        np.savez(args.out, x=images[:, None] if args.expected else images.astype(np.float32)[:, None], **latents)
    else:
        blocks = [int(b) for b in args.blocks.split(",")]
        print(json.dumps({"ms_per_image": time_blocks(blocks, args.n, args.theta, parse_fixed(args.fixed))}))


if __name__ == "__main__":
    main()
