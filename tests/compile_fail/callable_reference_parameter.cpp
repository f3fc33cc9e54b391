// SPDX-License-Identifier: MIT
// A misuse that must not compile; tests/compile_fail/CMakeLists.txt checks the message.
#include <taskpool/taskpool.h>

#include <QString>

#include <vector>

QCoro::Task<int> multiply(int x, int y)
{
    co_return x* y;
}

// A reference parameter: the argument is decay-copied and passed as an rvalue.
QCoro::Task<void> increment(int& counter)
{
    ++counter;
    co_return;
}

void misuse(TaskPool::TaskPoolExecutor& pool, int& counter)
{
    (void)pool.submit(increment, counter);
}
