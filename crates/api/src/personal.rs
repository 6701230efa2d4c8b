//! Personal data in and out: sealing what a caseworker types under the case's key before the
//! command is decided, and opening it again for an authorised reader.
//!
//! A sealed value is bound to the event that carries it (the vault's associated data), so it is
//! read back from the log, where the event id sits next to it: the case's own events for its
//! personal data, the referral's first event for the referral notes. An erased case reads as
//! `erased`.

use crate::error::ApiError;
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wasl_domain::case::CaseEvent;
use wasl_domain::client::{
    ClientProfile, Identifying, IdentifyingFacts, SealedFacts, SurvivorCode, SurvivorCodeLookup, Vulnerability,
};
use wasl_domain::ids::{CaseId, EventId, ReferralId};
use wasl_domain::pii::{EncryptedPii, PersonalData};
use wasl_domain::referral::ReferralEvent;
use wasl_events::DomainEvent;
use wasl_projections::rows::case::CaseRow;
use wasl_vault::{PiiField, Revealed};

/// Personal data as a caseworker writes it. Every field is optional; none is ever logged.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct PersonalInput {
    /// Full name.
    #[schema(max_length = 500)]
    pub name: Option<String>,
    /// Phone number.
    #[schema(max_length = 500)]
    pub phone: Option<String>,
    #[schema(max_length = 2000)]
    pub address: Option<String>,
    /// Case notes.
    #[schema(max_length = 20000)]
    pub notes: Option<String>,
}

/// Personal data as an authorised reader sees it.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct PersonalOutput {
    /// Full name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Phone number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Case notes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The case's personal data was erased; the fields above are then absent.
    pub erased: bool,
}

fn check_len(field: &str, value: Option<&String>, max: usize) -> Result<(), ApiError> {
    match value {
        Some(v) if v.chars().count() > max => Err(ApiError::invalid(field, format!("is longer than {max} characters"))),
        Some(v) if v.trim().is_empty() => Err(ApiError::invalid(field, "is empty; leave it out instead")),
        _ => Ok(()),
    }
}

impl PersonalInput {
    /// Checks the lengths of the personal data found at the JSON pointer `at` of the request
    /// body (`""` for the whole body).
    pub fn validate(&self, at: &str) -> Result<(), ApiError> {
        check_len(&format!("{at}/name"), self.name.as_ref(), 500)?;
        check_len(&format!("{at}/phone"), self.phone.as_ref(), 500)?;
        check_len(&format!("{at}/address"), self.address.as_ref(), 2000)?;
        check_len(&format!("{at}/notes"), self.notes.as_ref(), 20000)
    }

    /// Seals every given field under `case`'s key for the event `event`.
    pub async fn seal(&self, state: &AppState, case: CaseId, event: EventId) -> Result<PersonalData, ApiError> {
        Ok(PersonalData {
            name: seal(state, case, event, PiiField::NAME, self.name.as_ref()).await?,
            phone: seal(state, case, event, PiiField::PHONE, self.phone.as_ref()).await?,
            address: seal(state, case, event, PiiField::ADDRESS, self.address.as_ref()).await?,
            notes: seal(state, case, event, PiiField::NOTES, self.notes.as_ref()).await?,
        })
    }
}

async fn seal(
    state: &AppState,
    case: CaseId,
    event: EventId,
    field: PiiField,
    value: Option<&String>,
) -> Result<Option<EncryptedPii>, ApiError> {
    match value {
        Some(text) => Ok(Some(state.vault().seal(case, event, field, text).await?)),
        None => Ok(None),
    }
}

async fn open(
    state: &AppState,
    case: CaseId,
    event: EventId,
    field: PiiField,
    sealed: Option<&EncryptedPii>,
) -> Result<Option<Revealed>, ApiError> {
    match sealed {
        Some(value) => Ok(Some(state.vault().open(case, event, field, value).await?)),
        None => Ok(None),
    }
}

fn plain(revealed: Option<Revealed>) -> Option<String> {
    match revealed {
        Some(Revealed::Plain(text)) => Some(text.as_str().to_owned()),
        _ => None,
    }
}

/// What the log holds now of a case's sealed values: its latest personal data and profile, each
/// with the id of the event that recorded it (what their seals are bound to), and whether the
/// case's personal data was erased. One read of the case's history.
struct LoggedCase {
    personal: Option<(EventId, PersonalData)>,
    profile: Option<(EventId, ClientProfile)>,
    erased: bool,
}

async fn logged_case(state: &AppState, case: CaseId) -> Result<LoggedCase, ApiError> {
    let subject = format!("wasl.evt.case.{case}");
    let recorded = state.store().read_history(&subject, 1).await?;
    let mut logged = LoggedCase {
        personal: None,
        profile: None,
        erased: false,
    };
    for r in recorded {
        let DomainEvent::Case(_, event) = r.event.event else {
            continue;
        };
        let id = r.event.meta.event_id;
        match event {
            CaseEvent::Opened { personal, profile, .. } => {
                logged.personal = Some((id, personal));
                logged.profile = Some((id, profile));
            }
            CaseEvent::PersonalDataUpdated { personal } => logged.personal = Some((id, personal)),
            CaseEvent::ProfileUpdated { profile } => logged.profile = Some((id, profile)),
            CaseEvent::PersonalDataErased { .. } => logged.erased = true,
            _ => {}
        }
    }
    Ok(logged)
}

/// The case's personal data as the log has it now, opened.
pub async fn case_personal(state: &AppState, case: CaseId) -> Result<PersonalOutput, ApiError> {
    let LoggedCase { personal, erased, .. } = logged_case(state, case).await?;
    let Some((event, personal)) = personal.filter(|_| !erased) else {
        return Ok(PersonalOutput {
            erased,
            ..PersonalOutput::default()
        });
    };
    let fields = [
        (PiiField::NAME, personal.name.as_ref()),
        (PiiField::PHONE, personal.phone.as_ref()),
        (PiiField::ADDRESS, personal.address.as_ref()),
        (PiiField::NOTES, personal.notes.as_ref()),
    ];
    let mut out = PersonalOutput::default();
    for (field, sealed) in fields {
        let revealed = open(state, case, event, field, sealed).await?;
        if matches!(revealed, Some(Revealed::Erased)) {
            out.erased = true;
        }
        let text = plain(revealed);
        match field {
            PiiField::NAME => out.name = text,
            PiiField::PHONE => out.phone = text,
            PiiField::ADDRESS => out.address = text,
            _ => out.notes = text,
        }
    }
    if out.erased {
        return Ok(PersonalOutput {
            erased: true,
            ..PersonalOutput::default()
        });
    }
    Ok(out)
}

/// A free text written on a referral — a reason's explanation or a follow-up note — opened.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReferralText {
    /// The referral's version the text was written at (its place in the history).
    pub version: u64,
    /// What it explains: `rejected`, `put_on_hold`, `failed`, `cancelled`, `entered_in_error`
    /// (with the reason's `code`) or `follow_up_recorded`.
    pub event: String,
    /// The reason's code; absent for a follow-up note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The text as written.
    pub text: String,
}

/// What was written on the referral, opened, from one read of its history: its notes for the
/// receiving organisation, and every free text, oldest first — the explanations of its decline,
/// holds, failure, cancellation or entry in error, and its follow-up notes. Left out: the notes
/// coordinators write when acknowledging an escalation (written for their service-gap work,
/// never shown), and everything once the case was erased. The caller has audited the read.
pub async fn referral_writing(
    state: &AppState,
    referral: ReferralId,
) -> Result<(Option<String>, Vec<ReferralText>), ApiError> {
    let subject = format!("wasl.evt.referral.{referral}");
    let recorded = state.store().read_history(&subject, 1).await?;
    let mut case = None;
    let mut notes = None;
    let mut out = Vec::new();
    for (index, entry) in recorded.iter().enumerate() {
        let DomainEvent::Referral(_, event) = &entry.event.event else {
            continue;
        };
        let (what, code, sealed): (&str, Option<&str>, Option<&EncryptedPii>) = match event {
            ReferralEvent::Requested(requested) => {
                case = Some(requested.case_id);
                match open(
                    state,
                    requested.case_id,
                    entry.event.meta.event_id,
                    PiiField::REFERRAL_NOTES,
                    requested.notes.as_ref(),
                )
                .await?
                {
                    Some(Revealed::Erased) => return Ok((None, Vec::new())),
                    revealed => notes = plain(revealed),
                }
                continue;
            }
            ReferralEvent::Rejected(decline) => (
                "rejected",
                Some(decline.reason.code.code()),
                decline.reason.text.as_ref(),
            ),
            ReferralEvent::PutOnHold(reason) => ("put_on_hold", Some(reason.code.code()), reason.text.as_ref()),
            ReferralEvent::Failed(reason) => ("failed", Some(reason.code.code()), reason.text.as_ref()),
            ReferralEvent::Cancelled(reason) => ("cancelled", Some(reason.code.code()), reason.text.as_ref()),
            ReferralEvent::EnteredInError(reason) => {
                ("entered_in_error", Some(reason.code.code()), reason.text.as_ref())
            }
            ReferralEvent::FollowUpRecorded(follow_up) => ("follow_up_recorded", None, follow_up.note.as_ref()),
            _ => continue,
        };
        let (Some(case), Some(sealed)) = (case, sealed) else {
            continue;
        };
        let field = if what == "follow_up_recorded" {
            PiiField::FOLLOW_UP_NOTE
        } else {
            PiiField::REASON_TEXT
        };
        match open(state, case, entry.event.meta.event_id, field, Some(sealed)).await? {
            Some(Revealed::Plain(text)) => out.push(ReferralText {
                version: index as u64 + 1,
                event: what.to_owned(),
                code: code.map(str::to_owned),
                text: text.as_str().to_owned(),
            }),
            // Erased: nothing personal is shown, not even that a text existed.
            Some(Revealed::Erased) => return Ok((None, Vec::new())),
            None => {}
        }
    }
    Ok((notes, out))
}

/// Seals a referral's notes under the case's key for the referral's first event.
pub async fn seal_referral_notes(
    state: &AppState,
    case: CaseId,
    event: EventId,
    notes: Option<&String>,
) -> Result<Option<EncryptedPii>, ApiError> {
    match notes {
        Some(text) => Ok(Some(
            state.vault().seal(case, event, PiiField::REFERRAL_NOTES, text).await?,
        )),
        None => Ok(None),
    }
}

/// The identifying facts of a profile as the read model holds them, opened for a reader with
/// the right to the case (the caller has audited the read): `None` once the case was erased.
/// A profile recorded before the facts were sealed has them in the row in the clear.
pub async fn row_identifying(state: &AppState, row: &CaseRow) -> Result<Option<IdentifyingFacts>, ApiError> {
    let (Some(code), Some(age), Some(vulnerabilities), Some(event), Some(lookup)) = (
        &row.sealed_survivor_code,
        &row.sealed_age_years,
        &row.sealed_vulnerabilities,
        &row.profile_event,
        &row.survivor_code_lookup,
    ) else {
        if row.personal_data_erased != 0 || row.survivor_code.is_empty() {
            return Ok(None);
        }
        return Ok(Some(IdentifyingFacts {
            survivor_code: SurvivorCode::parse(&row.survivor_code).map_err(ApiError::internal)?,
            age_years: row.age_years.and_then(|y| u8::try_from(y).ok()),
            vulnerabilities: row
                .vulnerabilities
                .split(',')
                .filter(|c| !c.is_empty())
                .map(Vulnerability::parse)
                .collect::<Result<_, _>>()
                .map_err(ApiError::internal)?,
        }));
    };
    let case = CaseId::parse(&row.id).map_err(ApiError::internal)?;
    let event = EventId::parse(event).map_err(ApiError::internal)?;
    let sealed = |bytes: &Vec<u8>| wasl_events::decode_sealed(bytes).map_err(ApiError::internal);
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(lookup, &mut bytes).map_err(ApiError::internal)?;
    let facts = SealedFacts {
        survivor_code: sealed(code)?,
        lookup: SurvivorCodeLookup::from_bytes(bytes),
        age_years: sealed(age)?,
        vulnerabilities: sealed(vulnerabilities)?,
    };
    Ok(state.vault().open_identifying(case, event, &facts).await?)
}

/// The case's current profile as the log has it, with its identifying facts opened into the
/// clear form: `None` when the case has none or was erased. Read from the log, not the read
/// model, so that a command compares against what it will be decided on.
pub async fn logged_profile(state: &AppState, case: CaseId) -> Result<Option<ClientProfile>, ApiError> {
    let LoggedCase { profile, erased, .. } = logged_case(state, case).await?;
    let Some((event, mut profile)) = profile.filter(|_| !erased) else {
        return Ok(None);
    };
    if let Identifying::Sealed(sealed) = &profile.identifying {
        let Some(facts) = state.vault().open_identifying(case, event, sealed).await? else {
            return Ok(None);
        };
        profile.identifying = Identifying::Clear(facts);
    }
    Ok(Some(profile.normalised()))
}
