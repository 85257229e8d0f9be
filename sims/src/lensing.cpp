#include "nsbi/sims/lensing.hpp"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>

#include "nsbi/core/error.hpp"

namespace nsbi::sims {
namespace {

// One image per work item (a team of one thread), its buffers in the team's scratch memory.
constexpr std::size_t float_buffer = LensingModel::n_pixels * sizeof(float);
constexpr std::size_t double_buffer = LensingModel::n_pixels * sizeof(double);
constexpr std::size_t index_buffer = LensingModel::n_pixels * sizeof(std::int32_t);
constexpr std::size_t scratch_bytes = 2 * float_buffer + 2 * double_buffer + index_buffer;

using TeamPolicy = Kokkos::TeamPolicy<ExecutionSpace>;

template <bool gold>
struct LensingKernel {
  LensingModel model;
  ConstMatrix theta;
  Matrix x;
  ConstMatrix gold_theta;
  Kokkos::Array<double, LensingModel::n_parameters> theta0;
  Vector log_r;
  Matrix score;
  std::uint64_t first_index;
  std::uint64_t seed;

  KOKKOS_INLINE_FUNCTION void operator()(const TeamPolicy::member_type& member) const {
    const std::size_t i = static_cast<std::size_t>(member.league_rank());
    char* scratch = static_cast<char*>(member.team_scratch(1).get_shmem(scratch_bytes));
    const LensingWorkspace work{
        reinterpret_cast<float*>(scratch), reinterpret_cast<float*>(scratch + float_buffer),
        reinterpret_cast<double*>(scratch + 2 * float_buffer),
        reinterpret_cast<double*>(scratch + 2 * float_buffer + double_buffer),
        reinterpret_cast<std::int32_t*>(scratch + 2 * float_buffer + 2 * double_buffer)};
    const double theta_i[LensingModel::n_parameters] = {theta(i, 0), theta(i, 1)};
    LensingLatent z;
    model.sample(rng::StreamBlocks(seed, rng::Purpose::simulate, first_index + i), theta_i, work, &x(i, 0),
                 z);
    if constexpr (gold) {
      const double gold_i[LensingModel::n_parameters] = {gold_theta(i, 0), gold_theta(i, 1)};
      log_r(i) = LensingModel::joint_log_ratio(z, gold_i, theta0.data());
      double score_i[LensingModel::n_parameters];
      LensingModel::joint_score(z, theta_i, score_i);
      score(i, 0) = score_i[0];
      score(i, 1) = score_i[1];
    }
  }
};

template <bool gold>
void run(const ExecutionSpace& space, const std::string& label, const LensingKernel<gold>& kernel,
         std::size_t n_rows) {
  if (n_rows == 0) return;
  Kokkos::parallel_for(
      label,
      TeamPolicy(space, static_cast<int>(n_rows), 1).set_scratch_size(1, Kokkos::PerTeam(scratch_bytes)),
      kernel);
}

const char* const host_quantities = "lens_redshift, velocity_dispersion, source_offset";

}  // namespace

void LensingModel::prepare() {
  chi_source = comoving_distance(source_redshift);
  chi_fixed_lens = comoving_distance(fixed_redshift);
  double sum = 0.0;
  for (int t = -psf_half_width; t <= psf_half_width; ++t) {
    const double d = t * pixel;
    psf[t + psf_half_width] = std::exp(-d * d / (2.0 * psf_sigma * psf_sigma));
    sum += psf[t + psf_half_width];
  }
  for (double& tap : psf) tap /= sum;
}

SimulatorInfo LensingModel::info() {
  SimulatorInfo info;
  info.name = "lensing";
  info.doc =
      "64x64 strong-lensing images (counts) of a Sersic source behind an isothermal host with NFW "
      "dark-matter "
      "subhalos, with gold";
  info.parameters = {{"f_sub", 0.001, 0.2, {}, "mass fraction of the host halo in subhalos"},
                     {"beta", -2.5, -1.5, {}, "slope of the subhalo mass function dn/dm ~ m^beta"}};
  info.observables = {"image"};
  info.observable_shape = {1, width, width};
  info.x_float32 = true;
  info.has_gold = true;
  info.stream_version = 1;
  return info;
}

Lensing::Lensing(const LensingModel& model) : model_(model), info_(LensingModel::info()) { model_.prepare(); }

void Lensing::simulate(const ExecutionSpace& space, const ConstMatrix& theta, const Matrix& x,
                       std::uint64_t first_index, std::uint64_t seed) const {
  NSBI_ASSERT(theta.extent(1) == info_.n_parameters() && x.extent(1) == info_.n_observables() &&
                  theta.extent(0) == x.extent(0),
              "theta/x shapes do not match simulator lensing");
  run(space, "nsbi::sims::lensing::simulate",
      LensingKernel<false>{model_, theta, x, {}, {}, {}, {}, first_index, seed}, theta.extent(0));
}

void Lensing::simulate_gold(const ExecutionSpace& space, const ConstMatrix& theta, const Matrix& x,
                            const ConstMatrix& gold_theta, const double* theta0, const Vector& log_r,
                            const Matrix& score, std::uint64_t first_index, std::uint64_t seed) const {
  check_gold_arguments(info_, theta, x, gold_theta, theta0, log_r, score);
  const std::size_t n = theta.extent(0);
  LensingKernel<true> kernel{model_, theta, x, gold_theta, {}, log_r, score, first_index, seed};
  for (int p = 0; p < LensingModel::n_parameters; ++p) kernel.theta0[p] = theta0[p];
  run(space, "nsbi::sims::lensing::simulate_gold", kernel, n);
}

LensingLatent Lensing::latent(const double* theta, std::uint64_t index, std::uint64_t seed) const {
  const rng::StreamBlocks draws(seed, rng::Purpose::simulate, index);
  LensingLatent z;
  z.host = model_.host_of(draws);
  z.nbar = LensingModel::mean_subhalos(z.host, theta[0], theta[1]);
  z.n = rng::poisson(draws, LensingModel::count_block, z.nbar);
  double sum = 0.0;
  for (std::uint64_t j = 0; j < z.n; ++j) sum += LensingModel::subhalo(draws, j, theta[1], z.host).log_mass;
  z.mass_log_sum = sum;
  return z;
}

std::vector<double> Lensing::subhalo_masses(const double* theta, std::uint64_t index,
                                            std::uint64_t seed) const {
  const rng::StreamBlocks draws(seed, rng::Purpose::simulate, index);
  const LensingLatent z = latent(theta, index, seed);
  std::vector<double> masses;
  for (std::uint64_t j = 0; j < z.n; ++j)
    masses.push_back(LensingModel::mass_unit *
                     std::exp(LensingModel::subhalo(draws, j, theta[1], z.host).log_mass));
  return masses;
}

std::vector<SimulatorOption> lensing_options() {
  SimulatorOption fixed;
  fixed.key = "fixed";
  fixed.default_value = "[]";
  fixed.doc = std::string("host quantities held fixed instead of drawn per image, any of ") +
              host_quantities + " (their values: the options below)";
  fixed.string_list = true;
  SimulatorOption redshift{"lens_redshift",
                           "0.5623413251903491",
                           "the lens redshift when fixed (default 10^-0.25)",
                           {},
                           0.01,
                           1.0};
  SimulatorOption dispersion{
      "velocity_dispersion", "225", "the host's velocity dispersion in km/s when fixed", {}, 10.0, 1000.0};
  SimulatorOption offset_x{
      "source_offset_x", "0", "the source's x position in arcsec when fixed", {}, -3.2, 3.2};
  SimulatorOption offset_y{
      "source_offset_y", "0", "the source's y position in arcsec when fixed", {}, -3.2, 3.2};
  return {fixed, redshift, dispersion, offset_x, offset_y};
}

std::unique_ptr<Simulator> make_lensing(const SimulatorOptions& options) {
  LensingModel model;
  // A value given for a quantity that is drawn would be ignored: an error unless it is the default (which
  // the configuration always passes).
  std::map<std::string, std::pair<double, double>> values;  // key -> (value, default)
  for (const auto& option : lensing_options())
    if (!option.string_list)
      values[option.key] = {parse_option_number(option.key, option.default_value), 0.0};
  for (auto& [key, value] : values) value.second = value.first;
  for (const auto& [key, text] : options) {
    if (key == "fixed") {
      YAML::Node list;
      try {
        list = YAML::Load(text);
      } catch (const YAML::Exception&) {
        list = YAML::Node();
      }
      if (!list.IsSequence())
        throw ConfigError("simulator.fixed: give a list of host quantities, any of " +
                          std::string(host_quantities));
      for (const auto& item : list) {
        const std::string name = item.as<std::string>();
        if (name == "lens_redshift")
          model.draw_redshift = false;
        else if (name == "velocity_dispersion")
          model.draw_dispersion = false;
        else if (name == "source_offset")
          model.draw_offset = false;
        else
          throw ConfigError("simulator.fixed: '" + name + "' is none of " + std::string(host_quantities));
      }
    } else if (values.count(key) != 0) {
      const double value = parse_option_number(key, text);
      double minimum = 0.0, maximum = 0.0;
      for (const auto& option : lensing_options())
        if (option.key == key) minimum = option.minimum, maximum = option.maximum;
      if (!(value >= minimum && value <= maximum))
        throw ConfigError("simulator." + key + ": " + text + " is outside [" + std::to_string(minimum) +
                          ", " + std::to_string(maximum) + "]");
      values[key].first = value;
    } else {
      throw ConfigError("simulator." + key +
                        ": lensing has no such option (it has fixed, lens_redshift, "
                        "velocity_dispersion, source_offset_x, source_offset_y)");
    }
  }
  const auto check_used = [&](const char* key, bool drawn, const char* quantity) {
    const auto& [value, fallback] = values.at(key);
    if (drawn && value != fallback)
      throw ConfigError(std::string("simulator.") + key + ": given, but " + quantity +
                        " is drawn per image (add it to simulator.fixed to fix it at this value)");
  };
  check_used("lens_redshift", model.draw_redshift, "lens_redshift");
  check_used("velocity_dispersion", model.draw_dispersion, "velocity_dispersion");
  check_used("source_offset_x", model.draw_offset, "source_offset");
  check_used("source_offset_y", model.draw_offset, "source_offset");
  model.fixed_redshift = values.at("lens_redshift").first;
  model.fixed_dispersion = values.at("velocity_dispersion").first;
  model.fixed_offset_x = values.at("source_offset_x").first;
  model.fixed_offset_y = values.at("source_offset_y").first;
  return std::make_unique<Lensing>(model);
}

}  // namespace nsbi::sims
