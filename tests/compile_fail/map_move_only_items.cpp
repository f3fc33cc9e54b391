// SPDX-License-Identifier: MIT
// A misuse that must not compile; tests/compile_fail/CMakeLists.txt checks the message.
#include <taskpool/taskpool.h>

#include <memory>
#include <vector>

// Items are copied from their range into their tasks: a range of move-only items cannot be.
void misuse(TaskPool::TaskPoolExecutor& pool)
{
    std::vector<std::unique_ptr<int>> items;
    (void)pool.map([](std::unique_ptr<int> p) { return *p; }, std::move(items));
}
