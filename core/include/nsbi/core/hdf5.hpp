#pragma once
// nsbi's one HDF5 wrapper (modelled on HighFive): thin RAII owners of HDF5 identifiers, every C call checked.
// A failed call throws nsbi::h5::Error carrying HDF5's own reasons (its error stack), the operating system's
// (errno: "No space left on device", with the file system's free space) and the file and object names; HDF5
// never prints its diagnostics itself. Files are accessed through MPI-IO on a communicator: calls documented
// as collective must be made by every rank of that communicator, in the same order, with the same arguments
// (HDF5's rule for anything that changes the file's structure or metadata).
//
// Faults are collective: a collective call that fails on some ranks only (the disk fills up under the rank
// that writes) throws the same error on every rank, so that no rank goes on to the next collective call while
// another has left. A file the operating system refused to write is then abandoned, not closed: HDF5 1.10
// cannot close it (the close fails and leaves the library in a state that crashes at exit), and a collective
// close would need the ranks' HDF5 states to agree. What reached the disk at the last successful flush stays.
// The agreement follows each call; a failure inside one call that leaves the other ranks waiting in HDF5's
// own exchange cannot be mended from outside. HDF5 1.10 has such steps in collective metadata writes and in
// the zero fill of a new dataset, so a file shared by several ranks gets its structure and attributes from
// one rank on MPI_COMM_SELF, and the ranks only write rows together (a failed row write returns on every
// rank).

#include <hdf5.h>
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "nsbi/core/error.hpp"

namespace nsbi::h5 {

/// An HDF5 file that cannot be read or written (nsbi::IoError, exit code 3): missing, foreign, truncated,
/// unwritable, holding other types or shapes than nsbi reads, or refused by the operating system. A misuse
/// of HDF5's API (HDF5 rejects nsbi's arguments: a bug in nsbi) throws nsbi::InternalError instead (exit
/// code 1).
class Error : public IoError {
 public:
  explicit Error(const std::string& what, bool system_failure = false)
      : IoError(what), system_failure_(system_failure) {}
  /// Whether the operating system refused a read or write (errno): what HDF5 holds of the file may then
  /// differ from the disk.
  bool system_failure() const noexcept { return system_failure_; }

 private:
  bool system_failure_;
};

/// nsbi's main owns the HDF5 library's lifetime: initialize_library() before MPI_Init (HDF5 then ties its
/// shutdown to nothing: neither MPI_Finalize nor exit), finalize_library() before MPI_Finalize. The latter
/// releases the library unless a file could not be closed (abandoned after a failed write, or its close
/// failed): HDF5 1.10 crashes releasing such a file, and the operating system releases it at exit anyway.
void initialize_library();
void finalize_library();

enum class Access { read, read_write };

/// Element types of datasets; stored little-endian (IEEE floats, two's complement integers).
enum class DataType { float64, float32, int64, uint8 };

std::string to_string(DataType type);

/// The DataType of a C++ element type (only the four above are defined).
template <class T>
struct data_type_of;
template <>
struct data_type_of<double> : std::integral_constant<DataType, DataType::float64> {};
template <>
struct data_type_of<float> : std::integral_constant<DataType, DataType::float32> {};
template <>
struct data_type_of<std::int64_t> : std::integral_constant<DataType, DataType::int64> {};
template <>
struct data_type_of<std::uint8_t> : std::integral_constant<DataType, DataType::uint8> {};

/// Types an attribute can hold: strings are written variable-length UTF-8 (what h5py writes for `str`) and
/// read back whether variable- or fixed-length.
template <class T>
struct is_attribute_type : std::false_type {};
template <>
struct is_attribute_type<std::string> : std::true_type {};
template <>
struct is_attribute_type<double> : std::true_type {};
template <>
struct is_attribute_type<std::int64_t> : std::true_type {};
template <>
struct is_attribute_type<std::vector<double>> : std::true_type {};
template <>
struct is_attribute_type<std::vector<std::string>> : std::true_type {};

/// How a dataset's chunks are stored: as written, or compressed with deflate (zlib) at `level` 1 to 9.
/// Parallel writes to a deflated dataset are collective (HDF5 >= 1.10.2 writes filtered chunks only so).
struct Compression {
  enum class Filter { none, deflate };
  Filter filter = Filter::none;
  int level = 0;
};

/// "none", or "deflate level N".
std::string to_string(const Compression& compression);

/// Whether this HDF5 build can write deflate-compressed datasets (its zlib filter is there and encodes).
bool deflate_available();

/// True if `path` exists and starts with an HDF5 signature (the rest of the file is not validated). Serial:
/// any rank may call it alone.
bool is_hdf5(const std::string& path);

namespace detail {

/// Owns one HDF5 identifier and closes it with the matching H5?close. The destructor ignores errors (nothing
/// may throw there); close() reports them.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) noexcept : id_(id), closer_(closer) {}
  Handle(Handle&& other) noexcept : id_(other.id_), closer_(other.closer_) { other.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { close(); }

  hid_t id() const noexcept { return id_; }
  bool valid() const noexcept { return id_ >= 0; }
  /// Closes now; on success the handle becomes empty, on failure it still owns the identifier.
  herr_t close() noexcept;
  /// Forgets the identifier without closing it (an abandoned file's: see the top of this header).
  void release() noexcept { id_ = H5I_INVALID_HID; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

/// The open file, shared by File and every object opened from it so that the file outlives its objects.
struct FileState;

}  // namespace detail

/// What groups and datasets share: a name inside the file, and attributes.
class Object {
 public:
  /// The absolute HDF5 path of this object, e.g. "/gold/log_r".
  const std::string& name() const noexcept { return name_; }
  const std::string& file_path() const noexcept;

  bool attribute_exists(const std::string& name) const;

  /// Collective: every rank passes the same value. An existing attribute of that name is replaced, whatever
  /// its type.
  template <class T>
  void write_attribute(const std::string& name, const T& value) {
    static_assert(is_attribute_type<T>::value,
                  "attributes hold std::string, double, std::int64_t, std::vector<double> or "
                  "std::vector<std::string>");
    put_attribute(name, value);
  }
  void write_attribute(const std::string& name, const char* value) {
    put_attribute(name, std::string(value));
  }

  /// Reads an attribute; numbers are converted only where exact enough: double accepts stored floats and
  /// integers, std::int64_t accepts stored integers only. A scalar read needs exactly one stored element.
  template <class T>
  T read_attribute(const std::string& name) const {
    static_assert(is_attribute_type<T>::value,
                  "attributes hold std::string, double, std::int64_t, std::vector<double> or "
                  "std::vector<std::string>");
    T value{};
    get_attribute(name, value);
    return value;
  }

 protected:
  Object(std::shared_ptr<detail::FileState> file, detail::Handle handle, std::string name);
  Object(Object&&) noexcept = default;
  Object& operator=(Object&& other) noexcept;
  /// Closes the object, or forgets it if its file was abandoned.
  ~Object();
  /// "'/x' in '/path/file.h5'", for messages.
  std::string where() const;

  // Declared in this order so that the object's identifier is closed before the file it keeps alive.
  std::shared_ptr<detail::FileState> file_;
  detail::Handle handle_;
  std::string name_;

 private:
  void put_attribute(const std::string& name, const std::string& value);
  void put_attribute(const std::string& name, double value);
  void put_attribute(const std::string& name, std::int64_t value);
  void put_attribute(const std::string& name, const std::vector<double>& value);
  void put_attribute(const std::string& name, const std::vector<std::string>& value);
  void get_attribute(const std::string& name, std::string& value) const;
  void get_attribute(const std::string& name, double& value) const;
  void get_attribute(const std::string& name, std::int64_t& value) const;
  void get_attribute(const std::string& name, std::vector<double>& value) const;
  void get_attribute(const std::string& name, std::vector<std::string>& value) const;
  detail::Handle create_attribute(const std::string& name, hid_t file_type, hid_t space,
                                  const std::string& context);
};

/// A dataset of rank >= 1 whose first dimension counts rows (samples); I/O moves whole rows.
class Dataset : public Object {
 public:
  std::vector<hsize_t> dims() const;
  /// Rows per chunk; 0 for a dataset that is not chunked (contiguous: a foreign writer's, or an empty one).
  hsize_t chunk_rows() const;
  /// The stored element type; throws h5::Error for types nsbi does not read (e.g. int32 from a foreign file).
  DataType type() const;

  /// Collective: writes rows [row_offset, row_offset + n_rows) from a row-major buffer with collective
  /// MPI-IO. Every rank of the file's communicator calls it; a rank with nothing to write passes n_rows = 0
  /// (data may then be null). T must be the dataset's own element type: a conversion would silently turn the
  /// write into independent I/O (HDF5 breaks collective I/O on type conversion), so it is refused.
  template <class T>
  void write_rows(hsize_t row_offset, hsize_t n_rows, const T* data) {
    write_rows_as(data_type_of<T>::value, row_offset, n_rows, data);
  }

  /// Independent: reads rows [row_offset, row_offset + n_rows) into a row-major buffer. Lossless widening is
  /// allowed (float32 into double, uint8 into any type); anything else must match the stored type.
  template <class T>
  void read_rows(hsize_t row_offset, hsize_t n_rows, T* data) const {
    read_rows_as(data_type_of<T>::value, row_offset, n_rows, data);
  }

  /// Whether this rank's part of the last write_rows really went through collective MPI-IO (HDF5 may fall
  /// back to independent I/O silently); tests assert it.
  bool last_write_was_collective() const;

 private:
  friend class Group;
  using Object::Object;
  void write_rows_as(DataType memory_type, hsize_t row_offset, hsize_t n_rows, const void* data);
  void read_rows_as(DataType memory_type, hsize_t row_offset, hsize_t n_rows, void* data) const;
  /// Selects the rows in a fresh copy of the file dataspace and returns it with a matching memory dataspace.
  std::pair<detail::Handle, detail::Handle> select_rows(hsize_t row_offset, hsize_t n_rows,
                                                        const std::string& context) const;

  detail::Handle last_transfer_;  // the transfer property list of the last write, for the collective check
};

class Group : public Object {
 public:
  /// Collective. `name` is relative to this group and may be nested ("gold/log_r"); missing intermediate
  /// groups are created.
  Group create_group(const std::string& name);
  Group open_group(const std::string& name) const;
  /// Whether a link of that (relative, possibly nested) name exists.
  bool exists(const std::string& name) const;
  /// Collective. Unlinks the (existing) object `name` and everything below it.
  void remove(const std::string& name);

  /// Whether a new dataset's storage is filled with 0 at creation, or left as it comes (for data that the
  /// caller overwrites in full and tracks itself: it halves the write volume of a large dataset).
  enum class Fill { zeros, none };

  /// Collective. Fixed dims (rank >= 1), chunked by `chunk_rows` whole rows (clamped to the row count),
  /// allocated at creation (parallel HDF5 needs that), optionally compressed (a deflated dataset's chunks are
  /// filled with zeros at creation whatever `fill` says: HDF5 cannot read back a filtered chunk never
  /// written, and the compressed zeros take little room; deflate must be available, else h5::Error).
  Dataset create_dataset(const std::string& name, DataType type, const std::vector<hsize_t>& dims,
                         hsize_t chunk_rows, Fill fill = Fill::zeros, const Compression& compression = {});
  Dataset open_dataset(const std::string& name) const;

 private:
  friend class File;
  using Object::Object;
  std::string child_name(const std::string& name) const;
  Dataset create_dataset_here(const std::string& name, DataType type, const std::vector<hsize_t>& dims,
                              hsize_t chunk_rows, Fill fill, const Compression& compression);
};

/// An HDF5 file accessed with MPI-IO on a communicator (use MPI_COMM_SELF for a file one rank owns alone).
/// The communicator must outlive the file: the ranks agree on it after each collective call.
class File {
 public:
  /// Collective: creates (truncates) `path`.
  static File create(const std::string& path, MPI_Comm comm);
  /// Collective: opens an existing file. Refuses, naming the path, a missing file, a file that is not HDF5
  /// (checked on rank 0 first, so that every rank fails alike) and one HDF5 cannot open (e.g. truncated).
  static File open(const std::string& path, MPI_Comm comm, Access access);

  File(File&&) noexcept = default;
  File& operator=(File&&) noexcept = default;
  /// Releases the file; it closes (collectively, errors ignored) once no group or dataset of it is left, or
  /// is abandoned after a failed write (see the top of this header).
  ~File() = default;

  Group root() const;
  /// Collective: writes everything HDF5 buffers for this file to disk.
  void flush();
  /// Collective: closes the file now and reports failures (the file is then abandoned). Closing while groups
  /// or datasets of it are open is a bug (InternalError).
  void close();
  const std::string& path() const noexcept { return path_; }

 private:
  File(std::shared_ptr<detail::FileState> state, std::string path);

  std::shared_ptr<detail::FileState> state_;
  std::string path_;
};

}  // namespace nsbi::h5
