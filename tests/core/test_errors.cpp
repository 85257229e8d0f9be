// Errors -> exit codes: every error class carries the code the job ends with (docs/config.md, "Exit codes"),
// a file that cannot be read is an IoError (3; a misuse of the HDF5 API is an InternalError: test_hdf5.cpp),
// and the ranks' agreement keeps the code.
#include <gtest/gtest.h>
#include <mpi.h>

#include <string>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/error.hpp"
#include "nsbi/core/hdf5.hpp"

namespace nsbi {
namespace {

TEST(ExitCodes, EveryErrorClassCarriesItsCode) {
  EXPECT_EQ(InternalError("x").code(), ExitCode::internal);
  EXPECT_EQ(static_cast<int>(ExitCode::internal), 1);
  EXPECT_EQ(ConfigError("x").code(), ExitCode::usage);
  EXPECT_EQ(static_cast<int>(ExitCode::usage), 2);
  EXPECT_EQ(InputError("x").code(), ExitCode::bad_input);
  EXPECT_EQ(IoError("x").code(), ExitCode::bad_input);
  EXPECT_EQ(h5::Error("x").code(), ExitCode::bad_input);
  EXPECT_EQ(static_cast<int>(ExitCode::bad_input), 3);
  EXPECT_EQ(Interrupted("x").code(), ExitCode::interrupted);
  EXPECT_EQ(static_cast<int>(ExitCode::interrupted), 4);
  EXPECT_EQ(CollectiveError(ExitCode::interrupted, "x").code(), ExitCode::interrupted);
}

TEST(ExitCodes, AMissingFileIsAnIoError) {
  const std::string missing = "/nonexistent-nsbi-directory/missing.h5";
  try {
    h5::File::open(missing, MPI_COMM_SELF, h5::Access::read);
    ADD_FAILURE() << "opened a missing file";
  } catch (const IoError& e) {
    EXPECT_EQ(e.code(), ExitCode::bad_input);
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
}

// The agreement keeps the code: an error raised on one rank ends every rank with that rank's code.
TEST(ExitCodes, AgreementKeepsTheCode) {
  const Communicator world;
  try {
    world.agree([&] {
      if (world.rank() == world.size() - 1) throw IoError("cannot read 'x.h5'");
    });
    ADD_FAILURE() << "no error";
  } catch (const CollectiveError& e) {
    EXPECT_EQ(e.code(), ExitCode::bad_input);
    EXPECT_NE(std::string(e.what()).find("cannot read 'x.h5'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nsbi
