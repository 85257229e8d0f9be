#pragma once
// A minimal JSON writer for the stage summaries (<campaign.dir>/<stage>.json): objects of strings,
// numbers, booleans, nested objects and arrays of them, written in insertion order.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace nsbi::json {

class Object {
 public:
  Object& set(const std::string& key, const std::string& value);
  Object& set(const std::string& key, const char* value) { return set(key, std::string(value)); }
  Object& set(const std::string& key, double value);
  Object& set(const std::string& key, std::int64_t value);
  Object& set(const std::string& key, bool value);
  Object& set(const std::string& key, const std::vector<std::string>& value);
  Object& set(const std::string& key, const Object& value);
  /// Arrays of numbers (non-finite ones as null) and of objects (each on one line).
  Object& set(const std::string& key, const std::vector<double>& value);
  Object& set(const std::string& key, const std::vector<Object>& value);
  std::string dump(int indent = 0) const;

 private:
  std::vector<std::pair<std::string, std::string>> members_;  // key, encoded value
};

std::string quote(const std::string& text);

/// Writes `text` to `path` through a temporary file and a rename, so a reader never sees half a file.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace nsbi::json
