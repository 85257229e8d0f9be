#!/usr/bin/python3
"""Plot an nsbi campaign: PNGs and an index.html from results.h5, model.h5 and the stage summaries.

    scripts/plot_report.py CAMPAIGN_DIR [--output DIR]      (default DIR: CAMPAIGN_DIR/report)

Reads CAMPAIGN_DIR/results.h5 (docs/formats.md, "Results"), CAMPAIGN_DIR/model.h5 (training history and
/diagnostics/calibration, "Model") and CAMPAIGN_DIR/<stage>.json ("Stage summaries"). Each plot is made only
when its data is there, so a campaign that ran some stages gets the plots of those. numpy, h5py and matplotlib
only. Exit codes: 0 done, 2 no results.h5 (or not an nsbi results file).
"""

import argparse
import html
import json
import math
import os
import statistics
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

STAGES = ["simulate", "train", "infer", "test", "calibrate", "coverage"]
COLOURS = {"learned": "tab:blue", "exact": "tab:orange"}


def chi2_quantile(level, dof):
    """The chi-square quantile of the Wilks thresholds: closed forms for 1 and 2 degrees of freedom."""
    if dof <= 0:
        return 0.0
    if dof == 1:
        return statistics.NormalDist().inv_cdf((1.0 + level) / 2.0) ** 2
    if dof == 2:
        return -2.0 * math.log(1.0 - level)
    # Wilson-Hilferty: within 1% for dof >= 3 (7.78 for 7.81 at 95%, dof 3), enough for a line on a plot.
    z = statistics.NormalDist().inv_cdf(level)
    return dof * (1.0 - 2.0 / (9.0 * dof) + z * math.sqrt(2.0 / (9.0 * dof))) ** 3


def text_list(values):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def colour(name, index):
    return COLOURS.get(name, f"C{index + 2}")


def level_label(level):
    return f"{100 * level:.4g}%"


class Report:
    def __init__(self, campaign, output):
        self.campaign = campaign
        self.output = output
        self.figures = {stage: [] for stage in STAGES}  # stage -> [(file, caption)]
        self.summaries = {}
        for stage in STAGES:
            path = os.path.join(campaign, stage + ".json")
            if os.path.exists(path):
                try:
                    with open(path) as f:
                        self.summaries[stage] = json.load(f)
                except (OSError, ValueError) as error:
                    print(f"plot_report: warning: cannot read {path}: {error}", file=sys.stderr)

    def save(self, fig, stage, name, caption):
        fig.tight_layout()
        fig.savefig(os.path.join(self.output, name), dpi=110)
        plt.close(fig)
        self.figures[stage].append((name, caption))

    def parameter_order(self, results):
        """The campaign's parameter order: the HDF5 grid groups list their axes alphabetically, not in order."""
        if "infer" in results and "parameters" in results["infer"].attrs:
            return text_list(results["infer"].attrs["parameters"])
        if "simulate" in self.summaries and "parameters" in self.summaries["simulate"]:
            return list(self.summaries["simulate"]["parameters"])
        model = os.path.join(self.campaign, "model.h5")
        if os.path.exists(model):
            with h5py.File(model, "r") as f:
                if "parameter_names" in f.attrs:
                    return text_list(f.attrs["parameter_names"])
        return []

    def grid_axes(self, group, order):
        """[(name, values)] of group/grid in the campaign's order (the last axis varies fastest)."""
        names = list(group["grid"].keys())
        ranked = [n for n in order if n in names] + sorted(n for n in names if n not in order)
        return [(n, group["grid"][n][()]) for n in ranked]

    # ---------------------------------------------------------------- infer
    def infer(self, g, order):
        estimators = text_list(g.attrs.get("estimators", [k for k in g.keys() if k not in ("grid", "observed")]))
        estimators = [e for e in estimators if e in g]
        if not estimators:
            return
        parameters = text_list(g.attrs["parameters"]) if "parameters" in g.attrs else order
        interest = text_list(g.attrs.get("parameters_of_interest", parameters))
        axes = {n: g["grid"][n][()] for n in g["grid"].keys()}
        varying = [n for n in interest if len(axes[n]) > 1]  # the axes of poi_q that are not a single value

        # q over the parameters of interest with the Wilks regions.
        first = g[estimators[0]]
        levels = list(first.attrs.get("levels", []))
        dof = int(first.attrs.get("dof", len(varying)))
        thresholds = [chi2_quantile(level, dof) for level in levels]
        if len(varying) == 2 and "poi_q" in first:
            xa, ya = varying
            index = [interest.index(xa), interest.index(ya)]
            for e in estimators:
                q = np.squeeze(g[e]["poi_q"][()]) if "poi_q" in g[e] else None
                if q is None or q.ndim != 2:
                    continue
                if index[0] > index[1]:
                    q = q.T
                fig, ax = plt.subplots(figsize=(6, 5))
                top = max(np.nanmax(q[np.isfinite(q)]) if np.isfinite(q).any() else 1.0, 1e-9)
                filled = ax.contourf(axes[xa], axes[ya], q.T, levels=np.linspace(0, min(top, 4 * max(thresholds + [1])),
                                                                                  30), extend="max", cmap="viridis_r")
                fig.colorbar(filled, ax=ax, label="q = t − t_min")
                lines = ax.contour(axes[xa], axes[ya], q.T, levels=sorted(thresholds), colors="white",
                                   linestyles=["-", "--", ":"][:len(thresholds)])
                ax.clabel(lines, fmt={t: level_label(l) for t, l in zip(thresholds, levels)}, fontsize=8)
                self.mark_best(ax, g[e], parameters, [xa, ya], "red", e)
                ax.set_xlabel(xa)
                ax.set_ylabel(ya)
                ax.set_title(f"infer: q ({e}), Wilks regions, dof {dof}")
                ax.legend(loc="upper right", fontsize=8)
                self.save(fig, "infer", f"infer_q_{e}.png", f"q of the {e} estimator, Wilks regions at "
                          + ", ".join(f"{level_label(l)} (q ≤ {t:.3g})" for l, t in zip(levels, thresholds)))
            if len(estimators) > 1:
                fig, ax = plt.subplots(figsize=(6, 5))
                handles = []
                for i, e in enumerate(estimators):
                    if "poi_q" not in g[e]:
                        continue
                    q = np.squeeze(g[e]["poi_q"][()])
                    if index[0] > index[1]:
                        q = q.T
                    ax.contour(axes[xa], axes[ya], q.T, levels=sorted(thresholds), colors=colour(e, i),
                               linestyles=["-", "--", ":"][:len(thresholds)])
                    handles.append(plt.Line2D([], [], color=colour(e, i), label=f"{e} regions"))
                    self.mark_best(ax, g[e], parameters, [xa, ya], colour(e, i), e)
                ax.legend(handles=handles + ax.get_legend_handles_labels()[0], fontsize=8)
                ax.set_xlabel(xa)
                ax.set_ylabel(ya)
                ax.set_title("infer: Wilks regions, " + " vs ".join(estimators) + " (solid 68%, dashed 95%)")
                self.save(fig, "infer", "infer_q_overlay.png",
                          "Wilks regions of the estimators overlaid (line styles: the levels in order), "
                          "best fits marked")
        elif len(varying) == 1 and "poi_q" in first:
            name = varying[0]
            fig, ax = plt.subplots(figsize=(6, 4))
            for i, e in enumerate(estimators):
                if "poi_q" in g[e]:
                    ax.plot(axes[name], np.ravel(g[e]["poi_q"][()]), color=colour(e, i), label=e)
            for level, t in zip(levels, thresholds):
                ax.axhline(t, color="grey", ls=":", lw=1)
                ax.text(axes[name][0], t, f" {level_label(level)}", va="bottom", fontsize=8, color="grey")
            ax.set_ylim(0, max(thresholds + [1]) * 2.5)
            ax.set_xlabel(name)
            ax.set_ylabel("q")
            ax.set_title(f"infer: q, dof {dof}")
            ax.legend()
            self.save(fig, "infer", "infer_q.png", "q over the parameter of interest with the Wilks thresholds")

        # 1-D profiles (the other parameters of interest profiled) and their intervals.
        one_dof = [chi2_quantile(level, 1) for level in levels]
        for name in interest:
            if not any(f"profile/{name}" in g[e] for e in estimators):
                continue
            fig, ax = plt.subplots(figsize=(6, 4))
            for i, e in enumerate(estimators):
                if f"profile/{name}" not in g[e]:
                    continue
                ax.plot(axes[name], g[e][f"profile/{name}"][()], color=colour(e, i), label=e)
                if f"intervals/{name}" in g[e]:
                    bounds = g[e][f"intervals/{name}"][()]
                    for l, (low, high) in enumerate(bounds):
                        style = ["-", "--", ":"][l % 3]
                        for b in (low, high):
                            if np.isfinite(b):
                                ax.axvline(b, color=colour(e, i), ls=style, lw=0.8, alpha=0.7)
            for level, t in zip(levels, one_dof):
                ax.axhline(t, color="grey", ls=":", lw=1)
                ax.text(axes[name][0], t, f" {level_label(level)}", va="bottom", fontsize=8, color="grey")
            ax.set_ylim(0, max(one_dof + [1]) * 2.5)
            ax.set_xlabel(name)
            ax.set_ylabel("profiled q")
            ax.set_title(f"infer: profile of {name}")
            ax.legend()
            self.save(fig, "infer", f"infer_profile_{name}.png",
                      f"profile of {name} (the other parameters of interest profiled) with the dof-1 thresholds; "
                      "vertical lines: the outermost interval ends per level (solid, dashed, dotted in level order)")

        # Posterior samples.
        sampled = [e for e in estimators if "posterior_samples" in g[e]]
        if sampled:
            columns = [i for i, n in enumerate(parameters) if len(axes.get(n, [0, 1])) > 1]
            if len(columns) >= 2:
                a, b = columns[:2]
                fig, plots = plt.subplots(1, len(sampled), figsize=(5 * len(sampled), 4.5), squeeze=False)
                for ax, e in zip(plots[0], sampled):
                    s = g[e]["posterior_samples"][()]
                    ax.hist2d(s[:, a], s[:, b], bins=[min(60, 2 * len(axes[parameters[a]])),
                                                      min(60, 2 * len(axes[parameters[b]]))], cmap="Blues")
                    self.mark_best(ax, g[e], parameters, [parameters[a], parameters[b]], "red", "best fit")
                    ax.set_xlabel(parameters[a])
                    ax.set_ylabel(parameters[b])
                    ax.set_title(f"posterior samples ({e}, {len(s)})")
                    ax.legend(fontsize=8)
                self.save(fig, "infer", "infer_posterior_2d.png", "posterior samples (flat prior on the grid)")
            fig, plots = plt.subplots(1, max(1, len(columns)), figsize=(5 * max(1, len(columns)), 3.8),
                                      squeeze=False)
            for ax, c in zip(plots[0], columns or [0]):
                for i, e in enumerate(sampled):
                    s = g[e]["posterior_samples"][()]
                    ax.hist(s[:, c], bins=40, histtype="step", density=True, color=colour(e, i), label=e)
                ax.set_xlabel(parameters[c])
                ax.set_ylabel("density")
                ax.legend()
            fig.suptitle("infer: marginal posteriors from the samples")
            self.save(fig, "infer", "infer_posterior_1d.png", "marginal posterior of each varying parameter")

    @staticmethod
    def mark_best(ax, estimator_group, parameters, names, col, label):
        if "best_fit" not in estimator_group:
            return
        best = estimator_group["best_fit"][()]
        try:
            point = [best[parameters.index(n)] for n in names]
        except (ValueError, IndexError):
            return
        ax.plot(*point, marker="*", ms=12, color=col, mec="black", ls="", label=f"{label} best fit")

    # ---------------------------------------------------------------- test
    def test(self, g):
        estimators = [e for e in text_list(g.attrs.get("estimators", list(g.keys()))) if e in g and "t_h0" in g[e]]
        if not estimators:
            return
        by_estimator = self.summaries.get("test", {}).get("results_by_estimator", {})
        fig, plots = plt.subplots(1, len(estimators), figsize=(5.5 * len(estimators), 4), squeeze=False)
        for ax, e in zip(plots[0], estimators):
            h0, h1 = g[e]["t_h0"][()], g[e]["t_h1"][()]
            values = np.concatenate([h0, h1])
            values = values[np.isfinite(values)]
            bins = np.linspace(values.min(), values.max(), 60) if values.size else 10
            ax.hist(h0, bins=bins, histtype="step", color="tab:blue", label="t under H0")
            ax.hist(h1, bins=bins, histtype="step", color="tab:red", label="t under H1")
            if "t_observed" in g[e].attrs:
                s = by_estimator.get(e, {})
                label = f"t_obs = {g[e].attrs['t_observed']:.3g}"
                if "p_value_h0" in s:
                    label += f"\np(H0) = {s['p_value_h0']['value']:.3g} ± {s['p_value_h0']['standard_error']:.2g}"
                if "p_value_h1" in s:
                    label += f"\np(H1) = {s['p_value_h1']['value']:.3g} ± {s['p_value_h1']['standard_error']:.2g}"
                ax.axvline(g[e].attrs["t_observed"], color="black", lw=1.5, label=label)
            ax.set_xlabel("t = −2 Σ log r(x | H1) / r(x | H0)")
            ax.set_ylabel("toys")
            ax.set_title(f"test: {e}")
            ax.legend(fontsize=8)
        self.save(fig, "test", "test_t.png", "the test statistic under H0 and H1, observed value and p-values")

    # ---------------------------------------------------------------- calibrate
    def calibrate(self, g, order):
        estimators = [e for e in text_list(g.attrs.get("estimators", [])) if e in g and "thresholds" in g[e]]
        if not estimators or "grid" not in g:
            return
        summary = self.summaries.get("calibrate", {}).get("results_by_estimator", {})
        belt_order = list(next(iter(summary.values()), {}).get("belts", [{}])[0].get("theta", {}).keys())
        axes = self.grid_axes(g, belt_order or order)
        levels = list(g.attrs.get("levels", []))
        dof = int(g.attrs.get("dof", 0))
        wilks = [chi2_quantile(level, dof) for level in levels]
        shape = [len(v) for _, v in axes]
        varying = [i for i, n in enumerate(shape) if n > 1]
        if len(varying) == 1:
            name, theta = axes[varying[0]]
            fig, plots = plt.subplots(1, len(levels), figsize=(5.5 * len(levels), 4), squeeze=False)
            for l, ax in enumerate(plots[0]):
                for i, e in enumerate(estimators):
                    c = g[e]["thresholds"][()][:, l]
                    ax.plot(theta, c, color=colour(e, i), label=f"c_α ({e})")
                    if "observed_q" in g[e]:
                        q = g[e]["observed_q"][()]
                        ax.plot(theta, q, color=colour(e, i), ls="--", lw=1, label=f"observed q ({e})")
                        inside = q <= c
                        ax.fill_between(theta, 0, 1, where=inside, transform=ax.get_xaxis_transform(),
                                        color=colour(e, i), alpha=0.12, label=f"confidence set ({e})")
                ax.axhline(wilks[l], color="grey", ls=":", label=f"Wilks {wilks[l]:.3g}")
                ax.set_ylim(0, max([wilks[l]] + [np.nanmax(g[e]["thresholds"][()][:, l]) for e in estimators]) * 1.6)
                ax.set_xlabel(name)
                ax.set_ylabel("q")
                ax.set_title(f"calibrate: Neyman belt at {level_label(levels[l])}")
                ax.legend(fontsize=7)
            self.save(fig, "calibrate", "calibrate_belt.png",
                      "the Neyman threshold c_α(θ) against the Wilks threshold; shaded: the observed confidence set")
        elif len(varying) == 2:
            (xa, xv), (ya, yv) = axes[varying[0]], axes[varying[1]]
            for i, e in enumerate(estimators):
                c_all = g[e]["thresholds"][()]
                q = g[e]["observed_q"][()].reshape(shape).squeeze() if "observed_q" in g[e] else None
                fig, plots = plt.subplots(1, len(levels), figsize=(5.5 * len(levels), 4.5), squeeze=False)
                for l, ax in enumerate(plots[0]):
                    c = c_all[:, l].reshape(shape).squeeze()  # [x, y]: the last axis varies fastest
                    ratio = c / wilks[l] if wilks[l] > 0 else c
                    mesh = ax.pcolormesh(xv, yv, ratio.T, shading="nearest", cmap="RdBu_r",
                                         vmin=0.5 if wilks[l] > 0 else None, vmax=1.5 if wilks[l] > 0 else None)
                    fig.colorbar(mesh, ax=ax, label="c_α / Wilks" if wilks[l] > 0 else "c_α")
                    if q is not None:
                        inside = (q <= c).astype(float)
                        if inside.any():
                            ax.contourf(xv, yv, inside.T, levels=[0.5, 1.5], colors="none", hatches=["//"])
                            ax.contour(xv, yv, inside.T, levels=[0.5], colors="black", linewidths=1.2)
                    ax.set_xlabel(xa)
                    ax.set_ylabel(ya)
                    ax.set_title(f"{e}, {level_label(levels[l])}: c_α / {wilks[l]:.3g}; hatched: observed set",
                                 fontsize=9)
                self.save(fig, "calibrate", f"calibrate_belt_{e}.png",
                          f"{e}: the Neyman threshold over the Wilks threshold per level (1 = Wilks holds), "
                          "and the observed confidence set (q_obs ≤ c_α)")

    # ---------------------------------------------------------------- coverage
    def coverage(self, g, order):
        estimators = [e for e in text_list(g.attrs.get("estimators", [])) if e in g]
        if "theta_true" in g:
            self.posterior_checks(g, estimators)
        methods = [m for m in text_list(g.attrs.get("methods", [])) if m in ("wilks", "neyman")]
        if not estimators or not methods or "grid" not in g:
            return
        summary = self.summaries.get("coverage", {}).get("results_by_estimator", {})
        first_points = next(iter(next(iter(summary.values()), {}).values()), {}).get("points", [])
        axes = self.grid_axes(g, list(first_points[0]["theta"].keys()) if first_points else order)
        levels = list(g.attrs.get("levels", []))
        n_toys = int(g.attrs.get("n_toys", 0))
        shape = [len(v) for _, v in axes]
        varying = [i for i, n in enumerate(shape) if n > 1]
        n_points = int(np.prod(shape))
        if len(varying) == 1:
            x = axes[varying[0]][1]
            xlabel = axes[varying[0]][0]
        else:
            x = np.arange(n_points, dtype=float)
            xlabel = "θ* point index (" + ", ".join(n for n, _ in axes) + "; last varies fastest)"
        fig, plots = plt.subplots(1, len(levels), figsize=(max(6, 0.5 * n_points + 3) * min(len(levels), 2), 4.2),
                                  squeeze=False)
        series = [(e, m) for e in estimators for m in methods if f"{m}/covered" in g[e]]
        width = (x[1] - x[0] if len(x) > 1 else 1.0) * 0.5 / max(1, len(series))
        for l, ax in enumerate(plots[0]):
            for s, (e, m) in enumerate(series):
                counts = g[e][f"{m}/covered"][()][l]
                cov = counts / n_toys if n_toys else counts
                rows = summary.get(e, {}).get(m, {}).get("points", [])
                offset = (s - (len(series) - 1) / 2) * width
                style = dict(marker="o" if m == "wilks" else "s", ls="", ms=4, capsize=2,
                             color=colour(e, estimators.index(e)), mfc="white" if m == "neyman" else None,
                             label=f"{e}, {m}")
                if len(rows) == len(levels) * n_points:  # JSON rows: the level outermost, then the points
                    band = np.array([rows[l * n_points + k]["clopper_pearson_95"] for k in range(n_points)])
                    ax.errorbar(x + offset, cov, yerr=[cov - band[:, 0], band[:, 1] - cov], **style)
                else:
                    ax.errorbar(x + offset, cov, **style)
            ax.axhline(levels[l], color="black", ls="--", lw=1, label=f"nominal {level_label(levels[l])}")
            if len(varying) != 1 and n_points <= 40:
                ticks = np.stack(np.meshgrid(*[v for _, v in axes], indexing="ij"), axis=-1).reshape(n_points, -1)
                ax.set_xticks(x)
                ax.set_xticklabels([f"{k}\n(" + ", ".join(f"{v:.3g}" for v in t) + ")" for k, t in enumerate(ticks)],
                                   fontsize=7)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"coverage ({n_toys} toys)")
            ax.set_title(f"coverage at {level_label(levels[l])} (95% Clopper–Pearson bars)")
            ax.legend(fontsize=7)
        self.save(fig, "coverage", "coverage.png", "coverage per true point, method and estimator")

    def posterior_checks(self, g, estimators):
        """Rank histograms (SBC) per estimator and parameter, and the expected-coverage curve."""
        names = text_list(g.attrs.get("parameters", []))
        samples, bins = int(g.attrs["sbc_samples"]), int(g.attrs["sbc_bins"])
        runs = int(g.attrs["sbc_runs"])
        summary = self.summaries.get("coverage", {}).get("results_by_estimator", {})
        with_ranks = [e for e in estimators if "sbc/histogram" in g[e]]
        if with_ranks:
            fig, plots = plt.subplots(len(with_ranks), len(names), figsize=(3.6 * len(names), 3 * len(with_ranks)),
                                      squeeze=False)
            expected = runs / bins
            # The band a uniform histogram's bins fall in 99 % of the time each (normal approximation).
            half = 2.576 * np.sqrt(expected * (1 - 1 / bins))
            for i, e in enumerate(with_ranks):
                histogram = g[e]["sbc/histogram"][()]
                p_values = g[e]["sbc/p_value"][()]
                for p, name in enumerate(names):
                    ax = plots[i][p]
                    ax.axhspan(expected - half, expected + half, color="0.85", label="uniform, 99% per bin")
                    ax.bar(np.arange(bins), histogram[p], width=0.9, color=colour(e, estimators.index(e)))
                    ax.axhline(expected, color="black", lw=1)
                    ax.set_title(f"{e}: {name} (χ² p = {p_values[p]:.3g})", fontsize=9)
                    ax.set_xlabel(f"rank bin ({(samples + 1) // bins} of the {samples + 1} ranks each)")
                    ax.set_ylabel(f"runs (of {runs})")
                    ax.legend(fontsize=7)
            self.save(fig, "coverage", "sbc_ranks.png",
                      f"SBC rank histograms: θ* from the prior ranked among {samples} posterior samples, {runs} runs")
        with_coverage = [e for e in estimators if "expected_coverage/covered" in g[e]]
        if with_coverage:
            levels = np.array(g.attrs["expected_coverage_levels"], dtype=float)
            fig, ax = plt.subplots(figsize=(5, 4.6))
            ax.plot([0, 1], [0, 1], color="black", ls="--", lw=1, label="nominal")
            for e in with_coverage:
                cov = g[e]["expected_coverage/covered"][()] / runs
                rows = summary.get(e, {}).get("expected_coverage", {}).get("points", [])
                style = dict(marker="o", ms=4, capsize=2, color=colour(e, estimators.index(e)), label=e)
                if len(rows) == len(levels):
                    band = np.array([r["clopper_pearson_95"] for r in rows])
                    ax.errorbar(levels, cov, yerr=[cov - band[:, 0], band[:, 1] - cov], **style)
                else:
                    ax.errorbar(levels, cov, **style)
            ax.set_xlabel("credibility level of the HPD region")
            ax.set_ylabel(f"fraction of {runs} runs with θ* inside")
            ax.set_title("expected coverage (95% Clopper–Pearson bars)")
            ax.legend(fontsize=7)
            self.save(fig, "coverage", "expected_coverage.png",
                      "expected coverage of the posterior's highest-density regions (below the diagonal: "
                      "overconfident)")

    # ---------------------------------------------------------------- train
    def train(self, model_path):
        with h5py.File(model_path, "r") as f:
            if "history" in f and len(f["history"]):
                fig, ax = plt.subplots(figsize=(6, 4))
                for k in sorted(f["history"].keys(), key=lambda s: int(s) if s.isdigit() else s):
                    h = f["history"][k]
                    epoch = h["epoch"][()] if "epoch" in h else np.arange(len(h["train_loss"]))
                    if "train_loss" in h:
                        ax.plot(epoch, h["train_loss"][()], color=f"C{int(k) % 10}", label=f"member {k} train")
                    if "validation_loss" in h:
                        ax.plot(epoch, h["validation_loss"][()], color=f"C{int(k) % 10}", ls="--",
                                label=f"member {k} validation")
                ax.set_xlabel("epoch")
                ax.set_ylabel("loss")
                ax.set_title("train: loss per epoch")
                ax.legend(fontsize=7)
                self.save(fig, "train", "train_loss.png", "training and validation loss of each ensemble member")
            if "diagnostics/calibration" in f:
                c = f["diagnostics/calibration"][()]  # centre, mean prediction, class-1 fraction, count
                fig, (ax, ax2) = plt.subplots(2, 1, figsize=(5.5, 6), sharex=True,
                                              gridspec_kw={"height_ratios": [3, 1]})
                ok = c[:, 3] > 0
                ax.plot([0, 1], [0, 1], color="grey", ls=":", label="perfect calibration")
                ax.plot(c[ok, 1], c[ok, 2], marker="o", label="held-out examples")
                ax.set_ylabel("fraction of class 1 (classes weighted equally)")
                ax.set_title("train: calibration curve")
                ax.legend(fontsize=8)
                ax2.bar(c[:, 0], c[:, 3], width=0.09, color="tab:grey")
                ax2.set_yscale("log" if (c[:, 3] > 0).any() else "linear")
                ax2.set_xlabel("predicted probability σ(log r̂)")
                ax2.set_ylabel("examples")
                ax2.set_xlim(0, 1)
                self.save(fig, "train", "train_calibration.png",
                          "calibration curve of the classifier on held-out data (counts per bin below)")

    # ---------------------------------------------------------------- index.html
    def key_numbers(self, stage, s):
        rows = []

        def add(key, value):
            if isinstance(value, float):
                value = f"{value:.6g}"
            rows.append((key, value if isinstance(value, str) else json.dumps(value)))

        for key in ("simulator", "seed", "mpi_ranks", "created", "nsbi_version"):
            if key in s:
                add(key, s[key])
        if stage == "simulate":
            for part in ("dataset", "reference", "observed"):
                if part in s:
                    add(f"{part}: n_samples", s[part].get("n_samples"))
                    add(f"{part}: events/s", s[part].get("events_per_second"))
        elif stage == "train":
            for key in ("ensemble", "reference", "training_seconds", "samples_per_second", "peak_rss_mib_per_rank"):
                if key in s:
                    add(key, s[key])
            for k, m in s.get("members", {}).items():
                add(f"member {k}", f"{m.get('epochs')} epochs, final train loss {m.get('final_train_loss', 0):.5g}, "
                                   f"validation loss {m.get('final_validation_loss', 0):.5g}")
            for key, value in s.get("diagnostics", {}).items():
                add(f"diagnostics: {key}", value)
        elif stage == "infer":
            for e, r in s.get("results_by_estimator", {}).items():
                add(f"{e}: best fit", ", ".join(f"{k} = {v:.4g}" for k, v in r.get("best_fit", {}).items()))
                add(f"{e}: t_min", r.get("t_min"))
                for name, entry in r.get("intervals", {}).items():
                    parts = []
                    for lv in entry.get("levels", []):
                        pieces = " ∪ ".join(f"[{p['lower']:.4g}, {p['upper']:.4g}]" for p in lv.get("pieces", []))
                        parts.append(f"{level_label(lv['level'])}: {pieces or 'empty'}")
                    add(f"{e}: interval {name}", "; ".join(parts))
                for region in r.get("regions", []):
                    add(f"{e}: region {level_label(region['level'])}",
                        f"{region['grid_points']} grid points, volume {region['volume']:.4g}")
                for name, moments in r.get("posterior", {}).items():
                    if isinstance(moments, dict) and "mean" in moments:
                        add(f"{e}: posterior {name}", f"{moments['mean']:.4g} ± {moments['std']:.3g}")
            for key, value in s.get("comparison", {}).items():
                add(f"comparison: {key}", value)
        elif stage == "test":
            add("H0 / H1", f"{json.dumps(s.get('h0'))} / {json.dumps(s.get('h1'))}")
            add("events, toys per hypothesis", f"{s.get('n_events')}, {s.get('n_toys_per_hypothesis')}")
            for e, r in s.get("results_by_estimator", {}).items():
                if "t_observed" in r:
                    add(f"{e}: t_observed", r["t_observed"])
                for key in ("p_value_h0", "p_value_h1", "expected_p_value_h0_under_h1"):
                    if key in r:
                        add(f"{e}: {key}", f"{r[key]['value']:.4g} ± {r[key]['standard_error']:.2g} "
                                           f"({r[key]['count']}/{r[key]['n_toys']})")
                for key in ("significance_h0", "median_t_under_h1", "note"):
                    if key in r:
                        add(f"{e}: {key}", r[key])
        elif stage == "calibrate":
            for key in ("n_toys_per_point", "n_events", "grid_points", "dof"):
                if key in s:
                    add(key, s[key])
            for e, r in s.get("results_by_estimator", {}).items():
                belts = r.get("belts", [])
                for l, level in enumerate(r.get("levels", [])):
                    c = [b["c_alpha"][l] for b in belts]
                    f = [b["fraction_below_wilks"][l] for b in belts]
                    if c:
                        add(f"{e}: {level_label(level)}",
                            f"c_α in [{min(c):.4g}, {max(c):.4g}] (Wilks {r['wilks_thresholds'][l]:.4g}); "
                            f"mean fraction below Wilks {np.mean(f):.4g}")
                for cs in r.get("observed_confidence_sets", []):
                    text = f"{cs['grid_points_inside']} grid points"
                    if "pieces" in cs:
                        text += f"; {cs['parameter']} ∈ " + " ∪ ".join(
                            f"[{p['lower']:.4g}, {p['upper']:.4g}]" for p in cs["pieces"])
                    add(f"{e}: observed set {level_label(cs['level'])}", text)
        elif stage == "coverage":
            for key in ("n_toys_per_point", "n_events", "dof", "methods"):
                if key in s:
                    add(key, s[key])
            for e, by_method in s.get("results_by_estimator", {}).items():
                for m, r in by_method.items():
                    if m == "sbc":
                        for name, entry in r.get("parameters", {}).items():
                            add(f"{e}, sbc: {name}", f"χ² p = {entry['p_value']:.3g}")
                        add(f"{e}, sbc", r.get("verdict"))
                        continue
                    points = r.get("points", [])
                    for level in sorted({p["level"] for p in points}):
                        cov = [p["coverage"] for p in points if p["level"] == level]
                        add(f"{e}, {m}: {level_label(level)}",
                            f"mean coverage {np.mean(cov):.4g} over {len(cov)} points (range {min(cov):.3g}–"
                            f"{max(cov):.3g})")
                    add(f"{e}, {m}: consistent fraction", r.get("consistent_fraction"))
        return rows

    def write_index(self):
        out = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'><title>nsbi report</title>",
               "<style>body{font-family:sans-serif;margin:2em;max-width:1400px} table{border-collapse:collapse}"
               " td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;font-size:90%}"
               " img{max-width:100%;border:1px solid #ddd;margin:4px 0}</style></head><body>",
               f"<h1>nsbi report: {html.escape(os.path.abspath(self.campaign))}</h1>"]
        out.append("<p>Stages: " + ", ".join(f"<a href='#{s}'>{s}</a>" for s in STAGES
                                              if s in self.summaries or self.figures[s]) + "</p>")
        for stage in STAGES:
            if stage not in self.summaries and not self.figures[stage]:
                continue
            out.append(f"<h2 id='{stage}'>{stage}</h2>")
            if stage in self.summaries:
                link = os.path.relpath(os.path.join(self.campaign, stage + ".json"), self.output)
                out.append(f"<p><a href='{html.escape(link)}'>{stage}.json</a></p><table>")
                for key, value in self.key_numbers(stage, self.summaries[stage]):
                    out.append(f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(value))}</td></tr>")
                out.append("</table>")
            for name, caption in self.figures[stage]:
                out.append(f"<figure><a href='{name}'><img src='{name}' alt='{html.escape(caption)}'></a>"
                           f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        out.append("</body></html>")
        path = os.path.join(self.output, "index.html")
        with open(path, "w") as f:
            f.write("\n".join(out) + "\n")
        return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("campaign", metavar="CAMPAIGN_DIR", help="the campaign directory (campaign.dir)")
    parser.add_argument("--output", metavar="DIR", help="where to write the PNGs and index.html "
                                                        "(default: CAMPAIGN_DIR/report)")
    args = parser.parse_args(argv)
    results_path = os.path.join(args.campaign, "results.h5")
    if not os.path.isfile(results_path):
        print(f"plot_report: no results.h5 in '{args.campaign}': run an inference stage (infer, test, calibrate, "
              "coverage) of the campaign first", file=sys.stderr)
        return 2
    output = args.output or os.path.join(args.campaign, "report")
    os.makedirs(output, exist_ok=True)
    report = Report(args.campaign, output)
    try:
        results = h5py.File(results_path, "r")
    except OSError as error:
        print(f"plot_report: cannot open '{results_path}' as HDF5: {error}", file=sys.stderr)
        return 2
    with results:
        if results.attrs.get("format") != "nsbi-results":
            print(f"plot_report: '{results_path}' is not an nsbi results file (format attribute "
                  f"{results.attrs.get('format')!r})", file=sys.stderr)
            return 2
        order = report.parameter_order(results)
        for stage in ("infer", "test", "calibrate", "coverage"):
            if stage not in results:
                continue
            try:
                if stage == "test":
                    report.test(results[stage])
                else:
                    getattr(report, stage)(results[stage], order)
            except Exception as error:  # one stage's odd layout must not lose the other plots
                plt.close("all")
                print(f"plot_report: warning: {stage} plots skipped: {type(error).__name__}: {error}",
                      file=sys.stderr)
    model = os.path.join(args.campaign, "model.h5")
    if os.path.isfile(model):
        try:
            report.train(model)
        except Exception as error:
            plt.close("all")
            print(f"plot_report: warning: training plots skipped: {type(error).__name__}: {error}", file=sys.stderr)
    index = report.write_index()
    n = sum(len(v) for v in report.figures.values())
    print(f"plot_report: wrote {n} plot(s) and {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
