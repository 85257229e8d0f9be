#include "nsbi/core/json.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "nsbi/core/error.hpp"

namespace nsbi::json {

std::string quote(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

Object& Object::set(const std::string& key, const std::string& value) {
  members_.emplace_back(key, quote(value));
  return *this;
}

namespace {

std::string number(double value) {
  if (!std::isfinite(value)) return "null";  // JSON has no NaN or infinity
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

}  // namespace

Object& Object::set(const std::string& key, double value) {
  members_.emplace_back(key, number(value));
  return *this;
}

Object& Object::set(const std::string& key, const std::vector<double>& value) {
  std::string out = "[";
  for (std::size_t i = 0; i < value.size(); ++i) out += (i ? ", " : "") + number(value[i]);
  members_.emplace_back(key, out + "]");
  return *this;
}

Object& Object::set(const std::string& key, const std::vector<Object>& value) {
  std::string out = "[";
  for (std::size_t i = 0; i < value.size(); ++i) out += (i ? ", " : "") + value[i].dump(-1);
  members_.emplace_back(key, out + "]");
  return *this;
}

Object& Object::set(const std::string& key, std::int64_t value) {
  members_.emplace_back(key, std::to_string(value));
  return *this;
}

Object& Object::set(const std::string& key, bool value) {
  members_.emplace_back(key, value ? "true" : "false");
  return *this;
}

Object& Object::set(const std::string& key, const std::vector<std::string>& value) {
  std::string out = "[";
  for (std::size_t i = 0; i < value.size(); ++i) out += (i ? ", " : "") + quote(value[i]);
  members_.emplace_back(key, out + "]");
  return *this;
}

Object& Object::set(const std::string& key, const Object& value) {
  members_.emplace_back(key, value.dump(-1));  // nested objects are written on one line
  return *this;
}

std::string Object::dump(int indent) const {
  if (members_.empty()) return "{}";
  const bool pretty = indent >= 0;
  const std::string pad = pretty ? std::string(static_cast<std::size_t>(indent + 2), ' ') : "";
  std::string out = "{";
  for (std::size_t i = 0; i < members_.size(); ++i) {
    out += i ? "," : "";
    out += pretty ? "\n" + pad : (i ? " " : "");
    out += quote(members_[i].first) + ": " + members_[i].second;
  }
  out += pretty ? "\n" + std::string(static_cast<std::size_t>(indent), ' ') + "}" : "}";
  return out;
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  {
    errno = 0;
    std::ofstream out(temporary, std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      const int error = errno;
      std::remove(temporary.c_str());
      throw IoError("cannot write '" + temporary + "': " +
                    (error != 0 ? describe_system_error(error, temporary) : std::string("write failed")));
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0)
    throw IoError("cannot rename '" + temporary + "' to '" + path +
                  "': " + describe_system_error(errno, path));
}

}  // namespace nsbi::json
