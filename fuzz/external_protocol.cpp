// Fuzz target: the decoder of the external-simulator protocol (docs/external_simulators.md), the bytes a
// simulator program sends nsbi: its handshake, then responses to batches.
//
// Input: a handshake; then for each batch (up to 4) one control byte, whose bits 0-2 give the rows asked
// (0 to 7) and bit 3 asks for gold (when the handshake offers it), followed by the response.
// Expected outcomes: decoded messages, or protocol::Violation (which nsbi reports as an InputError naming the
// program). Findings: any other exception, a crash, a hang, a sanitizer report, or a non-finite value let
// through.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "nsbi/sims/external.hpp"

namespace protocol = nsbi::sims::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::size_t offset = 0;
  // The program's output as the pipe reader sees it: fewer bytes than asked means it closed its output.
  const protocol::Reader read = [&](void* out, std::size_t bytes, const std::string& what) {
    if (bytes > size - offset)
      throw protocol::Violation("the program closed its output after sending " +
                                std::to_string(size - offset) + " of the " + std::to_string(bytes) +
                                " bytes of " + what);
    if (bytes > 0) std::memcpy(out, data + offset, bytes);
    offset += bytes;
  };
  try {
    const nsbi::sims::SimulatorInfo info = protocol::read_handshake(read);
    for (std::uint64_t number = 0; number < 4 && offset < size; ++number) {
      const std::uint8_t control = data[offset++];
      const protocol::Batch batch{number, 1000 * number, control & 7u, (control & 8u) != 0 && info.has_gold};
      std::vector<double> x(batch.rows * info.n_observables());
      std::vector<double> gold(batch.gold ? batch.rows * (1 + info.n_parameters()) : 0);
      protocol::read_response(read, info, batch, x.data(), gold.data());
      for (const std::vector<double>* values : {&x, &gold})
        for (const double value : *values)
          if (!std::isfinite(value)) {
            std::fprintf(stderr, "a non-finite value was let through\n");
            std::abort();
          }
    }
  } catch (const protocol::Violation&) {
  }
  return 0;
}
