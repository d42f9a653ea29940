//! Speculative execution from C, in the DataStax vocabulary: a constant
//! delay, a percentile of the session's request latency, or none; on the
//! config (the session's default), on an execution profile, and on one
//! statement or batch. Only idempotent statements and batches
//! (`sshard_statement_set_idempotent`) ever speculate. Precedence: the
//! statement's (or batch's) own policy, then its profile's, then the
//! config's.

use super::config::{millis_arg, sshard_config};
use super::handle::box_mut;
use super::profile::sshard_execution_profile;
use super::statement::{sshard_batch, sshard_statement};
use super::status::{sshard_status, Fail, FfiResult};
use crate::session::SpeculativeExecution;

fn checked(policy: SpeculativeExecution) -> FfiResult<SpeculativeExecution> {
    policy.validate().map_err(Fail::invalid)?;
    Ok(policy)
}

fn constant(delay_ms: u64, max_attempts: u32) -> FfiResult<SpeculativeExecution> {
    checked(SpeculativeExecution::Constant {
        delay: millis_arg(delay_ms, "speculative delay")?,
        max_attempts,
    })
}

fn percentile(percentile: f64, max_attempts: u32) -> FfiResult<SpeculativeExecution> {
    checked(SpeculativeExecution::Percentile {
        percentile,
        max_attempts,
    })
}

/// The session's default: an idempotent request not answered after
/// `delay_ms` milliseconds is sent to the next node of its plan (another
/// replica), and again after each further `delay_ms`, up to `max_attempts`
/// executions in total, the first included (1..=16; 1: no speculation).
/// The first answer wins; the other attempts are cancelled. Counted in
/// `sshard_metrics` (`speculative_executions`, `speculative_wins`).
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_constant_speculative_execution(
    config: *mut sshard_config,
    delay_ms: u64,
    max_attempts: u32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        config.session.default_speculative_execution = constant(delay_ms, max_attempts)?;
        Ok(())
    }
}

/// As `sshard_config_set_constant_speculative_execution`, with the delay
/// the session's request latency at `percentile` (above 0, below 100,
/// e.g. 99.0) so far; requests do not speculate until the session
/// completed 100 requests.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_percentile_speculative_execution(
    config: *mut sshard_config,
    percentile: f64,
    max_attempts: u32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        config.session.default_speculative_execution = self::percentile(percentile, max_attempts)?;
        Ok(())
    }
}

/// No speculative execution by default (the default).
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_no_speculative_execution(
    config: *mut sshard_config,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        config.session.default_speculative_execution = SpeculativeExecution::None;
        Ok(())
    }
}

/// The profile's speculative execution: a constant delay (as
/// `sshard_config_set_constant_speculative_execution`).
#[no_mangle]
pub unsafe extern "C" fn sshard_execution_profile_set_constant_speculative_execution(
    profile: *mut sshard_execution_profile,
    delay_ms: u64,
    max_attempts: u32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live profile (API contract).
        let profile = unsafe { box_mut(profile, "profile") }?;
        profile.profile.speculative_execution = Some(constant(delay_ms, max_attempts)?);
        Ok(())
    }
}

/// The profile's speculative execution: a latency percentile (as
/// `sshard_config_set_percentile_speculative_execution`).
#[no_mangle]
pub unsafe extern "C" fn sshard_execution_profile_set_percentile_speculative_execution(
    profile: *mut sshard_execution_profile,
    percentile: f64,
    max_attempts: u32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live profile (API contract).
        let profile = unsafe { box_mut(profile, "profile") }?;
        profile.profile.speculative_execution = Some(self::percentile(percentile, max_attempts)?);
        Ok(())
    }
}

/// The profile's requests never speculate, whatever the config says.
#[no_mangle]
pub unsafe extern "C" fn sshard_execution_profile_set_no_speculative_execution(
    profile: *mut sshard_execution_profile,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live profile (API contract).
        let profile = unsafe { box_mut(profile, "profile") }?;
        profile.profile.speculative_execution = Some(SpeculativeExecution::None);
        Ok(())
    }
}

/// This statement's speculative execution, instead of its profile's or
/// the config's: a constant delay (as
/// `sshard_config_set_constant_speculative_execution`). The statement
/// must be idempotent to speculate.
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_set_constant_speculative_execution(
    statement: *mut sshard_statement,
    delay_ms: u64,
    max_attempts: u32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { box_mut(statement, "statement") }?;
        statement.options_mut().speculative_execution = Some(constant(delay_ms, max_attempts)?);
        Ok(())
    }
}

/// This statement's speculative execution: a latency percentile (as
/// `sshard_config_set_percentile_speculative_execution`).
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_set_percentile_speculative_execution(
    statement: *mut sshard_statement,
    percentile: f64,
    max_attempts: u32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { box_mut(statement, "statement") }?;
        statement.options_mut().speculative_execution =
            Some(self::percentile(percentile, max_attempts)?);
        Ok(())
    }
}

/// This statement never speculates, whatever its profile or the config say.
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_set_no_speculative_execution(
    statement: *mut sshard_statement,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { box_mut(statement, "statement") }?;
        statement.options_mut().speculative_execution = Some(SpeculativeExecution::None);
        Ok(())
    }
}

/// This batch's speculative execution: a constant delay (as
/// `sshard_config_set_constant_speculative_execution`). The batch must be
/// idempotent to speculate.
#[no_mangle]
pub unsafe extern "C" fn sshard_batch_set_constant_speculative_execution(
    batch: *mut sshard_batch,
    delay_ms: u64,
    max_attempts: u32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live batch (API contract).
        let batch = unsafe { box_mut(batch, "batch") }?;
        batch.options_mut().speculative_execution = Some(constant(delay_ms, max_attempts)?);
        Ok(())
    }
}

/// This batch's speculative execution: a latency percentile (as
/// `sshard_config_set_percentile_speculative_execution`).
#[no_mangle]
pub unsafe extern "C" fn sshard_batch_set_percentile_speculative_execution(
    batch: *mut sshard_batch,
    percentile: f64,
    max_attempts: u32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live batch (API contract).
        let batch = unsafe { box_mut(batch, "batch") }?;
        batch.options_mut().speculative_execution =
            Some(self::percentile(percentile, max_attempts)?);
        Ok(())
    }
}

/// This batch never speculates, whatever its profile or the config say.
#[no_mangle]
pub unsafe extern "C" fn sshard_batch_set_no_speculative_execution(
    batch: *mut sshard_batch,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live batch (API contract).
        let batch = unsafe { box_mut(batch, "batch") }?;
        batch.options_mut().speculative_execution = Some(SpeculativeExecution::None);
        Ok(())
    }
}
