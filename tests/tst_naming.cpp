// SPDX-License-Identifier: MIT
// The naming rule (README "Naming"): TaskPool's names spell it "cancelled"; former names in Qt's
// spelling stay as aliases that keep working.
#include "testutil.h"

#include <QSignalSpy>

using namespace TestUtil;
using TaskPool::Future;
using TaskPool::TaskPoolExecutor;

class tst_Naming : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // taskCancelled and its alias taskCanceled each come once per cancelled task, whichever of the
    // two is connected (the executor emits per-task signals only to listeners).
    void taskCancelledAndItsAlias_data()
    {
        QTest::addColumn<bool>("newName");
        QTest::addColumn<bool>("oldName");
        QTest::newRow("taskCancelled only") << true << false;
        QTest::newRow("taskCanceled only") << false << true;
        QTest::newRow("both") << true << true;
    }
    void taskCancelledAndItsAlias()
    {
        QFETCH(bool, newName);
        QFETCH(bool, oldName);
        run([](bool newName, bool oldName) -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            std::optional<QSignalSpy> cancelled, canceled;
            if (newName)
                cancelled.emplace(&pool, &TaskPoolExecutor::taskCancelled);
            if (oldName)
                canceled.emplace(&pool, &TaskPoolExecutor::taskCanceled);
            Gate gate;
            Future<int> running = pool.submit(gated, &gate, 1);
            Future<int> queued = pool.submit(gated, &gate, 2);
            CO_VERIFY(queued.cancel());
            co_await turns(2);
            CO_VERIFY(running.cancel());
            for (auto* spy : { cancelled ? &*cancelled : nullptr, canceled ? &*canceled : nullptr }) {
                if (!spy)
                    continue;
                CO_COMPARE(spy->count(), 2);
                CO_COMPARE(spy->at(0).at(0).toULongLong(), queued.taskId());
                CO_COMPARE(spy->at(1).at(0).toULongLong(), running.taskId());
            }
            gate.open();
            co_await pool.shutdown();
        }(newName, oldName));
    }
};

QTEST_GUILESS_MAIN(tst_Naming)
#include "tst_naming.moc"
