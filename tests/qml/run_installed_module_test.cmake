# Installs the built TaskPool into a fresh prefix and runs qmltestrunner on a test that imports
# TaskPool from there, as an application that does not link TaskPool::Qml does: the plugin, then
# libtaskpoolqml and libtaskpool, must be found through their RUNPATHs alone (no LD_LIBRARY_PATH).
# Run by ctest with `cmake -P`; variables:
#   TASKPOOL_BUILD_DIR  the build tree to install     WORK_DIR      scratch directory (recreated)
#   QML_INSTALL_DIR     TASKPOOL_QML_INSTALL_DIR       QMLTESTRUNNER Qt's qmltestrunner
#   LIB_DIR             CMAKE_INSTALL_LIBDIR
#   TEST_QML            the test file                  ROOT_QMLDIR   the repository's qmldir
cmake_minimum_required(VERSION 3.21)

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

execute_process(COMMAND ${CMAKE_COMMAND} --install ${TASKPOOL_BUILD_DIR} --prefix ${prefix}
    RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "installed QML module: cmake --install failed (${rc})")
endif()

set(module ${prefix}/${QML_INSTALL_DIR}/TaskPool)
foreach(file qmldir taskpool.qmltypes libtaskpoolqmlplugin.so)
    if(NOT EXISTS ${module}/${file})
        message(FATAL_ERROR "installed QML module: ${module}/${file} is missing")
    endif()
endforeach()
file(READ ${module}/qmldir installed)
file(READ ${ROOT_QMLDIR} root)
if(NOT installed STREQUAL root)
    message(FATAL_ERROR "installed QML module: its qmldir differs from the repository's")
endif()

# Each library finds the TaskPool libraries it needs in the prefix through its own RUNPATH
# (RUNPATH is not transitive: the plugin's does not serve libtaskpoolqml).
foreach(library ${module}/libtaskpoolqmlplugin.so ${prefix}/${LIB_DIR}/libtaskpoolqml.so)
    execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH ldd ${library}
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    string(REGEX MATCHALL "libtaskpool[a-z]*\\.so[^\n]*" needed "${out}")
    if(NOT rc EQUAL 0 OR NOT needed)
        message(FATAL_ERROR "installed QML module: ldd ${library} failed (${rc}):\n${out}")
    endif()
    foreach(line IN LISTS needed)
        string(FIND "${line}" "=> ${prefix}/" at)
        if(at EQUAL -1)
            message(FATAL_ERROR "installed QML module: ${library} does not find it in the prefix: ${line}")
        endif()
    endforeach()
endforeach()

set(env ${CMAKE_COMMAND} -E env QT_QPA_PLATFORM=offscreen QT_LOGGING_RULES=qt.core.library.debug=true
    --unset=LD_LIBRARY_PATH --unset=QML_IMPORT_PATH --unset=QML2_IMPORT_PATH --unset=QT_PLUGIN_PATH)

# Without the import directory the module is not found: nothing else on the machine provides it.
execute_process(COMMAND ${env} ${QMLTESTRUNNER} -input ${TEST_QML}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0 OR NOT out MATCHES "module \"TaskPool\" is not installed")
    message(FATAL_ERROR "installed QML module: found without its import directory:\n${out}")
endif()

execute_process(COMMAND ${env} ${QMLTESTRUNNER} -import ${prefix}/${QML_INSTALL_DIR} -input ${TEST_QML}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
string(REGEX MATCH "Totals:[^\n]*" totals "${out}")
if(NOT rc EQUAL 0 OR NOT totals MATCHES " 0 failed" OR NOT out MATCHES "PASS *: [^\n]*::test_runsTasks")
    message(FATAL_ERROR "installed QML module: qmltestrunner failed (${rc}):\n${out}")
endif()
# The plugin that was loaded is the installed one.
string(FIND "${out}" "\"${module}/libtaskpoolqmlplugin.so\" loaded library" at)
if(at EQUAL -1)
    message(FATAL_ERROR "installed QML module: the plugin was not loaded from ${module}:\n${out}")
endif()
message(STATUS "installed QML module: ${totals}, plugin loaded from ${module}")
