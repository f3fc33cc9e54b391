// SPDX-License-Identifier: MIT
// A misuse that must not compile; tests/compile_fail/CMakeLists.txt checks the message.
#include <taskpool/taskpool.h>

#include <QString>

#include <vector>

QCoro::Task<int> multiply(int x, int y)
{
    co_return x* y;
}

// A missing argument.
void misuse(TaskPool::TaskPoolExecutor& pool)
{
    (void)pool.submit(multiply, 6);
}
