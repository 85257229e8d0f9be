#pragma once
// The seeds a training derives from the campaign seed, one per use, and the row tag of class-0 rows: shared
// by the settings (members, streams), the trainer (pairings, bootstrap) and the diagnostics.

#include <cstdint>

#include "nsbi/core/rng.hpp"

namespace nsbi::training::detail {

/// Set on a class-0 (reference) row index where one draw per row serves both classes (bootstrap weights).
constexpr std::uint64_t high_bit = std::uint64_t{1} << 63;

/// Tags of derive_seed: what each derived seed is for.
enum SeedTag : std::uint64_t {
  dataset_shuffle = 1,
  reference_shuffle,
  marginal_pairing,
  bootstrap_weights,
  dataset_split,
  reference_split,
  diagnostic_events,
  member_base = 1000
};

/// A seed for one use of a campaign or member seed: the Philox bits of a stream no sample index reaches.
inline std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t tag) {
  return rng::Stream(seed, rng::Purpose::initialise, high_bit | tag).next_u64();
}

}  // namespace nsbi::training::detail
