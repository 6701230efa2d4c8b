//! `cases`: one row per case.

use super::{ApplyError, EventAt};
use crate::sql::row;
use serde::{Deserialize, Serialize};
use wasl_domain::case::{CaseEvent, CaseStatus, ConsentScope, Scope};
use wasl_domain::client::{ClientProfile, Identifying};
use wasl_domain::pii::{EncryptedPii, PersonalData};
use wasl_events::encode_sealed;

row!(
    /// A case as the read model holds it. Personal fields hold sealed values
    /// (`wasl.v1.EncryptedPii` bytes) and are emptied when the case's personal data is erased.
    CaseRow {
        /// Case id.
        id: String,
        /// Owning organisation.
        owner_org: String,
        /// Responsible caseworker.
        caseworker: String,
        /// The other caseworkers the case is shared with (user ids), as a list column.
        shared_with: String,
        /// `open` or `closed`.
        status: String,
        /// When opened (Unix ms).
        opened_at: i64,
        /// When last closed; none while open.
        closed_at: Option<i64>,
        /// Close reason code; none while open.
        close_code: Option<String>,
        /// The survivor code in the clear: only for a profile recorded before the identifying
        /// facts were sealed; empty otherwise (see docs/data-protection.md).
        survivor_code: String,
        /// The survivor code's keyed hash (hex), for finding the case by its code; none for a
        /// clear profile and once erased.
        survivor_code_lookup: Option<String>,
        sex: String,
        /// Age group code.
        age_group: String,
        /// Exact age in the clear, when recorded in a clear profile.
        age_years: Option<i64>,
        /// Population group code.
        population_group: String,
        /// Nationality (ISO 3166 alpha-2, `XX` stateless/unknown).
        nationality: String,
        governorate: String,
        district: Option<String>,
        /// Preferred language.
        language: String,
        /// Vulnerability codes of a clear profile, as a list column.
        vulnerabilities: String,
        /// The sealed survivor code; none for a clear profile and once erased.
        sealed_survivor_code: Option<Vec<u8>>,
        /// The sealed exact age.
        sealed_age_years: Option<Vec<u8>>,
        /// The sealed vulnerabilities.
        sealed_vulnerabilities: Option<Vec<u8>>,
        /// The id of the event that recorded the profile, which its sealed facts are bound to.
        profile_event: Option<String>,
        /// Every consent with its scope (JSON, see [`ConsentEntry`]).
        consents: String,
        /// How many consents are not withdrawn (some may have expired).
        consents_active: i64,
        /// Categories the non-withdrawn consents cover: a list column, or `any`.
        consent_categories: String,
        /// When the last non-withdrawn consent lapses; none if one has no expiry or none is active.
        consent_expires_at: Option<i64>,
        /// Full name, sealed.
        name: Option<Vec<u8>>,
        /// Phone, sealed.
        phone: Option<Vec<u8>>,
        /// Address, sealed.
        address: Option<Vec<u8>>,
        /// Case notes, sealed.
        notes: Option<Vec<u8>>,
        /// 1 once the personal data was erased.
        personal_data_erased: i64,
        /// Time of the last event.
        updated_at: i64,
        /// Number of events.
        version: i64,
        /// Stream sequence of the last event.
        position: i64,
    }
);

/// One consent in the `consents` column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentEntry {
    /// Consent id.
    pub id: String,
    /// Category codes covered; `None` for any.
    pub categories: Option<Vec<String>>,
    /// Organisation ids covered; `None` for any in the pathway.
    pub organisations: Option<Vec<String>>,
    /// When it lapses (Unix ms).
    pub expires_at: Option<i64>,
    /// Whether it was withdrawn.
    pub withdrawn: bool,
}

fn scope_codes<T: Ord>(scope: &Scope<T>, code: impl Fn(&T) -> String) -> Option<Vec<String>> {
    match scope {
        Scope::Any => None,
        Scope::Only(set) => Some(set.iter().map(code).collect()),
    }
}

fn entry(id: String, scope: &ConsentScope) -> ConsentEntry {
    ConsentEntry {
        id,
        categories: scope_codes(&scope.categories, |c| c.code().to_owned()),
        organisations: scope_codes(&scope.organisations, |o| o.to_string()),
        expires_at: scope.expires_at.map(|t| t.unix_millis()),
        withdrawn: false,
    }
}

fn sealed(value: Option<&EncryptedPii>) -> Option<Vec<u8>> {
    value.map(encode_sealed)
}

fn set_profile(row: &mut CaseRow, profile: &ClientProfile, at: &EventAt) {
    row.sex = profile.sex.code().to_owned();
    row.age_group = profile.age_group.code().to_owned();
    row.population_group = profile.population_group.code().to_owned();
    row.nationality = profile.nationality.as_str().to_owned();
    row.governorate = profile.location.governorate().code().to_owned();
    row.district = profile.location.district().map(|d| d.code().to_owned());
    row.language = profile.language.as_str().to_owned();
    forget_identifying_profile(row);
    match &profile.identifying {
        Identifying::Sealed(facts) => {
            row.survivor_code_lookup = Some(facts.lookup.to_hex());
            row.sealed_survivor_code = Some(encode_sealed(&facts.survivor_code));
            row.sealed_age_years = Some(encode_sealed(&facts.age_years));
            row.sealed_vulnerabilities = Some(encode_sealed(&facts.vulnerabilities));
            row.profile_event = Some(at.event_id.clone());
        }
        Identifying::Clear(facts) => {
            row.survivor_code = facts.survivor_code.as_str().to_owned();
            row.age_years = facts.age_years.map(i64::from);
            row.vulnerabilities = crate::sql::list(facts.vulnerabilities.iter().map(|v| v.code()));
        }
    }
}

/// After an erasure the profile keeps only what cannot single the person out: sex, age group,
/// population group, nationality, place and language stay for the statistics; the survivor code
/// and its lookup hash, the exact age and the vulnerabilities (`gbv_survivor`, …) go, sealed or
/// clear. A profile update recorded after an erasure (the domain refuses new ones) is cut the
/// same way.
fn forget_identifying_profile(row: &mut CaseRow) {
    row.survivor_code = String::new();
    row.survivor_code_lookup = None;
    row.age_years = None;
    row.vulnerabilities = String::new();
    row.sealed_survivor_code = None;
    row.sealed_age_years = None;
    row.sealed_vulnerabilities = None;
    row.profile_event = None;
}

fn set_personal(row: &mut CaseRow, personal: &PersonalData) {
    row.name = sealed(personal.name.as_ref());
    row.phone = sealed(personal.phone.as_ref());
    row.address = sealed(personal.address.as_ref());
    row.notes = sealed(personal.notes.as_ref());
}

fn corrupt(reason: &str) -> ApplyError {
    ApplyError::Corrupt(reason.to_owned())
}

fn read_consents(row: &CaseRow) -> Result<Vec<ConsentEntry>, ApplyError> {
    serde_json::from_str(&row.consents).map_err(|_| corrupt("the consents column is not valid JSON"))
}

fn write_consents(row: &mut CaseRow, mut consents: Vec<ConsentEntry>) {
    consents.sort_by(|a, b| a.id.cmp(&b.id));
    let active: Vec<&ConsentEntry> = consents.iter().filter(|c| !c.withdrawn).collect();
    row.consents_active = active.len() as i64;
    row.consent_categories = if active.iter().any(|c| c.categories.is_none()) {
        "any".to_owned()
    } else {
        let mut codes: Vec<&str> = active
            .iter()
            .flat_map(|c| c.categories.iter().flatten().map(String::as_str))
            .collect();
        codes.sort_unstable();
        codes.dedup();
        crate::sql::list(codes)
    };
    row.consent_expires_at = if active.is_empty() || active.iter().any(|c| c.expires_at.is_none()) {
        None
    } else {
        active.iter().filter_map(|c| c.expires_at).max()
    };
    // Serialising plain strings, numbers and options cannot fail.
    row.consents = serde_json::to_string(&consents).unwrap_or_else(|_| "[]".to_owned());
}

/// Applies one event of case `id` to its row (`None` before it was opened). On error the row
/// is unchanged.
pub(crate) fn apply(slot: &mut Option<CaseRow>, id: &str, event: &CaseEvent, at: &EventAt) -> Result<(), ApplyError> {
    if let CaseEvent::Opened {
        owner_org,
        caseworker,
        profile,
        personal,
        ..
    } = event
    {
        if slot.is_some() {
            return Err(ApplyError::Exists("the case"));
        }
        let mut row = CaseRow {
            id: id.to_owned(),
            owner_org: owner_org.to_string(),
            caseworker: caseworker.to_string(),
            shared_with: crate::sql::list([]),
            status: "open".to_owned(),
            opened_at: at.at,
            closed_at: None,
            close_code: None,
            survivor_code: String::new(),
            survivor_code_lookup: None,
            sex: String::new(),
            age_group: String::new(),
            age_years: None,
            population_group: String::new(),
            nationality: String::new(),
            governorate: String::new(),
            district: None,
            language: String::new(),
            vulnerabilities: String::new(),
            sealed_survivor_code: None,
            sealed_age_years: None,
            sealed_vulnerabilities: None,
            profile_event: None,
            consents: String::new(),
            consents_active: 0,
            consent_categories: String::new(),
            consent_expires_at: None,
            name: None,
            phone: None,
            address: None,
            notes: None,
            personal_data_erased: 0,
            updated_at: at.at,
            version: 1,
            position: at.seq,
        };
        set_profile(&mut row, profile, at);
        set_personal(&mut row, personal);
        write_consents(&mut row, Vec::new());
        *slot = Some(row);
        return Ok(());
    }
    let row = slot.as_mut().ok_or(ApplyError::Missing("the case"))?;
    match event {
        CaseEvent::Opened { .. } => unreachable!("handled above"),
        CaseEvent::ProfileUpdated { profile } => {
            set_profile(row, profile, at);
            if row.personal_data_erased == 1 {
                forget_identifying_profile(row);
            }
        }
        CaseEvent::PersonalDataUpdated { personal } => set_personal(row, personal),
        CaseEvent::Assigned { caseworker } => row.caseworker = caseworker.to_string(),
        CaseEvent::Shared { user } => {
            let user = user.to_string();
            let mut shared: Vec<&str> = crate::sql::items(&row.shared_with).filter(|u| *u != user).collect();
            shared.push(&user);
            shared.sort_unstable();
            row.shared_with = crate::sql::list(shared);
        }
        CaseEvent::Unshared { user } => {
            let user = user.to_string();
            row.shared_with = crate::sql::list(crate::sql::items(&row.shared_with).filter(|u| *u != user));
        }
        CaseEvent::ConsentGiven { consent_id, scope } => {
            let mut consents = read_consents(row)?;
            let id = consent_id.to_string();
            consents.retain(|c| c.id != id);
            consents.push(entry(id, scope));
            write_consents(row, consents);
        }
        CaseEvent::ConsentNarrowed { consent_id, scope } => {
            let mut consents = read_consents(row)?;
            let id = consent_id.to_string();
            if let Some(c) = consents.iter_mut().find(|c| c.id == id) {
                let withdrawn = c.withdrawn;
                *c = entry(id, scope);
                c.withdrawn = withdrawn;
            }
            write_consents(row, consents);
        }
        CaseEvent::ConsentWithdrawn { consent_id } => {
            let mut consents = read_consents(row)?;
            let id = consent_id.to_string();
            if let Some(c) = consents.iter_mut().find(|c| c.id == id) {
                c.withdrawn = true;
            }
            write_consents(row, consents);
        }
        CaseEvent::Closed { reason, .. } => {
            row.status = "closed".to_owned();
            row.closed_at = Some(at.at);
            row.close_code = Some(reason.code.to_string());
        }
        CaseEvent::Reopened { .. } => {
            row.status = "open".to_owned();
            row.closed_at = None;
            row.close_code = None;
        }
        CaseEvent::PersonalDataErased { .. } => {
            set_personal(row, &PersonalData::default());
            forget_identifying_profile(row);
            row.personal_data_erased = 1;
        }
    }
    row.updated_at = at.at;
    row.version += 1;
    row.position = at.seq;
    Ok(())
}

/// The status code of a domain case status.
pub fn status_code(status: CaseStatus) -> &'static str {
    match status {
        CaseStatus::Open => "open",
        CaseStatus::Closed => "closed",
    }
}
