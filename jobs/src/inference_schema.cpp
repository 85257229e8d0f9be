#include "nsbi/jobs/inference_schema.hpp"

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "nsbi/inference/prior.hpp"
#include "nsbi/jobs/inference_config.hpp"

namespace nsbi::jobs {
namespace {

using config::Key;
using config::Type;

// The estimators a stage may list.
const std::vector<std::string> estimators = {"learned", "exact"};

// <section>.grid.<parameter>.{min,max,points,values}: the θ points a stage uses along each parameter.
void declare_grid(config::Schema& schema, const std::string& section, const sims::SimulatorInfo& sim,
                  const std::string& purpose, int default_points) {
  for (const auto& p : sim.parameters) {
    const std::string prefix = section + ".grid." + p.name;
    if (p.is_discrete()) {
      schema.add(Key(prefix + ".values", Type::number_list,
                     purpose + ": the hypotheses of " + p.name + " to use (default: all of them)")
                     .as_optional());
      continue;
    }
    schema.add(Key(prefix + ".min", Type::number,
                   purpose + ": lowest " + p.name + " (default: the lower end of the model's training range)")
                   .as_optional());
    schema.add(
        Key(prefix + ".max", Type::number,
            purpose + ": highest " + p.name + " (default: the upper end of the model's training range)")
            .as_optional());
    schema.add(Key(prefix + ".points", Type::integer, purpose + ": evenly spaced points from min to max")
                   .with_default(YAML::Node(default_points))
                   .minimum(1)
                   .maximum(100000));
    schema.add(Key(prefix + ".values", Type::number_list,
                   purpose + ": explicit increasing values of " + p.name + " (instead of min/max/points)")
                   .as_optional());
  }
}

void declare_point(config::Schema& schema, const std::string& section, const sims::SimulatorInfo& sim,
                   const std::string& doc) {
  for (const auto& p : sim.parameters)
    schema.add(config::Key(section + "." + p.name, config::Type::number, doc).as_optional());
}

// infer.posterior and infer.mcmc: the posterior on the grid, or by Markov chains without one. Optional, their
// defaults applied where they are read (mcmc_settings): a campaign that does not name them keeps the resolved
// config, and so the identity, it had before they existed.
void declare_mcmc(config::Schema& schema) {
  schema.add(Key("infer.posterior", Type::string,
                 "`grid` (default): the scan, regions and the posterior on the infer grid; `mcmc`: posterior "
                 "samples from Markov chains over the grid's box instead (no grid is built: any number of "
                 "parameters)")
                 .as_optional()
                 .one_of({"grid", "mcmc"}));
  schema.add(Key("infer.mcmc.chains", Type::integer, "independent chains, spread over the ranks (default 32)")
                 .as_optional()
                 .minimum(1)
                 .maximum(1000000));
  schema.add(Key("infer.mcmc.warmup", Type::integer,
                 "iterations per chain before the kept ones, discarded (default 500)")
                 .as_optional()
                 .minimum(0));
  schema.add(Key("infer.mcmc.samples", Type::integer, "draws kept per chain after the warm-up (default 500)")
                 .as_optional()
                 .minimum(4));
  schema.add(
      Key("infer.mcmc.thin", Type::integer, "iterations per kept draw (default 1)").as_optional().minimum(1));
  schema.add(Key("infer.mcmc.seed", Type::integer, "seed of the chains' streams (default: campaign.seed)")
                 .as_optional()
                 .minimum(0));
}

// simulate.observed and infer: the observed data and the scan.
void declare_infer(config::Schema& schema, config::Config& config, const sims::SimulatorInfo& sim) {
  std::vector<std::string> parameter_names;
  for (const auto& p : sim.parameters) parameter_names.push_back(p.name);

  declare_point(schema, "simulate.observed.theta", sim,
                "true θ of the observed data `nsbi simulate` makes (give every parameter, or none: no data)");
  schema.add(Key("simulate.observed.n_events", Type::integer, "events in the observed data")
                 .with_default("20")
                 .minimum(1));
  schema.add(Key("simulate.observed.output", Type::string, "observed-data file, inside campaign.dir")
                 .with_default("observed.h5"));

  config.validate_key(schema, "simulate.observed.output");
  config.validate_key(schema, "train.output");
  schema.add(Key("infer.observed", Type::string,
                 "observed events: .csv (a header row of observable names) or HDF5 (docs/formats.md), inside "
                 "campaign.dir")
                 .with_default(YAML::Node(config.get<std::string>("simulate.observed.output"))));
  schema.add(Key("infer.observed_dataset", Type::string_or_list,
                 "the observed dataset /observed/<name> to use when the HDF5 file holds several; a list of "
                 "names, or `all`: each one analysed, with results per dataset")
                 .as_optional());
  schema.add(Key("infer.model", Type::string, "the trained model, inside campaign.dir")
                 .with_default(YAML::Node(config.get<std::string>("train.output"))));
  schema.add(
      Key("infer.estimators", Type::string_list,
          "`learned`: log r̂ of the model; `exact`: the simulator's exact likelihood ratio (gaussian2d, "
          "spin3d, lepton's spin), to validate the learned results")
          .with_default("[learned]")
          .one_of(estimators));
  schema.add(Key("infer.precision", Type::string,
                 "element type of the learned estimator's network GEMMs in infer: `f32`, or `bf16` (inputs "
                 "rounded to bfloat16, float accumulation; needs AVX512-BF16 or AMX); the toy stages (test, "
                 "calibrate, coverage) evaluate in f32")
                 .with_default("f32")
                 .one_of({"f32", "bf16"}));
  declare_grid(schema, "infer", sim, "the scan grid (also where calibrate and coverage look for minima)", 21);
  schema.add(Key("infer.profile", Type::string_list,
                 "nuisance parameters: minimised over (profiled) instead of reported")
                 .with_default("[]")
                 .one_of(parameter_names));
  schema.add(Key("infer.refine", Type::boolean, "refine the best fit off the grid (quadratic steps)")
                 .with_default("true"));
  schema.add(Key("infer.posterior_samples", Type::integer, "posterior samples drawn from the grid")
                 .with_default("10000")
                 .minimum(0));
  declare_mcmc(schema);
  // Optional, as infer.posterior: an absent key leaves the identity of configs that predate it unchanged.
  schema.add(Key("infer.outputs", Type::string_list,
                 "the results written per dataset and estimator: `posterior_samples`, `best_fit`, "
                 "`intervals`, `grid` (the full-grid arrays); default all four, with mcmc "
                 "[posterior_samples] (the only one it has)")
                 .as_optional()
                 .one_of({"posterior_samples", "best_fit", "intervals", "grid"}));
  inference::Prior::declare(schema, "prior", sim);
}

// test: the simple hypothesis test.
void declare_test(config::Schema& schema, config::Config& config, const sims::SimulatorInfo& sim) {
  config.validate_key(schema, "infer.observed");
  config.validate_key(schema, "infer.estimators");
  config.validate_key(schema, "simulate.observed.n_events");
  const YAML::Node inferred_estimators = config.get<YAML::Node>("infer.estimators");
  const YAML::Node observed_events(config.get<std::int64_t>("simulate.observed.n_events"));

  schema.add(Key("test.observed", Type::string, "observed events for the test (default: infer.observed)")
                 .with_default(YAML::Node(config.get<std::string>("infer.observed"))));
  config.validate_key(schema, "infer.observed_dataset");
  Key test_dataset("test.observed_dataset", Type::string,
                   "the observed dataset of test.observed to use when it holds several (default: "
                   "infer.observed_dataset)");
  // The default is infer's dataset when it names one (test reads one dataset).
  if (config.has("infer.observed_dataset") && !config.get<YAML::Node>("infer.observed_dataset").IsSequence())
    test_dataset.with_default(YAML::Node(config.get<std::string>("infer.observed_dataset")));
  else
    test_dataset.as_optional();
  schema.add(test_dataset);
  schema.add(Key("test.estimators", Type::string_list, "as infer.estimators")
                 .with_default(inferred_estimators)
                 .one_of(estimators));
  declare_point(schema, "test.h0", sim, "the null hypothesis H0 (every parameter)");
  declare_point(schema, "test.h1", sim, "the alternative H1 (every parameter)");
  schema.add(Key("test.n_events", Type::integer, "events per pseudo-experiment (the observed count)")
                 .with_default(observed_events)
                 .minimum(1));
  schema.add(Key("test.n_toys", Type::integer, "pseudo-experiments under each hypothesis")
                 .with_default("10000")
                 .minimum(1));
  schema.add(Key("test.toys_per_item", Type::integer, "toys per work item (the unit of resuming)")
                 .with_default("1000")
                 .minimum(1));
}

// calibrate: the Neyman construction.
void declare_calibrate(config::Schema& schema, config::Config& config, const sims::SimulatorInfo& sim) {
  const YAML::Node inferred_estimators = config.get<YAML::Node>("infer.estimators");
  const YAML::Node observed_events(config.get<std::int64_t>("simulate.observed.n_events"));
  schema.add(Key("calibrate.estimators", Type::string_list, "as infer.estimators")
                 .with_default(inferred_estimators)
                 .one_of(estimators));
  declare_grid(schema, "calibrate", sim, "the Neyman construction's θ grid", 11);
  schema.add(Key("calibrate.n_events", Type::integer, "events per pseudo-experiment")
                 .with_default(observed_events)
                 .minimum(1));
  schema.add(Key("calibrate.n_toys", Type::integer, "pseudo-experiments per grid point")
                 .with_default("200")
                 .minimum(1));
  schema.add(Key("calibrate.toys_per_item", Type::integer, "toys per work item (the unit of resuming)")
                 .with_default("50")
                 .minimum(1));
  schema.add(Key("calibrate.levels", Type::number_list, "confidence levels of the belts")
                 .with_default("[0.6826894921370859, 0.95]")
                 .minimum(0.01)
                 .maximum(0.9999));
}

// coverage.sbc: the posterior checks (sbc, expected_coverage). Optional, their defaults applied where they
// are read (sbc_settings): a campaign that does not name them keeps the identity it had before they existed.
void declare_sbc(config::Schema& schema) {
  schema.add(
      Key("coverage.sbc.runs", Type::integer, "runs: θ* from the prior, a dataset, a posterior (default 200)")
          .as_optional()
          .minimum(1)
          .maximum(1000000000));
  schema.add(Key("coverage.sbc.runs_per_item", Type::integer,
                 "runs per work item, the unit of resuming (default 10)")
                 .as_optional()
                 .minimum(1));
  schema.add(Key("coverage.sbc.samples", Type::integer,
                 "posterior samples L per run; L + 1 must be a multiple of coverage.sbc.bins (default 99)")
                 .as_optional()
                 .minimum(1)
                 .maximum(1000000));
  schema.add(Key("coverage.sbc.bins", Type::integer, "bins of the rank histograms (default 10)")
                 .as_optional()
                 .minimum(2));
  schema.add(Key("coverage.sbc.chains", Type::integer,
                 "with infer.posterior: mcmc, chains per run, run on one rank (default 4)")
                 .as_optional()
                 .minimum(1)
                 .maximum(1000));
  schema.add(
      Key("coverage.sbc.warmup", Type::integer, "with mcmc, warm-up iterations per chain (default 200)")
          .as_optional()
          .minimum(0));
  schema.add(Key("coverage.sbc.thin", Type::integer,
                 "with mcmc, iterations per kept draw, so that draws are nearly independent (default 10)")
                 .as_optional()
                 .minimum(1));
  schema.add(Key("coverage.sbc.levels", Type::number_list,
                 "credibility levels of expected_coverage (default 0.1, 0.2, …, 0.9, 0.95)")
                 .as_optional()
                 .minimum(0.001)
                 .maximum(0.999));
}

// coverage: of the Wilks and Neyman intervals, and the posterior checks.
void declare_coverage(config::Schema& schema, config::Config& config, const sims::SimulatorInfo& sim) {
  config.validate_key(schema, "calibrate.n_events");
  config.validate_key(schema, "calibrate.estimators");
  schema.add(Key("coverage.estimators", Type::string_list, "as infer.estimators")
                 .with_default(config.get<YAML::Node>("calibrate.estimators"))
                 .one_of(estimators));
  schema.add(Key("coverage.methods", Type::string_list,
                 "`wilks`: q(θ*) ≤ χ² threshold; `neyman`: q(θ*) ≤ the calibrated c_α(θ*) (needs calibrate); "
                 "`sbc`: rank histograms of θ* drawn from the prior among posterior samples; "
                 "`expected_coverage`: how often the posterior's highest-density regions hold θ*")
                 .with_default("[wilks, neyman]")
                 .one_of({"wilks", "neyman", "sbc", "expected_coverage"}));
  declare_grid(schema, "coverage", sim, "the true values θ* tested", 3);
  schema.add(Key("coverage.n_events", Type::integer, "events per pseudo-experiment")
                 .with_default(YAML::Node(config.get<std::int64_t>("calibrate.n_events")))
                 .minimum(1));
  schema.add(
      Key("coverage.n_toys", Type::integer, "pseudo-experiments per θ*").with_default("200").minimum(1));
  schema.add(Key("coverage.toys_per_item", Type::integer, "toys per work item (the unit of resuming)")
                 .with_default("50")
                 .minimum(1));
  schema.add(Key("coverage.levels", Type::number_list, "confidence levels of the intervals tested")
                 .with_default("[0.6826894921370859]")
                 .minimum(0.01)
                 .maximum(0.9999));
  declare_sbc(schema);
}

}  // namespace

void declare_inference(config::Schema& schema, config::Config& config, const sims::SimulatorInfo& sim) {
  declare_infer(schema, config, sim);
  declare_test(schema, config, sim);
  declare_calibrate(schema, config, sim);
  declare_coverage(schema, config, sim);
}

}  // namespace nsbi::jobs
