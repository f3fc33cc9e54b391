// SPDX-License-Identifier: MIT
#pragma once

#include <QObject>

class QSocketNotifier;

//! Brings SIGINT (Ctrl-C) into the Qt event loop: the handler only writes a byte to a pipe, whose
//! read end a QSocketNotifier watches, so interrupted() is emitted from the event loop, where any
//! Qt code may run. After the first SIGINT the default action is restored, so a second Ctrl-C
//! ends the process at once.
class SigintWatcher : public QObject {
    Q_OBJECT

public:
    explicit SigintWatcher(QObject* parent = nullptr);
    ~SigintWatcher() override;

    //! False when the pipe or the handler could not be set up.
    bool isValid() const { return m_notifier != nullptr; }

Q_SIGNALS:
    void interrupted();

private:
    void onReadable();

    QSocketNotifier* m_notifier = nullptr;
};
