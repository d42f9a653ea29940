//! Execution profiles: named sets of request options registered on the
//! session's config and chosen per statement or batch.
//!
//! Precedence, per option: the statement's (or batch's) own setting, then
//! its profile's, then the session's default. A profile that sets any
//! load-balancing preference (local datacenter, local rack, datacenter
//! failover) has preferences of its own, the ones it does not set at their
//! defaults (none, none, failover allowed); otherwise the session's apply.
//!
//! Profile names are interned once, process-wide, when a statement or a
//! config names them, so a request finds its profile by number (no string
//! hashing or comparing per request).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::speculation::SpeculativeExecution;
use super::RetryPolicy;
use crate::protocol::Consistency;
use crate::routing::plan::LoadBalancing;

/// The options one profile sets (`None`: not set, the session's apply).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutionProfile {
    pub consistency: Option<Consistency>,
    pub serial_consistency: Option<Consistency>,
    /// End-to-end timeout of a request, all attempts included.
    pub request_timeout: Option<Duration>,
    pub retry_policy: Option<RetryPolicy>,
    pub speculative_execution: Option<SpeculativeExecution>,
    /// Datacenter and rack preferences of the profile's requests.
    pub load_balancing: Option<LoadBalancing>,
}

impl ExecutionProfile {
    /// The profile's load-balancing preferences, made on first use with
    /// the defaults (no local datacenter or rack, failover allowed).
    pub fn load_balancing_mut(&mut self) -> &mut LoadBalancing {
        self.load_balancing.get_or_insert(LoadBalancing {
            local_dc: None,
            local_rack: None,
            permit_dc_failover: true,
        })
    }
}

/// A profile name, interned: cheap to copy and compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProfileName(u32);

#[derive(Default)]
struct Names {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

fn names() -> &'static Mutex<Names> {
    static NAMES: OnceLock<Mutex<Names>> = OnceLock::new();
    NAMES.get_or_init(Mutex::default)
}

impl ProfileName {
    /// The interned name (the same number for the same text, in every
    /// session of the process).
    pub fn new(name: &str) -> ProfileName {
        let mut names = names().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&id) = names.ids.get(name) {
            return ProfileName(id);
        }
        let id = u32::try_from(names.names.len()).expect("fewer than 2^32 profile names");
        let text: Arc<str> = Arc::from(name);
        names.names.push(text.clone());
        names.ids.insert(text, id);
        ProfileName(id)
    }

    pub fn as_str(&self) -> Arc<str> {
        let names = names().lock().unwrap_or_else(|p| p.into_inner());
        names.names[self.0 as usize].clone()
    }
}

impl std::fmt::Display for ProfileName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// A session's profiles, looked up by interned name.
#[derive(Debug, Default)]
pub struct Profiles {
    entries: Vec<(ProfileName, ExecutionProfile)>,
}

impl Profiles {
    pub fn new(profiles: &[(String, ExecutionProfile)]) -> Profiles {
        let mut entries: Vec<(ProfileName, ExecutionProfile)> = Vec::new();
        for (name, profile) in profiles {
            let name = ProfileName::new(name);
            // A name registered twice: the last registration wins.
            entries.retain(|(n, _)| *n != name);
            entries.push((name, profile.clone()));
        }
        Profiles { entries }
    }

    pub fn get(&self, name: ProfileName) -> Option<&ExecutionProfile> {
        self.entries
            .iter()
            .find_map(|(n, p)| (*n == name).then_some(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_intern_to_one_number() {
        let a = ProfileName::new("profile-test-a");
        assert_eq!(ProfileName::new("profile-test-a"), a);
        let b = ProfileName::new("profile-test-b");
        assert_ne!(a, b);
        assert_eq!(&*b.as_str(), "profile-test-b");
        assert_eq!(a.to_string(), "profile-test-a");
    }

    #[test]
    fn lookup_finds_the_last_registration() {
        let one = ExecutionProfile {
            consistency: Some(Consistency::One),
            ..Default::default()
        };
        let all = ExecutionProfile {
            consistency: Some(Consistency::All),
            ..Default::default()
        };
        let profiles = Profiles::new(&[
            ("p-one".into(), one),
            ("p-x".into(), all.clone()),
            ("p-x".into(), all.clone()),
        ]);
        assert_eq!(
            profiles.get(ProfileName::new("p-one")).unwrap().consistency,
            Some(Consistency::One)
        );
        assert_eq!(profiles.get(ProfileName::new("p-x")), Some(&all));
        assert_eq!(profiles.get(ProfileName::new("p-missing")), None);
    }

    #[test]
    fn a_profile_load_balancing_starts_from_the_defaults() {
        let mut p = ExecutionProfile::default();
        p.load_balancing_mut().local_dc = Some("dc2".into());
        let lb = p.load_balancing.unwrap();
        assert_eq!(lb.local_dc.as_deref(), Some("dc2"));
        assert_eq!(lb.local_rack, None);
        assert!(lb.permit_dc_failover);
    }
}
