//! Library and ABI versions.

use std::ffi::c_char;

/// Major version of the library (`Cargo.toml`).
pub const SSHARD_VERSION_MAJOR: u32 = 0;
/// Minor version of the library.
pub const SSHARD_VERSION_MINOR: u32 = 1;
/// Patch version of the library.
pub const SSHARD_VERSION_PATCH: u32 = 0;
/// Version of the C ABI this header describes; compare with
/// `sshard_abi_version()` at run time.
pub const SSHARD_ABI_VERSION: u32 = 1;

/// The library version as a static NUL-terminated string (`"0.1.0"`).
#[no_mangle]
pub extern "C" fn sshard_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The C ABI version the library implements (`SSHARD_ABI_VERSION`).
#[no_mangle]
pub extern "C" fn sshard_abi_version() -> u32 {
    SSHARD_ABI_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_match_the_manifest() {
        assert_eq!(
            SSHARD_VERSION_MAJOR.to_string(),
            env!("CARGO_PKG_VERSION_MAJOR")
        );
        assert_eq!(
            SSHARD_VERSION_MINOR.to_string(),
            env!("CARGO_PKG_VERSION_MINOR")
        );
        assert_eq!(
            SSHARD_VERSION_PATCH.to_string(),
            env!("CARGO_PKG_VERSION_PATCH")
        );
        // SAFETY: a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(sshard_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
        assert_eq!(sshard_abi_version(), SSHARD_ABI_VERSION);
    }
}
