//! Host policies of `sshard_config`: which nodes a session uses (allow and
//! deny lists of addresses and datacenters, the DataStax
//! whitelist/blacklist filtering) and how it reaches them (address
//! translation: a static map, or a C callback).

use std::ffi::{c_char, c_void};
use std::net::SocketAddr;
use std::sync::Arc;

use super::config::sshard_config;
use super::handle::{box_mut, str_arg};
use super::status::{sshard_status, Fail, FfiResult};
use crate::cluster::host_policy::parse_reachable_address;
use crate::cluster::{AddressTranslator, HostFilter};

/// Most bytes a translator callback may write (an IPv6 address with a
/// port fits with room to spare).
pub const SSHARD_ADDRESS_MAX_LEN: usize = 64;

/// Translates the address a node advertises (`advertised`, an IP address
/// as text, not NUL-terminated, and `port`, the cluster's CQL port) into
/// the one to connect to: writes at most `reachable_capacity`
/// (`SSHARD_ADDRESS_MAX_LEN`) bytes of `ip`, `ip:port` or `[v6]:port`
/// text (no NUL needed) to `reachable`, their count to `reachable_len`,
/// and returns true; false keeps the advertised address (then the static
/// map of `sshard_config_add_address_translation` applies).
///
/// Threading: called from the session's runtime threads (the thread that
/// reads the cluster topology and its events), one call at a time per
/// session, for every peer at every topology refresh and for every status
/// event; also while `sshard_session_connect` runs. It must be
/// thread-safe with respect to the caller's other threads, must return
/// quickly and must not block (no I/O, no locks held by threads waiting on
/// the session, no calls into this library). `data` must stay valid until
/// every session made with this config is freed. Never pass a LuaJIT or
/// Python callback: use the static map instead.
pub type sshard_address_translator = Option<
    unsafe extern "C" fn(
        data: *mut c_void,
        advertised: *const c_char,
        advertised_len: usize,
        port: u16,
        reachable: *mut c_char,
        reachable_capacity: usize,
        reachable_len: *mut usize,
    ) -> bool,
>;

type TranslatorFn = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    usize,
    u16,
    *mut c_char,
    usize,
    *mut usize,
) -> bool;

/// A C translator callback with its user data.
struct CallbackTranslator {
    callback: TranslatorFn,
    data: *mut c_void,
}

impl std::fmt::Debug for CallbackTranslator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallbackTranslator")
    }
}

// SAFETY: the callback and its data are the caller's, who promises (see
// `sshard_address_translator`) that they may be used from any thread while
// a session made with them lives; the library only passes `data` back.
unsafe impl Send for CallbackTranslator {}
// SAFETY: as above; the library never reads or writes through `data`.
unsafe impl Sync for CallbackTranslator {}

impl AddressTranslator for CallbackTranslator {
    fn translate(&self, advertised: SocketAddr) -> Option<SocketAddr> {
        let ip = advertised.ip().to_string();
        let mut out = [0u8; SSHARD_ADDRESS_MAX_LEN];
        let mut len = 0usize;
        // SAFETY: `ip` and `out` are live for the call, `out` has the
        // capacity passed; the callback is the caller's (contract above).
        let translated = unsafe {
            (self.callback)(
                self.data,
                ip.as_ptr().cast(),
                ip.len(),
                advertised.port(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut len,
            )
        };
        if !translated {
            return None;
        }
        let text = out
            .get(..len)
            .and_then(|bytes| std::str::from_utf8(bytes).ok());
        match text.and_then(|t| parse_reachable_address(t, advertised.port())) {
            Some(to) => Some(to),
            None => {
                tracing::warn!(%advertised, len, "address translator wrote no usable address; keeping the advertised one");
                None
            }
        }
    }
}

/// Which of the four filter lists a call changes.
enum FilterList {
    AllowHosts,
    DenyHosts,
    AllowDcs,
    DenyDcs,
}

/// Appends the comma-separated entries of `(list, len)` to one list; an
/// empty (or blank) list clears it. A bad entry changes nothing.
unsafe fn extend_filter(
    config: *mut sshard_config,
    list: *const c_char,
    list_len: usize,
    which: FilterList,
) -> FfiResult {
    // SAFETY: NULL or a live config (API contract).
    let config = unsafe { box_mut(config, "config") }?;
    // SAFETY: `(list, list_len)` is readable memory (API contract).
    let text = unsafe { str_arg(list, list_len, "list") }?;
    let filter = &mut config.session.host_filter;
    let clear = text.trim().is_empty();
    match which {
        FilterList::AllowHosts | FilterList::DenyHosts => {
            let hosts = HostFilter::parse_hosts(text).map_err(Fail::invalid)?;
            let target = match which {
                FilterList::AllowHosts => &mut filter.allow_hosts,
                _ => &mut filter.deny_hosts,
            };
            if clear {
                target.clear();
            }
            for host in hosts {
                if !target.contains(&host) {
                    target.push(host);
                }
            }
        }
        FilterList::AllowDcs | FilterList::DenyDcs => {
            let target = match which {
                FilterList::AllowDcs => &mut filter.allow_dcs,
                _ => &mut filter.deny_dcs,
            };
            if clear {
                target.clear();
            }
            for dc in HostFilter::parse_dcs(text) {
                if !target.contains(&dc) {
                    target.push(dc);
                }
            }
        }
    }
    Ok(())
}

/// Use only these nodes (DataStax `cass_cluster_set_whitelist_filtering`):
/// a comma-separated list of IP addresses, added to those of earlier calls;
/// an empty list clears it (no restriction). Addresses are the ones the
/// session connects to (after address translation). Other nodes get no
/// connection and no request; a contact point left out serves only to
/// discover the cluster when no other one answers. An entry that is not an
/// IP address: `SSHARD_STATUS_INVALID_ARGUMENT`, the list unchanged.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_host_allow_list(
    config: *mut sshard_config,
    hosts: *const c_char,
    hosts_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: the caller's pointers, checked there (API contract).
        unsafe { extend_filter(config, hosts, hosts_len, FilterList::AllowHosts) }
    }
}

/// Never use these nodes (DataStax `cass_cluster_set_blacklist_filtering`):
/// a comma-separated list of IP addresses, added to those of earlier calls;
/// an empty list clears it. As `sshard_config_set_host_allow_list`
/// otherwise; a node in both lists is not used.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_host_deny_list(
    config: *mut sshard_config,
    hosts: *const c_char,
    hosts_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: the caller's pointers, checked there (API contract).
        unsafe { extend_filter(config, hosts, hosts_len, FilterList::DenyHosts) }
    }
}

/// Use only nodes of these datacenters (DataStax
/// `cass_cluster_set_whitelist_dc_filtering`): a comma-separated list of
/// names, added to those of earlier calls; an empty list clears it. When
/// the filter excludes every node, `sshard_session_connect` fails with
/// `SSHARD_STATUS_NO_HOSTS` and a message saying so.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_dc_allow_list(
    config: *mut sshard_config,
    dcs: *const c_char,
    dcs_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: the caller's pointers, checked there (API contract).
        unsafe { extend_filter(config, dcs, dcs_len, FilterList::AllowDcs) }
    }
}

/// Never use nodes of these datacenters (DataStax
/// `cass_cluster_set_blacklist_dc_filtering`): a comma-separated list of
/// names, added to those of earlier calls; an empty list clears it.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_dc_deny_list(
    config: *mut sshard_config,
    dcs: *const c_char,
    dcs_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: the caller's pointers, checked there (API contract).
        unsafe { extend_filter(config, dcs, dcs_len, FilterList::DenyDcs) }
    }
}

/// Connect to `reachable` when a node advertises `advertised` (in
/// `system.local`, `system.peers` and events; for clusters behind NAT or
/// in containers). `advertised` is an IP address; `reachable` an IP
/// address (the cluster's port is kept) or `ip:port` / `[v6]:port`. A
/// second entry for one advertised address replaces the first. The
/// shard-aware port the node reports is used on the reachable IP address.
/// Contact points are used as given; the node reached through a contact
/// point keeps that address. Bad addresses:
/// `SSHARD_STATUS_INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_add_address_translation(
    config: *mut sshard_config,
    advertised: *const c_char,
    advertised_len: usize,
    reachable: *const c_char,
    reachable_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        // SAFETY: both `(pointer, length)` pairs are readable memory (API contract).
        let (advertised, reachable) = unsafe {
            (
                str_arg(advertised, advertised_len, "advertised")?,
                str_arg(reachable, reachable_len, "reachable")?,
            )
        };
        config
            .session
            .address_map
            .insert(advertised, reachable)
            .map_err(Fail::invalid)
    }
}

/// A C callback that translates advertised addresses (see
/// `sshard_address_translator` for its contract and threading rules),
/// asked before the static map; NULL `translator` removes it.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_address_translator(
    config: *mut sshard_config,
    translator: sshard_address_translator,
    data: *mut c_void,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        config.session.address_translator = translator.map(|callback| {
            Arc::new(CallbackTranslator { callback, data }) as Arc<dyn AddressTranslator>
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::config::{sshard_config_free, sshard_config_new};
    use crate::ffi::status::*;
    use std::ptr::{null, null_mut};

    fn s(text: &str) -> (*const c_char, usize) {
        (text.as_ptr().cast(), text.len())
    }

    unsafe extern "C" fn to_loopback(
        data: *mut c_void,
        advertised: *const c_char,
        advertised_len: usize,
        _port: u16,
        out: *mut c_char,
        capacity: usize,
        len: *mut usize,
    ) -> bool {
        // SAFETY: the library passes live buffers of these lengths.
        unsafe {
            *data.cast::<u32>() += 1;
            let text = std::slice::from_raw_parts(advertised.cast::<u8>(), advertised_len);
            if text != b"10.0.0.1" {
                return false;
            }
            let answer: &[u8] = if capacity == 0 {
                b""
            } else {
                b"127.0.0.9:7000"
            };
            std::ptr::copy_nonoverlapping(answer.as_ptr(), out.cast::<u8>(), answer.len());
            *len = answer.len();
        }
        true
    }

    unsafe extern "C" fn garbage(
        _: *mut c_void,
        _: *const c_char,
        _: usize,
        _: u16,
        _: *mut c_char,
        capacity: usize,
        len: *mut usize,
    ) -> bool {
        // SAFETY: `len` is live; claiming more than the capacity is the bug tested.
        unsafe { *len = capacity + 10 };
        true
    }

    #[test]
    fn lists_append_clear_and_refuse_bad_entries() {
        // SAFETY: the config is valid until freed; strings are live.
        unsafe {
            let mut c = null_mut();
            assert_eq!(sshard_config_new(&mut c), 0);
            let (p, n) = s("10.0.0.1, 10.0.0.2");
            assert_eq!(sshard_config_set_host_deny_list(c, p, n), 0);
            let (p, n) = s("10.0.0.2,::1");
            assert_eq!(sshard_config_set_host_deny_list(c, p, n), 0);
            assert_eq!((*c).session.host_filter.deny_hosts.len(), 3);
            let (p, n) = s("10.0.0.3,not-an-ip");
            assert_eq!(
                sshard_config_set_host_deny_list(c, p, n),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            assert_eq!((*c).session.host_filter.deny_hosts.len(), 3);
            let (p, n) = s(" ");
            assert_eq!(sshard_config_set_host_deny_list(c, p, n), 0);
            assert!((*c).session.host_filter.deny_hosts.is_empty());
            let (p, n) = s("10.0.0.7");
            assert_eq!(sshard_config_set_host_allow_list(c, p, n), 0);
            let (p, n) = s("dc1,dc2");
            assert_eq!(sshard_config_set_dc_allow_list(c, p, n), 0);
            let (p, n) = s("dc3");
            assert_eq!(sshard_config_set_dc_deny_list(c, p, n), 0);
            let f = &(*c).session.host_filter;
            assert_eq!(
                f.allow_hosts,
                vec!["10.0.0.7".parse::<std::net::IpAddr>().unwrap()]
            );
            assert_eq!(f.allow_dcs, vec!["dc1".to_owned(), "dc2".to_owned()]);
            assert_eq!(f.deny_dcs, vec!["dc3".to_owned()]);
            assert_eq!(
                sshard_config_set_dc_deny_list(c, [0xC3u8].as_ptr().cast(), 1),
                SSHARD_STATUS_INVALID_UTF8
            );
            assert_eq!(
                sshard_config_set_dc_allow_list(c, null(), 2),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(sshard_config_free(c), 0);
        }
    }

    #[test]
    fn translations_static_and_by_callback() {
        // SAFETY: the config is valid until freed; strings and `calls` are live.
        unsafe {
            let mut c = null_mut();
            assert_eq!(sshard_config_new(&mut c), 0);
            let (a, an) = s("10.0.0.2");
            let (r, rn) = s("127.0.0.2");
            assert_eq!(sshard_config_add_address_translation(c, a, an, r, rn), 0);
            let (bad, bn) = s("10.0.0.x");
            assert_eq!(
                sshard_config_add_address_translation(c, bad, bn, r, rn),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(
                sshard_config_add_address_translation(c, a, an, bad, bn),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(
                sshard_config_add_address_translation(c, null(), 1, r, rn),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!((*c).session.address_map.len(), 1);
            let mut calls = 0u32;
            let data = (&mut calls as *mut u32).cast::<c_void>();
            assert_eq!(
                sshard_config_set_address_translator(c, Some(to_loopback), data),
                0
            );
            let policy = crate::cluster::HostPolicy {
                translator: (*c).session.address_translator.clone(),
                map: (*c).session.address_map.clone(),
                ..Default::default()
            };
            let at = |t: &str| t.parse::<SocketAddr>().unwrap();
            assert_eq!(policy.reachable(at("10.0.0.1:9042")), at("127.0.0.9:7000"));
            assert_eq!(policy.reachable(at("10.0.0.2:9042")), at("127.0.0.2:9042"));
            assert_eq!(policy.reachable(at("10.0.0.3:9042")), at("10.0.0.3:9042"));
            assert_eq!(calls, 3);
            assert_eq!(
                sshard_config_set_address_translator(c, Some(garbage), null_mut()),
                0
            );
            let t = (*c).session.address_translator.clone().unwrap();
            assert_eq!(t.translate(at("10.0.0.1:9042")), None);
            assert_eq!(sshard_config_set_address_translator(c, None, null_mut()), 0);
            assert!((*c).session.address_translator.is_none());
            assert_eq!(sshard_config_free(c), 0);
        }
    }

    #[test]
    fn null_config_is_refused() {
        let (p, n) = s("x");
        // SAFETY: NULL handles and live strings only.
        unsafe {
            let c = null_mut();
            for r in [
                sshard_config_set_host_allow_list(c, p, n),
                sshard_config_set_host_deny_list(c, p, n),
                sshard_config_set_dc_allow_list(c, p, n),
                sshard_config_set_dc_deny_list(c, p, n),
                sshard_config_add_address_translation(c, p, n, p, n),
                sshard_config_set_address_translator(c, None, null_mut()),
            ] {
                assert_eq!(r, SSHARD_STATUS_NULL_ARGUMENT);
            }
        }
    }
}
