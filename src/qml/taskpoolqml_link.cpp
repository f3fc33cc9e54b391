// SPDX-License-Identifier: MIT
// Compiled into each program and library that links TaskPool::Qml (an INTERFACE source of that
// target). Loading libtaskpoolqml registers the TaskPool QML module, so that `import TaskPool` needs
// no import path; but a program that only imports the module in QML references nothing of the
// library, and a linker with --as-needed (g++'s default on Debian) would drop it. This static
// initializer references it.
#include <taskpool/taskpool_qml_export.h>

namespace TaskPool::detail {
TASKPOOL_QML_EXPORT void keepQmlModuleLinked(); // in libtaskpoolqml
} // namespace TaskPool::detail

namespace {
struct TaskPoolQmlModuleLink {
    TaskPoolQmlModuleLink() { TaskPool::detail::keepQmlModuleLinked(); }
};
const TaskPoolQmlModuleLink taskpoolQmlModuleLink;
} // namespace
