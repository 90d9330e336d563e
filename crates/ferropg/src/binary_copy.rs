//! Binary COPY rows: [`BinaryCopyIn`] encodes rows of [`ToSql`] values into a
//! `COPY ... FROM STDIN (FORMAT binary)`, on a [`Connection`](crate::Connection) or
//! a shared [`Client`](crate::Client); [`BinaryCopyOutStream`] decodes the rows of
//! a `COPY ... TO STDOUT (FORMAT binary)` with [`FromSql`].
//!
//! The format: a header (signature, flags, extension), tuples of a field count
//! and length-prefixed values, and a trailer (a field count of -1); the core
//! frames them (`ferropg_core::types::copy_binary`). The server sends a tuple per
//! CopyData message, so a row read is normally a slice of the chunk it came in; a
//! tuple split across chunks is put together in a copy.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use std::future::Future;

use bytes::{Bytes, BytesMut};
use ferropg_core::message::frontend;
use ferropg_core::types::copy_binary::{self, HEADER};
use futures_core::Stream;
use postgres_types::{FromSql, IsNull, ToSql, Type, WrongType};

use crate::client::ClientCopyIn;
use crate::copy::{CopyIn, FLUSH_AT};
use crate::Error;

/// Room for a batch of rows: a flush's worth, and the row that crosses the mark.
const BATCH_CAPACITY: usize = FLUSH_AT + 8 * 1024;

/// Rows of [`ToSql`] values written as binary COPY data into a COPY started with
/// `COPY ... FROM STDIN (FORMAT binary)`: a [`Connection`](crate::Connection)'s
/// [`CopyIn`] or a [`Client`](crate::Client)'s [`ClientCopyIn`] (tokio-postgres
/// calls it `BinaryCopyInWriter`).
///
/// The column types are the caller's to give (COPY does not report them), in the
/// order of the COPY's column list; each value is encoded as its type's binary
/// form, so a Rust type that does not match fails with an error of kind
/// [`ToSql`](crate::ErrorKind::ToSql) before anything of that row is sent.
///
/// ```no_run
/// # async fn f(conn: &mut ferropg::Connection) -> Result<(), ferropg::Error> {
/// use ferropg::{BinaryCopyIn, Type};
///
/// let copy = conn.copy_in("copy item (id, name) from stdin (format binary)").await?;
/// let mut writer = BinaryCopyIn::new(copy, &[Type::INT4, Type::TEXT]);
/// writer.write(&[&1i32, &"apple"]).await?;
/// writer.write(&[&2i32, &None::<&str>]).await?;
/// assert_eq!(writer.finish().await?, 2);
/// # Ok(()) }
/// ```
///
/// On a shared client, other tasks' requests wait until the COPY ends:
///
/// ```no_run
/// # async fn f(client: &ferropg::Client) -> Result<(), ferropg::Error> {
/// use ferropg::{BinaryCopyIn, Type};
///
/// let copy = client.copy_in("copy item (id, name) from stdin (format binary)").await?;
/// let mut writer = BinaryCopyIn::new(copy, &[Type::INT4, Type::TEXT]);
/// writer.write(&[&3i32, &"plum"]).await?;
/// assert_eq!(writer.finish().await?, 1);
/// # Ok(()) }
/// ```
pub struct BinaryCopyIn<C> {
    copy: C,
    types: Vec<Type>,
    /// One CopyData message being filled with rows.
    buf: BytesMut,
    /// Where that message starts in `buf`.
    frame: usize,
}

impl<C: CopyTarget> BinaryCopyIn<C> {
    /// Wraps `copy`, for rows of values of `types`.
    pub fn new(copy: C, types: &[Type]) -> BinaryCopyIn<C> {
        let mut buf = BytesMut::with_capacity(BATCH_CAPACITY);
        let frame = frontend::begin_copy_data(&mut buf);
        copy_binary::put_header(&mut buf);
        BinaryCopyIn {
            copy,
            types: types.to_vec(),
            buf,
            frame,
        }
    }

    /// Encodes one row; rows are sent in large batches.
    pub async fn write(&mut self, row: &[&(dyn ToSql + Sync)]) -> Result<(), Error> {
        if row.len() != self.types.len() {
            return Err(Error::parameter_count(self.types.len(), row.len()));
        }
        let mark = self.buf.len();
        if let Err(e) = encode_row(&mut self.buf, &self.types, row) {
            self.buf.truncate(mark);
            return Err(e);
        }
        if self.buf.len() >= FLUSH_AT {
            self.send_batch().await?;
        }
        Ok(())
    }

    /// Sends the batch of rows encoded so far and starts the next.
    async fn send_batch(&mut self) -> Result<(), Error> {
        frontend::end_copy_data(self.frame, &mut self.buf)?;
        self.copy.send_frame(&mut self.buf).await?;
        // The buffer handed back is the connection's, written out: room is made
        // while it is empty, where growing it copies nothing, and not in the middle
        // of a row.
        self.buf.reserve(BATCH_CAPACITY);
        self.frame = frontend::begin_copy_data(&mut self.buf);
        Ok(())
    }

    /// Writes the trailer and finishes the COPY ([`CopyIn::finish`],
    /// [`ClientCopyIn::finish`]): the number of rows copied.
    pub async fn finish(mut self) -> Result<u64, Error> {
        copy_binary::put_trailer(&mut self.buf);
        self.send_batch().await?;
        self.copy.finish().await
    }

    /// Aborts the COPY ([`CopyIn::abort`], [`ClientCopyIn::abort`]); rows not sent
    /// yet are discarded.
    pub async fn abort(self, message: &str) -> Result<(), Error> {
        self.copy.abort(message).await
    }
}

impl<C> fmt::Debug for BinaryCopyIn<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BinaryCopyIn")
            .field("types", &self.types)
            .finish_non_exhaustive()
    }
}

/// One binary COPY tuple: the field count, then each value as a length (-1 for
/// NULL) and its binary form.
fn encode_row(
    buf: &mut BytesMut,
    types: &[Type],
    row: &[&(dyn ToSql + Sync)],
) -> Result<(), Error> {
    copy_binary::begin_tuple(buf, row.len()).map_err(|e| Error::encode(e.0))?;
    for (i, (value, ty)) in row.iter().zip(types).enumerate() {
        let at = copy_binary::begin_field(buf);
        let null = match value.to_sql_checked(ty, buf) {
            Ok(is_null) => matches!(is_null, IsNull::Yes),
            Err(e) => return Err(Error::to_sql(i, e)),
        };
        copy_binary::end_field(buf, at, null)
            .map_err(|e| Error::encode(format!("value {}: {e}", i + 1)))?;
    }
    Ok(())
}

/// A `COPY ... FROM STDIN` that [`BinaryCopyIn`] writes into: a
/// [`Connection`](crate::Connection)'s [`CopyIn`] or a
/// [`Client`](crate::Client)'s [`ClientCopyIn`]. This trait is sealed.
pub trait CopyTarget: target::Sealed {}

impl CopyTarget for CopyIn<'_> {}
impl CopyTarget for ClientCopyIn<'_> {}

mod target {
    use super::*;

    /// What [`BinaryCopyIn`] needs of a COPY, kept out of the public API.
    pub trait Sealed {
        /// Queues a whole CopyData message, leaving `frame` empty (and perhaps
        /// holding the COPY's spent buffer, to fill again).
        fn send_frame(
            &mut self,
            frame: &mut BytesMut,
        ) -> impl Future<Output = Result<(), Error>> + Send;
        /// Ends the data and waits for the server: the number of rows copied.
        fn finish(self) -> impl Future<Output = Result<u64, Error>> + Send;
        /// Makes the COPY fail with `message`.
        fn abort(self, message: &str) -> impl Future<Output = Result<(), Error>> + Send;
    }

    impl Sealed for CopyIn<'_> {
        fn send_frame(
            &mut self,
            frame: &mut BytesMut,
        ) -> impl Future<Output = Result<(), Error>> + Send {
            CopyIn::send_frame(self, frame)
        }
        fn finish(self) -> impl Future<Output = Result<u64, Error>> + Send {
            CopyIn::finish(self)
        }
        fn abort(self, message: &str) -> impl Future<Output = Result<(), Error>> + Send {
            CopyIn::abort(self, message)
        }
    }

    impl Sealed for ClientCopyIn<'_> {
        fn send_frame(
            &mut self,
            frame: &mut BytesMut,
        ) -> impl Future<Output = Result<(), Error>> + Send {
            ClientCopyIn::send_frame(self, frame)
        }
        fn finish(self) -> impl Future<Output = Result<u64, Error>> + Send {
            ClientCopyIn::finish(self)
        }
        fn abort(self, message: &str) -> impl Future<Output = Result<(), Error>> + Send {
            ClientCopyIn::abort(self, message)
        }
    }
}

/// The signature that opens binary COPY data (the first 11 bytes of the header).
const SIGNATURE: &[u8] = HEADER.split_at(11).0;

/// The rows of a binary `COPY ... TO STDOUT`, from the chunks of a COPY stream
/// (a [`CopyOut`](crate::CopyOut) or a [`ClientCopyOut`](crate::ClientCopyOut)),
/// each decoded when asked for by the column `types` the caller gives, in the
/// order of the COPY's columns (COPY does not report them). tokio-postgres calls
/// it `BinaryCopyOutStream` too.
///
/// ```no_run
/// # async fn f(conn: &mut ferropg::Connection) -> Result<(), ferropg::Error> {
/// use ferropg::{BinaryCopyOutStream, Type};
/// use futures_util::TryStreamExt;
///
/// let copy = conn.copy_out("copy item (id, name) to stdout (format binary)").await?;
/// let mut rows = BinaryCopyOutStream::new(copy, &[Type::INT4, Type::TEXT]);
/// while let Some(row) = rows.try_next().await? {
///     let id: i32 = row.get(0);
///     let name: Option<&str> = row.get(1);
/// }
/// # Ok(()) }
/// ```
pub struct BinaryCopyOutStream<S> {
    chunks: S,
    types: Arc<[Type]>,
    /// Data received and not parsed yet.
    pending: Bytes,
    header_read: bool,
    trailer_read: bool,
    done: bool,
}

impl<S> BinaryCopyOutStream<S>
where
    S: Stream<Item = Result<Bytes, Error>> + Unpin,
{
    /// Reads the binary COPY data of `chunks` as rows of values of `types`.
    pub fn new(chunks: S, types: &[Type]) -> BinaryCopyOutStream<S> {
        BinaryCopyOutStream {
            chunks,
            types: types.into(),
            pending: Bytes::new(),
            header_read: false,
            trailer_read: false,
            done: false,
        }
    }

    /// The stream of chunks, back (to read its `rows_affected`, say).
    pub fn into_inner(self) -> S {
        self.chunks
    }

    /// Parses what is pending: a row, the end, or `None` when more data is needed.
    fn parse(&mut self) -> Result<Option<Option<BinaryCopyOutRow>>, Error> {
        if !self.header_read {
            let Some(len) = header_len(&self.pending)? else {
                return Ok(None);
            };
            let _ = self.pending.split_to(len);
            self.header_read = true;
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        if self.trailer_read {
            return Err(Error::copy("binary COPY data goes on after its trailer"));
        }
        let Some(tuple) = Tuple::parse(&self.pending)? else {
            return Ok(None);
        };
        let body = self.pending.split_to(tuple.len);
        match tuple.fields {
            None => {
                self.trailer_read = true;
                Ok(Some(None))
            }
            Some(fields) if fields.len() != self.types.len() => Err(Error::copy(format!(
                "a binary COPY row has {} values, and {} types were given",
                fields.len(),
                self.types.len()
            ))),
            Some(fields) => Ok(Some(Some(BinaryCopyOutRow {
                types: self.types.clone(),
                body,
                fields,
            }))),
        }
    }
}

impl<S> Stream for BinaryCopyOutStream<S>
where
    S: Stream<Item = Result<Bytes, Error>> + Unpin,
{
    type Item = Result<BinaryCopyOutRow, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match this.parse() {
                // The trailer: the chunk stream still ends the COPY (its count).
                Ok(Some(None)) => {}
                Ok(Some(Some(row))) => return Poll::Ready(Some(Ok(row))),
                Ok(None) => {}
                Err(e) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            match ready!(Pin::new(&mut this.chunks).poll_next(cx)) {
                Some(Ok(chunk)) if this.pending.is_empty() => this.pending = chunk,
                Some(Ok(chunk)) => {
                    // A tuple split across chunks: the one copy.
                    let mut joined = BytesMut::with_capacity(this.pending.len() + chunk.len());
                    joined.extend_from_slice(&this.pending);
                    joined.extend_from_slice(&chunk);
                    this.pending = joined.freeze();
                }
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    this.done = true;
                    if this.trailer_read && this.pending.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Err(Error::copy(
                        "binary COPY data ended without its trailer",
                    ))));
                }
            }
        }
    }
}

impl<S> fmt::Debug for BinaryCopyOutStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BinaryCopyOutStream")
            .field("types", &self.types)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// The length of the header at the start of `data`, once it is all there.
fn header_len(data: &[u8]) -> Result<Option<usize>, Error> {
    if data.len() < SIGNATURE.len() + 8 {
        return Ok(None);
    }
    if &data[..SIGNATURE.len()] != SIGNATURE {
        return Err(Error::copy("the COPY data is not in binary format"));
    }
    let ext = i32_at(data, SIGNATURE.len() + 4);
    let ext = usize::try_from(ext).map_err(|_| Error::copy("a bad binary COPY header"))?;
    let len = SIGNATURE.len() + 8 + ext;
    Ok((data.len() >= len).then_some(len))
}

fn i32_at(data: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// One tuple, as found at the start of the pending data.
struct Tuple {
    /// Its length in bytes.
    len: usize,
    /// Each value's place (`None`: NULL) relative to the tuple's start; `None`
    /// for the trailer.
    fields: Option<Vec<Option<(u32, u32)>>>,
}

impl Tuple {
    /// The tuple at the start of `data`, or `None` if it is not all there.
    fn parse(data: &[u8]) -> Result<Option<Tuple>, Error> {
        let Some(count) = data.get(..2) else {
            return Ok(None);
        };
        let count = i16::from_be_bytes([count[0], count[1]]);
        if count == -1 {
            return Ok(Some(Tuple {
                len: 2,
                fields: None,
            }));
        }
        let count = usize::try_from(count)
            .map_err(|_| Error::copy(format!("a binary COPY row of {count} values")))?;
        let mut fields = Vec::with_capacity(count);
        let mut pos = 2usize;
        for _ in 0..count {
            if data.len() < pos + 4 {
                return Ok(None);
            }
            let len = i32_at(data, pos);
            pos += 4;
            if len == -1 {
                fields.push(None);
                continue;
            }
            let len = usize::try_from(len)
                .map_err(|_| Error::copy(format!("a binary COPY value of length {len}")))?;
            if data.len() < pos + len {
                return Ok(None);
            }
            let place = u32::try_from(pos)
                .ok()
                .zip(u32::try_from(len).ok())
                .ok_or_else(|| Error::copy("a binary COPY row past 4 GiB"))?;
            fields.push(Some(place));
            pos += len;
        }
        Ok(Some(Tuple {
            len: pos,
            fields: Some(fields),
        }))
    }
}

/// A row of a [`BinaryCopyOutStream`]: its values in binary, decoded when asked
/// for with the types the stream was given.
pub struct BinaryCopyOutRow {
    types: Arc<[Type]>,
    body: Bytes,
    fields: Vec<Option<(u32, u32)>>,
}

impl BinaryCopyOutRow {
    /// The number of values.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when the row has no values.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Decodes value `idx` (0-based) as `T`.
    ///
    /// # Panics
    ///
    /// When there is no such value or it cannot be decoded as `T` (a type
    /// mismatch, or NULL into a non-`Option`); [`try_get`](Self::try_get) returns
    /// those as errors.
    #[track_caller]
    pub fn get<'a, T: FromSql<'a>>(&'a self, idx: usize) -> T {
        match self.try_get(idx) {
            Ok(v) => v,
            Err(e) => panic!("error retrieving value {idx}: {e}"),
        }
    }

    /// Decodes value `idx` as `T`, or returns an error of kind
    /// [`ColumnNotFound`](crate::ErrorKind::ColumnNotFound) or
    /// [`FromSql`](crate::ErrorKind::FromSql).
    pub fn try_get<'a, T: FromSql<'a>>(&'a self, idx: usize) -> Result<T, Error> {
        let (Some(field), Some(ty)) = (self.fields.get(idx), self.types.get(idx)) else {
            return Err(Error::column_not_found(idx));
        };
        // COPY names no columns: errors name the value by its place.
        let name = || format!("value {}", idx + 1);
        if !T::accepts(ty) {
            let wrong = Box::new(WrongType::new::<T>(ty.clone()));
            return Err(Error::from_sql(idx, &name(), wrong));
        }
        let raw = field.map(|(at, len)| &self.body[at as usize..(at + len) as usize]);
        T::from_sql_nullable(ty, raw).map_err(|e| Error::from_sql(idx, &name(), e))
    }
}

impl fmt::Debug for BinaryCopyOutRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BinaryCopyOutRow")
            .field("types", &self.types)
            .field("len", &self.fields.len())
            .finish_non_exhaustive()
    }
}
