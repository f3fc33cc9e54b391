# The installed CMake package: find_package(TaskPool CONFIG REQUIRED [COMPONENTS Core Qml]).
include(CMakePackageConfigHelpers)
include(GNUInstallDirs)

set(TASKPOOL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/TaskPool)
install(EXPORT TaskPoolTargets NAMESPACE TaskPool:: DESTINATION ${TASKPOOL_CMAKE_DIR})

# Substituted into TaskPoolConfig.cmake: whether the QML component exists, and where its module is.
if(TARGET TaskPoolQml)
    set(TASKPOOL_PACKAGE_HAS_QML ON)
    set(TASKPOOL_PACKAGE_QML_IMPORT_DIR "${TASKPOOL_QML_INSTALL_DIR}")
else()
    set(TASKPOOL_PACKAGE_HAS_QML OFF)
    set(TASKPOOL_PACKAGE_QML_IMPORT_DIR "")
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/TaskPoolConfig.cmake.in
    ${PROJECT_BINARY_DIR}/TaskPoolConfig.cmake
    INSTALL_DESTINATION ${TASKPOOL_CMAKE_DIR}
    PATH_VARS TASKPOOL_PACKAGE_QML_IMPORT_DIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/TaskPoolConfigVersion.cmake COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/TaskPoolConfig.cmake ${PROJECT_BINARY_DIR}/TaskPoolConfigVersion.cmake
    DESTINATION ${TASKPOOL_CMAKE_DIR})
