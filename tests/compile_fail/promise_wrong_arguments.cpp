// SPDX-License-Identifier: MIT
// A misuse that must not compile; tests/compile_fail/CMakeLists.txt checks the message.
#include <taskpool/taskpool.h>

#include <QString>

#include <vector>

QCoro::Task<int> multiply(int x, int y)
{
    co_return x* y;
}

// The QPromise form with an argument of the wrong type.
QCoro::Task<void> download(QPromise<int>& promise, int part)
{
    promise.addResult(part);
    co_return;
}

void misuse(TaskPool::TaskPoolExecutor& pool)
{
    (void)pool.submit(download, QString());
}
