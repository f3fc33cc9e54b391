// SPDX-License-Identifier: MIT
#include "testutil.h"

using namespace TestUtil;

QCoro::Task<int> multiply(int x, int y)
{
    co_await TestUtil::sleep(1ms);
    co_return x* y;
}

class tst_Smoke : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void submitCallable()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            auto f = pool.submit(multiply, 6, 7);
            CO_COMPARE(co_await f, 42);
            auto g = pool.submit(multiply(2, 3));
            CO_COMPARE(co_await g, 6);
            auto h = pool.submit([](int a) { return a + 1; }, 1);
            CO_COMPARE(co_await h, 2);
            co_await pool.shutdown();
            CO_COMPARE(pool.workerCount(), 0);
        }());
    }
};

QTEST_GUILESS_MAIN(tst_Smoke)
#include "tst_smoke.moc"
