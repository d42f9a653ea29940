//! The three tasks behind a connection: the writer (batches every queued
//! frame into one `write`), the reader (splits frames out of a large buffer
//! and wakes their waiters) and the heartbeat (notices a silent peer).
//!
//! Each task ends when the connection breaks; any of them may break it.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::error::{BrokenReason, RequestError};
use super::shared::{lock, Outgoing, Shared};
use crate::protocol::frame::{FrameHeader, EVENT_STREAM, HEADER_LEN, RESPONSE_BIT, VERSION};
use crate::protocol::{Request, RequestExtensions};

/// Bytes the reader asks the kernel for at once: it starts small (an idle
/// connection holds little) and doubles while reads fill the buffer.
const MIN_READ_CHUNK: usize = 4 * 1024;
const MAX_READ_CHUNK: usize = 64 * 1024;
/// A write batch that grew past this is not kept for reuse.
const MAX_RETAINED_BATCH: usize = 4 * 1024 * 1024;

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // Err means the sender is gone, which also means stop.
    let _ = stop.wait_for(|s| *s).await;
}

/// Takes whatever callers encoded since the last write and writes it with
/// as few syscalls as the socket allows.
pub(crate) async fn writer_task(shared: Arc<Shared>, mut socket: impl AsyncWrite + Unpin) {
    let mut stop = shared.stopped();
    // Grows to the largest batch written (and the submitters' buffer, which
    // it is swapped with, too); an idle connection holds none.
    let mut batch = Vec::new();
    'outer: loop {
        tokio::select! {
            _ = shared.writer_wake.notified() => {}
            _ = stopped(&mut stop) => break,
        }
        // With other requests in flight, give submitters running right now
        // a chance to join this batch; alone, write at once (a yield costs
        // an I/O driver poll before the write: latency at low load).
        if shared.in_flight() > 1 {
            tokio::task::yield_now().await;
        }
        loop {
            {
                let mut out = lock(&shared.out);
                if out.closed {
                    break 'outer;
                }
                std::mem::swap(&mut out.buf, &mut batch);
            }
            if batch.is_empty() {
                break;
            }
            let written = tokio::select! {
                r = socket.write_all(&batch) => r,
                _ = stopped(&mut stop) => break 'outer,
            };
            if let Err(e) = written {
                shared.fail(BrokenReason::io(&e));
                break 'outer;
            }
            batch.clear();
            if batch.capacity() > MAX_RETAINED_BATCH {
                batch = Vec::new();
            }
        }
    }
    // Best effort FIN; the socket closes when both halves are dropped.
    let _ = tokio::time::timeout(Duration::from_millis(100), socket.shutdown()).await;
}

/// Reads large chunks, splits complete frames off without copying, and
/// completes their waiters. Any malformed frame breaks the connection.
pub(crate) async fn reader_task(shared: Arc<Shared>, mut socket: impl AsyncRead + Unpin) {
    let mut stop = shared.stopped();
    let mut chunk = MIN_READ_CHUNK;
    let mut buf = BytesMut::new();
    let mut frames = Vec::with_capacity(64);
    shared.touch();
    loop {
        let needed = match split_frames(&shared, &mut buf, &mut frames) {
            Ok(needed) => needed,
            Err(reason) => return shared.fail(reason),
        };
        if !frames.is_empty() {
            if let Err(reason) = shared.complete(&mut frames) {
                return shared.fail(reason);
            }
        }
        buf.reserve(needed.max(chunk));
        let room = buf.capacity() - buf.len();
        let read = tokio::select! {
            r = socket.read_buf(&mut buf) => r,
            _ = stopped(&mut stop) => return,
        };
        match read {
            Ok(0) => return shared.fail(BrokenReason::Eof),
            Ok(n) => {
                if n == room {
                    chunk = (chunk * 2).min(MAX_READ_CHUNK);
                }
                shared.touch();
            }
            Err(e) => return shared.fail(BrokenReason::io(&e)),
        }
    }
}

/// Moves every complete response frame out of `buf` into `frames` (events
/// are delivered directly). Returns how many more bytes the next frame
/// needs at least.
fn split_frames(
    shared: &Shared,
    buf: &mut BytesMut,
    frames: &mut Vec<(FrameHeader, bytes::Bytes)>,
) -> Result<usize, BrokenReason> {
    loop {
        if buf.len() < HEADER_LEN {
            return Ok(HEADER_LEN - buf.len());
        }
        let mut head = [0u8; HEADER_LEN];
        head.copy_from_slice(&buf[..HEADER_LEN]);
        let header =
            FrameHeader::parse(&head).map_err(|e| BrokenReason::Protocol(e.to_string()))?;
        if header.version != (VERSION | RESPONSE_BIT) {
            return Err(BrokenReason::Protocol(format!(
                "frame with version byte 0x{:02x}",
                header.version
            )));
        }
        if header.body_len > shared.max_frame_len {
            return Err(BrokenReason::Protocol(frame_too_large(
                header.body_len,
                shared.max_frame_len,
            )));
        }
        let total = HEADER_LEN + header.body_len;
        if buf.len() < total {
            return Ok(total - buf.len());
        }
        let body = buf.split_to(total).split_off(HEADER_LEN).freeze();
        match header.stream {
            EVENT_STREAM => shared.deliver_event(header, &body)?,
            id if id < 0 => {
                return Err(BrokenReason::Protocol(format!(
                    "frame on reserved stream {id}"
                )))
            }
            _ => frames.push((header, body)),
        }
    }
}

/// Why a frame over the configured limit is refused.
pub(crate) fn frame_too_large(body_len: usize, max_frame_len: usize) -> String {
    format!("frame body of {body_len} bytes, over the {max_frame_len}-byte frame limit")
}

/// Sends OPTIONS after `interval` without any byte read; breaks the
/// connection if it is not answered within `timeout`.
pub(crate) async fn heartbeat_task(shared: Arc<Shared>, interval: Duration, timeout: Duration) {
    let mut stop = shared.stopped();
    let options = Request::Options;
    let extensions = RequestExtensions::default();
    loop {
        let idle = shared.idle_for();
        if idle < interval {
            tokio::select! {
                _ = tokio::time::sleep(interval - idle) => continue,
                _ = stopped(&mut stop) => return,
            }
        }
        let probe = tokio::time::timeout(
            timeout,
            shared.roundtrip(Outgoing::Request(&options, &extensions)),
        );
        let outcome = tokio::select! {
            r = probe => r,
            _ = stopped(&mut stop) => return,
        };
        match outcome {
            Ok(Ok(_)) => shared.touch(),
            Ok(Err(RequestError::StreamIdsExhausted)) => {
                // Every id is taken; if nothing at all arrives for another
                // `timeout`, the peer is not answering.
                tokio::select! {
                    _ = tokio::time::sleep(timeout) => {}
                    _ = stopped(&mut stop) => return,
                }
                if shared.idle_for() >= timeout {
                    return shared.fail(BrokenReason::HeartbeatTimeout(timeout));
                }
            }
            // Broken or closing: nothing left to watch.
            Ok(Err(_)) => return,
            Err(_) => return shared.fail(BrokenReason::HeartbeatTimeout(timeout)),
        }
    }
}
