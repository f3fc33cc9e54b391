// SPDX-License-Identifier: MIT
// A misuse that must not compile; tests/compile_fail/CMakeLists.txt checks the message.
#include <taskpool/taskpool.h>

#include <QString>

#include <vector>

QCoro::Task<int> multiply(int x, int y)
{
    co_return x* y;
}

// The QPromise form returning a value, which would be lost.
QCoro::Task<int> download(QPromise<int>& promise)
{
    promise.addResult(1);
    co_return 2;
}

void misuse(TaskPool::TaskPoolExecutor& pool)
{
    (void)pool.submit(download);
}
