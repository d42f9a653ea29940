//! `sshard_execution_profile`: a named set of request options (the DataStax
//! `CassExecutionProfile`): consistency, serial consistency, request
//! timeout, retry policy, speculative execution (`speculation.rs`) and
//! load-balancing preferences. Registered on a config by name
//! (`sshard_config_set_execution_profile`, which copies it) and chosen per
//! statement or batch by that name.
//!
//! Precedence, option by option: the statement's (or batch's) own setting,
//! then its profile's, then the config's. A profile that sets any
//! load-balancing preference has its own (those it does not set at their
//! defaults: no local datacenter or rack, failover allowed); one that sets
//! none follows the config's.
//!
//! A statement does not know the session it will run on, so a name the
//! session's config lacks fails at execute: the future's status is
//! `SSHARD_STATUS_NAME_NOT_FOUND`. Names are resolved to a number when a
//! statement is given one, so requests do not look names up.

use std::ffi::c_char;

use super::config::{millis_arg, sshard_config};
use super::enums::{
    consistency, retry_policy, serial_consistency, sshard_consistency, sshard_retry_policy,
};
use super::handle::{box_free, box_into_raw, box_mut, handle_ref, out_arg, str_arg, Generational};
use super::statement::{sshard_batch, sshard_statement};
use super::status::{sshard_status, Fail, FfiResult};
use crate::runtime;
use crate::session::{ExecutionProfile, ProfileName};

/// Longest profile name accepted, in bytes.
pub const SSHARD_MAX_PROFILE_NAME: usize = 256;

/// A named set of request options (consistency, serial consistency,
/// request timeout, retry policy, speculative execution, load-balancing
/// preferences). Caller-owned, not thread-safe; free with
/// `sshard_execution_profile_free`. Precedence, option by option: the
/// statement's (or batch's) own setting, then its profile's, then the
/// config's.
pub struct sshard_execution_profile {
    generation: u64,
    pub(crate) profile: ExecutionProfile,
}

impl Generational for sshard_execution_profile {
    fn generation(&self) -> u64 {
        self.generation
    }
}

/// A profile name from C: empty means none.
///
/// # Safety
/// `(name, name_len)` is readable memory, as for `str_arg`.
unsafe fn name_arg(name: *const c_char, name_len: usize) -> FfiResult<Option<ProfileName>> {
    // SAFETY: forwarded contract.
    let name = unsafe { str_arg(name, name_len, "name") }?;
    if name.len() > SSHARD_MAX_PROFILE_NAME {
        return Err(Fail::invalid(format!(
            "profile name of {} bytes (at most {SSHARD_MAX_PROFILE_NAME})",
            name.len()
        )));
    }
    Ok((!name.is_empty()).then(|| ProfileName::new(name)))
}

/// Makes an empty profile: every option unset (the config's apply). Free
/// it with `sshard_execution_profile_free`.
#[no_mangle]
pub unsafe extern "C" fn sshard_execution_profile_new(
    profile: *mut *mut sshard_execution_profile,
) -> sshard_status {
    ffi_boundary! {
        let out = out_arg(profile, "profile")?;
        out.write(box_into_raw(sshard_execution_profile {
            generation: runtime::generation(),
            profile: ExecutionProfile::default(),
        }));
        Ok(())
    }
}

/// Frees a profile (NULL: no-op). Configs it was registered on keep their
/// copies.
#[no_mangle]
pub unsafe extern "C" fn sshard_execution_profile_free(
    profile: *mut sshard_execution_profile,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a profile the caller gives up (API contract).
        unsafe { box_free(profile) }
    }
}

/// Consistency level of the profile's requests.
#[no_mangle]
pub unsafe extern "C" fn sshard_execution_profile_set_consistency(
    profile: *mut sshard_execution_profile,
    level: sshard_consistency,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live profile (API contract).
        let profile = unsafe { box_mut(profile, "profile") }?;
        profile.profile.consistency = Some(consistency(level)?);
        Ok(())
    }
}

/// Serial consistency of the profile's conditional requests (SERIAL or
/// LOCAL_SERIAL).
#[no_mangle]
pub unsafe extern "C" fn sshard_execution_profile_set_serial_consistency(
    profile: *mut sshard_execution_profile,
    level: sshard_consistency,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live profile (API contract).
        let profile = unsafe { box_mut(profile, "profile") }?;
        profile.profile.serial_consistency = Some(serial_consistency(level)?);
        Ok(())
    }
}

/// End-to-end timeout of the profile's requests in milliseconds (0: the
/// config's).
#[no_mangle]
pub unsafe extern "C" fn sshard_execution_profile_set_request_timeout_ms(
    profile: *mut sshard_execution_profile,
    timeout_ms: u64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live profile (API contract).
        let profile = unsafe { box_mut(profile, "profile") }?;
        let timeout = millis_arg(timeout_ms, "request timeout")?;
        profile.profile.request_timeout = (timeout_ms > 0).then_some(timeout);
        Ok(())
    }
}

/// Retry policy of the profile's requests (`SSHARD_RETRY_POLICY_*`).
#[no_mangle]
pub unsafe extern "C" fn sshard_execution_profile_set_retry_policy(
    profile: *mut sshard_execution_profile,
    policy: sshard_retry_policy,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live profile (API contract).
        let profile = unsafe { box_mut(profile, "profile") }?;
        profile.profile.retry_policy = Some(retry_policy(policy)?);
        Ok(())
    }
}

/// The profile's requests prefer nodes of this datacenter (empty: none).
#[no_mangle]
pub unsafe extern "C" fn sshard_execution_profile_set_local_dc(
    profile: *mut sshard_execution_profile,
    dc: *const c_char,
    dc_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live profile (API contract).
        let profile = unsafe { box_mut(profile, "profile") }?;
        // SAFETY: `(dc, dc_len)` is readable memory (API contract).
        let dc = unsafe { str_arg(dc, dc_len, "dc") }?;
        profile.profile.load_balancing_mut().local_dc = (!dc.is_empty()).then(|| dc.to_owned());
        Ok(())
    }
}

/// The profile's requests prefer nodes of this rack within the local
/// datacenter (empty: none).
#[no_mangle]
pub unsafe extern "C" fn sshard_execution_profile_set_local_rack(
    profile: *mut sshard_execution_profile,
    rack: *const c_char,
    rack_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live profile (API contract).
        let profile = unsafe { box_mut(profile, "profile") }?;
        // SAFETY: `(rack, rack_len)` is readable memory (API contract).
        let rack = unsafe { str_arg(rack, rack_len, "rack") }?;
        profile.profile.load_balancing_mut().local_rack =
            (!rack.is_empty()).then(|| rack.to_owned());
        Ok(())
    }
}

/// Whether the profile's requests may go to other datacenters when the
/// local one cannot serve them.
#[no_mangle]
pub unsafe extern "C" fn sshard_execution_profile_set_dc_failover(
    profile: *mut sshard_execution_profile,
    enabled: bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live profile (API contract).
        let profile = unsafe { box_mut(profile, "profile") }?;
        profile.profile.load_balancing_mut().permit_dc_failover = enabled;
        Ok(())
    }
}

/// Registers a copy of `profile` under `name` (1 to
/// `SSHARD_MAX_PROFILE_NAME` bytes, case-sensitive); a name registered
/// again is replaced. Statements and batches choose it with
/// `sshard_statement_set_execution_profile` /
/// `sshard_batch_set_execution_profile`. Each option a request does not
/// set itself comes from its profile, else from the config; a profile that
/// sets any of local DC, local rack or DC failover has load-balancing
/// preferences of its own (the others at their defaults: none, none,
/// failover allowed), otherwise the config's apply.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_execution_profile(
    config: *mut sshard_config,
    name: *const c_char,
    name_len: usize,
    profile: *const sshard_execution_profile,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        // SAFETY: NULL or a live profile (API contract).
        let profile = unsafe { handle_ref(profile, "profile") }?;
        // SAFETY: `(name, name_len)` is readable memory (API contract).
        let Some(name) = unsafe { name_arg(name, name_len) }? else {
            return Err(Fail::invalid("empty profile name"));
        };
        let name = name.to_string();
        let profiles = &mut config.session.execution_profiles;
        profiles.retain(|(n, _)| *n != name);
        profiles.push((name, profile.profile.clone()));
        Ok(())
    }
}

/// Runs the statement with the options of the profile named `name` where
/// it sets none itself (empty: no profile). The name is checked when the
/// statement executes: one the session's config lacks fails the request
/// with `SSHARD_STATUS_NAME_NOT_FOUND`.
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_set_execution_profile(
    statement: *mut sshard_statement,
    name: *const c_char,
    name_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { box_mut(statement, "statement") }?;
        // SAFETY: `(name, name_len)` is readable memory (API contract).
        statement.options_mut().execution_profile = unsafe { name_arg(name, name_len) }?;
        Ok(())
    }
}

/// As `sshard_statement_set_execution_profile`, for a batch.
#[no_mangle]
pub unsafe extern "C" fn sshard_batch_set_execution_profile(
    batch: *mut sshard_batch,
    name: *const c_char,
    name_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live batch (API contract).
        let batch = unsafe { box_mut(batch, "batch") }?;
        // SAFETY: `(name, name_len)` is readable memory (API contract).
        batch.options_mut().execution_profile = unsafe { name_arg(name, name_len) }?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::config::{sshard_config_free, sshard_config_new};
    use crate::ffi::speculation::*;
    use crate::ffi::status::*;
    use crate::protocol::Consistency;
    use crate::session::SpeculativeExecution;
    use std::ptr::{null, null_mut};
    use std::time::Duration;

    fn s(text: &str) -> (*const c_char, usize) {
        (text.as_ptr().cast(), text.len())
    }

    #[test]
    fn profiles_are_built_validated_and_copied_into_the_config() {
        // SAFETY: handles are live until freed at the end; strings are live.
        unsafe {
            let mut p = null_mut();
            assert_eq!(sshard_execution_profile_new(&mut p), 0);
            assert_eq!(sshard_execution_profile_set_consistency(p, 4), 0);
            assert_eq!(
                sshard_execution_profile_set_consistency(p, 99),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(
                sshard_execution_profile_set_serial_consistency(p, 1),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(sshard_execution_profile_set_serial_consistency(p, 9), 0);
            assert_eq!(sshard_execution_profile_set_request_timeout_ms(p, 250), 0);
            assert_eq!(
                sshard_execution_profile_set_request_timeout_ms(p, u64::MAX),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(sshard_execution_profile_set_retry_policy(p, 1), 0);
            assert_eq!(
                sshard_execution_profile_set_retry_policy(p, 9),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            let (dc, n) = s("dc2");
            assert_eq!(sshard_execution_profile_set_local_dc(p, dc, n), 0);
            assert_eq!(
                sshard_execution_profile_set_constant_speculative_execution(p, 20, 3),
                0
            );
            assert_eq!(
                sshard_execution_profile_set_constant_speculative_execution(p, 20, 0),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(
                sshard_execution_profile_set_percentile_speculative_execution(p, 100.0, 2),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            let profile = &(*p).profile;
            assert_eq!(profile.consistency, Some(Consistency::Quorum));
            assert_eq!(profile.serial_consistency, Some(Consistency::LocalSerial));
            assert_eq!(profile.request_timeout, Some(Duration::from_millis(250)));
            assert_eq!(
                profile.speculative_execution,
                Some(SpeculativeExecution::Constant {
                    delay: Duration::from_millis(20),
                    max_attempts: 3
                })
            );
            let lb = profile.load_balancing.as_ref().unwrap();
            assert_eq!(lb.local_dc.as_deref(), Some("dc2"));
            assert!(lb.permit_dc_failover);

            let mut c = null_mut();
            assert_eq!(sshard_config_new(&mut c), 0);
            let (name, n) = s("olap");
            assert_eq!(sshard_config_set_execution_profile(c, name, n, p), 0);
            assert_eq!(sshard_execution_profile_set_consistency(p, 1), 0);
            // Registered again under the same name: replaced.
            assert_eq!(sshard_config_set_execution_profile(c, name, n, p), 0);
            let profiles = &(*c).session.execution_profiles;
            assert_eq!(profiles.len(), 1);
            assert_eq!(profiles[0].1.consistency, Some(Consistency::One));
            assert_eq!(
                sshard_config_set_execution_profile(c, null(), 0, p),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            let long = "x".repeat(SSHARD_MAX_PROFILE_NAME + 1);
            let (l, ln) = s(&long);
            assert_eq!(
                sshard_config_set_execution_profile(c, l, ln, p),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(
                sshard_config_set_execution_profile(c, name, n, null()),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_config_set_percentile_speculative_execution(c, 99.0, 2),
                0
            );
            assert_eq!(
                sshard_config_set_percentile_speculative_execution(c, f64::NAN, 2),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(
                (*c).session.default_speculative_execution,
                SpeculativeExecution::Percentile {
                    percentile: 99.0,
                    max_attempts: 2
                }
            );
            assert_eq!(sshard_config_set_no_speculative_execution(c), 0);
            assert_eq!(
                (*c).session.default_speculative_execution,
                SpeculativeExecution::None
            );
            assert_eq!(sshard_config_free(c), 0);
            assert_eq!(sshard_execution_profile_free(p), 0);
            assert_eq!(sshard_execution_profile_free(null_mut()), 0);
        }
    }

    #[test]
    fn null_handles_are_refused() {
        let (p, n) = s("x");
        // SAFETY: NULL handles and live strings only.
        unsafe {
            let results = [
                sshard_execution_profile_new(null_mut()),
                sshard_execution_profile_set_consistency(null_mut(), 1),
                sshard_execution_profile_set_serial_consistency(null_mut(), 8),
                sshard_execution_profile_set_request_timeout_ms(null_mut(), 1),
                sshard_execution_profile_set_retry_policy(null_mut(), 0),
                sshard_execution_profile_set_local_dc(null_mut(), p, n),
                sshard_execution_profile_set_local_rack(null_mut(), p, n),
                sshard_execution_profile_set_dc_failover(null_mut(), true),
                sshard_execution_profile_set_constant_speculative_execution(null_mut(), 1, 2),
                sshard_execution_profile_set_percentile_speculative_execution(null_mut(), 9.0, 2),
                sshard_execution_profile_set_no_speculative_execution(null_mut()),
                sshard_config_set_execution_profile(null_mut(), p, n, null()),
                sshard_config_set_constant_speculative_execution(null_mut(), 1, 2),
                sshard_config_set_percentile_speculative_execution(null_mut(), 9.0, 2),
                sshard_config_set_no_speculative_execution(null_mut()),
                sshard_statement_set_execution_profile(null_mut(), p, n),
                sshard_statement_set_constant_speculative_execution(null_mut(), 1, 2),
                sshard_statement_set_percentile_speculative_execution(null_mut(), 9.0, 2),
                sshard_statement_set_no_speculative_execution(null_mut()),
                sshard_batch_set_execution_profile(null_mut(), p, n),
                sshard_batch_set_constant_speculative_execution(null_mut(), 1, 2),
                sshard_batch_set_percentile_speculative_execution(null_mut(), 9.0, 2),
                sshard_batch_set_no_speculative_execution(null_mut()),
            ];
            for (i, r) in results.iter().enumerate() {
                assert_eq!(*r, SSHARD_STATUS_NULL_ARGUMENT, "call {i}");
            }
        }
    }
}
