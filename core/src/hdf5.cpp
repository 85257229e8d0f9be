#include "nsbi/core/hdf5.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "nsbi/core/communicator.hpp"

namespace nsbi::h5 {

namespace {
// Files whose HDF5 identifier was given up without a successful close: finalize_library leaves HDF5 alone.
int g_unclosed_files = 0;
}  // namespace

namespace detail {

struct FileState {
  FileState(std::string file_path, MPI_Comm file_comm) : path(std::move(file_path)), comm(file_comm) {}
  FileState(const FileState&) = delete;
  FileState& operator=(const FileState&) = delete;
  ~FileState() {
    if (!file.valid()) return;
    // A failed H5Fclose leaves an identifier that any later use (a second close, H5close) crashes on.
    if (failed || file.close() < 0) {
      file.release();
      ++g_unclosed_files;
    }
  }
  Handle file;
  std::string path;
  MPI_Comm comm;
  // Abandoned: the operating system refused a write (or the open or close failed on some rank). Its objects
  // and the file are forgotten, never closed (see hdf5.hpp).
  bool failed = false;
};

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    close();
    id_ = other.id_;
    closer_ = other.closer_;
    other.id_ = H5I_INVALID_HID;
  }
  return *this;
}

herr_t Handle::close() noexcept {
  if (id_ < 0) return 0;
  const herr_t status = closer_(id_);
  if (status >= 0) id_ = H5I_INVALID_HID;
  return status;
}

}  // namespace detail

namespace {

using detail::Handle;

// HDF5 prints its error stack to stderr by default; nsbi reports failures as exceptions instead. Called by
// is_hdf5 and by every function that opens a file, which precedes any other use of the wrapper.
void silence_hdf5_diagnostics() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

// What the current HDF5 error stack says: its descriptions, outermost first, and what kind of failure it is.
struct ErrorStack {
  std::vector<std::string> descriptions;
  bool input_output = false;  // a read, write, seek or close of the file failed (in HDF5 or MPI-IO)
  bool bad_argument = false;  // HDF5 rejected the arguments of a call
};

herr_t collect_entry(unsigned, const H5E_error2_t* entry, void* data) {
  auto& stack = *static_cast<ErrorStack*>(data);
  try {
    stack.descriptions.emplace_back(entry->desc ? entry->desc : "");
  } catch (...) {
    return -1;
  }
  const hid_t major = entry->maj_num;
  const hid_t minor = entry->min_num;
  // The file layers (not, e.g., a dataset refusing a write to a file opened for reading).
  const bool file_layer = major == H5E_IO || major == H5E_VFL || major == H5E_INTERNAL;
  stack.input_output = stack.input_output || minor == H5E_MPI ||
                       (file_layer && (minor == H5E_READERROR || minor == H5E_WRITEERROR ||
                                       minor == H5E_SEEKERROR || minor == H5E_CLOSEERROR));
  // An address beyond the end of the file is a damaged file, not a bad argument.
  stack.bad_argument = stack.bad_argument || (major == H5E_ARGS && minor != H5E_OVERFLOW);
  return 0;
}

// Must run before any other HDF5 call, which would clear the stack.
ErrorStack error_stack() {
  ErrorStack stack;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_entry, &stack);
  stack.descriptions.erase(std::remove(stack.descriptions.begin(), stack.descriptions.end(), std::string()),
                           stack.descriptions.end());
  return stack;
}

// The most specific reasons on the stack. The outer entries only restate, layer by layer, what the failed
// call was doing (the caller's context says that already).
std::string reasons(const ErrorStack& stack) {
  constexpr std::size_t innermost_kept = 2;
  const auto& descriptions = stack.descriptions;
  if (descriptions.empty()) return "HDF5 gave no reason";
  std::string text;
  const std::size_t first = descriptions.size() - std::min(descriptions.size(), innermost_kept);
  for (std::size_t i = first; i < descriptions.size(); ++i)
    text += (i == first ? "" : ": ") + descriptions[i];
  // Some descriptions embed ctime() output, which ends in a newline.
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

std::string hdf5_reasons() { return reasons(error_stack()); }

// Throws for the failed HDF5 call described by `context` on the file `path`. When HDF5 says a read or write
// of the file failed, the operating system's reason is named: it is what the user acts on ("No space left on
// device"), HDF5's own words ("file write failed") are not. That is errno (check() clears it after every
// successful call) or, where MPI-IO lost it (OpenMPI's OMPIO reports a failed write as a write of -1 bytes),
// a full file system seen afterwards. HDF5 rejecting nsbi's arguments is a bug in nsbi, not a bad file.
[[noreturn]] void fail(const std::string& context, const std::string& path = {}) {
  int system_error = errno;
  const ErrorStack stack = error_stack();
  if (stack.input_output && system_error == 0 && !path.empty() && file_system_full(path))
    system_error = ENOSPC;
  if (stack.input_output)
    throw Error(
        context + ": " +
            (system_error != 0 ? describe_system_error(system_error, path) + "; HDF5: " : std::string()) +
            reasons(stack),
        /*system_failure=*/true);
  if (stack.bad_argument)
    throw InternalError(context + ": HDF5 refused the call: " + reasons(stack) +
                        " (a misuse of the HDF5 API, a bug in nsbi: please report it)");
  throw Error(context + ": " + reasons(stack));
}

// Every HDF5 call returns a negative value (identifier, status or truth value) on failure.
template <class Result>
Result check(Result result, const std::string& context, const std::string& path = {}) {
  if (result < 0) fail(context, path);
  errno = 0;  // so that after a failure errno is the failed call's (HDF5 leaves it set on success too)
  return result;
}

Handle owned(hid_t id, Handle::Closer closer, const std::string& context, const std::string& path = {}) {
  return Handle(check(id, context, path), closer);
}

// Runs one collective call on `file` and agrees on its outcome over the file's communicator (one allreduce
// when it succeeded everywhere): a failure on any rank becomes the lowest failing rank's error on every rank,
// prefixed with that rank when others succeeded. The file is abandoned when the operating system refused the
// call, when only some ranks failed (their HDF5 states differ: no collective close can follow), or always
// with `abandon` (a failed open or close).
template <class Call>
void collectively(detail::FileState& file, bool abandon, Call&& call) {
  struct Failure {
    long long code = 0;  // ExitCode
    long long system_failure = 0;
    std::string message;
  };
  std::optional<Failure> failure;
  try {
    call();
  } catch (const Error& e) {
    failure = Failure{static_cast<long long>(e.code()), e.system_failure() ? 1 : 0, e.what()};
  } catch (const nsbi::Error& e) {
    failure = Failure{static_cast<long long>(e.code()), 0, e.what()};
  } catch (const std::exception& e) {
    failure = Failure{static_cast<long long>(ExitCode::internal), 0, e.what()};
  }
  const Communicator comm(file.comm);
  bool everywhere = true;  // whether every rank failed alike (their HDF5 states then still agree)
  if (comm.size() > 1) {
    const std::int64_t mine = failure ? comm.rank() : comm.size();
    const std::int64_t lowest = -comm.max(-mine);
    if (lowest == comm.size()) return;
    const std::int64_t n_failed = comm.sum(std::int64_t{failure ? 1 : 0});
    const int root = static_cast<int>(lowest);
    Failure agreed = failure.value_or(Failure{});
    std::uint64_t code = static_cast<std::uint64_t>(agreed.code);
    std::uint64_t system_failure = static_cast<std::uint64_t>(agreed.system_failure);
    comm.broadcast(code, root);
    comm.broadcast(system_failure, root);
    agreed.message = comm.broadcast(agreed.message, root);
    everywhere = n_failed == comm.size();
    if (!everywhere) agreed.message = "[rank " + std::to_string(root) + "] " + agreed.message;
    failure = Failure{static_cast<long long>(code), static_cast<long long>(system_failure), agreed.message};
  }
  if (!failure) return;
  if (abandon || failure->system_failure || !everywhere) file.failed = true;
  if (failure->code != static_cast<long long>(ExitCode::bad_input)) throw InternalError(failure->message);
  throw Error(failure->message, failure->system_failure != 0);
}

hid_t file_type_of(DataType type) {
  switch (type) {
    case DataType::float64:
      return H5T_IEEE_F64LE;
    case DataType::float32:
      return H5T_IEEE_F32LE;
    case DataType::int64:
      return H5T_STD_I64LE;
    case DataType::uint8:
      return H5T_STD_U8LE;
  }
  NSBI_ASSERT(false, "unknown nsbi::h5::DataType");
  return H5I_INVALID_HID;
}

hid_t memory_type_of(DataType type) {
  switch (type) {
    case DataType::float64:
      return H5T_NATIVE_DOUBLE;
    case DataType::float32:
      return H5T_NATIVE_FLOAT;
    case DataType::int64:
      return H5T_NATIVE_INT64;
    case DataType::uint8:
      return H5T_NATIVE_UINT8;
  }
  NSBI_ASSERT(false, "unknown nsbi::h5::DataType");
  return H5I_INVALID_HID;
}

// Reads convert only where no value can change: float32 widens to float64, uint8 fits every other type.
bool reads_exactly(DataType stored, DataType requested) {
  return stored == requested || (stored == DataType::float32 && requested == DataType::float64) ||
         stored == DataType::uint8;
}

std::string class_name(H5T_class_t type_class) {
  switch (type_class) {
    case H5T_INTEGER:
      return "integer";
    case H5T_FLOAT:
      return "floating-point";
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return "compound";
    case H5T_ENUM:
      return "enum";
    case H5T_ARRAY:
      return "array";
    case H5T_VLEN:
      return "variable-length";
    default:
      return "other";
  }
}

H5T_class_t class_of(hid_t type, const std::string& context) {
  const H5T_class_t type_class = H5Tget_class(type);
  if (type_class == H5T_NO_CLASS) fail(context);
  return type_class;
}

DataType data_type_of_stored(hid_t type, const std::string& context) {
  const H5T_class_t type_class = class_of(type, context);
  const std::size_t size = H5Tget_size(type);
  if (size == 0) fail(context);
  if (type_class == H5T_FLOAT && size == 8) return DataType::float64;
  if (type_class == H5T_FLOAT && size == 4) return DataType::float32;
  std::string sign;
  if (type_class == H5T_INTEGER) {
    const H5T_sign_t sign_type = check(H5Tget_sign(type), context);
    if (sign_type == H5T_SGN_2 && size == 8) return DataType::int64;
    if (sign_type == H5T_SGN_NONE && size == 1) return DataType::uint8;
    sign = sign_type == H5T_SGN_2 ? " signed" : " unsigned";
  }
  throw Error(context + ": it holds " + std::to_string(size) + "-byte" + sign + " " + class_name(type_class) +
              " elements; nsbi reads float64, float32, int64 and uint8");
}

std::string rows_text(hsize_t row_offset, hsize_t n_rows) {
  return "rows [" + std::to_string(row_offset) + ", " + std::to_string(row_offset + n_rows) + ")";
}

std::string write_context(const std::string& name, const std::string& where) {
  return "nsbi::h5::Object::write_attribute: cannot write attribute '" + name + "' of " + where;
}

std::string read_context(const std::string& name, const std::string& where) {
  return "nsbi::h5::Object::read_attribute: cannot read attribute '" + name + "' of " + where;
}

Handle scalar_space(const std::string& context) { return owned(H5Screate(H5S_SCALAR), H5Sclose, context); }

Handle vector_space(std::size_t size, const std::string& context) {
  const hsize_t dims[1] = {size};
  return owned(H5Screate_simple(1, dims, nullptr), H5Sclose, context);
}

Handle open_attribute(hid_t object, const std::string& name, const std::string& context) {
  return owned(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose, context);
}

template <class Value>
Value only_element(std::vector<Value> values, const std::string& context) {
  if (values.size() != 1)
    throw Error(context + ": it holds " + std::to_string(values.size()) + " values, not exactly one");
  return std::move(values.front());
}

// Variable-length UTF-8 strings: what h5py writes for Python str and reads back as str.
Handle utf8_string_type(const std::string& context) {
  Handle type = owned(H5Tcopy(H5T_C_S1), H5Tclose, context);
  check(H5Tset_size(type.id(), H5T_VARIABLE), context);
  check(H5Tset_cset(type.id(), H5T_CSET_UTF8), context);
  return type;
}

hsize_t element_count(hid_t attribute, const std::string& context) {
  const Handle space = owned(H5Aget_space(attribute), H5Sclose, context);
  return static_cast<hsize_t>(check(H5Sget_simple_extent_npoints(space.id()), context));
}

template <class Number>
std::vector<Number> read_numbers(hid_t attribute, DataType as, const std::string& context) {
  const Handle type = owned(H5Aget_type(attribute), H5Tclose, context);
  const H5T_class_t type_class = class_of(type.id(), context);
  const bool readable = type_class == H5T_INTEGER || (type_class == H5T_FLOAT && as == DataType::float64);
  if (!readable)
    throw Error(context + ": it holds " + class_name(type_class) + " values, not " + to_string(as));
  std::vector<Number> values(element_count(attribute, context));
  if (!values.empty()) check(H5Aread(attribute, memory_type_of(as), values.data()), context);
  return values;
}

std::vector<std::string> read_strings(hid_t attribute, const std::string& context) {
  const Handle file_type = owned(H5Aget_type(attribute), H5Tclose, context);
  const H5T_class_t type_class = class_of(file_type.id(), context);
  if (type_class != H5T_STRING)
    throw Error(context + ": it holds " + class_name(type_class) + " values, not strings");
  const hsize_t count = element_count(attribute, context);
  std::vector<std::string> values;
  if (count == 0) return values;
  values.reserve(count);
  if (check(H5Tis_variable_str(file_type.id()), context) > 0) {
    Handle memory_type = utf8_string_type(context);
    check(H5Tset_cset(memory_type.id(), check(H5Tget_cset(file_type.id()), context)), context);
    std::vector<char*> buffer(count, nullptr);
    check(H5Aread(attribute, memory_type.id(), buffer.data()), context);
    // HDF5 allocated the strings; give them back whether or not the copy succeeds.
    const Handle space = owned(H5Aget_space(attribute), H5Sclose, context);
    try {
      for (const char* text : buffer) values.emplace_back(text ? text : "");
    } catch (...) {
      H5Dvlen_reclaim(memory_type.id(), space.id(), H5P_DEFAULT, buffer.data());
      throw;
    }
    check(H5Dvlen_reclaim(memory_type.id(), space.id(), H5P_DEFAULT, buffer.data()), context);
    return values;
  }
  // Fixed-length strings (numpy's 'S' dtype, older writers): trim the padding.
  const std::size_t size = H5Tget_size(file_type.id());
  if (size == 0) fail(context);
  const H5T_str_t padding = check(H5Tget_strpad(file_type.id()), context);
  std::vector<char> buffer(count * size);
  check(H5Aread(attribute, file_type.id(), buffer.data()), context);
  for (hsize_t i = 0; i < count; ++i) {
    std::string text(buffer.data() + i * size, size);
    if (padding == H5T_STR_SPACEPAD) {
      text.erase(text.find_last_not_of(' ') + 1);
    } else {
      text.resize(std::strlen(text.c_str()));
    }
    values.push_back(std::move(text));
  }
  return values;
}

Handle access_properties(MPI_Comm comm, const std::string& context) {
  Handle properties = owned(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, context);
  check(H5Pset_fapl_mpio(properties.id(), comm, MPI_INFO_NULL), context);
  // Closing fails while objects are open rather than being deferred to whenever the last one closes, which
  // could be a point not every rank reaches.
  check(H5Pset_fclose_degree(properties.id(), H5F_CLOSE_SEMI), context);
  // Metadata reaches the disk in collective MPI-IO writes instead of many small independent ones.
  check(H5Pset_coll_metadata_write(properties.id(), 1), context);
  return properties;
}

Handle intermediate_groups(const std::string& context) {
  Handle properties = owned(H5Pcreate(H5P_LINK_CREATE), H5Pclose, context);
  check(H5Pset_create_intermediate_group(properties.id(), 1), context);
  return properties;
}

// Rank 0 alone looks at the file (one open instead of one per rank) and every rank gets its verdict, so that
// all ranks throw the same error instead of some of them waiting in the collective open.
void refuse_unless_hdf5(const std::string& path, MPI_Comm comm, const std::string& context) {
  const Communicator communicator(comm);
  std::string refusal;
  if (communicator.is_root()) {
    const htri_t is_hdf5_file = H5Fis_hdf5(path.c_str());
    if (is_hdf5_file < 0) refusal = context + ": " + hdf5_reasons();
    if (is_hdf5_file == 0) refusal = context + ": not an HDF5 file (file signature not found)";
  }
  refusal = communicator.broadcast(refusal);
  if (!refusal.empty()) throw Error(refusal);
}

}  // namespace

std::string to_string(DataType type) {
  switch (type) {
    case DataType::float64:
      return "float64";
    case DataType::float32:
      return "float32";
    case DataType::int64:
      return "int64";
    case DataType::uint8:
      return "uint8";
  }
  NSBI_ASSERT(false, "unknown nsbi::h5::DataType");
  return {};
}

std::string to_string(const Compression& compression) {
  if (compression.filter == Compression::Filter::none) return "none";
  return "deflate level " + std::to_string(compression.level);
}

bool deflate_available() {
  silence_hdf5_diagnostics();
  if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0) return false;
  unsigned int config = 0;
  if (H5Zget_filter_info(H5Z_FILTER_DEFLATE, &config) < 0) return false;
  return (config & H5Z_FILTER_CONFIG_ENCODE_ENABLED) != 0;
}

bool is_hdf5(const std::string& path) {
  silence_hdf5_diagnostics();
  return H5Fis_hdf5(path.c_str()) > 0;
}

void initialize_library() {
  // Before any other HDF5 call: otherwise HDF5 registers its shutdown with atexit, after MPI_Finalize.
  H5dont_atexit();
  // Before MPI_Init, HDF5 does not register its shutdown with MPI_Finalize either.
  H5open();
  silence_hdf5_diagnostics();
}

void finalize_library() {
  if (g_unclosed_files == 0) H5close();
}

// ---------------------------------------------------------------------------------------------------------
// Object

Object::Object(std::shared_ptr<detail::FileState> file, detail::Handle handle, std::string name)
    : file_(std::move(file)), handle_(std::move(handle)), name_(std::move(name)) {}

Object& Object::operator=(Object&& other) noexcept {
  if (this != &other) {
    if (file_ && file_->failed) handle_.release();
    handle_ = std::move(other.handle_);  // before the file it may be the last holder of
    file_ = std::move(other.file_);
    name_ = std::move(other.name_);
  }
  return *this;
}

Object::~Object() {
  if (file_ && file_->failed) handle_.release();
}

const std::string& Object::file_path() const noexcept { return file_->path; }

std::string Object::where() const { return "'" + name_ + "' in '" + file_->path + "'"; }

bool Object::attribute_exists(const std::string& name) const {
  const std::string context =
      "nsbi::h5::Object::attribute_exists: cannot look up attribute '" + name + "' of " + where();
  return check(H5Aexists(handle_.id(), name.c_str()), context) > 0;
}

Handle Object::create_attribute(const std::string& name, hid_t file_type, hid_t space,
                                const std::string& context) {
  if (attribute_exists(name)) check(H5Adelete(handle_.id(), name.c_str()), context, file_path());
  return owned(H5Acreate2(handle_.id(), name.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
               context, file_path());
}

void Object::put_attribute(const std::string& name, const std::string& value) {
  collectively(*file_, false, [&] {
    const std::string context = write_context(name, where());
    const Handle type = utf8_string_type(context);
    const Handle attribute = create_attribute(name, type.id(), scalar_space(context).id(), context);
    const char* text = value.c_str();
    check(H5Awrite(attribute.id(), type.id(), &text), context, file_path());
  });
}

void Object::put_attribute(const std::string& name, double value) {
  collectively(*file_, false, [&] {
    const std::string context = write_context(name, where());
    const Handle attribute = create_attribute(name, H5T_IEEE_F64LE, scalar_space(context).id(), context);
    check(H5Awrite(attribute.id(), H5T_NATIVE_DOUBLE, &value), context, file_path());
  });
}

void Object::put_attribute(const std::string& name, std::int64_t value) {
  collectively(*file_, false, [&] {
    const std::string context = write_context(name, where());
    const Handle attribute = create_attribute(name, H5T_STD_I64LE, scalar_space(context).id(), context);
    check(H5Awrite(attribute.id(), H5T_NATIVE_INT64, &value), context, file_path());
  });
}

void Object::put_attribute(const std::string& name, const std::vector<double>& value) {
  collectively(*file_, false, [&] {
    const std::string context = write_context(name, where());
    const Handle attribute =
        create_attribute(name, H5T_IEEE_F64LE, vector_space(value.size(), context).id(), context);
    if (!value.empty())
      check(H5Awrite(attribute.id(), H5T_NATIVE_DOUBLE, value.data()), context, file_path());
  });
}

void Object::put_attribute(const std::string& name, const std::vector<std::string>& value) {
  collectively(*file_, false, [&] {
    const std::string context = write_context(name, where());
    const Handle type = utf8_string_type(context);
    const Handle attribute =
        create_attribute(name, type.id(), vector_space(value.size(), context).id(), context);
    std::vector<const char*> texts(value.size());
    std::transform(value.begin(), value.end(), texts.begin(),
                   [](const std::string& text) { return text.c_str(); });
    if (!texts.empty()) check(H5Awrite(attribute.id(), type.id(), texts.data()), context, file_path());
  });
}

void Object::get_attribute(const std::string& name, std::string& value) const {
  const std::string context = read_context(name, where());
  value = only_element(read_strings(open_attribute(handle_.id(), name, context).id(), context), context);
}

void Object::get_attribute(const std::string& name, double& value) const {
  const std::string context = read_context(name, where());
  const Handle attribute = open_attribute(handle_.id(), name, context);
  value = only_element(read_numbers<double>(attribute.id(), DataType::float64, context), context);
}

void Object::get_attribute(const std::string& name, std::int64_t& value) const {
  const std::string context = read_context(name, where());
  const Handle attribute = open_attribute(handle_.id(), name, context);
  value = only_element(read_numbers<std::int64_t>(attribute.id(), DataType::int64, context), context);
}

void Object::get_attribute(const std::string& name, std::vector<double>& value) const {
  const std::string context = read_context(name, where());
  value = read_numbers<double>(open_attribute(handle_.id(), name, context).id(), DataType::float64, context);
}

void Object::get_attribute(const std::string& name, std::vector<std::string>& value) const {
  const std::string context = read_context(name, where());
  value = read_strings(open_attribute(handle_.id(), name, context).id(), context);
}

// ---------------------------------------------------------------------------------------------------------
// Dataset

std::vector<hsize_t> Dataset::dims() const {
  const std::string context = "nsbi::h5::Dataset::dims: cannot read the shape of " + where();
  const Handle space = owned(H5Dget_space(handle_.id()), H5Sclose, context);
  std::vector<hsize_t> dims(static_cast<std::size_t>(check(H5Sget_simple_extent_ndims(space.id()), context)));
  check(H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr), context);
  return dims;
}

hsize_t Dataset::chunk_rows() const {
  const std::string context = "nsbi::h5::Dataset::chunk_rows: cannot read the chunk shape of " + where();
  const Handle creation = owned(H5Dget_create_plist(handle_.id()), H5Pclose, context);
  if (check(H5Pget_layout(creation.id()), context) != H5D_CHUNKED) return 0;
  std::vector<hsize_t> chunk(dims().size());
  check(H5Pget_chunk(creation.id(), static_cast<int>(chunk.size()), chunk.data()), context);
  return chunk.at(0);
}

DataType Dataset::type() const {
  const std::string context = "nsbi::h5::Dataset::type: cannot read the element type of " + where();
  const Handle type = owned(H5Dget_type(handle_.id()), H5Tclose, context);
  return data_type_of_stored(type.id(), context);
}

std::pair<Handle, Handle> Dataset::select_rows(hsize_t row_offset, hsize_t n_rows,
                                               const std::string& context) const {
  Handle file_space = owned(H5Dget_space(handle_.id()), H5Sclose, context);
  const int rank = check(H5Sget_simple_extent_ndims(file_space.id()), context);
  if (rank == 0) throw Error(context + ": it is a scalar, not an array of rows");
  std::vector<hsize_t> count(static_cast<std::size_t>(rank));
  check(H5Sget_simple_extent_dims(file_space.id(), count.data(), nullptr), context);
  const hsize_t rows = count[0];
  if (n_rows > rows || row_offset > rows - n_rows)
    throw Error(context + ": it has only " + std::to_string(rows) + " rows");
  count[0] = n_rows;
  Handle memory_space = owned(H5Screate_simple(rank, count.data(), nullptr), H5Sclose, context);
  if (n_rows == 0) {
    check(H5Sselect_none(file_space.id()), context);
    check(H5Sselect_none(memory_space.id()), context);
  } else {
    std::vector<hsize_t> start(count.size(), 0);
    start[0] = row_offset;
    check(H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
          context);
  }
  return {std::move(file_space), std::move(memory_space)};
}

void Dataset::write_rows_as(DataType memory_type, hsize_t row_offset, hsize_t n_rows, const void* data) {
  collectively(*file_, false, [&] {
    const std::string context =
        "nsbi::h5::Dataset::write_rows: cannot write " + rows_text(row_offset, n_rows) + " of " + where();
    const DataType stored = type();
    if (memory_type != stored)
      throw Error(context + ": it holds " + to_string(stored) + " elements, the buffer " +
                  to_string(memory_type) +
                  " (writes do not convert: conversion would make the I/O independent)");
    const auto spaces = select_rows(row_offset, n_rows, context);
    Handle transfer = owned(H5Pcreate(H5P_DATASET_XFER), H5Pclose, context);
    check(H5Pset_dxpl_mpio(transfer.id(), H5FD_MPIO_COLLECTIVE), context);
    check(H5Dwrite(handle_.id(), memory_type_of(memory_type), spaces.second.id(), spaces.first.id(),
                   transfer.id(), data),
          context, file_path());
    last_transfer_ = std::move(transfer);
  });
}

void Dataset::read_rows_as(DataType memory_type, hsize_t row_offset, hsize_t n_rows, void* data) const {
  const std::string context =
      "nsbi::h5::Dataset::read_rows: cannot read " + rows_text(row_offset, n_rows) + " of " + where();
  const DataType stored = type();
  if (!reads_exactly(stored, memory_type))
    throw Error(context + ": it holds " + to_string(stored) + " elements, which cannot be read as " +
                to_string(memory_type) + " without loss");
  const auto spaces = select_rows(row_offset, n_rows, context);
  check(H5Dread(handle_.id(), memory_type_of(memory_type), spaces.second.id(), spaces.first.id(), H5P_DEFAULT,
                data),
        context);
}

bool Dataset::last_write_was_collective() const {
  NSBI_ASSERT(last_transfer_.valid(), "last_write_was_collective() asked before any write_rows()");
  H5D_mpio_actual_io_mode_t mode = H5D_MPIO_NO_COLLECTIVE;
  check(H5Pget_mpio_actual_io_mode(last_transfer_.id(), &mode),
        "nsbi::h5::Dataset::last_write_was_collective: cannot query the last write to " + where());
  return mode == H5D_MPIO_CHUNK_COLLECTIVE || mode == H5D_MPIO_CONTIGUOUS_COLLECTIVE;
}

// ---------------------------------------------------------------------------------------------------------
// Group

std::string Group::child_name(const std::string& name) const {
  NSBI_ASSERT(!name.empty() && name.front() != '/', "names under a group are relative: '" + name + "'");
  return name_ == "/" ? "/" + name : name_ + "/" + name;
}

Group Group::create_group(const std::string& name) {
  const std::string full_name = child_name(name);
  const std::string context =
      "nsbi::h5::Group::create_group: cannot create group '" + full_name + "' in '" + file_path() + "'";
  std::optional<Group> created;
  collectively(*file_, false, [&] {
    Handle group = owned(
        H5Gcreate2(handle_.id(), name.c_str(), intermediate_groups(context).id(), H5P_DEFAULT, H5P_DEFAULT),
        H5Gclose, context, file_path());
    created.emplace(Group(file_, std::move(group), full_name));
  });
  return std::move(*created);
}

Group Group::open_group(const std::string& name) const {
  const std::string full_name = child_name(name);
  const std::string context =
      "nsbi::h5::Group::open_group: cannot open group '" + full_name + "' in '" + file_path() + "'";
  return Group(file_, owned(H5Gopen2(handle_.id(), name.c_str(), H5P_DEFAULT), H5Gclose, context), full_name);
}

bool Group::exists(const std::string& name) const {
  const std::string context =
      "nsbi::h5::Group::exists: cannot look up '" + child_name(name) + "' in '" + file_path() + "'";
  // H5Lexists fails rather than answering false when an intermediate group is missing: test each prefix.
  std::string prefix;
  for (std::size_t start = 0; start < name.size();) {
    std::size_t end = std::min(name.find('/', start), name.size());
    if (end > start) {
      prefix += (prefix.empty() ? "" : "/") + name.substr(start, end - start);
      if (check(H5Lexists(handle_.id(), prefix.c_str(), H5P_DEFAULT), context) == 0) return false;
    }
    start = end + 1;
  }
  return true;
}

void Group::remove(const std::string& name) {
  collectively(*file_, false, [&] {
    check(H5Ldelete(handle_.id(), name.c_str(), H5P_DEFAULT),
          "nsbi::h5::Group::remove: cannot remove '" + child_name(name) + "' from '" + file_path() + "'",
          file_path());
  });
}

Dataset Group::create_dataset(const std::string& name, DataType type, const std::vector<hsize_t>& dims,
                              hsize_t chunk_rows, Fill fill, const Compression& compression) {
  NSBI_ASSERT(!dims.empty(), "a dataset has at least one dimension (its rows)");
  NSBI_ASSERT(chunk_rows > 0, "chunk_rows must be positive");
  NSBI_ASSERT(
      compression.filter == Compression::Filter::none || (compression.level >= 1 && compression.level <= 9),
      "deflate levels are 1 to 9");
  std::optional<Dataset> created;
  collectively(*file_, false, [&] {
    created.emplace(create_dataset_here(name, type, dims, chunk_rows, fill, compression));
  });
  return std::move(*created);
}

Dataset Group::create_dataset_here(const std::string& name, DataType type, const std::vector<hsize_t>& dims,
                                   hsize_t chunk_rows, Fill fill, const Compression& compression) {
  const std::string full_name = child_name(name);
  const std::string context =
      "nsbi::h5::Group::create_dataset: cannot create dataset '" + full_name + "' in '" + file_path() + "'";
  const bool deflate = compression.filter == Compression::Filter::deflate;
  if (deflate && !deflate_available())
    throw Error(context + ": this HDF5 library cannot write deflate (zlib) compression");
  const int rank = static_cast<int>(dims.size());
  const Handle space = owned(H5Screate_simple(rank, dims.data(), nullptr), H5Sclose, context);
  const Handle creation = owned(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, context);
  // HDF5 refuses chunks larger than an extent, and zero-sized chunks: an empty dataset stays contiguous.
  const bool chunked = std::find(dims.begin(), dims.end(), hsize_t{0}) == dims.end();
  if (chunked) {
    std::vector<hsize_t> chunk = dims;
    chunk[0] = std::min(chunk_rows, dims[0]);
    check(H5Pset_chunk(creation.id(), rank, chunk.data()), context);
    if (deflate) check(H5Pset_deflate(creation.id(), static_cast<unsigned>(compression.level)), context);
  }
  check(H5Pset_alloc_time(creation.id(), H5D_ALLOC_TIME_EARLY), context);
  const unsigned char zero[8] = {};  // zero bytes are the 0 of every element type
  check(H5Pset_fill_value(creation.id(), memory_type_of(type), zero), context);
  check(H5Pset_fill_time(creation.id(),
                         fill == Fill::zeros || deflate ? H5D_FILL_TIME_ALLOC : H5D_FILL_TIME_NEVER),
        context);
  Handle dataset = owned(H5Dcreate2(handle_.id(), name.c_str(), file_type_of(type), space.id(),
                                    intermediate_groups(context).id(), creation.id(), H5P_DEFAULT),
                         H5Dclose, context, file_path());
  return Dataset(file_, std::move(dataset), full_name);
}

Dataset Group::open_dataset(const std::string& name) const {
  const std::string full_name = child_name(name);
  const std::string context =
      "nsbi::h5::Group::open_dataset: cannot open dataset '" + full_name + "' in '" + file_path() + "'";
  return Dataset(file_, owned(H5Dopen2(handle_.id(), name.c_str(), H5P_DEFAULT), H5Dclose, context),
                 full_name);
}

// ---------------------------------------------------------------------------------------------------------
// File

File::File(std::shared_ptr<detail::FileState> state, std::string path)
    : state_(std::move(state)), path_(std::move(path)) {}

File File::create(const std::string& path, MPI_Comm comm) {
  silence_hdf5_diagnostics();
  const std::string context = "nsbi::h5::File::create: cannot create '" + path + "'";
  auto state = std::make_shared<detail::FileState>(path, comm);
  collectively(*state, true, [&] {
    const Handle properties = access_properties(comm, context);
    state->file =
        owned(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, properties.id()), H5Fclose, context, path);
  });
  return File(std::move(state), path);
}

File File::open(const std::string& path, MPI_Comm comm, Access access) {
  silence_hdf5_diagnostics();
  const std::string context = "nsbi::h5::File::open: cannot open '" + path + "'" +
                              (access == Access::read ? " for reading" : " for reading and writing");
  refuse_unless_hdf5(path, comm, context);
  auto state = std::make_shared<detail::FileState>(path, comm);
  collectively(*state, true, [&] {
    const Handle properties = access_properties(comm, context);
    const unsigned flags = access == Access::read ? H5F_ACC_RDONLY : H5F_ACC_RDWR;
    state->file = owned(H5Fopen(path.c_str(), flags, properties.id()), H5Fclose, context, path);
  });
  return File(std::move(state), path);
}

Group File::root() const {
  NSBI_ASSERT(state_, "root() of a closed file: '" + path_ + "'");
  const std::string context = "nsbi::h5::File::root: cannot open the root group of '" + path_ + "'";
  return Group(state_, owned(H5Gopen2(state_->file.id(), "/", H5P_DEFAULT), H5Gclose, context), "/");
}

void File::flush() {
  NSBI_ASSERT(state_, "flush() of a closed file: '" + path_ + "'");
  collectively(*state_, false, [&] {
    check(H5Fflush(state_->file.id(), H5F_SCOPE_GLOBAL),
          "nsbi::h5::File::flush: cannot flush '" + path_ + "'", path_);
  });
}

void File::close() {
  NSBI_ASSERT(state_, "close() of a closed file: '" + path_ + "'");
  const std::string context = "nsbi::h5::File::close: cannot close '" + path_ + "'";
  const ssize_t open_objects =
      check(H5Fget_obj_count(state_->file.id(), (H5F_OBJ_ALL & ~H5F_OBJ_FILE) | H5F_OBJ_LOCAL), context);
  NSBI_ASSERT(open_objects == 0, "close() of '" + path_ + "' while " + std::to_string(open_objects) +
                                     " of its groups, datasets or attributes are open");
  collectively(*state_, true, [&] {
    if (state_->file.close() >= 0) return;
    // HDF5 1.10 has freed the file behind the identifier, which stays registered: never touch it again.
    state_->file.release();
    ++g_unclosed_files;
    fail(context, path_);
  });
  state_.reset();
}

}  // namespace nsbi::h5
