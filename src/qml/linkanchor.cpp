// SPDX-License-Identifier: MIT
#include <taskpool/taskpool_qml_export.h>

namespace TaskPool::detail {

//! Called by the static initializer that taskpoolqml_link.cpp puts into each program linking
//! TaskPool::Qml: a reference to this library that the linker cannot drop. It has nothing to do:
//! loading the library is what registers the TaskPool QML module.
TASKPOOL_QML_EXPORT void keepQmlModuleLinked();

void keepQmlModuleLinked() { }

} // namespace TaskPool::detail
