#include "nsbi/core/config.hpp"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "nsbi/core/error.hpp"

namespace nsbi::config {
namespace {

// A problem with a value: its message and, for a list, the offending element.
struct Problem {
  std::optional<std::size_t> element;
  std::string what;
};

std::string join(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "." + name;
}

// "a.b.c" -> "a.b"; "a.b[2]" -> "a.b"; "a" -> "".
std::string parent_of(const std::string& path) {
  const std::size_t cut = path.empty() || path.back() != ']' ? path.rfind('.') : path.rfind('[');
  return cut == std::string::npos ? std::string() : path.substr(0, cut);
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> names;
  if (path.empty()) return names;
  std::size_t begin = 0;
  for (std::size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', begin)) {
    names.push_back(path.substr(begin, dot - begin));
    begin = dot + 1;
  }
  names.push_back(path.substr(begin));
  return names;
}

// Names are what a user types after --set: letters, digits, '_' and '-'.
bool is_key_path(const std::string& path) {
  const std::vector<std::string> names = split_path(path);
  return !names.empty() && std::all_of(names.begin(), names.end(), [](const std::string& name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
      return std::isalnum(c) || c == '_' || c == '-';
    });
  });
}

std::string lowercase(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Optimal string alignment distance: Levenshtein plus adjacent transpositions, the commonest typo.
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// The shortest decimal text that reads back as `value`, so that bounds print as the schema wrote them.
std::string format_number(double value) {
  char text[32];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(text, sizeof text, "%.*g", digits, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  return text;
}

// YAML spellings like 0x10, .inf or .nan are not accepted: numbers are finite decimals.
bool is_decimal(const std::string& text) {
  std::size_t i = 0;
  const std::size_t n = text.size();
  const auto digits = [&] {
    const std::size_t start = i;
    while (i < n && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    return i - start;
  };
  if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
  std::size_t mantissa = digits();
  if (i < n && text[i] == '.') {
    ++i;
    mantissa += digits();
  }
  if (mantissa == 0) return false;
  if (i < n && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == n;
}

std::optional<double> to_number(const std::string& text) {
  if (!is_decimal(text)) return std::nullopt;
  const double value = std::strtod(text.c_str(), nullptr);
  if (!std::isfinite(value)) return std::nullopt;
  return value;
}

// An integer written in decimal, also in exponent form (n_samples: 1e5, 2.5e3), read exactly: no detour
// through double, which would round integers beyond 2^53 (a seed of 9007199254740993 is not ...992).
struct Integer {
  std::optional<std::int64_t> value;  // nullopt: not an integer, or one beyond 64 bits (out_of_range)
  bool out_of_range = false;
};

Integer to_integer(const std::string& text) {
  if (!is_decimal(text)) return {};
  std::size_t i = 0;
  const bool negative = text[i] == '-';
  if (text[i] == '+' || text[i] == '-') ++i;
  std::string digits;  // the mantissa's digits without the point: value = digits x 10^scale
  long scale = 0;
  bool fraction = false;
  for (; i < text.size() && text[i] != 'e' && text[i] != 'E'; ++i) {
    if (text[i] == '.') {
      fraction = true;
      continue;
    }
    digits += text[i];
    if (fraction) --scale;
  }
  if (i < text.size()) {
    // Clamped: any exponent beyond 10^6 leaves a non-zero value out of range or not integral.
    long exponent = 0;
    std::size_t k = i + 1;
    const bool exponent_negative = text[k] == '-';
    if (text[k] == '+' || text[k] == '-') ++k;
    for (; k < text.size(); ++k) exponent = std::min<long>(exponent * 10 + (text[k] - '0'), 1000000);
    scale += exponent_negative ? -exponent : exponent;
  }
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
  if (digits.empty()) return {0};
  for (; scale < 0; ++scale) {
    if (digits.back() != '0') return {};  // a fraction: 2.5, 1e-1
    digits.pop_back();
  }
  // |value| <= 2^63 (-2^63 is the smallest int64); 20 digits or a scale of 19 already exceed it.
  constexpr std::uint64_t limit = std::uint64_t{1} << 63;
  if (digits.size() + static_cast<std::size_t>(scale) > 19) return {std::nullopt, true};
  std::uint64_t magnitude = 0;
  for (const char digit : digits) magnitude = magnitude * 10 + static_cast<std::uint64_t>(digit - '0');
  for (long k = 0; k < scale; ++k) magnitude *= 10;
  if (magnitude > limit || (magnitude == limit && !negative)) return {std::nullopt, true};
  if (negative) return {static_cast<std::int64_t>(0 - magnitude)};  // two's complement: -2^63 included
  return {static_cast<std::int64_t>(magnitude)};
}

// -1, 0 or 1 as `value` is below, equal to or above `bound`.
int compare(double value, double bound) { return value < bound ? -1 : value > bound ? 1 : 0; }

// The same for an integer, compared exactly (not rounded to a double first).
int compare(std::int64_t value, double bound) {
  constexpr double limit = 9223372036854775808.0;  // 2^63
  if (bound >= limit) return -1;
  if (bound < -limit) return 1;
  const double whole = std::floor(bound);  // in [-2^63, 2^63): exact as int64
  const auto integer = static_cast<std::int64_t>(whole);
  if (value != integer) return value < integer ? -1 : 1;
  return whole == bound ? 0 : -1;
}

std::string describe(const YAML::Node& value) {
  switch (value.Type()) {
    case YAML::NodeType::Scalar:
      return "'" + value.Scalar() + "'";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "an empty value";
  }
}

std::string expected(Type type) {
  switch (type) {
    case Type::boolean:
      return "true or false";
    case Type::integer:
      return "an integer";
    case Type::number:
      return "a number";
    case Type::string:
      return "a string";
    case Type::integer_list:
      return "a list of integers";
    case Type::number_list:
      return "a list of numbers";
    case Type::string_list:
      return "a list of strings";
    case Type::string_or_list:
      return "a string or a list of strings";
    case Type::map:
      return "a map";
  }
  return "";
}

// The bounds of `key` against a value for which compare_to(bound) is -1, 0 or 1 (below, at, above it).
std::optional<std::string> check_bounds(const Key& key, const std::function<int(double)>& compare_to,
                                        const std::string& text) {
  if (key.min && compare_to(*key.min) < 0) return "must be >= " + format_number(*key.min) + ", got " + text;
  if (key.max && compare_to(*key.max) > 0) return "must be <= " + format_number(*key.max) + ", got " + text;
  return std::nullopt;
}

std::optional<std::string> check_choice(const Key& key, const std::string& value) {
  if (key.choices.empty() || std::find(key.choices.begin(), key.choices.end(), value) != key.choices.end())
    return std::nullopt;
  std::string what = "expected one of ";
  for (std::size_t i = 0; i < key.choices.size(); ++i) what += (i ? ", '" : "'") + key.choices[i] + "'";
  what += ", got '" + value + "'";
  const std::string suggestion = closest(value, key.choices);
  if (!suggestion.empty()) what += "; did you mean '" + suggestion + "'?";
  return what;
}

// Checks one scalar against `type` (the key's type, or the element type of a list) and the key's constraints.
std::optional<std::string> check_scalar(const Key& key, Type type, const YAML::Node& value) {
  if (!value.IsScalar()) return "expected " + expected(type) + ", got " + describe(value);
  const std::string& text = value.Scalar();
  switch (type) {
    case Type::boolean:
      if (text == "true" || text == "false") return std::nullopt;
      return "expected true or false, got " + describe(value);
    case Type::integer: {
      const Integer integer = to_integer(text);
      if (integer.out_of_range) return "integer out of range, got " + describe(value);
      if (!integer.value) return "expected an integer, got " + describe(value);
      return check_bounds(
          key, [&](double bound) { return compare(*integer.value, bound); }, text);
    }
    case Type::number: {
      const std::optional<double> number = to_number(text);
      if (!number) return "expected a number, got " + describe(value);
      return check_bounds(
          key, [&](double bound) { return compare(*number, bound); }, text);
    }
    default:
      return check_choice(key, text);
  }
}

std::optional<Problem> check_value(const Key& key, const YAML::Node& value) {
  switch (key.type) {
    case Type::integer_list:
    case Type::number_list:
    case Type::string_list: {
      if (!value.IsSequence())
        return Problem{{}, "expected " + expected(key.type) + ", got " + describe(value)};
      if (key.length && value.size() != *key.length)
        return Problem{
            {}, "expected " + std::to_string(*key.length) + " elements, got " + std::to_string(value.size())};
      const Type element = key.type == Type::integer_list  ? Type::integer
                           : key.type == Type::number_list ? Type::number
                                                           : Type::string;
      std::size_t index = 0;
      for (const YAML::Node& item : value) {
        if (std::optional<std::string> what = check_scalar(key, element, item)) return Problem{index, *what};
        ++index;
      }
      return std::nullopt;
    }
    case Type::string_or_list: {
      if (!value.IsSequence() && !value.IsScalar())
        return Problem{{}, "expected " + expected(key.type) + ", got " + describe(value)};
      Key as_read = key;
      as_read.type = value.IsSequence() ? Type::string_list : Type::string;
      return check_value(as_read, value);
    }
    case Type::map:
      // An empty value where a map is expected is an empty map.
      if (value.IsMap() || value.IsNull()) return std::nullopt;
      return Problem{{}, "expected a map, got " + describe(value)};
    default:
      if (std::optional<std::string> what = check_scalar(key, key.type, value)) return Problem{{}, *what};
      return std::nullopt;
  }
}

// A YAML text with a second document (after a `---` line), which YAML::Load would ignore without a word.
struct SecondDocument {
  YAML::Mark start;  // of the second document: its `---` line
};

// The first document of `yaml_text`, after checking that it is the only one with content: YAML::Exception for
// invalid YAML, SecondDocument for a second document. The documents are walked here rather than with
// YAML::LoadAll, which never returns on a token no document can start with (a ',' outside brackets makes an
// empty document and stays where it is: yaml-cpp issue 1040).
YAML::Node load_document(const std::string& yaml_text) {
  struct Documents : YAML::EventHandler {
    std::vector<YAML::Mark> starts;
    bool content = false;  // whether the current document holds more than an empty value
    void OnDocumentStart(const YAML::Mark& mark) override {
      starts.push_back(mark);
      content = false;
    }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override { content = true; }
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {
      content = true;
    }
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {
      content = true;
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {
      content = true;
    }
    void OnMapEnd() override {}
  } documents;
  std::istringstream in(yaml_text);
  YAML::Parser parser(in);
  while (parser.HandleNextDocument(documents)) {
    const std::vector<YAML::Mark>& starts = documents.starts;
    if (starts.size() < 2) continue;
    const YAML::Mark& start = starts.back();
    if (start.pos == starts[starts.size() - 2].pos) {
      const char c = static_cast<std::size_t>(start.pos) < yaml_text.size() ? yaml_text[start.pos] : ' ';
      throw YAML::ParserException(start, std::isgraph(static_cast<unsigned char>(c))
                                             ? "unexpected '" + std::string(1, c) + "'"
                                             : "unexpected character");
    }
    if (documents.content) throw SecondDocument{start};
  }
  return YAML::Load(yaml_text);
}

std::string element_path(const std::string& path, const Problem& problem) {
  return problem.element ? path + "[" + std::to_string(*problem.element) + "]" : path;
}

// Empty collections print as {} and [] on their key's line rather than on a line of their own.
void use_flow_style_when_empty(YAML::Node node) {
  if ((node.IsMap() || node.IsSequence()) && node.size() == 0) node.SetStyle(YAML::EmitterStyle::Flow);
  if (node.IsMap()) {
    for (const auto& entry : node) use_flow_style_when_empty(entry.second);
  } else if (node.IsSequence()) {
    for (const YAML::Node& item : node) use_flow_style_when_empty(item);
  }
}
}  // namespace

// ---------------------------------------------------------------------------------------------------- Schema

Schema& Schema::add(Key key) {
  const std::string& path = key.path;
  NSBI_ASSERT(is_key_path(path), "config key path '" + path + "' is not dotted names");
  NSBI_ASSERT(!index_.count(path) && !sections_.count(path), "config key '" + path + "' is declared twice");
  const bool numeric = key.type == Type::integer || key.type == Type::number ||
                       key.type == Type::integer_list || key.type == Type::number_list;
  const bool textual =
      key.type == Type::string || key.type == Type::string_list || key.type == Type::string_or_list;
  const bool list =
      key.type == Type::integer_list || key.type == Type::number_list || key.type == Type::string_list;
  NSBI_ASSERT(numeric || (!key.min && !key.max), "config key '" + path + "': bounds on a non-numeric key");
  NSBI_ASSERT(!key.min || !key.max || *key.min <= *key.max, "config key '" + path + "': min > max");
  NSBI_ASSERT(textual || key.choices.empty(), "config key '" + path + "': choices on a non-string key");
  NSBI_ASSERT(list || !key.length, "config key '" + path + "': length on a non-list key");
  if (key.default_value) check_default(key);
  const std::vector<std::string> names = split_path(path);
  std::string section;
  for (std::size_t i = 0; i + 1 < names.size(); ++i) {
    const std::string child = join(section, names[i]);
    NSBI_ASSERT(!index_.count(child), "config key '" + path + "' lies inside key '" + child + "'");
    if (!sections_.count(child)) {
      sections_[section].push_back(names[i]);
      sections_[child];
    }
    section = child;
  }
  sections_[section].push_back(names.back());
  index_[path] = keys_.size();
  keys_.push_back(std::move(key));
  return *this;
}

Schema& Schema::set_default(const std::string& path, const std::string& yaml_text) {
  const auto it = index_.find(path);
  NSBI_ASSERT(it != index_.end(), "config key '" + path + "' is not declared");
  Key& key = keys_[it->second];
  key.with_default(yaml_text);
  check_default(key);
  return *this;
}

void Schema::check_default(const Key& key) {
  const std::optional<Problem> problem = check_value(key, *key.default_value);
  NSBI_ASSERT(!problem, "config key '" + key.path + "': the default violates the schema: " +
                            (problem ? element_path(key.path, *problem) + ": " + problem->what : ""));
}

const Key* Schema::find(const std::string& path) const {
  const auto it = index_.find(path);
  return it == index_.end() ? nullptr : &keys_[it->second];
}

bool Schema::is_section(const std::string& path) const { return sections_.count(path) != 0; }

const std::vector<std::string>& Schema::children(const std::string& section) const {
  const auto it = sections_.find(section);
  NSBI_ASSERT(it != sections_.end(), "'" + section + "' is not a section of the config schema");
  return it->second;
}

std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  const std::size_t limit = std::max<std::size_t>(2, word.size() / 3);
  const std::string lower = lowercase(word);
  std::string best;
  std::size_t best_distance = limit + 1;
  for (const std::string& candidate : candidates) {
    const std::size_t distance = edit_distance(lower, lowercase(candidate));
    // distance < word.size(): replacing every letter of a short word is no suggestion.
    if (distance < best_distance && distance < word.size()) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------------- Config

Config::Config(const YAML::Node& root, std::string file)
    : root_(YAML::NodeType::Map), file_(std::move(file)) {
  if (root.IsNull()) return;  // an empty file: every key takes its default
  if (!root.IsMap())
    throw ConfigError(mark_location(root.Mark()) + ": the top level must be a map of sections, got " +
                      describe(root));
  root_.reset(root);
  std::size_t values = 0;
  scan_tree(root_, "", "", values, 0);
}

Config::Config(const Config& other)
    : root_(YAML::Clone(other.root_)),
      file_(other.file_),
      origins_(other.origins_),
      overrides_(other.overrides_) {}

Config& Config::operator=(const Config& other) {
  // reset() rebinds; YAML::Node::operator= would write through to the tree this handle refers to.
  root_.reset(YAML::Clone(other.root_));
  file_ = other.file_;
  origins_ = other.origins_;
  overrides_ = other.overrides_;
  return *this;
}

Config Config::parse(const std::string& yaml_text, const std::string& name,
                     const std::vector<std::string>& overrides) {
  const auto where = [&](const YAML::Mark& mark) {
    return mark.is_null()
               ? name
               : name + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  };
  YAML::Node root;
  try {
    root = load_document(yaml_text);
  } catch (const YAML::Exception& error) {
    throw ConfigError(where(error.mark) + ": invalid YAML: " + error.msg);
  } catch (const SecondDocument& second) {
    throw ConfigError(where(second.start) +
                      ": a second YAML document starts here: a config file holds one document (remove "
                      "this '---' line, or the document after it)");
  }
  Config config(root, name);
  for (const std::string& assignment : overrides) config.apply_override(assignment);
  return config;
}

Config Config::load(const std::string& file, const std::vector<std::string>& overrides) {
  std::error_code ignored;
  if (std::filesystem::is_directory(file, ignored))
    throw ConfigError(file + ": cannot read config file: it is a directory");
  std::ifstream in(file);
  if (!in) throw ConfigError(file + ": cannot read config file: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError(file + ": cannot read config file: " + std::strerror(errno));
  return parse(text.str(), file, overrides);
}

// yaml-cpp keeps both entries of a duplicated key and lookups see only the first, so duplicates are found
// here; for the file's tree this also records where every path was written. An alias (*name) is visited
// at every use, so the walk is bounded: aliases nested in each other would expand exponentially (`values`),
// and an alias inside its own anchor (`a: &x {b: *x}`) makes a cycle (`depth`).
void Config::scan_tree(const YAML::Node& node, const std::string& path, const std::string& override_text,
                       std::size_t& values, std::size_t depth) {
  const auto where = [&](const YAML::Mark& mark) {
    return override_text.empty() ? mark_location(mark) : override_text;
  };
  if (++values > max_values)
    throw ConfigError(where(node.Mark()) + ": " + (path.empty() ? "" : path + ": ") +
                      "the config has more than " + std::to_string(max_values) +
                      " keys and list elements (a YAML alias *name counts at every use)");
  if (depth > max_depth)
    throw ConfigError(where(node.Mark()) + ": " + path + ": nested more than " + std::to_string(max_depth) +
                      " levels deep (is a YAML alias *name inside the anchor &name it refers to?)");
  if (node.IsMap()) {
    std::map<std::string, YAML::Mark> seen;
    for (const auto& entry : node) {
      const YAML::Node& key = entry.first;
      if (!key.IsScalar() || key.Scalar().empty() || key.Scalar().find_first_of(".[]") != std::string::npos)
        throw ConfigError(where(key.Mark()) + ": " + (path.empty() ? "" : path + ": ") +
                          "keys must be plain names (no '.', '[' or ']'), got " + describe(key));
      const std::string child = join(path, key.Scalar());
      const auto [first, fresh] = seen.emplace(key.Scalar(), key.Mark());
      if (!fresh)
        throw ConfigError(
            where(key.Mark()) + ": " + child + ": duplicate key" +
            (override_text.empty() ? " (first at line " + std::to_string(first->second.line + 1) + ")" : ""));
      const YAML::Node& value = entry.second;
      const bool block = (value.IsMap() || value.IsSequence()) && value.Style() != YAML::EmitterStyle::Flow;
      if (override_text.empty())
        origins_[child] = {key.Mark(), value.IsNull() || block ? key.Mark() : value.Mark()};
      scan_tree(value, child, override_text, values, depth + 1);
    }
  } else if (node.IsSequence()) {
    std::size_t index = 0;
    for (const YAML::Node& item : node) {
      const std::string child = path + "[" + std::to_string(index++) + "]";
      if (override_text.empty()) origins_[child] = {item.Mark(), item.Mark()};
      scan_tree(item, child, override_text, values, depth + 1);
    }
  }
}

void Config::apply_override(const std::string& assignment) {
  const std::string where = "--set " + assignment;
  const std::size_t equals = assignment.find('=');
  if (equals == std::string::npos) throw ConfigError(where + ": expected key.path=value");
  const std::string path = assignment.substr(0, equals);
  if (!is_key_path(path))
    throw ConfigError(where + ": '" + path + "' is not a key path (names separated by '.')");
  YAML::Node value;
  try {
    value = load_document(assignment.substr(equals + 1));
  } catch (const YAML::Exception& error) {
    throw ConfigError(where + ": " + path + ": invalid YAML value: " + error.msg);
  } catch (const SecondDocument&) {
    throw ConfigError(where + ": " + path + ": invalid YAML value: it holds a second YAML document");
  }
  const std::vector<std::string> names = split_path(path);
  std::size_t values = 0;
  scan_tree(value, path, where, values, names.size());
  make_map(parent_of(path), where)[names.back()] = value;
  overrides_.emplace_back(path, where);
}

void Config::validate(const Schema& schema) {
  check_section(schema, "");
  for (const Key& key : schema.keys()) {
    if (!find_node(key.path)) fill_default(key);
  }
}

void Config::validate_key(const Schema& schema, const std::string& path) {
  const Key* key = schema.find(path);
  NSBI_ASSERT(key != nullptr, "'" + path + "' is not a key of the config schema");
  std::string section;
  for (const std::string& name : split_path(parent_of(path))) {
    section = join(section, name);
    const std::optional<YAML::Node> node = find_node(section);
    if (!node || node->IsNull()) break;
    if (!node->IsMap()) fail(section, "expected a map, got " + describe(*node));
  }
  if (const std::optional<YAML::Node> node = find_node(path)) {
    check_present(*key, *node);
  } else {
    fill_default(*key);
  }
}

void Config::check_section(const Schema& schema, const std::string& section) {
  for (const std::string& name : children(section)) {
    const std::string path = join(section, name);
    const YAML::Node value = *find_node(path);
    if (const Key* key = schema.find(path)) {
      check_present(*key, value);
    } else if (schema.is_section(path)) {
      // An empty section (`train:` with everything commented out) takes all its defaults.
      if (value.IsNull()) {
        set_node(path, YAML::Node(YAML::NodeType::Map));
      } else if (!value.IsMap()) {
        fail(path, "expected a map, got " + describe(value));
      }
      check_section(schema, path);
    } else {
      unknown_key(schema, path);
    }
  }
}

void Config::check_present(const Key& key, const YAML::Node& value) {
  if (const std::optional<Problem> problem = check_value(key, value))
    fail(element_path(key.path, *problem), problem->what);
  if (key.type == Type::map && value.IsNull()) set_node(key.path, YAML::Node(YAML::NodeType::Map));
}

void Config::fill_default(const Key& key) {
  if (key.optional && !key.default_value) return;
  if (!key.default_value) fail(key.path, "required key is missing");
  const bool empty_map = key.type == Type::map && key.default_value->IsNull();
  set_node(key.path, empty_map ? YAML::Node(YAML::NodeType::Map) : YAML::Clone(*key.default_value));
}

void Config::unknown_key(const Schema& schema, const std::string& path) const {
  const std::string section = parent_of(path);
  const std::string name = path.substr(section.empty() ? 0 : section.size() + 1);
  std::string suggestion = closest(name, schema.children(section));
  if (!suggestion.empty()) {
    suggestion = join(section, suggestion);
  } else {
    // A misplaced key (e.g. `seed` at the top level): the closest name anywhere in the schema.
    std::vector<std::string> paths, names;
    for (const Key& key : schema.keys()) {
      for (std::string prefix = key.path; !prefix.empty(); prefix = parent_of(prefix)) {
        paths.push_back(prefix);
        names.push_back(prefix.substr(prefix.rfind('.') + 1));  // npos + 1 == 0
      }
    }
    const std::string near = closest(name, names);
    if (!near.empty()) suggestion = paths[std::find(names.begin(), names.end(), near) - names.begin()];
  }
  std::string where = override_covering(path);
  if (where.empty()) {
    const auto written = origins_.find(path);
    // Not in the file: a section that --set made (--set simulat.seed=1 makes `simulat`).
    where = written != origins_.end() ? mark_location(written->second.key) : override_inside(path);
  }
  throw ConfigError(where + ": " + path + ": unknown key" +
                    (suggestion.empty() ? "" : "; did you mean '" + suggestion + "'?"));
}

std::optional<YAML::Node> Config::find_node(const std::string& path) const {
  YAML::Node node = root_;
  for (const std::string& name : split_path(path)) {
    if (!node.IsMap()) return std::nullopt;
    // The const operator[] looks up without inserting an entry.
    const YAML::Node child = static_cast<const YAML::Node&>(node)[name];
    if (!child.IsDefined()) return std::nullopt;
    node.reset(child);
  }
  return node;
}

YAML::Node Config::make_map(const std::string& path, const std::string& needed_by) {
  YAML::Node node = root_;
  std::string prefix;
  for (const std::string& name : split_path(path)) {
    prefix = join(prefix, name);
    const YAML::Node existing = static_cast<const YAML::Node&>(node)[name];
    if (!existing.IsDefined() || existing.IsNull()) {
      node[name] = YAML::Node(YAML::NodeType::Map);
    } else if (!existing.IsMap()) {
      fail(prefix, "expected a map, got " + describe(existing) +
                       (needed_by.empty() ? "" : " (needed by '" + needed_by + "')"));
    }
    node.reset(static_cast<const YAML::Node&>(node)[name]);
  }
  return node;
}

void Config::set_node(const std::string& path, const YAML::Node& value) {
  const std::vector<std::string> names = split_path(path);
  make_map(parent_of(path), "")[names.back()] = value;
}

YAML::Node Config::typed_node(const std::string& path, Type type) const {
  const std::optional<YAML::Node> node = find_node(path);
  NSBI_ASSERT(node.has_value(), "config key '" + path + "' is missing (validate() fills in defaults)");
  if (const std::optional<Problem> problem = check_value(Key(path, type, ""), *node))
    fail(element_path(path, *problem), problem->what);
  return *node;
}

template <>
bool Config::get<bool>(const std::string& path) const {
  return typed_node(path, Type::boolean).Scalar() == "true";
}

template <>
std::int64_t Config::get<std::int64_t>(const std::string& path) const {
  return *to_integer(typed_node(path, Type::integer).Scalar()).value;
}

template <>
double Config::get<double>(const std::string& path) const {
  return *to_number(typed_node(path, Type::number).Scalar());
}

template <>
std::string Config::get<std::string>(const std::string& path) const {
  return typed_node(path, Type::string).Scalar();
}

template <>
std::vector<std::int64_t> Config::get<std::vector<std::int64_t>>(const std::string& path) const {
  std::vector<std::int64_t> values;
  for (const YAML::Node& item : typed_node(path, Type::integer_list))
    values.push_back(*to_integer(item.Scalar()).value);
  return values;
}

template <>
std::vector<double> Config::get<std::vector<double>>(const std::string& path) const {
  std::vector<double> values;
  for (const YAML::Node& item : typed_node(path, Type::number_list))
    values.push_back(*to_number(item.Scalar()));
  return values;
}

template <>
std::vector<std::string> Config::get<std::vector<std::string>>(const std::string& path) const {
  std::vector<std::string> values;
  for (const YAML::Node& item : typed_node(path, Type::string_list)) values.push_back(item.Scalar());
  return values;
}

template <>
YAML::Node Config::get<YAML::Node>(const std::string& path) const {
  const std::optional<YAML::Node> node = find_node(path);
  NSBI_ASSERT(node.has_value(), "config key '" + path + "' is missing (validate() fills in defaults)");
  return YAML::Clone(*node);
}

bool Config::has(const std::string& path) const { return find_node(path).has_value(); }

std::vector<std::string> Config::children(const std::string& path) const {
  std::vector<std::string> names;
  const std::optional<YAML::Node> node = find_node(path);
  if (!node || node->IsNull()) return names;
  if (!node->IsMap()) fail(path, "expected a map, got " + describe(*node));
  for (const auto& entry : *node) names.push_back(entry.first.Scalar());
  return names;
}

std::string Config::override_covering(const std::string& path) const {
  for (auto it = overrides_.rbegin(); it != overrides_.rend(); ++it) {
    const std::string& key = it->first;
    if (path.compare(0, key.size(), key) == 0 &&
        (path.size() == key.size() || path[key.size()] == '.' || path[key.size()] == '['))
      return it->second;
  }
  return "";
}

std::string Config::override_inside(const std::string& path) const {
  for (const auto& [key, where] : overrides_) {
    if (key.compare(0, path.size(), path) == 0 && key.size() > path.size() && key[path.size()] == '.')
      return where;
  }
  NSBI_ASSERT(false, "config path '" + path + "' is neither in the file nor set by --set");
  return "";
}

std::string Config::mark_location(const YAML::Mark& mark) const {
  if (mark.is_null()) return file_;
  return file_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

std::string Config::location(const std::string& path) const {
  const std::string from_override = override_covering(path);
  if (!from_override.empty()) return from_override;
  // A value not in the file (a default, a missing key) is reported where its closest written ancestor is.
  for (std::string prefix = path; !prefix.empty(); prefix = parent_of(prefix)) {
    const auto it = origins_.find(prefix);
    if (it != origins_.end()) return mark_location(it->second.value);
  }
  return file_;
}

void Config::fail(const std::string& path, const std::string& what) const {
  throw ConfigError(location(path) + ": " + (path.empty() ? "" : path + ": ") + what);
}

std::string Config::resolved_yaml() const {
  const YAML::Node tree = YAML::Clone(root_);
  use_flow_style_when_empty(tree);
  YAML::Emitter out;
  out << tree;
  return std::string(out.c_str()) + "\n";
}

YAML::Node number_node(double value) {
  char text[32];
  if (std::nearbyint(value) == value && std::fabs(value) < 1e15) {  // integral: no exponent (400, not 4e+02)
    std::snprintf(text, sizeof text, "%.0f", value);
    return YAML::Node(std::string(text));
  }
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(text, sizeof text, "%.*g", digits, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  return YAML::Node(std::string(text));
}

}  // namespace nsbi::config
