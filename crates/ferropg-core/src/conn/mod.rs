//! The connection state machine: startup and authentication, then a FIFO of
//! pending operations, each ended by one ReadyForQuery.
//!
//! The front end owns the socket: it feeds each parsed message to
//! [`Connection::process`], writes whatever lands in the output buffer, and
//! interprets the messages routed to the operation at the head of the queue.

mod startup;

use std::collections::VecDeque;

use bytes::BytesMut;

use crate::error::{DbError, Error};
use crate::message::{frontend, ErrorFields, Message, TransactionStatus};

pub use startup::StartupParams;
use startup::{Startup, StartupStep};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Startup and authentication are under way.
    Startup,
    /// The session is established.
    Ready,
    /// Terminate was sent or a fatal error arrived.
    Closed,
}

/// What a processed message means for the front end.
#[derive(Debug)]
pub enum Routed<'m, T> {
    /// Nothing to do: the core consumed it (an authentication step, a key, a parameter).
    Handled,
    /// Startup finished: the session is ready for queries.
    StartupDone,
    /// A message of the operation at the head of the queue ([`Connection::head_mut`]).
    Op(Message<'m>),
    /// The head operation ended with ReadyForQuery and was taken off the queue.
    OpDone(T),
    /// A NoticeResponse (notice, warning, ...).
    Notice(ErrorFields<'m>),
    /// A LISTEN/NOTIFY notification.
    Notification {
        /// The notifying backend's process ID.
        process_id: i32,
        /// The channel.
        channel: &'m str,
        /// The payload.
        payload: &'m str,
    },
    /// A run-time parameter changed (already stored in [`Connection::parameter`]).
    ParameterChanged {
        /// The parameter.
        name: &'m str,
        /// Its new value.
        value: &'m str,
    },
    /// An ErrorResponse outside any operation, such as a FATAL shutdown notice.
    UnsolicitedError(ErrorFields<'m>),
}

/// The sans-IO connection: generic over the front end's operation record `T`.
pub struct Connection<T> {
    phase: Phase,
    startup: Option<Startup>,
    pending: VecDeque<T>,
    tx_status: TransactionStatus,
    parameters: Vec<(String, String)>,
    process_id: i32,
    secret_key: Vec<u8>,
}

impl<T> Connection<T> {
    /// A connection that will authenticate with `params`.
    pub fn new(params: StartupParams) -> Self {
        Connection {
            phase: Phase::Startup,
            startup: Some(Startup::new(params)),
            pending: VecDeque::new(),
            tx_status: TransactionStatus::Idle,
            parameters: Vec::new(),
            process_id: 0,
            secret_key: Vec::new(),
        }
    }

    /// Writes the StartupMessage; call once the transport is connected.
    pub fn start(&mut self, out: &mut BytesMut) -> Result<(), Error> {
        match &self.startup {
            Some(s) => s.write_startup(out),
            None => Err(Error::Unexpected("startup already done".into())),
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether the server accepted the credentials (AuthenticationOk arrived), even if
    /// startup failed after that. Before it, a client may retry another way (without
    /// TLS, say); after it, the server has let it in and the failure is the session's.
    pub fn authenticated(&self) -> bool {
        self.startup.as_ref().is_none_or(|s| s.authenticated())
    }

    /// The transaction status of the last ReadyForQuery.
    pub fn transaction_status(&self) -> TransactionStatus {
        self.tx_status
    }

    /// The backend's process ID (for CancelRequest).
    pub fn process_id(&self) -> i32 {
        self.process_id
    }

    /// The cancellation secret key.
    pub fn secret_key(&self) -> &[u8] {
        &self.secret_key
    }

    /// A run-time parameter reported by the server (`server_version`, `TimeZone`, ...).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter reported so far.
    pub fn parameters(&self) -> impl Iterator<Item = (&str, &str)> {
        self.parameters
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Queues an operation whose messages the front end has written; it must end with
    /// exactly one Sync (or be a simple Query).
    pub fn push(&mut self, op: T) {
        self.pending.push_back(op);
    }

    /// The operation the next routed messages belong to, for reading.
    ///
    /// ```
    /// use ferropg_core::conn::{Connection, StartupParams};
    ///
    /// let mut conn: Connection<u32> = Connection::new(StartupParams::default());
    /// assert_eq!(conn.head(), None);
    /// conn.push(1);
    /// conn.push(2);
    /// assert_eq!(conn.head(), Some(&1));
    /// *conn.head_mut().unwrap() = 10;
    /// assert_eq!(conn.head(), Some(&10));
    /// assert_eq!(conn.pending_len(), 2);
    /// ```
    pub fn head(&self) -> Option<&T> {
        self.pending.front()
    }

    /// The operation the next routed messages belong to.
    pub fn head_mut(&mut self) -> Option<&mut T> {
        self.pending.front_mut()
    }

    /// How many operations await their ReadyForQuery.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The pending operations, head first.
    pub fn pending(&self) -> impl Iterator<Item = &T> {
        self.pending.iter()
    }

    /// Takes every pending operation, for the front end to fail when the link is gone.
    pub fn take_pending(&mut self) -> Vec<T> {
        self.pending.drain(..).collect()
    }

    /// Writes Terminate and closes the state machine.
    pub fn terminate(&mut self, out: &mut BytesMut) {
        if self.phase != Phase::Closed {
            frontend::terminate(out);
            self.phase = Phase::Closed;
        }
    }

    /// Marks the connection closed without writing anything (the link is gone).
    pub fn mark_closed(&mut self) {
        self.phase = Phase::Closed;
    }

    /// Processes one message from the server, writing any reply into `out`.
    pub fn process<'m>(
        &mut self,
        msg: Message<'m>,
        out: &mut BytesMut,
    ) -> Result<Routed<'m, T>, Error> {
        match msg {
            Message::ParameterStatus { name, value } => {
                self.set_parameter(name, value);
                return Ok(if self.phase == Phase::Startup {
                    Routed::Handled
                } else {
                    Routed::ParameterChanged { name, value }
                });
            }
            Message::NoticeResponse(fields) => return Ok(Routed::Notice(fields)),
            Message::NotificationResponse {
                process_id,
                channel,
                payload,
            } => {
                return Ok(Routed::Notification {
                    process_id,
                    channel,
                    payload,
                })
            }
            _ => {}
        }
        match self.phase {
            Phase::Startup => self.process_startup(msg, out),
            Phase::Ready | Phase::Closed => self.process_ready(msg),
        }
    }

    fn process_startup<'m>(
        &mut self,
        msg: Message<'m>,
        out: &mut BytesMut,
    ) -> Result<Routed<'m, T>, Error> {
        match msg {
            Message::BackendKeyData {
                process_id,
                secret_key,
            } => {
                self.process_id = process_id;
                self.secret_key = secret_key.to_vec();
                Ok(Routed::Handled)
            }
            Message::ReadyForQuery(status) => {
                if self.startup.as_ref().is_some_and(|s| !s.authenticated()) {
                    return Err(Error::Unexpected(
                        "ReadyForQuery before authentication completed".into(),
                    ));
                }
                self.tx_status = status;
                self.phase = Phase::Ready;
                self.startup = None;
                Ok(Routed::StartupDone)
            }
            Message::ErrorResponse(fields) => {
                self.phase = Phase::Closed;
                Err(Error::Db(DbError::from_fields(&fields)))
            }
            other => {
                let startup = self
                    .startup
                    .as_mut()
                    .ok_or_else(|| Error::Unexpected("startup state lost".into()))?;
                match startup.handle(other, out)? {
                    StartupStep::Continue => Ok(Routed::Handled),
                }
            }
        }
    }

    fn process_ready<'m>(&mut self, msg: Message<'m>) -> Result<Routed<'m, T>, Error> {
        match msg {
            Message::ReadyForQuery(status) => {
                self.tx_status = status;
                match self.pending.pop_front() {
                    Some(op) => Ok(Routed::OpDone(op)),
                    None => Err(Error::Unexpected(
                        "ReadyForQuery with no operation pending".into(),
                    )),
                }
            }
            Message::ErrorResponse(fields) if self.pending.is_empty() => {
                let err = DbError::from_fields(&fields);
                if err.is_fatal() {
                    self.phase = Phase::Closed;
                }
                Ok(Routed::UnsolicitedError(fields))
            }
            Message::Authentication(_) | Message::BackendKeyData { .. } => Err(Error::Unexpected(
                format!("{} after startup", message_name(&msg)),
            )),
            other => {
                if self.pending.is_empty() {
                    return Err(Error::Unexpected(format!(
                        "{} with no operation pending",
                        message_name(&other)
                    )));
                }
                Ok(Routed::Op(other))
            }
        }
    }

    fn set_parameter(&mut self, name: &str, value: &str) {
        match self.parameters.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => value.clone_into(&mut slot.1),
            None => self.parameters.push((name.to_owned(), value.to_owned())),
        }
    }
}

/// A short name of a message, for protocol-error texts.
pub fn message_name(msg: &Message<'_>) -> &'static str {
    match msg {
        Message::Authentication(_) => "Authentication",
        Message::BackendKeyData { .. } => "BackendKeyData",
        Message::BindComplete => "BindComplete",
        Message::CloseComplete => "CloseComplete",
        Message::CommandComplete { .. } => "CommandComplete",
        Message::CopyData(_) => "CopyData",
        Message::CopyDone => "CopyDone",
        Message::CopyInResponse(_) => "CopyInResponse",
        Message::CopyOutResponse(_) => "CopyOutResponse",
        Message::CopyBothResponse(_) => "CopyBothResponse",
        Message::DataRow(_) => "DataRow",
        Message::EmptyQueryResponse => "EmptyQueryResponse",
        Message::ErrorResponse(_) => "ErrorResponse",
        Message::FunctionCallResponse(_) => "FunctionCallResponse",
        Message::NegotiateProtocolVersion { .. } => "NegotiateProtocolVersion",
        Message::NoData => "NoData",
        Message::NoticeResponse(_) => "NoticeResponse",
        Message::NotificationResponse { .. } => "NotificationResponse",
        Message::ParameterDescription(_) => "ParameterDescription",
        Message::ParameterStatus { .. } => "ParameterStatus",
        Message::ParseComplete => "ParseComplete",
        Message::PortalSuspended => "PortalSuspended",
        Message::ReadyForQuery(_) => "ReadyForQuery",
        Message::RowDescription(_) => "RowDescription",
    }
}

#[cfg(test)]
mod tests;
