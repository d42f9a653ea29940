//! The CQL binary protocol v4: frames, messages, values and compression.
//!
//! Pure code: bytes in, typed values out, no I/O. The emulator and the
//! driver share it, so the real drivers check it from both sides.

pub mod bind;
pub mod compression;
pub mod consistency;
pub mod error;
pub mod frame;
pub mod request;
pub mod response;
pub mod tablets_payload;
pub mod types;
pub mod value;
pub mod wire;

pub use bind::{BindError, BindValue};
pub use compression::Compression;
pub use consistency::Consistency;
pub use error::ProtocolError;
pub use frame::{FrameHeader, Opcode, RequestExtensions, ResponseExtensions};
pub use request::{QueryParameters, Request, Value};
pub use response::{ColumnSpec, ErrorBody, Response, ResultBody};
pub use types::ColumnType;
pub use value::CqlValue;
