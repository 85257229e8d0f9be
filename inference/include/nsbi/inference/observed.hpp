#pragma once
// The observed data every inference stage reads (docs/formats.md, "Observed data"): an HDF5 file holding one
// or more observed datasets /observed/<name>/x [N, D] (or [N, shape...] for an array observable) with their
// observable names (and optionally the true θ) as attributes, a CSV file of tabular events, or (still
// readable) a dataset file of `nsbi simulate`.

#include <istream>
#include <string>
#include <vector>

#include "nsbi/kernels/views.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::inference {

/// The events [N, D] of the observed-data file `path` in `info`'s observable order: a `.csv` file
/// (parse_observed_csv), an observed-data HDF5 file (the dataset `dataset` of /observed, or its only one when
/// `dataset` is empty), or a dataset file (its /x; `dataset` must be empty). An array observable (an image)
/// is read from HDF5 as /x [N, shape...] and flattened row-major into D = n_observables() columns; CSV holds
/// tabular events only. `origin` (" (file:line: key)") ends the messages about the whole file. InputError
/// (exit 3) naming the file and dataset for a missing group or dataset, a wrong shape (an array's other than
/// the simulator's), other observable names, non-finite values, no events, or a CSV file for an array.
Matrix read_observed(const std::string& path, const sims::SimulatorInfo& info, const std::string& dataset,
                     const std::string& origin);

/// The names of the observed datasets /observed/<name> of the observed-data HDF5 file `path`, in name
/// order (HDF5's). InputError (exit 3) naming the file, ending with `origin`, when it is not an observed-data
/// file (a CSV or dataset file holds one unnamed dataset) or has no /observed.
std::vector<std::string> observed_dataset_names(const std::string& path, const std::string& origin);

/// The column names of a CSV text: the fields of its first line that is neither blank nor a `#` comment (a
/// leading UTF-8 byte-order mark skipped), trimmed; empty when there is no such line. Adds the lines read to
/// `line_number`.
std::vector<std::string> csv_header(std::istream& in, std::size_t& line_number);

/// The events of an observed-data CSV text (header: observable names, any order; one event per row; `#`
/// comments), row-major [N, observables] in `info`'s observable order; `path` names the text and `origin`
/// ends the messages that concern the whole file. A leading UTF-8 byte-order mark is skipped. InputError
/// naming the file, line and column for missing or unknown columns and unparsable or non-finite values.
std::vector<double> parse_observed_csv(std::istream& in, const std::string& path,
                                       const sims::SimulatorInfo& info, const std::string& origin);

}  // namespace nsbi::inference
