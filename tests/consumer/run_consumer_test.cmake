# Installs the built TaskPool into a fresh prefix, then configures, builds and runs the consumer
# project in tests/consumer against it. Run by ctest with `cmake -P`; variables:
#   TASKPOOL_BUILD_DIR  the build tree to install     WORK_DIR   scratch directory (recreated)
#   CONSUMER_SOURCE_DIR this directory                GENERATOR  CMake generator
#   CXX_COMPILER, BUILD_TYPE, CXX_FLAGS, LINKER_FLAGS  passed on to the consumer build (the same
#   sanitizer / coverage runtime as the library's)
cmake_minimum_required(VERSION 3.21)

function(step)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
        list(JOIN ARGN " " command)
        message(FATAL_ERROR "consumer test: '${command}' failed (${rc})")
    endif()
endfunction()

set(prefix ${WORK_DIR}/prefix)
set(build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

step(${CMAKE_COMMAND} --install ${TASKPOOL_BUILD_DIR} --prefix ${prefix})
step(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${build} -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix}
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
    -DCMAKE_BUILD_TYPE=${BUILD_TYPE}
    "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
    "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}")

# The package must come from the install prefix, not from the build tree or the system.
file(STRINGS ${build}/CMakeCache.txt found REGEX "^TaskPool_DIR:")
string(REGEX REPLACE "^TaskPool_DIR:[A-Z]+=" "" found "${found}")
file(REAL_PATH "${found}" found)
file(REAL_PATH "${prefix}" real_prefix)
string(FIND "${found}" "${real_prefix}/" at)
if(NOT at EQUAL 0)
    message(FATAL_ERROR "consumer test: TaskPool was found in '${found}', not in the prefix '${real_prefix}'")
endif()

step(${CMAKE_COMMAND} --build ${build})
step(${build}/consumer)
message(STATUS "consumer test: passed")
