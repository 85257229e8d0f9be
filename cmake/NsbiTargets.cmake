# Flags shared by every nsbi target, kept on an interface target rather than in CMAKE_CXX_FLAGS.
add_library(nsbi_flags INTERFACE)
target_compile_options(nsbi_flags INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wno-unused-parameter)
target_include_directories(nsbi_flags INTERFACE $<BUILD_INTERFACE:${CMAKE_BINARY_DIR}/generated>)
# Reproducible floating point: no contraction into FMA (C++ modes default to -ffp-contract=fast), so SIMD,
# scalar and GPU code round alike (core/include/nsbi/core/kernel_math.hpp). -fno-math-errno changes no
# value; it lets sqrt vectorise. -fopenmp-simd enables `#pragma omp simd` (NSBI_SIMD_LOOP) without OpenMP.
target_compile_options(nsbi_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-ffp-contract=off -fno-math-errno
                                            -fopenmp-simd>)
target_compile_definitions(nsbi_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:NSBI_HAS_OPENMP_SIMD>)
option(NSBI_NATIVE_ARCH "Compile for the build machine's instruction set (-march=native)" ON)
if(NSBI_NATIVE_ARCH)
  target_compile_options(nsbi_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-march=native>)
endif()
if(NSBI_ENABLE_SANITIZERS)
  target_compile_options(nsbi_flags INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                                              -fno-sanitize-recover=undefined)
  target_link_options(nsbi_flags INTERFACE -fsanitize=address,undefined)
endif()

# nsbi_add_library(<folder> SOURCES ... LINK ...): one target per folder, exported as nsbi::<folder>.
function(nsbi_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LINK" ${ARGN})
  if(ARG_SOURCES)
    add_library(nsbi_${name} ${ARG_SOURCES})
    target_include_directories(nsbi_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
    target_link_libraries(nsbi_${name} PUBLIC nsbi_flags ${ARG_LINK})
  else()
    add_library(nsbi_${name} INTERFACE)
    target_include_directories(nsbi_${name} INTERFACE ${CMAKE_CURRENT_SOURCE_DIR}/include)
    target_link_libraries(nsbi_${name} INTERFACE nsbi_flags ${ARG_LINK})
  endif()
  add_library(nsbi::${name} ALIAS nsbi_${name})
endfunction()
