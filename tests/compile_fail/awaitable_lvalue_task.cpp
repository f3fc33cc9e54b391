// SPDX-License-Identifier: MIT
// A misuse that must not compile; tests/compile_fail/CMakeLists.txt checks the message.
#include <taskpool/taskpool.h>

#include <QString>

#include <vector>

QCoro::Task<int> multiply(int x, int y)
{
    co_return x* y;
}

// An lvalue QCoro::Task, which cannot be copied.
void misuse(TaskPool::TaskPoolExecutor& pool)
{
    QCoro::Task<int> task = multiply(6, 7);
    (void)pool.submit(task);
}
