# Run at every build (the nsbi_git_revision target, CMakeLists.txt): writes OUTPUT with the source tree's
# `git describe --always --dirty`, so that a build made after a commit or an edit records it, not the
# revision of the last configure. configure_file leaves OUTPUT untouched when nothing changed: only
# core/src/provenance.cpp includes it, and only it is recompiled when the revision changes.
set(NSBI_GIT_REVISION "unknown")
if(GIT_EXECUTABLE AND EXISTS ${SOURCE_DIR}/.git)
  execute_process(COMMAND ${GIT_EXECUTABLE} describe --always --dirty
                  WORKING_DIRECTORY ${SOURCE_DIR}
                  OUTPUT_VARIABLE NSBI_GIT_REVISION OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
endif()
configure_file(${SOURCE_DIR}/cmake/nsbi_git_revision.hpp.in ${OUTPUT} @ONLY)
