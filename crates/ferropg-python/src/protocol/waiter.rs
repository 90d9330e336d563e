//! `Waiter`: the result slot of a blocking call's operation.
//!
//! A blocking call waits on the socket, not on an event loop, so its operation needs no
//! asyncio future: creating one runs two Python methods (`create_future`, then the
//! future's `get_debug`) and resolving it schedules callbacks nobody registered. A
//! `Waiter` answers the same questions the protocol and the connection ask of a future
//! (`done`, `cancel`, `cancelled`, `result`), for a fraction of the cost.

use pyo3::exceptions::asyncio::{CancelledError, InvalidStateError};
use pyo3::prelude::*;
use std::sync::Mutex;

/// Where a blocking call's operation leaves its outcome.
#[pyclass(module = "ferropg._native", frozen)]
pub struct Waiter {
    state: Mutex<State>,
}

enum State {
    Pending,
    Cancelled,
    Done(PyResult<Py<PyAny>>),
}

impl Waiter {
    /// A waiter with no outcome yet.
    pub(super) fn new() -> Waiter {
        Waiter {
            state: Mutex::new(State::Pending),
        }
    }

    /// Records the operation's outcome, unless the caller already gave up.
    pub(super) fn settle(&self, outcome: PyResult<Py<PyAny>>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*state, State::Pending) {
            *state = State::Done(outcome);
        }
    }

    /// True once there is an outcome, or the caller gave up.
    pub(super) fn is_done(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        !matches!(*state, State::Pending)
    }
}

#[pymethods]
impl Waiter {
    /// True once the operation ended or the waiter was cancelled.
    fn done(&self) -> bool {
        self.is_done()
    }

    /// Gives up on the outcome; False when it is already there.
    fn cancel(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match *state {
            State::Done(_) => false,
            _ => {
                *state = State::Cancelled;
                true
            }
        }
    }

    /// True when the waiter was cancelled.
    fn cancelled(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        matches!(*state, State::Cancelled)
    }

    /// The operation's result; its error is raised.
    fn result(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match &*state {
            State::Done(Ok(v)) => Ok(v.clone_ref(py)),
            State::Done(Err(e)) => Err(e.clone_ref(py)),
            State::Cancelled => Err(CancelledError::new_err(())),
            State::Pending => Err(InvalidStateError::new_err("result is not set")),
        }
    }
}
