// SPDX-License-Identifier: MIT
#include "testutil.h"

#include <QCoro/QCoroAsyncGenerator>

using namespace TestUtil;

QCoro::Task<int> twice(int x)
{
    co_await TestUtil::sleep(1ms);
    co_return 2 * x;
}

class tst_MapSmoke : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void mapInOrder()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(3);
            QList<int> results;
            QCORO_FOREACH(int r, pool.map(twice, std::views::iota(0, 5)))
            {
                results.append(r);
            }
            const QList<int> expected { 0, 2, 4, 6, 8 };
            CO_COMPARE(results, expected);
            QList<int> products;
            QCORO_FOREACH(int r,
                          pool.map(
                              TaskPool::MapOptions { .bufferSize = 2 }, [](int a, int b) { return a * b; },
                              std::views::iota(0), std::views::iota(5, 10)))
            {
                products.append(r);
            }
            const QList<int> expectedProducts { 0, 6, 14, 24, 36 };
            CO_COMPARE(products, expectedProducts);
        }());
    }
};

QTEST_GUILESS_MAIN(tst_MapSmoke)
#include "tst_mapsmoke.moc"
