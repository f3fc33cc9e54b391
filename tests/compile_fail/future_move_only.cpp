// SPDX-License-Identifier: MIT
// A misuse that must not compile; tests/compile_fail/CMakeLists.txt checks the message.
#include <taskpool/taskpool.h>

#include <memory>

// A move-only result: every copy of a QFuture shares it, and reading it must not empty it.
void misuse(TaskPool::TaskPoolExecutor& pool)
{
    (void)pool.submit([] { return std::make_unique<int>(1); });
}
