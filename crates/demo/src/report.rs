//! What a load did, for `wasl demo-data` and `wasl up --demo` to print.

use std::fmt;
use std::time::Duration;
use wasl_domain::Role;
use wasl_domain::catalogue::DeclineCode;
use wasl_domain::ids::OrgId;
use wasl_domain::referral::ReferralStatus;
use wasl_domain::time::Timestamp;

/// A demo login.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct DemoLogin {
    /// Login name, e.g. `demo.caseworker.erbil`.
    pub username: String,
    pub role: Role,
    /// Its organisation's id.
    pub org_id: OrgId,
    /// Its organisation's name.
    pub organisation: String,
}

/// What the demo holds and what this run added.
#[derive(Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct DemoReport {
    pub seed: u64,
    /// Days of history.
    pub days: u32,
    /// The end of the window: the time of the first load.
    pub anchor: Timestamp,
    /// The anchor was found in the log (an earlier run loaded the demo).
    pub anchor_reused: bool,
    /// Organisations in the directory.
    pub organisations: usize,
    pub services: usize,
    pub cases: usize,
    /// Of which closed.
    pub closed_cases: usize,
    pub referrals: usize,
    /// Referrals made after a redirect.
    pub redirects: usize,
    /// Referrals whose follow-up was recorded.
    pub followed_up: usize,
    /// Referrals by current status.
    pub statuses: Vec<(ReferralStatus, usize)>,
    /// Declined referrals by reason.
    pub declines: Vec<(DeclineCode, usize)>,
    /// Commands in the plan.
    pub commands: usize,
    /// Commands carried out by this run.
    pub commands_executed: usize,
    /// Commands found in the log already (an earlier run).
    pub commands_already_present: usize,
    /// How much the event stream grew during this run.
    pub events_appended: u64,
    /// The demo logins.
    pub logins: Vec<DemoLogin>,
    /// Logins made by this run.
    pub logins_created: usize,
    /// The demo password (demo only).
    pub password: String,
    /// The password opens the existing logins (false when an earlier run set another one).
    pub password_verified: bool,
    /// How long the run took.
    pub elapsed: Duration,
}

/// The password is left out.
impl fmt::Debug for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoReport")
            .field("anchor", &self.anchor)
            .field("organisations", &self.organisations)
            .field("services", &self.services)
            .field("cases", &self.cases)
            .field("referrals", &self.referrals)
            .field("commands_executed", &self.commands_executed)
            .field("commands_already_present", &self.commands_already_present)
            .field("events_appended", &self.events_appended)
            .field("logins", &self.logins.len())
            .finish_non_exhaustive()
    }
}

/// `YYYY-MM-DD HH:MM UTC` (proleptic Gregorian, by `wasl_domain::time::civil_from_days`).
pub(crate) fn utc(at: Timestamp) -> String {
    let millis = at.unix_millis();
    let days = millis.div_euclid(86_400_000);
    let minutes = millis.rem_euclid(86_400_000) / 60_000;
    let (year, month, day) = wasl_domain::time::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        minutes / 60,
        minutes % 60
    )
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Demo data (synthetic, seed {}): {} days ending {}{}",
            self.seed,
            self.days,
            utc(self.anchor),
            if self.anchor_reused {
                " (anchored at the first load)"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "  {} organisations, {} services, {} cases ({} closed), {} referrals ({} after a redirect, {} followed up)",
            self.organisations,
            self.services,
            self.cases,
            self.closed_cases,
            self.referrals,
            self.redirects,
            self.followed_up
        )?;
        let statuses: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{s} {n}")).collect();
        writeln!(f, "  referrals by status: {}", statuses.join(", "))?;
        let declines: Vec<String> = self.declines.iter().map(|(c, n)| format!("{c} {n}")).collect();
        if !declines.is_empty() {
            writeln!(f, "  declined: {}", declines.join(", "))?;
        }
        writeln!(
            f,
            "  {} commands: {} carried out now, {} already present; {} events appended in {:.1} s",
            self.commands,
            self.commands_executed,
            self.commands_already_present,
            self.events_appended,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "Demo logins ({} made now) — demo only, never on a server others can reach. Password for all: {}",
            self.logins_created, self.password
        )?;
        if !self.password_verified {
            writeln!(
                f,
                "  (the logins existed already with another password, which was left unchanged)"
            )?;
        }
        let width = self.logins.iter().map(|l| l.username.len()).max().unwrap_or(0);
        for login in &self.logins {
            writeln!(
                f,
                "  {:width$}  {:12}  {}",
                login.username,
                login.role.code(),
                login.organisation
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_print_as_utc_dates() {
        assert_eq!(utc(Timestamp::from_unix_millis(0)), "1970-01-01 00:00 UTC");
        assert_eq!(
            utc(Timestamp::from_unix_millis(1_780_000_000_000)),
            "2026-05-28 20:26 UTC"
        );
        assert_eq!(
            utc(Timestamp::from_unix_millis(951_782_400_000)),
            "2000-02-29 00:00 UTC"
        );
    }
}
