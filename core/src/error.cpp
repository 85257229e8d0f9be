#include "nsbi/core/error.hpp"

#include <sstream>

namespace nsbi::detail {

void throw_internal_error(const char* condition, const std::string& message, const char* function,
                          const char* file, int line) {
  std::ostringstream what;
  what << function << ": internal error: " << message << " (failed: " << condition << ", at " << file << ":"
       << line << "; please report this as a bug)";
  throw InternalError(what.str());
}

}  // namespace nsbi::detail
