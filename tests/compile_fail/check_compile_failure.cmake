# cmake -DBUILD_DIR=<build> -DTARGET=<target> -DEXPECTED=<regex> -P check_compile_failure.cmake
# Builds TARGET, which must fail with a static assertion matching EXPECTED and nothing more than
# a few errors (a static_assert that says what to do, not a cascade from inside the library).
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
    RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
if(result EQUAL 0)
    message(FATAL_ERROR "${TARGET} compiled; it must not")
endif()
if(NOT output MATCHES "static assertion failed[^\n]*${EXPECTED}") # g++: "failed: ", clang: "failed due to requirement ...: "
    message(FATAL_ERROR "${TARGET} failed without the expected message \"${EXPECTED}\":\n${output}")
endif()
string(REGEX MATCHALL "error: " errors "${output}")
list(LENGTH errors count)
if(count GREATER 2)
    message(FATAL_ERROR "${TARGET}: ${count} errors, where the static_assert alone was expected:\n${output}")
endif()
message(STATUS "${TARGET} fails as expected (${count} error(s))")
