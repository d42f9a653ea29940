//! State shared by a connection's handles and its reader, writer and
//! heartbeat tasks: the in-flight table, the outgoing buffer, and the
//! broken/closing state.
//!
//! Hot path of a request: one lock of the stream table to take an id, one
//! lock of the output buffer to encode the frame straight into it, one
//! wake-up of the writer (only if the buffer was empty), then one lock of
//! the stream table by the reader to hand the raw response back. Decoding
//! happens on the caller's task, so the single reader task only splits
//! frames and can keep up with many cores.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch, Notify};

use super::error::{BrokenReason, RequestError};
use super::features::ServerFeatures;
use super::stream_ids::{AllocError, Completion, StreamTable};
use crate::protocol::frame::{
    decode_response, decode_response_shared, flags, FrameHeader, Opcode, HEADER_LEN, MAX_BODY_LEN,
    VERSION,
};
use crate::protocol::response::Event;
use crate::protocol::wire::put_bytes_map;
use crate::protocol::{
    Compression, ProtocolError, Request, RequestExtensions, Response, ResponseExtensions,
};

/// A decoded response and its frame extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseFrame {
    pub extensions: ResponseExtensions,
    pub response: Response,
}

/// A response frame as it came off the socket, not yet decoded: for callers
/// that forward bytes or decode lazily.
///
/// `body` shares the reader's buffer; decode or copy it rather than keeping
/// it for long.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub header: FrameHeader,
    /// The body exactly as received (compressed if the header says so).
    pub body: Bytes,
    compression: Option<Compression>,
    /// The connection's limit on an inflated body.
    max_frame_len: usize,
}

impl RawResponse {
    /// Decompresses (if needed) and decodes the body.
    pub fn decode(&self) -> Result<ResponseFrame, ProtocolError> {
        inflated_within(&self.header, &self.body, self.max_frame_len)?;
        let (extensions, response) =
            decode_response_shared(&self.header, &self.body, self.compression)?;
        Ok(ResponseFrame {
            extensions,
            response,
        })
    }

    /// The body uncompressed (shared with the reader's buffer when it was
    /// not compressed).
    pub fn plain_body(&self) -> Result<Bytes, ProtocolError> {
        if self.header.flags & flags::COMPRESSION == 0 {
            return Ok(self.body.clone());
        }
        match self.compression {
            Some(c) => Ok(Bytes::from(c.decompress(&self.body)?)),
            None => Err(ProtocolError::Invalid(
                "compressed frame without negotiated compression".into(),
            )),
        }
    }
}

/// Refuses a compressed body whose announced inflated size (the lz4
/// body's leading `u32`) is over `max_frame_len`, before anything is
/// inflated.
pub(crate) fn inflated_within(
    header: &FrameHeader,
    body: &[u8],
    max_frame_len: usize,
) -> Result<(), ProtocolError> {
    if header.flags & flags::COMPRESSION == 0 {
        return Ok(());
    }
    let Some(&[a, b, c, d]) = body.first_chunk::<4>() else {
        return Ok(());
    };
    let claimed = u32::from_be_bytes([a, b, c, d]) as usize;
    if claimed > max_frame_len {
        return Err(ProtocolError::Compression(format!(
            "lz4 body claims {claimed} bytes inflated, over the {max_frame_len}-byte frame limit"
        )));
    }
    Ok(())
}

/// A request whose body is already encoded, so retries and proxies do not
/// pay for encoding again.
#[derive(Debug, Clone, Copy)]
pub struct RawRequest<'a> {
    pub opcode: Opcode,
    /// Header flags describing `body` (`TRACING`, `CUSTOM_PAYLOAD`, ...);
    /// the `COMPRESSION` flag is managed by the connection and ignored.
    pub flags: u8,
    /// Body extensions (custom payload) followed by the message body,
    /// uncompressed.
    pub body: &'a [u8],
}

/// What to put on the wire.
#[derive(Clone, Copy)]
pub(crate) enum Outgoing<'a> {
    Request(&'a Request, &'a RequestExtensions),
    Raw(RawRequest<'a>),
}

impl Outgoing<'_> {
    /// Appends the (uncompressed) body; returns the opcode and flags.
    fn write_body(&self, out: &mut Vec<u8>) -> Result<(Opcode, u8), ProtocolError> {
        match self {
            Outgoing::Request(request, extensions) => {
                let mut frame_flags = 0;
                if extensions.tracing {
                    frame_flags |= flags::TRACING;
                }
                if let Some(payload) = &extensions.custom_payload {
                    frame_flags |= flags::CUSTOM_PAYLOAD;
                    put_bytes_map(out, payload)?;
                }
                request.write_body(out)?;
                Ok((request.opcode(), frame_flags))
            }
            Outgoing::Raw(raw) => {
                out.extend_from_slice(raw.body);
                Ok((raw.opcode, raw.flags & !flags::COMPRESSION))
            }
        }
    }
}

fn put_header(out: &mut [u8], frame_flags: u8, stream: i16, opcode: Opcode, body_len: usize) {
    out[0] = VERSION;
    out[1] = frame_flags;
    out[2..4].copy_from_slice(&stream.to_be_bytes());
    out[4] = opcode as u8;
    out[5..9].copy_from_slice(&(body_len as u32).to_be_bytes());
}

fn too_large(len: usize) -> ProtocolError {
    ProtocolError::Invalid(format!("frame body of {len} bytes is too large"))
}

/// Locks, ignoring poisoning: every critical section leaves the data
/// consistent, and a panic elsewhere must not take the connection down.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

type Waiter = oneshot::Sender<RawResponse>;

/// Frames encoded by callers and not yet taken by the writer task.
pub(crate) struct OutBuffer {
    pub buf: Vec<u8>,
    pub closed: bool,
}

pub(crate) struct Shared {
    pub features: ServerFeatures,
    pub compression: Option<Compression>,
    /// Largest response body accepted (and inflated), from the config.
    pub max_frame_len: usize,
    pub local_addr: std::net::SocketAddr,
    pub peer_addr: std::net::SocketAddr,
    streams: Mutex<StreamTable<Waiter>>,
    /// Mirror of the stream table's use count, readable without the lock.
    in_flight: AtomicUsize,
    pub out: Mutex<OutBuffer>,
    pub writer_wake: Notify,
    broken: OnceLock<Arc<BrokenReason>>,
    /// Becomes true once, when the connection is broken.
    stop: watch::Sender<bool>,
    closing: AtomicBool,
    /// Signalled when the last in-flight request completes while closing.
    drained: Notify,
    events: Mutex<Option<mpsc::Sender<Event>>>,
    epoch: Instant,
    last_read_ms: AtomicU64,
}

impl Shared {
    pub fn new(
        features: ServerFeatures,
        compression: Option<Compression>,
        local_addr: std::net::SocketAddr,
        peer_addr: std::net::SocketAddr,
        max_frame_len: usize,
    ) -> Shared {
        Shared {
            features,
            compression,
            max_frame_len,
            local_addr,
            peer_addr,
            streams: Mutex::new(StreamTable::new()),
            in_flight: AtomicUsize::new(0),
            out: Mutex::new(OutBuffer {
                buf: Vec::new(),
                closed: false,
            }),
            writer_wake: Notify::new(),
            broken: OnceLock::new(),
            stop: watch::channel(false).0,
            closing: AtomicBool::new(false),
            drained: Notify::new(),
            events: Mutex::new(None),
            epoch: Instant::now(),
            last_read_ms: AtomicU64::new(0),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn orphaned(&self) -> usize {
        lock(&self.streams).orphaned()
    }

    pub fn broken_reason(&self) -> Option<Arc<BrokenReason>> {
        self.broken.get().cloned()
    }

    /// A receiver that turns true when the connection breaks.
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Records that bytes arrived (the heartbeat measures idleness by it).
    pub fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_read_ms.store(ms, Ordering::Relaxed);
    }

    pub fn idle_for(&self) -> Duration {
        let now = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_read_ms.load(Ordering::Relaxed)))
    }

    pub fn set_event_sender(&self, sender: Option<mpsc::Sender<Event>>) {
        *lock(&self.events) = sender;
    }

    /// Marks the connection broken, once: fails every waiter, refuses new
    /// requests and stops the tasks (which drops the socket).
    pub fn fail(&self, reason: BrokenReason) {
        if self.broken.set(Arc::new(reason)).is_err() {
            return;
        }
        if let Some(reason) = self.broken.get() {
            tracing::debug!(peer = %self.peer_addr, %reason, "connection broken");
        }
        // The reason is set first, so a waiter woken by the drain finds it.
        let waiters = {
            let mut streams = lock(&self.streams);
            let waiters = streams.close();
            self.in_flight.store(0, Ordering::Relaxed);
            waiters
        };
        drop(waiters);
        {
            let mut out = lock(&self.out);
            out.closed = true;
            out.buf = Vec::new();
        }
        self.writer_wake.notify_one();
        lock(&self.events).take();
        self.stop.send_replace(true);
        self.drained.notify_waiters();
    }

    /// The error for a request refused by a closed stream table.
    fn refused(&self) -> RequestError {
        match self.broken_reason() {
            Some(reason) => RequestError::NotSent(reason),
            None => RequestError::Closing,
        }
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed) || self.broken.get().is_some()
    }

    /// Stops accepting requests; in-flight ones still complete.
    pub fn start_closing(&self) {
        self.closing.store(true, Ordering::Relaxed);
        lock(&self.streams).stop_accepting();
    }

    /// Waits until no request is in flight or the connection broke.
    pub async fn wait_drained(&self) {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight() == 0 || self.broken.get().is_some() {
                return;
            }
            notified.await;
        }
    }

    /// Sends one request and waits for its raw response.
    pub async fn roundtrip(&self, outgoing: Outgoing<'_>) -> Result<RawResponse, RequestError> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut streams = lock(&self.streams);
            let id = streams.allocate(tx);
            self.in_flight.store(streams.in_use(), Ordering::Relaxed);
            id
        };
        let id = id.map_err(|e| match e {
            AllocError::Exhausted => RequestError::StreamIdsExhausted,
            AllocError::Closed => self.refused(),
        })?;
        let mut pending = Pending {
            shared: self,
            id,
            rx,
            done: false,
        };
        match self.enqueue(id, outgoing) {
            Ok(true) => pending.wait().await,
            Ok(false) => {
                pending.cancel_unsent();
                Err(self.refused())
            }
            Err(e) => {
                pending.cancel_unsent();
                Err(RequestError::Encode(e))
            }
        }
    }

    /// Encodes the frame into the output buffer and wakes the writer;
    /// `Ok(false)` when the connection broke first and nothing was queued.
    fn enqueue(&self, stream: i16, outgoing: Outgoing<'_>) -> Result<bool, ProtocolError> {
        let compression = self.compression;
        let was_empty = match compression {
            None => {
                let mut out = lock(&self.out);
                if out.closed {
                    return Ok(false);
                }
                let was_empty = out.buf.is_empty();
                let start = out.buf.len();
                out.buf.extend_from_slice(&[0; HEADER_LEN]);
                let written = outgoing.write_body(&mut out.buf).and_then(|(op, fl)| {
                    let len = out.buf.len() - start - HEADER_LEN;
                    if len > MAX_BODY_LEN {
                        return Err(too_large(len));
                    }
                    put_header(&mut out.buf[start..start + HEADER_LEN], fl, stream, op, len);
                    Ok(())
                });
                if written.is_err() {
                    out.buf.truncate(start);
                }
                written?;
                was_empty
            }
            Some(compression) => {
                // Compress outside the lock; only the copy happens under it.
                let mut body = Vec::with_capacity(256);
                let (opcode, mut frame_flags) = outgoing.write_body(&mut body)?;
                let mut frame = Vec::with_capacity(HEADER_LEN + body.len() / 2 + 32);
                frame.extend_from_slice(&[0; HEADER_LEN]);
                if body.is_empty() {
                    // Nothing to compress (OPTIONS); a flagged empty body
                    // is not valid lz4 framing for every server.
                } else {
                    frame_flags |= flags::COMPRESSION;
                    compression.compress(&body, &mut frame);
                }
                let len = frame.len() - HEADER_LEN;
                if len > MAX_BODY_LEN {
                    return Err(too_large(len));
                }
                put_header(&mut frame[..HEADER_LEN], frame_flags, stream, opcode, len);
                let mut out = lock(&self.out);
                if out.closed {
                    return Ok(false);
                }
                let was_empty = out.buf.is_empty();
                out.buf.extend_from_slice(&frame);
                was_empty
            }
        };
        // A non-empty buffer means the writer is already due to take it.
        if was_empty {
            self.writer_wake.notify_one();
        }
        Ok(true)
    }

    /// Hands responses to their waiters; one lock for a whole read.
    pub fn complete(&self, frames: &mut Vec<(FrameHeader, Bytes)>) -> Result<(), BrokenReason> {
        let mut streams = lock(&self.streams);
        let mut result = Ok(());
        let mut ready = Vec::with_capacity(frames.len());
        for (header, body) in frames.drain(..) {
            match streams.complete(header.stream) {
                Completion::Waiter(waiter) => ready.push((waiter, header, body)),
                Completion::Orphan => {}
                Completion::Unknown => {
                    result = Err(BrokenReason::Protocol(format!(
                        "response on stream {} which has no request in flight",
                        header.stream
                    )));
                    break;
                }
            }
        }
        // Count first, so a woken caller never sees its own request as
        // still in flight; wake under the lock, which `Pending::drop`
        // relies on to tell a completed slot from its own.
        let in_use = streams.in_use();
        self.in_flight.store(in_use, Ordering::Relaxed);
        for (waiter, header, body) in ready {
            // The waiter may be gone this instant; nothing to do then.
            let _ = waiter.send(RawResponse {
                header,
                body,
                compression: self.compression,
                max_frame_len: self.max_frame_len,
            });
        }
        drop(streams);
        if in_use == 0 && self.closing.load(Ordering::Relaxed) {
            self.drained.notify_waiters();
        }
        result
    }

    /// Forwards a server event to the registered receiver, if any.
    pub fn deliver_event(&self, header: FrameHeader, body: &[u8]) -> Result<(), BrokenReason> {
        let (_, response) = decode_response(&header, body, self.compression)
            .map_err(|e| BrokenReason::Protocol(format!("bad EVENT frame: {e}")))?;
        let Response::Event(event) = response else {
            return Err(BrokenReason::Protocol(format!(
                "{:?} on the event stream",
                response.opcode()
            )));
        };
        if let Some(sender) = lock(&self.events).as_ref() {
            if let Err(mpsc::error::TrySendError::Full(event)) = sender.try_send(event) {
                tracing::warn!(peer = %self.peer_addr, ?event, "event receiver is full; event dropped");
            }
        }
        Ok(())
    }
}

/// One request awaiting its response. Dropped early (timeout, cancelled
/// caller), it leaves its stream id reserved until the late response.
struct Pending<'a> {
    shared: &'a Shared,
    id: i16,
    rx: oneshot::Receiver<RawResponse>,
    done: bool,
}

impl Pending<'_> {
    fn cancel_unsent(&mut self) {
        self.done = true;
        let mut streams = lock(&self.shared.streams);
        streams.cancel_unsent(self.id);
        self.shared
            .in_flight
            .store(streams.in_use(), Ordering::Relaxed);
    }

    async fn wait(mut self) -> Result<RawResponse, RequestError> {
        let result = (&mut self.rx).await;
        self.done = true;
        result.map_err(|_| {
            // The sender is dropped without a value only by `fail`.
            RequestError::ConnectionBroken(
                self.shared
                    .broken_reason()
                    .unwrap_or_else(|| Arc::new(BrokenReason::Dropped)),
            )
        })
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut streams = lock(&self.shared.streams);
        // Under the lock, an empty channel with a live sender means the
        // slot is still ours: the reader completes slots under this lock.
        if let Err(oneshot::error::TryRecvError::Empty) = self.rx.try_recv() {
            streams.abandon(self.id);
        }
    }
}
