// The config reader: every error names file, line, column (1-based) and key path exactly; defaults, --set
// overrides and the resolved YAML behave as docs/config.md says.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nsbi/core/config.hpp"
#include "nsbi/core/error.hpp"

namespace {

using nsbi::config::closest;
using nsbi::config::Config;
using nsbi::config::Key;
using nsbi::config::Schema;
using nsbi::config::Type;

// A small campaign schema exercising every type and constraint.
Schema campaign_schema() {
  Schema schema;
  schema.add(Key("campaign.name", Type::string, "Campaign name."));
  schema.add(Key("campaign.seed", Type::integer, "Campaign seed.").minimum(0));
  schema.add(Key("campaign.dir", Type::string, "Output folder.").with_default("out"));
  schema.add(Key("simulator.name", Type::string, "Simulator.")
                 .with_default("gaussian")
                 .one_of({"gaussian", "spin", "lensing"}));
  schema.add(Key("simulate.n_samples", Type::integer, "Samples.").with_default("1000").minimum(1));
  schema.add(Key("simulate.noise", Type::number, "Noise level.").with_default("0.1").minimum(0).maximum(1));
  schema.add(Key("simulate.shift", Type::number_list, "Shift.")
                 .with_default("[0, 0]")
                 .minimum(-5)
                 .maximum(5)
                 .of_length(2));
  schema.add(Key("simulate.save_gold", Type::boolean, "Store gold.").with_default("true"));
  schema.add(Key("simulate.options", Type::map, "Free-form options.").with_default("{}"));
  schema.add(
      Key("train.learning_rate", Type::number, "Learning rate.").with_default(YAML::Node(0.001)).minimum(0));
  schema.add(Key("train.targets", Type::string_or_list, "Targets.").as_optional());
  schema.add(Key("pipeline", Type::string_list, "Stages.")
                 .with_default("[simulate, train]")
                 .one_of({"simulate", "train", "infer"}));
  return schema;
}

const std::string campaign_head =  // lines 1-3 of most test files
    "campaign:\n"
    "  name: demo\n"
    "  seed: 7\n";

// The message of the ConfigError that `action` throws.
template <class Action>
std::string config_error(Action action) {
  try {
    action();
  } catch (const nsbi::ConfigError& error) {
    return error.what();
  }
  return "(no ConfigError)";
}

std::string validation_error(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return config_error([&] { Config::parse(text, "g.yaml", overrides).validate(campaign_schema()); });
}

Config validated(const std::string& text, const std::vector<std::string>& overrides = {}) {
  Config config = Config::parse(text, "g.yaml", overrides);
  config.validate(campaign_schema());
  return config;
}

TEST(Closest, SuggestsOnlyNearCandidates) {
  EXPECT_EQ(closest("trian", {"simulate", "train", "infer"}), "train");  // transposition: 1 edit
  EXPECT_EQ(closest("N_Samples", {"n_samples"}), "n_samples");           // case is not an edit
  EXPECT_EQ(closest("abcdefghi", {"abcxyzghi"}), "abcxyzghi");           // 3 edits, limit 9/3 = 3
  EXPECT_EQ(closest("abcdefghi", {"axyzwfghi"}), "");                    // 4 edits
  EXPECT_EQ(closest("lr", {"ab"}), "");                                  // 2 edits replace the whole word
  EXPECT_EQ(closest("spn", {"gaussian", "spin", "lensing"}), "spin");
  EXPECT_EQ(closest("anything", {}), "");
}

TEST(ConfigErrors, UnknownKeySuggestsSibling) {
  EXPECT_EQ(validation_error(campaign_head + "simulate:\n"
                                             "  n_sampels: 10\n"),
            "g.yaml:5:3: simulate.n_sampels: unknown key; did you mean 'simulate.n_samples'?");
}

TEST(ConfigErrors, MisplacedKeySuggestsFullPath) {
  EXPECT_EQ(validation_error(campaign_head + "n_samples: 10\n"),
            "g.yaml:4:1: n_samples: unknown key; did you mean 'simulate.n_samples'?");
  EXPECT_EQ(validation_error(campaign_head + "trian:\n  learning_rate: 0.1\n"),
            "g.yaml:4:1: trian: unknown key; did you mean 'train'?");
}

TEST(ConfigErrors, UnknownKeyFarFromEverythingHasNoSuggestion) {
  EXPECT_EQ(validation_error(campaign_head + "simulate: {colour: red}\n"),
            "g.yaml:4:12: simulate.colour: unknown key");
}

TEST(ConfigErrors, WrongTypes) {
  EXPECT_EQ(validation_error(campaign_head + "simulate:\n"
                                             "  n_samples: many\n"),
            "g.yaml:5:14: simulate.n_samples: expected an integer, got 'many'");
  EXPECT_EQ(validation_error(campaign_head + "simulate: {noise: [1]}\n"),
            "g.yaml:4:19: simulate.noise: expected a number, got a list");
  EXPECT_EQ(validation_error(campaign_head + "simulate: {save_gold: yes}\n"),
            "g.yaml:4:23: simulate.save_gold: expected true or false, got 'yes'");
  EXPECT_EQ(validation_error(campaign_head + "campaign2: 1\nsimulate: 5\n"),
            "g.yaml:4:1: campaign2: unknown key; did you mean 'campaign'?");
  EXPECT_EQ(validation_error(campaign_head + "simulate: 5\n"),
            "g.yaml:4:11: simulate: expected a map, got '5'");
  EXPECT_EQ(validation_error(campaign_head + "simulate:\n  options: 3\n"),
            "g.yaml:5:12: simulate.options: expected a map, got '3'");
  EXPECT_EQ(validation_error(campaign_head + "simulator:\n  name: [spin]\n"),
            "g.yaml:5:9: simulator.name: expected a string, got a list");
}

TEST(ConfigErrors, EmptyValueIsReportedAtItsKey) {
  EXPECT_EQ(validation_error(campaign_head + "simulate:\n"
                                             "  n_samples:\n"
                                             "  noise: 0.5\n"),
            "g.yaml:5:3: simulate.n_samples: expected an integer, got an empty value");
}

TEST(ConfigErrors, BlockCollectionIsReportedAtItsKey) {
  EXPECT_EQ(validation_error(campaign_head + "simulate:\n"
                                             "  shift:\n"
                                             "    - 1\n"),
            "g.yaml:5:3: simulate.shift: expected 2 elements, got 1");
}

TEST(ConfigErrors, RequiredKeyNamesItsParentMap) {
  EXPECT_EQ(validation_error("simulate: {}\ncampaign:\n  name: demo\n"),
            "g.yaml:2:1: campaign.seed: required key is missing");
  EXPECT_EQ(validation_error("simulate: {}\n"), "g.yaml: campaign.name: required key is missing");
  EXPECT_EQ(validation_error(""), "g.yaml: campaign.name: required key is missing");
}

TEST(ConfigErrors, TopLevelMustBeAMap) {
  EXPECT_EQ(config_error([] { Config::parse("- a\n- b\n", "g.yaml"); }),
            "g.yaml:1:1: the top level must be a map of sections, got a list");
}

TEST(ConfigErrors, DuplicateKeys) {
  EXPECT_EQ(config_error([] { Config::parse("campaign:\n  seed: 1\n  seed: 2\n", "g.yaml"); }),
            "g.yaml:3:3: campaign.seed: duplicate key (first at line 2)");
  EXPECT_EQ(config_error([] { Config::parse("simulate: {noise: 1, noise: 2}\n", "g.yaml"); }),
            "g.yaml:1:22: simulate.noise: duplicate key (first at line 1)");
  EXPECT_EQ(config_error([] { Config::parse("a: 1\n", "g.yaml", {"b={c: 1, c: 2}"}); }),
            "--set b={c: 1, c: 2}: b.c: duplicate key");
}

TEST(ConfigErrors, KeysMustBePlainNames) {
  EXPECT_EQ(config_error([] { Config::parse("campaign:\n  [a, b]: 1\n", "g.yaml"); }),
            "g.yaml:2:3: campaign: keys must be plain names (no '.', '[' or ']'), got a list");
  EXPECT_EQ(config_error([] { Config::parse("campaign.seed: 1\n", "g.yaml"); }),
            "g.yaml:1:1: keys must be plain names (no '.', '[' or ']'), got 'campaign.seed'");
}

TEST(ConfigErrors, MalformedYamlReportsPosition) {
  // The unclosed '[' is detected at the end of the text: line 3, column 1.
  EXPECT_EQ(config_error([] { Config::parse("a: [1,\nb: 3\n", "g.yaml"); }),
            "g.yaml:3:1: invalid YAML: end of sequence flow not found");
  EXPECT_EQ(config_error([] { Config::parse("a: b: c\n", "g.yaml"); }),
            "g.yaml:1:5: invalid YAML: illegal map value");
}

// A config file is one YAML document: a second one (after `---`) would be ignored without a word.
TEST(ConfigErrors, SecondDocumentIsAnError) {
  EXPECT_EQ(config_error([] { Config::parse(campaign_head + "---\nsimulate: {n_samples: 0}\n", "g.yaml"); }),
            "g.yaml:4:1: a second YAML document starts here: a config file holds one document (remove this "
            "'---' line, or the document after it)");
  EXPECT_EQ(config_error([] { Config::parse("---\n---\n" + campaign_head, "g.yaml"); }),
            "g.yaml:2:1: a second YAML document starts here: a config file holds one document (remove this "
            "'---' line, or the document after it)");
  EXPECT_EQ(config_error([] { Config::parse("a: 1\n", "g.yaml", {"b=1\n---\n2"}); }),
            "--set b=1\n---\n2: b: invalid YAML value: it holds a second YAML document");
  // A ',' outside brackets starts no document: invalid YAML, not an empty config (nor, read as a stream of
  // documents, an endless one).
  EXPECT_EQ(config_error([] { Config::parse(",\n", "g.yaml"); }), "g.yaml:1:1: invalid YAML: unexpected ','");
  EXPECT_EQ(config_error([] { Config::parse(campaign_head + "...\n,\n", "g.yaml"); }),
            "g.yaml:5:1: invalid YAML: unexpected ','");
  EXPECT_EQ(config_error([] { Config::parse("a: 1\n", "g.yaml", {"b=,"}); }),
            "--set b=,: b: invalid YAML value: unexpected ','");
  // A leading `---`, an end marker and an empty document after the first are no second document.
  EXPECT_EQ(validated("---\n" + campaign_head).get<std::int64_t>("campaign.seed"), 7);
  EXPECT_EQ(validated(campaign_head + "...\n").get<std::int64_t>("campaign.seed"), 7);
  EXPECT_EQ(validated(campaign_head + "---\n# nothing more\n").get<std::int64_t>("campaign.seed"), 7);
}

// Aliases are visited at every use: nested ones would expand exponentially (10^9 values from 10 lines)
// without a bound on the values a config may have, and one inside its own anchor would never end.
TEST(ConfigErrors, AliasExpansionIsBounded) {
  std::string text = campaign_head + "simulate:\n  options:\n    a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  // 10^6 values: more than the bound, and few enough for a reader without one to get through.
  for (int level = 1; level <= 5; ++level) {
    const std::string alias = "*a" + std::to_string(level - 1);
    text += "    a" + std::to_string(level) + ": &a" + std::to_string(level) + " [" + alias;
    for (int k = 1; k < 10; ++k) text += ", " + alias;
    text += "]\n";
  }
  const std::string message = validation_error(text);
  EXPECT_EQ(message.rfind("g.yaml:", 0), 0u) << message;
  EXPECT_NE(
      message.find(": the config has more than 100000 keys and list elements (a YAML alias *name counts "
                   "at every use)"),
      std::string::npos)
      << message;
  // An alias inside its own anchor makes a cycle (it was an endless recursion: a stack overflow).
  const std::string cycle =
      config_error([] { Config::parse("simulate:\n  options: &x {b: *x}\n", "g.yaml"); });
  EXPECT_EQ(cycle.rfind("g.yaml:2:", 0), 0u) << cycle;
  EXPECT_NE(cycle.find(": simulate.options.b.b.b."), std::string::npos) << cycle;
  EXPECT_NE(cycle.find(": nested more than 100 levels deep (is a YAML alias *name inside the anchor &name it "
                       "refers to?)"),
            std::string::npos)
      << cycle;
  EXPECT_EQ(config_error([] {
              Config::parse("a: 1\n", "g.yaml", {"b=&x [*x]"});
            }).rfind("--set b=&x [*x]: b[0][0]", 0),
            0u);
  // Aliases used a few times are fine.
  EXPECT_EQ(validated(campaign_head + "simulate:\n  shift: &s [1, 2]\n  options: {copy: *s}\n")
                .get<std::vector<double>>("simulate.shift"),
            (std::vector<double>{1.0, 2.0}));
}

TEST(ConfigErrors, UnreadableFile) {
  EXPECT_EQ(config_error([] { Config::load("/nonexistent/nsbi/g.yaml"); }),
            "/nonexistent/nsbi/g.yaml: cannot read config file: No such file or directory");
  const std::string folder = std::filesystem::temp_directory_path().string();
  EXPECT_EQ(config_error([&] { Config::load(folder); }),
            folder + ": cannot read config file: it is a directory");
}

TEST(ConfigLoad, LocationsNameTheFile) {
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("nsbi_test_config_" + std::to_string(getpid()) + ".yaml");
  std::ofstream(file) << campaign_head << "simulate:\n  noise: 2\n";
  const std::string message = config_error([&] { Config::load(file.string()).validate(campaign_schema()); });
  std::filesystem::remove(file);
  EXPECT_EQ(message, file.string() + ":5:10: simulate.noise: must be <= 1, got 2");
}

TEST(ConfigValues, IntegerVersusNumber) {
  const Config config = validated(campaign_head + "simulate: {n_samples: 1e5, noise: 1}\n");
  EXPECT_EQ(config.get<std::int64_t>("simulate.n_samples"), 100000);
  EXPECT_EQ(config.get<double>("simulate.noise"), 1.0);
  EXPECT_EQ(validation_error(campaign_head + "simulate: {n_samples: 1.5}\n"),
            "g.yaml:4:23: simulate.n_samples: expected an integer, got '1.5'");
  EXPECT_EQ(validation_error(campaign_head + "simulate: {n_samples: 1e30}\n"),
            "g.yaml:4:23: simulate.n_samples: integer out of range, got '1e30'");
  EXPECT_EQ(validation_error(campaign_head + "simulate: {n_samples: 0x10}\n"),
            "g.yaml:4:23: simulate.n_samples: expected an integer, got '0x10'");
  EXPECT_EQ(validation_error(campaign_head + "simulate: {noise: .nan}\n"),
            "g.yaml:4:19: simulate.noise: expected a number, got '.nan'");
  EXPECT_EQ(validation_error(campaign_head + "simulate: {noise: 1e999}\n"),
            "g.yaml:4:19: simulate.noise: expected a number, got '1e999'");
}

// Integers never go through double: beyond 2^53 a double would round them (2^53 + 1 to 2^53), so a
// bound of 2^53 would let 2^53 + 1 through and 9.007199254740993e15 would read as another seed.
TEST(ConfigValues, IntegersAreReadAndBoundedExactly) {
  Schema schema;
  schema.add(Key("campaign.seed", Type::integer, "Seed.").minimum(0).maximum(9007199254740992.0));
  schema.add(Key("simulate.n_samples", Type::integer, "Samples.").with_default("1"));
  const auto seed = [&](const std::string& text) {
    Config config = Config::parse("campaign: {seed: " + text + "}\n", "g.yaml");
    config.validate(schema);
    return config.get<std::int64_t>("campaign.seed");
  };
  const auto seed_error = [&](const std::string& text) {
    return config_error(
        [&] { Config::parse("campaign: {seed: " + text + "}\n", "g.yaml").validate(schema); });
  };
  EXPECT_EQ(seed("9007199254740992"), 9007199254740992);
  EXPECT_EQ(seed("9007199254740991"), 9007199254740991);
  EXPECT_EQ(seed("9.007199254740991e15"), 9007199254740991);
  EXPECT_EQ(seed("90071992547409.91e2"), 9007199254740991);
  EXPECT_EQ(seed("1.5e3"), 1500);
  EXPECT_EQ(seed("100e-2"), 1);
  EXPECT_EQ(seed("0e999999999999"), 0);
  EXPECT_EQ(seed("-0"), 0);
  EXPECT_EQ(seed_error("9007199254740993"),
            "g.yaml:1:18: campaign.seed: must be <= 9007199254740992, got 9007199254740993");
  EXPECT_EQ(seed_error("9.007199254740993e15"),
            "g.yaml:1:18: campaign.seed: must be <= 9007199254740992, got 9.007199254740993e15");
  EXPECT_EQ(seed_error("9007199254740992.5"),
            "g.yaml:1:18: campaign.seed: expected an integer, got '9007199254740992.5'");
  EXPECT_EQ(seed_error("1e-1"), "g.yaml:1:18: campaign.seed: expected an integer, got '1e-1'");
  EXPECT_EQ(seed_error("1e999999999999"),
            "g.yaml:1:18: campaign.seed: integer out of range, got '1e999999999999'");
  // The whole int64 range, exactly, and nothing beyond it.
  const auto samples = [&](const std::string& text) {
    Config config = Config::parse("simulate: {n_samples: " + text + "}\ncampaign: {seed: 1}\n", "g.yaml");
    config.validate(schema);
    return config.get<std::int64_t>("simulate.n_samples");
  };
  EXPECT_EQ(samples("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(samples("-9223372036854775808"), INT64_MIN);
  EXPECT_EQ(samples("9.2233720368547758e18"), 9223372036854775800);
  EXPECT_EQ(config_error([&] { samples("9223372036854775808"); }),
            "g.yaml:1:23: simulate.n_samples: integer out of range, got '9223372036854775808'");
  EXPECT_EQ(config_error([&] { samples("-9.223372036854775809e18"); }),
            "g.yaml:1:23: simulate.n_samples: integer out of range, got '-9.223372036854775809e18'");
}

TEST(ConfigValues, IntegerLists) {
  Schema schema;
  schema.add(Key("train.hidden", Type::integer_list, "Widths.").with_default("[64, 64]").minimum(1));
  const auto hidden = [&](const std::string& text) {
    Config config = Config::parse(text, "g.yaml");
    config.validate(schema);
    return config.get<std::vector<std::int64_t>>("train.hidden");
  };
  EXPECT_EQ(hidden(""), (std::vector<std::int64_t>{64, 64}));
  EXPECT_EQ(hidden("train: {hidden: [16, 1e2]}\n"), (std::vector<std::int64_t>{16, 100}));
  EXPECT_EQ(config_error([&] { hidden("train: {hidden: [16.5]}\n"); }),
            "g.yaml:1:18: train.hidden[0]: expected an integer, got '16.5'");
  EXPECT_EQ(config_error([&] { hidden("train: {hidden: [8, 0]}\n"); }),
            "g.yaml:1:21: train.hidden[1]: must be >= 1, got 0");
  EXPECT_EQ(config_error([&] { hidden("train: {hidden: 8}\n"); }),
            "g.yaml:1:17: train.hidden: expected a list of integers, got '8'");
}

TEST(ConfigValues, BoundsAreInclusive) {
  EXPECT_EQ(validated(campaign_head + "simulate: {n_samples: 1, noise: 0}\n").get<double>("simulate.noise"),
            0.0);
  EXPECT_EQ(validated(campaign_head + "simulate: {noise: 1.0}\n").get<double>("simulate.noise"), 1.0);
  EXPECT_EQ(validation_error(campaign_head + "simulate: {n_samples: 0}\n"),
            "g.yaml:4:23: simulate.n_samples: must be >= 1, got 0");
  EXPECT_EQ(validation_error(campaign_head + "simulate: {noise: 1.0000001}\n"),
            "g.yaml:4:19: simulate.noise: must be <= 1, got 1.0000001");
  EXPECT_EQ(validation_error(campaign_head + "simulate: {noise: -1e-300}\n"),
            "g.yaml:4:19: simulate.noise: must be >= 0, got -1e-300");
}

TEST(ConfigValues, ListsCheckLengthAndElements) {
  EXPECT_EQ(
      validated(campaign_head + "simulate: {shift: [-5, 5]}\n").get<std::vector<double>>("simulate.shift"),
      (std::vector<double>{-5.0, 5.0}));
  EXPECT_EQ(validation_error(campaign_head + "simulate: {shift: [1, 2, 3]}\n"),
            "g.yaml:4:19: simulate.shift: expected 2 elements, got 3");
  EXPECT_EQ(validation_error(campaign_head + "simulate: {shift: [1, 9]}\n"),
            "g.yaml:4:23: simulate.shift[1]: must be <= 5, got 9");
  EXPECT_EQ(validation_error(campaign_head + "simulate:\n"
                                             "  shift:\n"
                                             "    - 1\n"
                                             "    - x\n"),
            "g.yaml:7:7: simulate.shift[1]: expected a number, got 'x'");
  EXPECT_EQ(validation_error(campaign_head + "simulate: {shift: 3}\n"),
            "g.yaml:4:19: simulate.shift: expected a list of numbers, got '3'");
}

TEST(ConfigValues, StringOrListTakesEither) {
  const Config one = validated(campaign_head + "train: {targets: a}\n");
  EXPECT_EQ(one.get<std::string>("train.targets"), "a");
  const Config two = validated(campaign_head + "train: {targets: [a, b]}\n");
  EXPECT_EQ(two.get<std::vector<std::string>>("train.targets"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(validation_error(campaign_head + "train: {targets: {a: 1}}\n"),
            "g.yaml:4:18: train.targets: expected a string or a list of strings, got a map");
  EXPECT_EQ(validation_error(campaign_head + "train: {targets: [a, [b]]}\n"),
            "g.yaml:4:22: train.targets[1]: expected a string, got a list");
}

TEST(ConfigValues, ChoicesSuggestTheClosest) {
  EXPECT_EQ(validation_error(campaign_head + "simulator: {name: gausian}\n"),
            "g.yaml:4:19: simulator.name: expected one of 'gaussian', 'spin', 'lensing', got 'gausian'; "
            "did you mean 'gaussian'?");
  EXPECT_EQ(validation_error(campaign_head + "simulator: {name: mcmc}\n"),
            "g.yaml:4:19: simulator.name: expected one of 'gaussian', 'spin', 'lensing', got 'mcmc'");
  EXPECT_EQ(validation_error(campaign_head + "pipeline: [simulate, trian]\n"),
            "g.yaml:4:22: pipeline[1]: expected one of 'simulate', 'train', 'infer', got 'trian'; "
            "did you mean 'train'?");
}

TEST(ConfigValues, DefaultsAreFilledIn) {
  const Config config = validated(campaign_head + "train:\n");  // an empty section takes all its defaults
  EXPECT_EQ(config.get<std::string>("campaign.dir"), "out");
  EXPECT_EQ(config.get<std::string>("simulator.name"), "gaussian");
  EXPECT_EQ(config.get<std::int64_t>("simulate.n_samples"), 1000);
  EXPECT_EQ(config.get<double>("simulate.noise"), 0.1);
  EXPECT_EQ(config.get<std::vector<double>>("simulate.shift"), (std::vector<double>{0.0, 0.0}));
  EXPECT_TRUE(config.get<bool>("simulate.save_gold"));
  EXPECT_TRUE(config.get<YAML::Node>("simulate.options").IsMap());
  EXPECT_EQ(config.get<double>("train.learning_rate"), 0.001);
  EXPECT_EQ(config.get<std::vector<std::string>>("pipeline"),
            (std::vector<std::string>{"simulate", "train"}));
  // File order first, then the defaults in schema order.
  EXPECT_EQ(config.children(""),
            (std::vector<std::string>{"campaign", "train", "simulator", "simulate", "pipeline"}));
  EXPECT_EQ(config.children("campaign"), (std::vector<std::string>{"name", "seed", "dir"}));
  // A defaulted value is located at its closest ancestor in the file.
  EXPECT_EQ(config.location("campaign.dir"), "g.yaml:1:1");
  EXPECT_EQ(config.location("simulate.noise"), "g.yaml");
}

TEST(ConfigValues, FreeFormMapKeepsAnything) {
  const Config config = validated(campaign_head +
                                  "simulate:\n"
                                  "  options:\n"
                                  "    zeta: [1, {a: b}]\n"
                                  "    alpha: ~\n");
  EXPECT_EQ(config.children("simulate.options"), (std::vector<std::string>{"zeta", "alpha"}));
  EXPECT_EQ(config.get<YAML::Node>("simulate.options")["zeta"][1]["a"].as<std::string>(), "b");
  EXPECT_EQ(config.location("simulate.options.zeta[1]"), "g.yaml:6:15");
}

TEST(ConfigOverrides, ExistingAndNewKeys) {
  const Config config = validated(campaign_head + "simulate:\n  n_samples: 10\n",
                                  {"simulate.n_samples=50", "train.learning_rate=0.5", "simulate.shift=[1,2]",
                                   "simulate.options={kind: fixed, value: 500}", "campaign.seed=1e3"});
  EXPECT_EQ(config.get<std::int64_t>("simulate.n_samples"), 50);
  EXPECT_EQ(config.get<double>("train.learning_rate"), 0.5);
  EXPECT_EQ(config.get<std::vector<double>>("simulate.shift"), (std::vector<double>{1.0, 2.0}));
  const YAML::Node options = config.get<YAML::Node>("simulate.options");
  EXPECT_EQ(options["kind"].as<std::string>(), "fixed");
  EXPECT_EQ(options["value"].as<int>(), 500);
  EXPECT_EQ(config.get<std::int64_t>("campaign.seed"), 1000);
  EXPECT_EQ(config.location("simulate.n_samples"), "--set simulate.n_samples=50");
  EXPECT_EQ(config.location("simulate.options.value"), "--set simulate.options={kind: fixed, value: 500}");
  EXPECT_EQ(config.location("campaign.name"), "g.yaml:2:9");
}

TEST(ConfigOverrides, ErrorsPointAtTheOverride) {
  EXPECT_EQ(validation_error(campaign_head + "simulate:\n  n_samples: 10\n", {"simulate.n_samples=0"}),
            "--set simulate.n_samples=0: simulate.n_samples: must be >= 1, got 0");
  EXPECT_EQ(
      validation_error(campaign_head, {"simulate.n_sampels=3"}),
      "--set simulate.n_sampels=3: simulate.n_sampels: unknown key; did you mean 'simulate.n_samples'?");
  EXPECT_EQ(validation_error(campaign_head, {"simulate.shift=[1, x]"}),
            "--set simulate.shift=[1, x]: simulate.shift[1]: expected a number, got 'x'");
}

// An override that makes a section the schema lacks is an unknown key like the same typo in the file (it was
// an internal error: the section had no place in the file to report).
TEST(ConfigOverrides, UnknownSectionsPointAtTheOverride) {
  EXPECT_EQ(validation_error(campaign_head, {"simulat.seed=1"}),
            "--set simulat.seed=1: simulat: unknown key; did you mean 'simulate'?");
  EXPECT_EQ(validation_error(campaign_head, {"foo.bar=5"}), "--set foo.bar=5: foo: unknown key");
  EXPECT_EQ(validation_error(campaign_head, {"simulate.optimizer.beta=5"}),
            "--set simulate.optimizer.beta=5: simulate.optimizer: unknown key");
  EXPECT_EQ(validation_error(campaign_head, {"simulate.n_samples=5", "trian.a.b=1", "trian.c=2"}),
            "--set trian.a.b=1: trian: unknown key; did you mean 'train'?");
  // The same typo in the file, for comparison.
  EXPECT_EQ(validation_error(campaign_head + "simulat:\n  seed: 1\n"),
            "g.yaml:4:1: simulat: unknown key; did you mean 'simulate'?");
}

TEST(ConfigOverrides, BadOverrideSyntax) {
  EXPECT_EQ(config_error([] { Config::parse(campaign_head, "g.yaml", {"simulate.n_samples"}); }),
            "--set simulate.n_samples: expected key.path=value");
  EXPECT_EQ(config_error([] { Config::parse(campaign_head, "g.yaml", {"a..b=1"}); }),
            "--set a..b=1: 'a..b' is not a key path (names separated by '.')");
  EXPECT_EQ(config_error([] { Config::parse(campaign_head, "g.yaml", {"=1"}); }),
            "--set =1: '' is not a key path (names separated by '.')");
  const std::string bad_value = config_error([] { Config::parse(campaign_head, "g.yaml", {"a=[1,"}); });
  EXPECT_EQ(bad_value.rfind("--set a=[1,: a: invalid YAML value: ", 0), 0u) << bad_value;
  // Setting inside a scalar: the scalar is reported where the file wrote it.
  EXPECT_EQ(config_error([] { Config::parse(campaign_head, "g.yaml", {"campaign.name.x=1"}); }),
            "g.yaml:2:9: campaign.name: expected a map, got 'demo' (needed by '--set campaign.name.x=1')");
}

// The caller's two-step pattern: peek at simulator.name, then declare the keys that depend on it.
TEST(ConfigSchema, DependentKeysAfterPeeking) {
  const std::string text = campaign_head +
                           "simulator:\n"
                           "  name: spin\n"
                           "  spin_axis: 2\n"
                           "simulate:\n"
                           "  proposal:\n"
                           "    mu:\n"
                           "      kind: fixed\n"
                           "      value: 3\n";
  Schema schema = campaign_schema();
  Config config = Config::parse(text, "g.yaml");
  EXPECT_EQ(config.get<std::string>("simulator.name"), "spin");  // a raw peek, before any validation
  config.validate_key(schema, "simulator.name");
  EXPECT_EQ(config_error([&] { Config(config).validate(schema); }),
            "g.yaml:6:3: simulator.spin_axis: unknown key");
  schema.add(Key("simulator.spin_axis", Type::integer, "Axis.").minimum(0).maximum(2));
  schema.add(Key("simulate.proposal.mu.kind", Type::string, "Kind.").one_of({"uniform", "fixed"}));
  schema.add(Key("simulate.proposal.mu.value", Type::number, "Value.").minimum(0));
  config.validate(schema);
  EXPECT_EQ(config.get<std::int64_t>("simulator.spin_axis"), 2);
  EXPECT_EQ(config.get<double>("simulate.proposal.mu.value"), 3.0);

  // Values replaced by --set are reported at the override, never at the file's marks for the old subtree.
  const std::string replaced = "simulate.proposal.mu={kind: fixed, value: -1}";
  EXPECT_EQ(config_error([&] { Config::parse(text, "g.yaml", {replaced}).validate(schema); }),
            "--set " + replaced + ": simulate.proposal.mu.value: must be >= 0, got -1");
  const std::string partial = "simulate.proposal.mu={kind: fixed}";
  EXPECT_EQ(config_error([&] { Config::parse(text, "g.yaml", {partial}).validate(schema); }),
            "--set " + partial + ": simulate.proposal.mu.value: required key is missing");
  // A later, narrower override wins for its own key only.
  const Config layered = Config::parse(text, "g.yaml", {replaced, "simulate.proposal.mu.value=4"});
  EXPECT_EQ(layered.location("simulate.proposal.mu.value"), "--set simulate.proposal.mu.value=4");
  EXPECT_EQ(layered.location("simulate.proposal.mu.kind"), "--set " + replaced);
}

TEST(ConfigSchema, ValidateKeyChecksAndFillsOneKey) {
  Config config = Config::parse(campaign_head + "simulator: {name: spn}\nsimulate: {typo: 1}\n", "g.yaml");
  EXPECT_EQ(config_error([&] { config.validate_key(campaign_schema(), "simulator.name"); }),
            "g.yaml:4:19: simulator.name: expected one of 'gaussian', 'spin', 'lensing', got 'spn'; "
            "did you mean 'spin'?");
  config.validate_key(campaign_schema(), "simulate.noise");  // unknown keys are not its business
  EXPECT_EQ(config.get<double>("simulate.noise"), 0.1);
  EXPECT_FALSE(config.has("simulate.n_samples"));

  Config scalar_section = Config::parse(campaign_head + "simulator: spin\n", "g.yaml");
  EXPECT_EQ(config_error([&] { scalar_section.validate_key(campaign_schema(), "simulator.name"); }),
            "g.yaml:4:12: simulator: expected a map, got 'spin'");
}

// A default set after the key was added takes the key's place in the resolved config, and is checked.
TEST(ConfigSchema, SetDefaultKeepsTheKeysPlace) {
  Schema schema = campaign_schema();
  schema.set_default("simulate.n_samples", "512");
  Config config = Config::parse(campaign_head, "g.yaml");
  config.validate(schema);
  EXPECT_EQ(config.get<std::int64_t>("simulate.n_samples"), 512);
  const std::string resolved = config.resolved_yaml();
  EXPECT_LT(resolved.find("n_samples: 512"), resolved.find("noise:")) << resolved;
  EXPECT_THROW(schema.set_default("simulate.n_samples", "0"), nsbi::InternalError);  // below its minimum
  EXPECT_THROW(schema.set_default("simulate.missing", "1"), nsbi::InternalError);
}

TEST(ConfigSchema, MisuseIsAnInternalError) {
  Schema schema = campaign_schema();
  EXPECT_THROW(schema.add(Key("campaign.seed", Type::integer, "again")), nsbi::InternalError);
  EXPECT_THROW(schema.add(Key("campaign.seed.x", Type::integer, "inside")), nsbi::InternalError);
  EXPECT_THROW(schema.add(Key("campaign", Type::integer, "a section")), nsbi::InternalError);
  EXPECT_THROW(schema.add(Key("a..b", Type::integer, "bad path")), nsbi::InternalError);
  EXPECT_THROW(schema.add(Key("a.n", Type::integer, "bad default").with_default("0").minimum(1)),
               nsbi::InternalError);
  EXPECT_THROW(schema.add(Key("a.s", Type::string, "bad default").with_default("x").one_of({"y"})),
               nsbi::InternalError);
  EXPECT_THROW(schema.add(Key("a.b", Type::boolean, "bounds on a bool").minimum(0)), nsbi::InternalError);
  EXPECT_EQ(schema.find("campaign"), nullptr);
  EXPECT_TRUE(schema.is_section("campaign"));
  ASSERT_NE(schema.find("campaign.seed"), nullptr);
  EXPECT_EQ(schema.find("campaign.seed")->type, Type::integer);
  EXPECT_EQ(schema.children("campaign"), (std::vector<std::string>{"name", "seed", "dir"}));

  const Config config = Config::parse(campaign_head, "g.yaml");
  EXPECT_THROW(config.get<double>("simulate.noise"), nsbi::InternalError);  // missing: validate first
  EXPECT_EQ(config_error([&] { config.get<std::int64_t>("campaign.name"); }),
            "g.yaml:2:9: campaign.name: expected an integer, got 'demo'");
}

TEST(ConfigResolved, RoundTripsToTheSameValues) {
  Config config = Config::parse(campaign_head +
                                    "  dir: \"~\"\n"
                                    "simulator: {name: spin}\n"
                                    "simulate:\n"
                                    "  n_samples: 1e5\n"
                                    "  options: {mode: \"yes\", empty: \"\"}\n",
                                "g.yaml", {"simulate.noise=0.25", "train.learning_rate=1e-4"});
  config.validate(campaign_schema());
  const std::string resolved = config.resolved_yaml();
  Config again = Config::parse(resolved, "resolved.yaml");
  again.validate(campaign_schema());
  EXPECT_EQ(again.resolved_yaml(), resolved);
  EXPECT_EQ(again.get<std::string>("campaign.dir"), "~");
  EXPECT_EQ(again.get<std::int64_t>("simulate.n_samples"), 100000);
  EXPECT_EQ(again.get<double>("simulate.noise"), 0.25);
  EXPECT_EQ(again.get<double>("train.learning_rate"), 1e-4);
  EXPECT_EQ(again.get<std::string>("simulator.name"), "spin");
  EXPECT_EQ(again.get<YAML::Node>("simulate.options")["empty"].as<std::string>(), "");
  EXPECT_EQ(again.get<std::vector<std::string>>("pipeline"),
            config.get<std::vector<std::string>>("pipeline"));
  EXPECT_EQ(again.children(""), config.children(""));
}

TEST(ConfigResolved, CopiesAreIndependent) {
  const Config original = Config::parse(campaign_head, "g.yaml");
  Config copy = original;
  copy.validate(campaign_schema());
  EXPECT_TRUE(copy.has("simulate.noise"));
  EXPECT_FALSE(original.has("simulate.noise"));
  copy = original;
  EXPECT_FALSE(copy.has("simulate.noise"));
}

}  // namespace

namespace nsbi::config {
namespace {

TEST(NumberNode, ShortestTextThatReadsBackExactly) {
  EXPECT_EQ(number_node(-0.99).as<std::string>(), "-0.99");
  EXPECT_EQ(number_node(1000.0).as<std::string>(), "1000");
  EXPECT_EQ(number_node(0.1 + 0.2).as<std::string>(), "0.30000000000000004");
  for (double v : {1e-300, 3.141592653589793, -2.5e17, 5e-324}) EXPECT_EQ(number_node(v).as<double>(), v);
}

}  // namespace
}  // namespace nsbi::config
