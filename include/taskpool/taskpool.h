// SPDX-License-Identifier: MIT
//! \file taskpool.h
//! The whole public API of TaskPool: the `concurrent.futures` executor model for Qt coroutines.
#pragma once

#include <taskpool/cancel.h>
#include <taskpool/clock.h>
#include <taskpool/errors.h>
#include <taskpool/executor.h>
#include <taskpool/future.h>
#include <taskpool/result.h>
#include <taskpool/wait.h>
