//! The deadline policy: how long a receiving organisation has to acknowledge and to decide on a
//! referral, and to move an accepted or held referral on, how long the referring caseworker has
//! to record follow-up after the service was completed or failed, and when an overdue referral is escalated or given up. Per priority, with
//! overrides per service category; loaded from a JSON file or the defaults below. Where each
//! default comes from is in `docs/followup.md`.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use wasl_domain::catalogue::{Priority, ServiceCategory};

/// The time windows of one (category, priority).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// From `requested` to `received`.
    pub acknowledge: Duration,
    /// From `requested` to `accepted` or `rejected`.
    pub decide: Duration,
    /// From `accepted` or `on_hold` to the next step (started, resumed, completed or failed);
    /// missed, the referral is `stalled`.
    pub progress: Duration,
    /// From `completed` or `failed` to the follow-up being recorded.
    pub follow_up: Duration,
}

const HOUR: u64 = 3_600;

const fn hours(acknowledge: u64, decide: u64, progress: u64, follow_up: u64) -> Windows {
    Windows {
        acknowledge: Duration::from_secs(acknowledge * HOUR),
        decide: Duration::from_secs(decide * HOUR),
        progress: Duration::from_secs(progress * HOUR),
        follow_up: Duration::from_secs(follow_up * HOUR),
    }
}

/// The policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlinePolicy {
    /// Windows by priority.
    pub by_priority: BTreeMap<Priority, Windows>,
    /// Windows for a category and priority that differ from the priority's.
    pub overrides: BTreeMap<(ServiceCategory, Priority), Windows>,
    /// A referral is escalated to the coordinators when it has this many deadlines recorded as
    /// missed (1: at the first).
    pub escalate_after_overdues: u32,
    /// A referral still open after this many escalations is cancelled with `expired`, and its
    /// caseworker told to refer elsewhere; `None`: never.
    pub expire_after_escalations: Option<u32>,
}

impl Default for DeadlinePolicy {
    fn default() -> Self {
        let by_priority = BTreeMap::from([
            (Priority::Emergency, hours(1, 4, 12, 24)),
            (Priority::Urgent, hours(8, 24, 72, 72)),
            (Priority::Routine, hours(48, 120, 336, 168)),
        ]);
        let overrides = BTreeMap::from([
            // Post-exposure prophylaxis after rape must start within 72 hours: an emergency
            // health referral is decided within two hours and started within four.
            ((ServiceCategory::Health, Priority::Emergency), hours(1, 2, 4, 24)),
            // A survivor at risk tonight needs a place tonight.
            ((ServiceCategory::Shelter, Priority::Emergency), hours(1, 2, 4, 24)),
            // Legal aid counts in days: an appointment, documents to gather.
            ((ServiceCategory::Legal, Priority::Routine), hours(72, 240, 720, 336)),
            (
                (ServiceCategory::CivilDocumentation, Priority::Routine),
                hours(72, 240, 720, 336),
            ),
        ]);
        Self {
            by_priority,
            overrides,
            escalate_after_overdues: 1,
            expire_after_escalations: None,
        }
    }
}

impl DeadlinePolicy {
    /// The windows of a referral of `category` at `priority`.
    pub fn windows(&self, category: ServiceCategory, priority: Priority) -> Windows {
        self.overrides
            .get(&(category, priority))
            .or_else(|| self.by_priority.get(&priority))
            .copied()
            .unwrap_or_else(|| hours(48, 120, 336, 168))
    }

    /// Reads a policy from JSON (see `docs/followup.md`); what it does not name keeps its
    /// default.
    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile = serde_json::from_str(text).map_err(|e| PolicyError(e.to_string()))?;
        let mut policy = Self::default();
        for (priority, windows) in file.priorities {
            let priority =
                Priority::parse(&priority).map_err(|_| PolicyError(format!("unknown priority {priority:?}")))?;
            let base = policy.windows(ServiceCategory::Health, priority);
            policy.by_priority.insert(priority, windows.over(base)?);
        }
        for (category, priorities) in file.categories {
            let category = ServiceCategory::parse(&category)
                .map_err(|_| PolicyError(format!("unknown service category {category:?}")))?;
            for (priority, windows) in priorities {
                let priority =
                    Priority::parse(&priority).map_err(|_| PolicyError(format!("unknown priority {priority:?}")))?;
                let base = policy.windows(category, priority);
                policy.overrides.insert((category, priority), windows.over(base)?);
            }
        }
        if let Some(n) = file.escalate_after_overdues {
            if n == 0 {
                return Err(PolicyError("escalate_after_overdues must be at least 1".to_owned()));
            }
            policy.escalate_after_overdues = n;
        }
        if let Some(m) = file.expire_after_escalations {
            policy.expire_after_escalations = (m > 0).then_some(m);
        }
        Ok(policy)
    }

    /// The policy as a table, for `wasl followup policy` and the docs.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<20} {:<10} {:>12} {:>12} {:>12} {:>12}\n",
            "category", "priority", "acknowledge", "decide", "progress", "follow-up"
        );
        let show = |d: Duration| format!("{}h", d.as_secs() / HOUR);
        for category in ServiceCategory::ALL {
            for priority in Priority::ALL {
                let w = self.windows(*category, *priority);
                out.push_str(&format!(
                    "{:<20} {:<10} {:>12} {:>12} {:>12} {:>12}\n",
                    category.code(),
                    priority.code(),
                    show(w.acknowledge),
                    show(w.decide),
                    show(w.progress),
                    show(w.follow_up)
                ));
            }
        }
        out.push_str(&format!(
            "escalated after {} missed deadline(s); {}\n",
            self.escalate_after_overdues,
            match self.expire_after_escalations {
                Some(m) => format!("cancelled as expired after {m} escalation(s)"),
                None => "never cancelled as expired".to_owned(),
            }
        ));
        out
    }
}

/// A policy file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the deadline policy is not valid: {0}")]
pub struct PolicyError(pub String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    priorities: BTreeMap<String, WindowsFile>,
    #[serde(default)]
    categories: BTreeMap<String, BTreeMap<String, WindowsFile>>,
    escalate_after_overdues: Option<u32>,
    expire_after_escalations: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowsFile {
    acknowledge: Option<String>,
    decide: Option<String>,
    progress: Option<String>,
    follow_up: Option<String>,
}

impl WindowsFile {
    fn over(self, base: Windows) -> Result<Windows, PolicyError> {
        let parse = |text: Option<String>, default: Duration, name: &str| match text {
            None => Ok(default),
            Some(text) => humantime::parse_duration(&text)
                .map_err(|e| PolicyError(format!("{name}: {text:?} is not a duration ({e})")))
                .and_then(|d| {
                    if d.is_zero() {
                        Err(PolicyError(format!("{name} must be longer than zero")))
                    } else {
                        Ok(d)
                    }
                }),
        };
        let windows = Windows {
            acknowledge: parse(self.acknowledge, base.acknowledge, "acknowledge")?,
            decide: parse(self.decide, base.decide, "decide")?,
            progress: parse(self.progress, base.progress, "progress")?,
            follow_up: parse(self.follow_up, base.follow_up, "follow_up")?,
        };
        if windows.decide < windows.acknowledge {
            return Err(PolicyError("decide cannot be shorter than acknowledge".to_owned()));
        }
        Ok(windows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emergency_health_referral_is_answered_in_hours_and_routine_legal_aid_in_days() {
        let policy = DeadlinePolicy::default();
        let emergency = policy.windows(ServiceCategory::Health, Priority::Emergency);
        assert!(emergency.decide <= Duration::from_secs(2 * HOUR));
        let legal = policy.windows(ServiceCategory::Legal, Priority::Routine);
        assert!(legal.decide >= Duration::from_secs(5 * 24 * HOUR));
        assert_eq!(
            policy.windows(ServiceCategory::Education, Priority::Urgent),
            policy.by_priority[&Priority::Urgent]
        );
    }

    #[test]
    fn a_file_changes_what_it_names_and_refuses_what_it_does_not_know() {
        let policy = DeadlinePolicy::from_json(
            r#"{"priorities": {"routine": {"decide": "3days"}},
                "categories": {"psychosocial": {"urgent": {"acknowledge": "2h"}}},
                "escalate_after_overdues": 2, "expire_after_escalations": 2}"#,
        )
        .expect("valid");
        assert_eq!(
            policy.windows(ServiceCategory::Cash, Priority::Routine).decide,
            Duration::from_secs(72 * HOUR)
        );
        let psy = policy.windows(ServiceCategory::Psychosocial, Priority::Urgent);
        assert_eq!(psy.acknowledge, Duration::from_secs(2 * HOUR));
        assert_eq!(
            psy.decide,
            Duration::from_secs(24 * HOUR),
            "unnamed windows keep their default"
        );
        assert_eq!(
            (policy.escalate_after_overdues, policy.expire_after_escalations),
            (2, Some(2))
        );
        for bad in [
            r#"{"priorities": {"someday": {}}}"#,
            r#"{"categories": {"magic": {}}}"#,
            r#"{"priorities": {"routine": {"decide": "soon"}}}"#,
            r#"{"priorities": {"routine": {"acknowledge": "10days", "decide": "1day"}}}"#,
            r#"{"escalate_after_overdues": 0}"#,
            r#"{"deadline": 1}"#,
        ] {
            assert!(DeadlinePolicy::from_json(bad).is_err(), "{bad}");
        }
    }
}
