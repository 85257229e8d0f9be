#include "nsbi/distributed/dataset_writer.hpp"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "nsbi/core/log.hpp"
#include "nsbi/core/profiling.hpp"

namespace nsbi::distributed {
namespace {

constexpr const char* format_name = "nsbi-dataset";
constexpr std::int64_t format_version = 1;

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

void remove_file(const std::string& path) {
  if (std::remove(path.c_str()) != 0 && errno != ENOENT)
    throw IoError("cannot remove '" + path + "': " + std::strerror(errno));
}

// What is at `path`, judged by rank 0 alone: "missing", "foreign", "complete", "partial", or "other" (an
// nsbi dataset made from another identity).
std::string inspect(const std::string& path, const std::string& identity) {
  if (!exists(path)) return "missing";
  try {
    h5::File file = h5::File::open(path, MPI_COMM_SELF, h5::Access::read);
    h5::Group root = file.root();
    if (!root.attribute_exists("format") || root.read_attribute<std::string>("format") != format_name)
      return "foreign";
    if (root.read_attribute<std::string>("identity") != identity) return "other";
    return root.read_attribute<std::int64_t>("complete") == 1 ? "complete" : "partial";
  } catch (const h5::Error& e) {
    log::warning(e.what());
    return "foreign";
  }
}

// /x's dims: [N, shape...] for an array observable, [N, names] for tabular x.
std::vector<hsize_t> x_dims(const DatasetDescription& d) {
  std::vector<hsize_t> dims{d.n_rows};
  if (d.observable_shape.empty()) dims.push_back(d.observable_names.size());
  for (const std::size_t extent : d.observable_shape) dims.push_back(extent);
  return dims;
}

// Values per row of x.
std::size_t x_width(const DatasetDescription& d) {
  std::size_t width = d.observable_shape.empty() ? d.observable_names.size() : 1;
  for (const std::size_t extent : d.observable_shape) width *= extent;
  return width;
}

}  // namespace

std::uint64_t x_chunk_rows(const DatasetDescription& description) {
  if (description.observable_shape.empty() &&
      description.x_compression.filter == h5::Compression::Filter::none)
    return description.block_rows;
  constexpr std::uint64_t chunk_bytes = std::uint64_t{1} << 20;
  const std::uint64_t row_bytes =
      x_width(description) * (description.x_float32 ? sizeof(float) : sizeof(double));
  std::uint64_t rows = std::max<std::uint64_t>(1, std::min(description.block_rows, chunk_bytes / row_bytes));
  while (description.block_rows % rows != 0) --rows;
  return rows;
}

DatasetWriter::DatasetWriter(const Communicator& comm, std::string path, DatasetDescription description,
                             bool force, double checkpoint_seconds)
    : comm_(comm),
      path_(std::move(path)),
      partial_path_(path_ + ".partial"),
      description_(std::move(description)),
      schedule_(description_.n_rows, description_.block_rows),
      checkpoint_seconds_(checkpoint_seconds),
      last_checkpoint_(std::chrono::steady_clock::now()) {
  NSBI_ASSERT(description_.observable_shape.empty() || description_.observable_names.size() == 1,
              "an array observable has one name");
  // Rank 0 decides what to do; every rank then acts on the same decision.
  std::string action;
  comm_.agree(
      [&] {
        const std::string final_state = inspect(path_, description_.identity);
        if (final_state == "complete" && !force) {
          action = "complete";
          return;
        }
        if (final_state != "missing" && !force)
          throw ConfigError("'" + path_ + "' exists and " +
                            (final_state == "foreign" ? std::string("is not an nsbi dataset")
                                                      : std::string("was made from a different config")) +
                            "; use --force to replace it, or choose another simulate.output or campaign.dir");
        if (force) remove_file(path_);
        const std::string partial_state = inspect(partial_path_, description_.identity);
        if (partial_state == "partial" && !force) {
          action = "resume";
          return;
        }
        if (partial_state != "missing" && !force)
          throw ConfigError("'" + partial_path_ + "' holds an unfinished dataset from " +
                            (partial_state == "foreign" ? std::string("an unreadable or foreign file")
                                                        : std::string("a different config")) +
                            "; use --force to start over");
        remove_file(partial_path_);
        action = "create";
      },
      /*root_only=*/true);
  action = comm_.broadcast(action);
  if (action == "complete") {
    state_ = State::complete;
  } else if (action == "resume") {
    state_ = State::resumed;
    resume();
  } else {
    state_ = State::created;
    comm_.agree(
        [&] {
          try {
            create();
          } catch (const Error&) {
            // Nothing is saved in it yet, and an unreadable leftover would stop the next run: it goes.
            std::remove(partial_path_.c_str());
            throw;
          }
        },
        /*root_only=*/true);
    open_datasets();
    pending_.resize(schedule_.n_blocks());
    for (std::uint64_t b = 0; b < schedule_.n_blocks(); ++b) pending_[b] = b;
  }
}

// Every collective HDF5 call agrees on its outcome (h5::File): a failure on some ranks reaches them all. The
// agreement here turns it into the CollectiveError the CLI reports once, and independent reads (which only
// some ranks may fail) are agreed on before the next collective call.
void DatasetWriter::agree_on_writes(const std::function<void()>& work, bool root_only) const {
  try {
    comm_.agree(work, root_only);
  } catch (const CollectiveError& e) {
    if (e.code() != ExitCode::bad_input) throw;
    throw CollectiveError(e.code(), std::string(e.what()) + "; the blocks saved before stay in '" +
                                        partial_path_ +
                                        "': run the same command to resume once that is fixed");
  }
}

// Rank 0 alone writes the file's structure and attributes; the ranks then open it together for the rows. HDF5
// 1.10 writes metadata collectively in steps that a failure on one rank (a full disk) leaves the others
// waiting in, so every metadata change of the file is made by one rank on MPI_COMM_SELF.
void DatasetWriter::create() {
  h5::File file = h5::File::create(partial_path_, MPI_COMM_SELF);
  write_structure(file.root());
  file.close();
}

void DatasetWriter::write_structure(h5::Group root) const {
  const auto& d = description_;
  const hsize_t n = d.n_rows;
  // Every row of theta and x is written exactly once (blocks_done says which are in): no zero fill first.
  root.create_dataset("theta", h5::DataType::float64, {n, d.parameter_names.size()}, d.block_rows,
                      h5::Group::Fill::none)
      .write_attribute("names", d.parameter_names);
  root.create_dataset("x", d.x_float32 ? h5::DataType::float32 : h5::DataType::float64, x_dims(d),
                      x_chunk_rows(d), h5::Group::Fill::none, d.x_compression)
      .write_attribute("names", d.observable_names);
  if (!d.gold_theta0.empty()) {
    h5::Group gold = root.create_group("gold");
    gold.create_dataset("log_r", h5::DataType::float64, {n}, d.block_rows, h5::Group::Fill::none)
        .write_attribute("theta0", d.gold_theta0);
    gold.create_dataset("score", h5::DataType::float64, {n, d.parameter_names.size()}, d.block_rows,
                        h5::Group::Fill::none)
        .write_attribute("names", d.parameter_names);
    if (d.gold_theta)
      gold.create_dataset("theta", h5::DataType::float64, {n, d.parameter_names.size()}, d.block_rows,
                          h5::Group::Fill::none)
          .write_attribute("names", d.parameter_names);
  }
  h5::Group progress = root.create_group("progress");
  progress.create_dataset("blocks_done", h5::DataType::uint8, {schedule_.n_blocks()},
                          std::min<hsize_t>(schedule_.n_blocks(), 1 << 16));
  progress.write_attribute("block_rows", static_cast<std::int64_t>(d.block_rows));

  root.write_attribute("format", format_name);
  root.write_attribute("format_version", format_version);
  root.write_attribute("simulator", d.simulator);
  root.write_attribute("parameter_names", d.parameter_names);
  root.write_attribute("observable_names", d.observable_names);
  root.write_attribute("prior", d.proposal_yaml);
  root.write_attribute("seed", static_cast<std::int64_t>(d.seed));
  root.write_attribute("config", d.config_yaml);
  root.write_attribute("identity", d.identity);
  root.write_attribute("nsbi_version", d.provenance.nsbi_version);
  root.write_attribute("created", d.provenance.created_utc);
  root.write_attribute("host", d.provenance.hostname);
  root.write_attribute("command", d.provenance.command_line);
  root.write_attribute("mpi_ranks", static_cast<std::int64_t>(d.provenance.mpi_ranks));
  root.write_attribute("complete", std::int64_t{0});
}

void DatasetWriter::open_datasets() {
  comm_.agree([&] {
    file_ = h5::File::open(partial_path_, comm_.get(), h5::Access::read_write);
    const h5::Group root = file_->root();
    theta_ = root.open_dataset("theta");
    x_ = root.open_dataset("x");
    NSBI_ASSERT(x_->dims() == x_dims(description_) &&
                    x_->type() == (description_.x_float32 ? h5::DataType::float32 : h5::DataType::float64),
                "identity matched but the shape or type of /x differs");
    if (!description_.gold_theta0.empty()) {
      gold_log_r_ = root.open_dataset("gold/log_r");
      gold_score_ = root.open_dataset("gold/score");
      if (description_.gold_theta) gold_theta_ = root.open_dataset("gold/theta");
    }
    blocks_done_ = root.open_dataset("progress/blocks_done");
    NSBI_ASSERT(blocks_done_->dims().at(0) == schedule_.n_blocks(),
                "identity matched but the block count differs");
  });
}

void DatasetWriter::resume() {
  // The run that wrote this file recorded its own provenance; the resuming run adds a line to the history.
  comm_.agree(
      [&] {
        h5::File file = h5::File::open(partial_path_, MPI_COMM_SELF, h5::Access::read_write);
        {
          h5::Group root = file.root();
          const std::string history =
              root.attribute_exists("resumed") ? root.read_attribute<std::string>("resumed") : "";
          root.write_attribute("resumed", history + description_.provenance.created_utc + " " +
                                              description_.provenance.command_line + "\n");
        }
        file.close();
      },
      /*root_only=*/true);
  open_datasets();
  comm_.agree([&] {
    std::vector<std::uint8_t> done(schedule_.n_blocks());
    blocks_done_->read_rows(0, done.size(), done.data());
    for (std::uint64_t b = 0; b < done.size(); ++b)
      if (!done[b]) pending_.push_back(b);
  });
}

std::uint64_t DatasetWriter::rows_done() const {
  std::uint64_t pending_rows = 0;
  for (std::uint64_t b : pending_) pending_rows += schedule_.rows(b).size();
  return schedule_.n_rows() - pending_rows;
}

void DatasetWriter::write_round(std::optional<std::uint64_t> block, const double* theta, const double* x,
                                const GoldRows& gold) {
  {
    const profiling::Region region("nsbi/simulate/write_rows");
    const RowRange rows = block ? schedule_.rows(*block) : RowRange{};
    if (description_.x_float32) {
      // Converted before the collective writes, so that a failure here reaches every rank before any
      // enters them.
      comm_.agree([&] { convert_x(rows, x); });
    }
    agree_on_writes([&] {
      NSBI_ASSERT(!gold_log_r_ || !block || (gold.log_r && gold.score && (!gold_theta_ || gold.theta)),
                  "a gold dataset's block is written without its gold");
      theta_->write_rows(rows.begin, rows.size(), theta);
      if (description_.x_float32)
        x_->write_rows(rows.begin, rows.size(), x_float32_.data());
      else
        x_->write_rows(rows.begin, rows.size(), x);
      if (gold_log_r_) {
        gold_log_r_->write_rows(rows.begin, rows.size(), gold.log_r);
        gold_score_->write_rows(rows.begin, rows.size(), gold.score);
        if (gold_theta_) gold_theta_->write_rows(rows.begin, rows.size(), gold.theta);
      }
    });
  }
  unrecorded_.push_back(block);
  const double since =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - last_checkpoint_).count();
  if (comm_.any(since >= checkpoint_seconds_)) checkpoint();
}

void DatasetWriter::convert_x(const RowRange& rows, const double* x) {
  const std::size_t width = x_width(description_);
  x_float32_.resize(rows.size() * width);
  for (std::size_t i = 0; i < x_float32_.size(); ++i) {
    x_float32_[i] = static_cast<float>(x[i]);
    if (static_cast<double>(x_float32_[i]) != x[i] && !std::isnan(x[i]))
      throw InternalError("nsbi::DatasetWriter: row " + std::to_string(rows.begin + i / width) + " of '" +
                          path_ + "' has x value " + std::to_string(x[i]) + " (column " +
                          std::to_string(i % width) + "), which float32 does not hold exactly; simulator " +
                          description_.simulator + " declares float32 x");
  }
}

void DatasetWriter::checkpoint() {
  const profiling::Region region("nsbi/simulate/checkpoint");
  agree_on_writes([&] {
    // The data reach the disk before the flags that say they are there.
    file_->flush();
    const std::uint8_t one = 1;
    for (const auto& block : unrecorded_) blocks_done_->write_rows(block.value_or(0), block ? 1 : 0, &one);
    file_->flush();
  });
  unrecorded_.clear();
  last_checkpoint_ = std::chrono::steady_clock::now();
}

void DatasetWriter::finish() {
  checkpoint();
  std::vector<std::uint8_t> done(schedule_.n_blocks());
  agree_on_writes([&] { blocks_done_->read_rows(0, done.size(), done.data()); });
  for (std::uint64_t b = 0; b < done.size(); ++b)
    NSBI_ASSERT(done[b] == 1, "block " + std::to_string(b) + " is missing when finishing " + path_);
  agree_on_writes([&] {
    theta_.reset();
    x_.reset();
    gold_log_r_.reset();
    gold_score_.reset();
    gold_theta_.reset();
    blocks_done_.reset();
    file_->close();
  });
  file_.reset();
  agree_on_writes(
      [&] {
        h5::File file = h5::File::open(partial_path_, MPI_COMM_SELF, h5::Access::read_write);
        file.root().write_attribute("complete", std::int64_t{1});
        file.close();
        if (std::rename(partial_path_.c_str(), path_.c_str()) != 0)
          throw IoError("cannot rename '" + partial_path_ + "' to '" + path_ + "': " + std::strerror(errno));
      },
      /*root_only=*/true);
  pending_.clear();
}

}  // namespace nsbi::distributed
