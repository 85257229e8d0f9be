#pragma once
// The one config reader of nsbi: a campaign's YAML file checked against a declared schema (docs/config.md).
// Every problem is an nsbi::ConfigError on one grep-able line,
//   <file>:<line>:<col>: <key.path>: <what>
// where the location is `--set key.path=value` for values that came from the command line.
//
// Usage: Config::load(file, overrides) -> build a Schema (possibly in steps, peeking at raw values with
// get/has or validate_key) -> validate(schema) -> get<T>(path); resolved_yaml() is stored with every output.

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace nsbi::config {

/// string_or_list: one string or a list of strings (read with Config::get<YAML::Node>, or get<std::string>
/// and get<std::vector<std::string>> for the form it has).
enum class Type {
  boolean,
  integer,
  number,
  string,
  integer_list,
  number_list,
  string_list,
  string_or_list,
  map
};

/// One leaf of the schema, or a free-form map whose contents are not checked (Type::map). Declared as
///   Key("simulate.n_samples", Type::integer, "Samples to simulate.").with_default("1000").minimum(1)
struct Key {
  Key(std::string key_path, Type key_type, std::string key_doc)
      : path(std::move(key_path)), type(key_type), doc(std::move(key_doc)) {}
  /// The default as YAML text ("0.1", "[0, 0]", "{}"), or as a node.
  Key& with_default(const std::string& yaml_text) { return with_default(YAML::Load(yaml_text)); }
  Key& with_default(const YAML::Node& value) {
    default_value = value;
    return *this;
  }
  Key& minimum(double value) {
    min = value;
    return *this;
  }
  Key& maximum(double value) {
    max = value;
    return *this;
  }
  Key& one_of(std::vector<std::string> values) {
    choices = std::move(values);
    return *this;
  }
  Key& of_length(std::size_t elements) {
    length = elements;
    return *this;
  }
  /// The key may be absent and has no default: whether it is needed depends on other keys, which the
  /// code reading them checks (e.g. a proposal's `value` is needed for kind `fixed` only).
  Key& as_optional() {
    optional = true;
    return *this;
  }

  std::string path;  ///< dotted, e.g. "simulate.n_samples"; its prefixes are implied sections (maps)
  Type type;
  std::string doc;                          ///< one line, for docs and --help
  std::optional<YAML::Node> default_value;  ///< absent => the key is required (unless optional)
  bool optional = false;
  std::optional<double> min, max;     ///< inclusive; integer, number and each element of a numeric list
  std::vector<std::string> choices;   ///< allowed values of a string or of each string_list element
  std::optional<std::size_t> length;  ///< exact number of elements of a list
};

class Schema {
 public:
  /// Adds a key; its parent sections are implied. A malformed key (bad path, duplicate, a default that
  /// violates its own constraints, ...) is a bug in nsbi: InternalError.
  Schema& add(Key key);
  /// Replaces the default of the key at `path`, already added: for a default that depends on keys read after
  /// the key's place in the schema, whose order is the order of the resolved config. InternalError when
  /// `path` is not a key or the default violates its constraints.
  Schema& set_default(const std::string& path, const std::string& yaml_text);
  /// The keys in the order they were added.
  const std::vector<Key>& keys() const { return keys_; }
  /// The key at `path`, or nullptr when `path` is a section or unknown.
  const Key* find(const std::string& path) const;
  /// Whether `path` is a section (a map implied by the keys' paths); "" is the top level.
  bool is_section(const std::string& path) const;
  /// The names of a section's direct children (keys and sections), in the order they were added.
  const std::vector<std::string>& children(const std::string& section) const;

 private:
  static void check_default(const Key& key);

  std::vector<Key> keys_;
  std::map<std::string, std::size_t> index_;
  std::map<std::string, std::vector<std::string>> sections_{{"", {}}};
};

/// The closest candidate to `word` by edit distance (case-insensitive, a transposition counts as one edit),
/// or "" when none is within max(2, length/3) edits: a suggestion for "did you mean ...?".
std::string closest(const std::string& word, const std::vector<std::string>& candidates);

/// A YAML scalar holding `value` in the shortest decimal text that reads back as the same double
/// (-0.99, not -0.98999999999999999): for values nsbi writes into configs and file attributes.
YAML::Node number_node(double value);

class Config {
 public:
  /// Reads and parses `file`, then applies the `key.path=value` overrides (values are YAML scalars or flow
  /// collections). Throws ConfigError for an unreadable file, malformed YAML, duplicate keys or a bad
  /// override.
  static Config load(const std::string& file, const std::vector<std::string>& overrides = {});
  /// Like load() for text already in memory; `name` stands for the file in messages.
  static Config parse(const std::string& yaml_text, const std::string& name,
                      const std::vector<std::string>& overrides = {});

  // A copy owns its own tree (YAML::Node copies would share it); moves fall back to copies.
  Config(const Config& other);
  Config& operator=(const Config& other);

  /// Checks the whole tree against the schema (unknown keys with suggestions, types, bounds, choices,
  /// lengths, required keys) and fills in the defaults. Throws ConfigError on the first problem in file
  /// order.
  void validate(const Schema& schema);
  /// Checks one key of `schema` (and that its parent sections are maps) and fills in its default: for
  /// peeking at a value that decides which other keys exist. No check for unknown keys.
  void validate_key(const Schema& schema, const std::string& path);

  /// The value at `path`, converted with the schema's rules (an integer may be written 1e5; a number may be
  /// an integer; a boolean is true or false). Wrong type: ConfigError. Missing path: InternalError (validate
  /// first, or ask has()). T is one of bool, std::int64_t, double, std::string, std::vector<std::int64_t>,
  /// std::vector<double>, std::vector<std::string>, YAML::Node (a copy). Integers are read exactly (no
  /// rounding through double) and compared exactly against their bounds.
  template <class T>
  T get(const std::string& path) const;
  bool has(const std::string& path) const;
  /// The keys of the map at `path` in file order (defaults come after, in schema order); empty when absent.
  std::vector<std::string> children(const std::string& path) const;

  /// Where the value at `path` came from: "file:line:col" (1-based), "--set key.path=value", or for a value
  /// not in the file (a default, a missing key) the location of its closest ancestor that is, else "file".
  /// A list element is addressed as "key.path[i]".
  std::string location(const std::string& path) const;
  /// Throws ConfigError "<location>: <path>: <what>".
  [[noreturn]] void fail(const std::string& path, const std::string& what) const;

  /// The whole tree as YAML text: file order, then defaults in schema order; parse() of it gives the same
  /// values.
  std::string resolved_yaml() const;
  const std::string& file() const { return file_; }

 private:
  // Where a key was written in the file, and where its value is reported: the value itself, or the key for
  // an empty value or a block collection (whose own mark is its first entry). 0-based yaml-cpp marks.
  struct Origin {
    YAML::Mark key;
    YAML::Mark value;
  };

  /// The most keys and list elements a config may have (a file or one --set value), and the deepest nesting.
  static constexpr std::size_t max_values = 100000;
  static constexpr std::size_t max_depth = 100;

  Config(const YAML::Node& root, std::string file);
  void scan_tree(const YAML::Node& node, const std::string& path, const std::string& override_text,
                 std::size_t& values, std::size_t depth);
  void apply_override(const std::string& assignment);
  void check_section(const Schema& schema, const std::string& section);
  void check_present(const Key& key, const YAML::Node& value);
  void fill_default(const Key& key);
  [[noreturn]] void unknown_key(const Schema& schema, const std::string& path) const;
  std::optional<YAML::Node> find_node(const std::string& path) const;
  YAML::Node typed_node(const std::string& path, Type type) const;
  YAML::Node make_map(const std::string& path, const std::string& needed_by);
  void set_node(const std::string& path, const YAML::Node& value);
  std::string override_covering(const std::string& path) const;
  /// The first `--set` of a key inside section `path`: the one that made the section.
  std::string override_inside(const std::string& path) const;
  std::string mark_location(const YAML::Mark& mark) const;

  YAML::Node root_;
  std::string file_;
  std::map<std::string, Origin> origins_;                       // every path written in the file
  std::vector<std::pair<std::string, std::string>> overrides_;  // (key path, "--set ..."), in order applied
};

template <>
bool Config::get<bool>(const std::string& path) const;
template <>
std::int64_t Config::get<std::int64_t>(const std::string& path) const;
template <>
double Config::get<double>(const std::string& path) const;
template <>
std::string Config::get<std::string>(const std::string& path) const;
template <>
std::vector<std::int64_t> Config::get<std::vector<std::int64_t>>(const std::string& path) const;
template <>
std::vector<double> Config::get<std::vector<double>>(const std::string& path) const;
template <>
std::vector<std::string> Config::get<std::vector<std::string>>(const std::string& path) const;
template <>
YAML::Node Config::get<YAML::Node>(const std::string& path) const;

}  // namespace nsbi::config
