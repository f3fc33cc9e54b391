// SPDX-License-Identifier: MIT
// A misuse that must not compile; tests/compile_fail/CMakeLists.txt checks the message.
#include <taskpool/taskpool.h>

#include <QString>

#include <vector>

QCoro::Task<int> multiply(int x, int y)
{
    co_return x* y;
}

// A function that takes a QPromise.
QCoro::Task<void> report(QPromise<int>& promise, int item)
{
    promise.addResult(item);
    co_return;
}

void misuse(TaskPool::TaskPoolExecutor& pool)
{
    (void)pool.map(report, std::vector<int> { 1, 2 });
}
