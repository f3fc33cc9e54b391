# Installs the built TaskPool into a fresh prefix, then configures, builds and runs a user's
# project against it: tests/consumer, or an example copied out of the source tree. Run by ctest
# with `cmake -P`; variables:
#   TASKPOOL_BUILD_DIR  the build tree to install     WORK_DIR    scratch directory (recreated)
#   SOURCE_DIR          the project, copied alone to WORK_DIR/source first (nothing of the
#                       source tree around it can be reached)     GENERATOR   CMake generator
#   PROGRAM             the program to run (relative to the project's build directory), without
#                       QML_IMPORT_PATH or QML2_IMPORT_PATH in its environment
#   PROGRAM_ARGS        its arguments, separated by '|'
#   PREFIX_PATH         the CMAKE_PREFIX_PATH of the TaskPool build, separated by '|' (so that the
#                       project finds the same Qt and QCoro as the library was built with)
#   PROBE_COMPONENTS    ON: also check find_package(TaskPool)'s components on small probe projects
#   CXX_COMPILER, BUILD_TYPE, CXX_FLAGS, LINKER_FLAGS  passed on to the project's build (the same
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
set(source ${WORK_DIR}/source)
set(build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
file(COPY ${SOURCE_DIR}/ DESTINATION ${source})

string(REPLACE "|" ";" prefix_path "${PREFIX_PATH}")
set(prefix_path ${prefix} ${prefix_path}) # the install first
string(REPLACE ";" "\\;" prefix_path_arg "${prefix_path}")
string(REPLACE "|" ";" program_args "${PROGRAM_ARGS}")
set(configure_args -G ${GENERATOR}
    "-DCMAKE_PREFIX_PATH=${prefix_path}"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
    -DCMAKE_BUILD_TYPE=${BUILD_TYPE}
    "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
    "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}")

step(${CMAKE_COMMAND} --install ${TASKPOOL_BUILD_DIR} --prefix ${prefix})
step(${CMAKE_COMMAND} -S ${source} -B ${build} ${configure_args})

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
step(${CMAKE_COMMAND} -E env --unset=QML_IMPORT_PATH --unset=QML2_IMPORT_PATH ${build}/${PROGRAM} ${program_args})

if(PROBE_COMPONENTS)
    # probe NAME EXPECTATION BODY: configures a project whose CMakeLists.txt is BODY and checks
    # that it succeeds (EXPECTATION = pass) or fails with output matching EXPECTATION.
    function(probe name expectation body)
        set(dir ${WORK_DIR}/probe-${name})
        file(WRITE ${dir}/CMakeLists.txt "cmake_minimum_required(VERSION 3.21)\nproject(probe LANGUAGES CXX)\n${body}\n")
        execute_process(COMMAND ${CMAKE_COMMAND} -S ${dir} -B ${dir}/build ${configure_args}
            RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
        if(expectation STREQUAL "pass" AND NOT rc EQUAL 0)
            message(FATAL_ERROR "consumer test: probe '${name}' failed:\n${out}")
        elseif(NOT expectation STREQUAL "pass" AND (rc EQUAL 0 OR NOT out MATCHES "${expectation}"))
            message(FATAL_ERROR "consumer test: probe '${name}' should have failed with '${expectation}':\n${out}")
        endif()
        message(STATUS "consumer test: probe '${name}' as expected")
    endfunction()
    # Core alone: TaskPool::TaskPool, and Qt's Qml is not looked up.
    probe(core pass [[
find_package(TaskPool CONFIG REQUIRED COMPONENTS Core)
if(NOT TARGET TaskPool::TaskPool OR NOT TaskPool_Core_FOUND)
    message(FATAL_ERROR "no TaskPool::TaskPool")
endif()
if(DEFINED Qt6Qml_DIR OR TARGET Qt6::Qml)
    message(FATAL_ERROR "Qt's Qml was looked up for the Core component alone")
endif()
]])
    # Qml: Qt's Qml is found and the import directory is set; without components, Qml comes along.
    probe(qml pass [[
find_package(TaskPool CONFIG REQUIRED COMPONENTS Qml)
if(NOT TaskPool_Qml_FOUND OR NOT TARGET Qt6::Qml OR NOT IS_DIRECTORY "${TaskPool_QML_IMPORT_DIR}/TaskPool")
    message(FATAL_ERROR "Qml component incomplete")
endif()
]])
    probe(default pass [[
find_package(TaskPool CONFIG REQUIRED)
if(NOT TaskPool_Qml_FOUND OR NOT TARGET Qt6::Qml)
    message(FATAL_ERROR "without components, Qml should come along")
endif()
]])
    probe(unknown "TaskPool has no component 'Quick'" [[
find_package(TaskPool CONFIG REQUIRED COMPONENTS Core Quick)
]])
    probe(optional pass [[
find_package(TaskPool CONFIG REQUIRED COMPONENTS Core OPTIONAL_COMPONENTS Quick)
if(TaskPool_Quick_FOUND OR NOT TaskPool_FOUND)
    message(FATAL_ERROR "an unknown optional component")
endif()
]])
endif()
message(STATUS "consumer test: passed")
