// SPDX-License-Identifier: MIT
#pragma once

#include <QObject>
#include <QTcpServer>
#include <QUrl>

#include <algorithm>
#include <chrono>

//! A tiny HTTP/1.1 server on 127.0.0.1 for the daemon's demo and tests.
/*!
 * It answers each GET after an artificial latency (a QTimer, so it handles any number of requests
 * at once on one thread) and counts the requests in flight (received, not answered yet), so the
 * peak it observed tells how many requests the client really had outstanding at once. A request
 * whose connection the client closes before the answer (QNetworkReply::abort()) counts as aborted,
 * not served: served() + aborted() + inFlight() is every request received.
 *
 * `GET /status/<code>` answers with that status (e.g. /status/500 to make a request fail); any
 * other path answers 200 with a short text body. Connections are kept alive. It listens only on
 * 127.0.0.1, on an ephemeral port, and stops with its owner.
 */
class LocalHttpServer : public QObject {
    Q_OBJECT

public:
    explicit LocalHttpServer(std::chrono::milliseconds latency, QObject* parent = nullptr);
    ~LocalHttpServer() override;

    //! Listens on 127.0.0.1 on an ephemeral port; false (see errorString()) when it cannot.
    bool listen();
    QString errorString() const { return m_server.errorString(); }
    //! `http://127.0.0.1:<port>`
    QUrl baseUrl() const;

    std::chrono::milliseconds latency() const { return m_latency; }
    //! Changes the latency of the requests received from now on.
    void setLatency(std::chrono::milliseconds latency) { m_latency = std::max(latency, std::chrono::milliseconds(0)); }
    //! Answers nothing from now on (requests stay in flight until their clients go away): a
    //! self-check's way to be sure that what is in flight when it interrupts gets aborted.
    void hold() { m_held = true; }
    bool isHeld() const { return m_held; }
    //! Requests received and not answered yet.
    int inFlight() const { return m_inFlight; }
    //! The most requests that were in flight at the same time.
    int peakInFlight() const { return m_peakInFlight; }
    //! Requests answered.
    qint64 served() const { return m_served; }
    //! Requests whose client went away before the answer (an aborted QNetworkReply).
    qint64 aborted() const { return m_aborted; }

Q_SIGNALS:
    //! A request came in, was answered or was aborted.
    void countsChanged();

private:
    friend class HttpConnection;
    void requestStarted();
    void requestEnded(bool answered);

    QTcpServer m_server;
    std::chrono::milliseconds m_latency;
    bool m_held = false;
    int m_inFlight = 0;
    int m_peakInFlight = 0;
    qint64 m_served = 0;
    qint64 m_aborted = 0;
};
