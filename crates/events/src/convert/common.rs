//! Shared messages (`common.proto`) and the one-to-one enum mappings.

use super::{
    At, ProtoEnum, enums, enums_to_pb, id, ids, proto_enum, required, small, timestamp_from_pb, timestamp_to_pb,
};
use crate::error::DecodeError;
use crate::pb;
use std::collections::BTreeSet;
use wasl_domain::case::{ConsentScope, Scope};
use wasl_domain::catalogue::{
    AcknowledgeCode, CancelCode, CloseCode, DeclineCode, EraseCode, ErrorCode, FailCode, HoldCode, OverrideCode,
    Priority, Reason, ServiceCategory,
};
use wasl_domain::client::{
    Age, AgeGroup, ClientProfile, Identifying, IdentifyingFacts, Language, Nationality, PopulationGroup, SealedFacts,
    Sex, SurvivorCode, SurvivorCodeLookup, Vulnerability,
};
use wasl_domain::directory::{DisplayName, Eligibility, OrgKind, ServiceSpec};
use wasl_domain::geo::{District, Governorate, Location};
use wasl_domain::pii::{Cipher, EncryptedPii, KeyId, PersonalData};
use wasl_domain::referral::{ClientSummary, OverdueKind, ServiceReceived};
use wasl_domain::{Actor, Role};

proto_enum!(Cipher => Cipher {
    XChaCha20Poly1305 => Xchacha20Poly1305,
    Aes256Gcm => Aes256Gcm,
});

proto_enum!(Role => Role {
    Caseworker => Caseworker,
    Supervisor => Supervisor,
    FocalPoint => FocalPoint,
    PartnerSystem => PartnerSystem,
    Coordinator => Coordinator,
    Admin => Admin,
    System => System,
});

proto_enum!(Sex => Sex {
    Female => Female,
    Male => Male,
    Other => Other,
    Undisclosed => Undisclosed,
});

proto_enum!(AgeGroup => AgeGroup {
    Under5 => Under5,
    Age5To11 => Age5To11,
    Age12To17 => Age12To17,
    Age18To24 => Age18To24,
    Age25To59 => Age25To59,
    Age60Plus => Age60Plus,
});

proto_enum!(PopulationGroup => PopulationGroup {
    Returnee => Returnee,
    Idp => Idp,
    Migrant => Migrant,
    Refugee => Refugee,
    HostCommunity => HostCommunity,
    Other => Other,
});

proto_enum!(Vulnerability => Vulnerability {
    GbvSurvivor => GbvSurvivor,
    UnaccompaniedChild => UnaccompaniedChild,
    SeparatedChild => SeparatedChild,
    Disability => Disability,
    ChronicIllness => ChronicIllness,
    PregnantOrLactating => PregnantOrLactating,
    FemaleHeadedHousehold => FemaleHeadedHousehold,
    OlderPersonAtRisk => OlderPersonAtRisk,
    TraffickingSurvivor => TraffickingSurvivor,
    DetentionSurvivor => DetentionSurvivor,
    MissingDocumentation => MissingDocumentation,
    PerceivedAffiliation => PerceivedAffiliation,
    Other => Other,
});

proto_enum!(ServiceCategory => ServiceCategory {
    Health => Health,
    Legal => Legal,
    Psychosocial => Psychosocial,
    Shelter => Shelter,
    CivilDocumentation => CivilDocumentation,
    Livelihoods => Livelihoods,
    Education => Education,
    ChildProtection => ChildProtection,
    Cash => Cash,
});

proto_enum!(Priority => Priority {
    Routine => Routine,
    Urgent => Urgent,
    Emergency => Emergency,
});

proto_enum!(DeclineCode => DeclineCode {
    NoCapacity => NoCapacity,
    NotEligible => NotEligible,
    ServiceNotOffered => ServiceNotOffered,
    ClientUnreachable => ClientUnreachable,
    ClientDeclined => ClientDeclined,
    Redirected => Redirected,
    Other => Other,
});

proto_enum!(CancelCode => CancelCode {
    ClientRequest => ClientRequest,
    ConsentWithdrawn => ConsentWithdrawn,
    CaseClosed => CaseClosed,
    NoLongerNeeded => NoLongerNeeded,
    ReferredElsewhere => ReferredElsewhere,
    Duplicate => Duplicate,
    Other => Other,
    Expired => Expired,
});

proto_enum!(AcknowledgeCode => AcknowledgeCode {
    PartnerContacted => PartnerContacted,
    ReferrerContacted => ReferrerContacted,
    RedirectAdvised => RedirectAdvised,
    ServiceGap => ServiceGap,
    Resolved => Resolved,
    Other => Other,
});

proto_enum!(HoldCode => HoldCode {
    ClientUnavailable => ClientUnavailable,
    AwaitingDocuments => AwaitingDocuments,
    AwaitingCapacity => AwaitingCapacity,
    Security => Security,
    Other => Other,
});

proto_enum!(FailCode => FailCode {
    ClientUnreachable => ClientUnreachable,
    ClientDeclined => ClientDeclined,
    ClientRelocated => ClientRelocated,
    ServiceUnavailable => ServiceUnavailable,
    Security => Security,
    Other => Other,
});

proto_enum!(ErrorCode => ErrorCode {
    Duplicate => Duplicate,
    WrongCase => WrongCase,
    WrongOrganisation => WrongOrganisation,
    TestData => TestData,
    Other => Other,
});

proto_enum!(OverrideCode => OverrideCode {
    LifeThreatening => LifeThreatening,
    ChildBestInterest => ChildBestInterest,
    LacksCapacity => LacksCapacity,
    Other => Other,
});

proto_enum!(CloseCode => CloseCode {
    NeedsMet => NeedsMet,
    ClientRequest => ClientRequest,
    ClientRelocated => ClientRelocated,
    LostContact => LostContact,
    Transferred => Transferred,
    Duplicate => Duplicate,
    Other => Other,
});

proto_enum!(EraseCode => EraseCode {
    ClientRequest => ClientRequest,
    RetentionExpired => RetentionExpired,
    LegalOrder => LegalOrder,
    RecordedInError => RecordedInError,
    Other => Other,
});

proto_enum!(OrgKind => OrgKind {
    UnAgency => UnAgency,
    InternationalNgo => InternationalNgo,
    NationalNgo => NationalNgo,
    Government => Government,
    Other => Other,
});

proto_enum!(OverdueKind => OverdueKind {
    Acknowledgement => Acknowledgement,
    Decision => Decision,
    FollowUp => FollowUp,
    Stalled => Stalled,
});

proto_enum!(ServiceReceived => ServiceReceived {
    Yes => Yes,
    Partly => Partly,
    No => No,
    Unknown => Unknown,
});

// --- Actor -----------------------------------------------------------------------------------

pub(crate) fn actor_to_pb(actor: &Actor) -> pb::Actor {
    pb::Actor {
        user_id: actor.user.to_string(),
        org_id: actor.org.to_string(),
        roles: enums_to_pb(&actor.roles),
    }
}

pub(crate) fn actor_from_pb(actor: &pb::Actor) -> Result<Actor, DecodeError> {
    Ok(Actor {
        user: id(&actor.user_id, "Actor.user_id")?,
        org: id(&actor.org_id, "Actor.org_id")?,
        roles: enums(&actor.roles, "Actor.roles")?,
    })
}

// --- Personal data -----------------------------------------------------------------------------

pub(crate) fn pii_to_pb(pii: &EncryptedPii) -> pb::EncryptedPii {
    pb::EncryptedPii {
        cipher: pii.cipher().to_pb(),
        key_id: pii.key_id().as_str().to_owned(),
        nonce: pii.nonce().to_vec(),
        ciphertext: pii.ciphertext().to_vec(),
    }
}

pub(crate) fn pii_from_pb(pii: pb::EncryptedPii) -> Result<EncryptedPii, DecodeError> {
    let cipher = Cipher::from_pb(pii.cipher, "EncryptedPii.cipher")?;
    let key_id = KeyId::parse(&pii.key_id).at("EncryptedPii.key_id")?;
    EncryptedPii::new(cipher, key_id, pii.nonce, pii.ciphertext).map_err(|e| {
        let field = if e.field == "nonce" {
            "EncryptedPii.nonce"
        } else {
            "EncryptedPii.ciphertext"
        };
        DecodeError::invalid(field, e)
    })
}

pub(crate) fn opt_pii_to_pb(pii: Option<&EncryptedPii>) -> Option<pb::EncryptedPii> {
    pii.map(pii_to_pb)
}

pub(crate) fn opt_pii_from_pb(pii: Option<pb::EncryptedPii>) -> Result<Option<EncryptedPii>, DecodeError> {
    pii.map(pii_from_pb).transpose()
}

pub(crate) fn personal_to_pb(personal: &PersonalData) -> pb::PersonalData {
    pb::PersonalData {
        name: opt_pii_to_pb(personal.name.as_ref()),
        phone: opt_pii_to_pb(personal.phone.as_ref()),
        address: opt_pii_to_pb(personal.address.as_ref()),
        notes: opt_pii_to_pb(personal.notes.as_ref()),
    }
}

pub(crate) fn personal_from_pb(personal: pb::PersonalData) -> Result<PersonalData, DecodeError> {
    Ok(PersonalData {
        name: opt_pii_from_pb(personal.name)?,
        phone: opt_pii_from_pb(personal.phone)?,
        address: opt_pii_from_pb(personal.address)?,
        notes: opt_pii_from_pb(personal.notes)?,
    })
}

// --- Location and client -------------------------------------------------------------------------

pub(crate) fn location_to_pb(location: &Location) -> pb::Location {
    pb::Location {
        governorate: location.governorate().code().to_owned(),
        district: location.district().map(|d| d.code().to_owned()),
    }
}

pub(crate) fn location_from_pb(location: &pb::Location) -> Result<Location, DecodeError> {
    let governorate = Governorate::parse(&location.governorate).at("Location.governorate")?;
    let district = location
        .district
        .as_deref()
        .map(District::parse)
        .transpose()
        .at("Location.district")?;
    Location::new(governorate, district).at("Location.district")
}

fn locations_from_pb(locations: &[pb::Location]) -> Result<Vec<Location>, DecodeError> {
    locations.iter().map(location_from_pb).collect()
}

pub(crate) fn profile_to_pb(profile: &ClientProfile) -> pb::ClientProfile {
    let mut out = pb::ClientProfile {
        sex: profile.sex.to_pb(),
        age_group: profile.age_group.to_pb(),
        population_group: profile.population_group.to_pb(),
        nationality: profile.nationality.as_str().to_owned(),
        location: Some(location_to_pb(&profile.location)),
        language: profile.language.as_str().to_owned(),
        ..Default::default()
    };
    match &profile.identifying {
        Identifying::Sealed(sealed) => {
            out.sealed_survivor_code = Some(pii_to_pb(&sealed.survivor_code));
            out.survivor_code_lookup = sealed.lookup.as_bytes().to_vec();
            out.sealed_age_years = Some(pii_to_pb(&sealed.age_years));
            out.sealed_vulnerabilities = Some(pii_to_pb(&sealed.vulnerabilities));
        }
        Identifying::Clear(facts) => {
            out.survivor_code = facts.survivor_code.as_str().to_owned();
            out.age_years = facts.age_years.map(u32::from);
            out.vulnerabilities = enums_to_pb(&facts.vulnerabilities);
        }
    }
    out
}

pub(crate) fn profile_from_pb(profile: pb::ClientProfile) -> Result<ClientProfile, DecodeError> {
    let age_group = AgeGroup::from_pb(profile.age_group, "ClientProfile.age_group")?;
    let sealed = profile.sealed_survivor_code.is_some()
        || !profile.survivor_code_lookup.is_empty()
        || profile.sealed_age_years.is_some()
        || profile.sealed_vulnerabilities.is_some();
    let identifying = if sealed {
        // One form or the other: a clear value beside sealed ones would defeat the sealing.
        if !profile.survivor_code.is_empty() {
            return Err(DecodeError::invalid_because(
                "ClientProfile.survivor_code",
                "is set beside the sealed facts",
            ));
        }
        if profile.age_years.is_some() {
            return Err(DecodeError::invalid_because(
                "ClientProfile.age_years",
                "is set beside the sealed facts",
            ));
        }
        if !profile.vulnerabilities.is_empty() {
            return Err(DecodeError::invalid_because(
                "ClientProfile.vulnerabilities",
                "is set beside the sealed facts",
            ));
        }
        let lookup: [u8; 32] = profile
            .survivor_code_lookup
            .as_slice()
            .try_into()
            .map_err(|_| DecodeError::invalid_because("ClientProfile.survivor_code_lookup", "must be 32 bytes"))?;
        Identifying::sealed(SealedFacts {
            survivor_code: pii_from_pb(required(
                profile.sealed_survivor_code,
                "ClientProfile.sealed_survivor_code",
            )?)?,
            lookup: SurvivorCodeLookup::from_bytes(lookup),
            age_years: pii_from_pb(required(profile.sealed_age_years, "ClientProfile.sealed_age_years")?)?,
            vulnerabilities: pii_from_pb(required(
                profile.sealed_vulnerabilities,
                "ClientProfile.sealed_vulnerabilities",
            )?)?,
        })
    } else {
        let years = profile
            .age_years
            .map(|y| small(y, "ClientProfile.age_years"))
            .transpose()?;
        Age::new(age_group, years).at("ClientProfile.age_years")?;
        Identifying::Clear(IdentifyingFacts {
            survivor_code: SurvivorCode::parse(&profile.survivor_code).at("ClientProfile.survivor_code")?,
            age_years: years,
            // Kept in wire order: the domain normalised it before the event was decided.
            vulnerabilities: enums(&profile.vulnerabilities, "ClientProfile.vulnerabilities")?,
        })
    };
    Ok(ClientProfile {
        sex: Sex::from_pb(profile.sex, "ClientProfile.sex")?,
        age_group,
        population_group: PopulationGroup::from_pb(profile.population_group, "ClientProfile.population_group")?,
        nationality: Nationality::parse(&profile.nationality).at("ClientProfile.nationality")?,
        location: location_from_pb(&required(profile.location, "ClientProfile.location")?)?,
        language: Language::parse(&profile.language).at("ClientProfile.language")?,
        identifying,
    })
}

pub(crate) fn summary_to_pb(summary: &ClientSummary) -> pb::ClientSummary {
    pb::ClientSummary {
        sex: summary.sex.to_pb(),
        age_group: summary.age_group.to_pb(),
        population_group: summary.population_group.to_pb(),
        language: summary.language.as_str().to_owned(),
        location: Some(location_to_pb(&summary.location)),
    }
}

pub(crate) fn summary_from_pb(summary: pb::ClientSummary) -> Result<ClientSummary, DecodeError> {
    Ok(ClientSummary {
        sex: Sex::from_pb(summary.sex, "ClientSummary.sex")?,
        age_group: AgeGroup::from_pb(summary.age_group, "ClientSummary.age_group")?,
        population_group: PopulationGroup::from_pb(summary.population_group, "ClientSummary.population_group")?,
        language: Language::parse(&summary.language).at("ClientSummary.language")?,
        location: location_from_pb(&required(summary.location, "ClientSummary.location")?)?,
    })
}

// --- Scopes ----------------------------------------------------------------------------------------

/// A listed scope; the wire form of a set must not repeat a value (the encoder never does, and
/// a repeated value would be silently merged otherwise).
fn set_from<T: Ord>(values: Vec<T>, field: &'static str) -> Result<BTreeSet<T>, DecodeError> {
    let len = values.len();
    let set: BTreeSet<T> = values.into_iter().collect();
    if set.len() == len {
        Ok(set)
    } else {
        Err(DecodeError::invalid_because(field, "lists a value twice"))
    }
}

fn category_scope_to_pb(scope: &Scope<ServiceCategory>) -> pb::ServiceCategoryScope {
    use pb::service_category_scope::Scope as S;
    pb::ServiceCategoryScope {
        scope: Some(match scope {
            Scope::Any => S::Any(pb::AnyValue {}),
            Scope::Only(values) => S::Only(pb::ServiceCategoryList {
                values: enums_to_pb(values),
            }),
        }),
    }
}

fn category_scope_from_pb(scope: pb::ServiceCategoryScope) -> Result<Scope<ServiceCategory>, DecodeError> {
    use pb::service_category_scope::Scope as S;
    const FIELD: &str = "ServiceCategoryList.values";
    Ok(match required(scope.scope, "ServiceCategoryScope.scope")? {
        S::Any(pb::AnyValue {}) => Scope::Any,
        S::Only(list) => Scope::Only(set_from(enums(&list.values, FIELD)?, FIELD)?),
    })
}

fn org_scope_to_pb(scope: &Scope<wasl_domain::ids::OrgId>) -> pb::OrgScope {
    use pb::org_scope::Scope as S;
    pb::OrgScope {
        scope: Some(match scope {
            Scope::Any => S::Any(pb::AnyValue {}),
            Scope::Only(values) => S::Only(pb::OrgIdList {
                values: values.iter().map(ToString::to_string).collect(),
            }),
        }),
    }
}

fn org_scope_from_pb(scope: pb::OrgScope) -> Result<Scope<wasl_domain::ids::OrgId>, DecodeError> {
    use pb::org_scope::Scope as S;
    const FIELD: &str = "OrgIdList.values";
    Ok(match required(scope.scope, "OrgScope.scope")? {
        S::Any(pb::AnyValue {}) => Scope::Any,
        S::Only(list) => Scope::Only(set_from(ids(&list.values, FIELD)?, FIELD)?),
    })
}

fn sex_scope_to_pb(scope: &Scope<Sex>) -> pb::SexScope {
    use pb::sex_scope::Scope as S;
    pb::SexScope {
        scope: Some(match scope {
            Scope::Any => S::Any(pb::AnyValue {}),
            Scope::Only(values) => S::Only(pb::SexList {
                values: enums_to_pb(values),
            }),
        }),
    }
}

fn sex_scope_from_pb(scope: pb::SexScope) -> Result<Scope<Sex>, DecodeError> {
    use pb::sex_scope::Scope as S;
    const FIELD: &str = "SexList.values";
    Ok(match required(scope.scope, "SexScope.scope")? {
        S::Any(pb::AnyValue {}) => Scope::Any,
        S::Only(list) => Scope::Only(set_from(enums(&list.values, FIELD)?, FIELD)?),
    })
}

pub(crate) fn consent_scope_to_pb(scope: &ConsentScope) -> pb::ConsentScope {
    pb::ConsentScope {
        categories: Some(category_scope_to_pb(&scope.categories)),
        organisations: Some(org_scope_to_pb(&scope.organisations)),
        expires_at: scope.expires_at.map(timestamp_to_pb),
    }
}

pub(crate) fn consent_scope_from_pb(scope: pb::ConsentScope) -> Result<ConsentScope, DecodeError> {
    Ok(ConsentScope {
        categories: category_scope_from_pb(required(scope.categories, "ConsentScope.categories")?)?,
        organisations: org_scope_from_pb(required(scope.organisations, "ConsentScope.organisations")?)?,
        expires_at: scope
            .expires_at
            .map(|ts| timestamp_from_pb(&ts, "ConsentScope.expires_at"))
            .transpose()?,
    })
}

// --- Services --------------------------------------------------------------------------------------

pub(crate) fn spec_to_pb(spec: &ServiceSpec) -> pb::ServiceSpec {
    pb::ServiceSpec {
        name: spec.name.as_str().to_owned(),
        category: spec.category.to_pb(),
        areas: spec.areas.iter().map(location_to_pb).collect(),
        languages: spec.languages.iter().map(|l| l.as_str().to_owned()).collect(),
        eligibility: Some(pb::Eligibility {
            sexes: Some(sex_scope_to_pb(&spec.eligibility.sexes)),
            min_age: u32::from(spec.eligibility.min_age),
            max_age: u32::from(spec.eligibility.max_age),
        }),
    }
}

pub(crate) fn spec_from_pb(spec: pb::ServiceSpec) -> Result<ServiceSpec, DecodeError> {
    let eligibility = required(spec.eligibility, "ServiceSpec.eligibility")?;
    Ok(ServiceSpec {
        name: DisplayName::parse(&spec.name).at("ServiceSpec.name")?,
        category: ServiceCategory::from_pb(spec.category, "ServiceSpec.category")?,
        areas: locations_from_pb(&spec.areas)?,
        languages: spec
            .languages
            .iter()
            .map(|l| Language::parse(l).at("ServiceSpec.languages"))
            .collect::<Result<_, _>>()?,
        eligibility: Eligibility {
            sexes: sex_scope_from_pb(required(eligibility.sexes, "Eligibility.sexes")?)?,
            min_age: small(eligibility.min_age, "Eligibility.min_age")?,
            max_age: small(eligibility.max_age, "Eligibility.max_age")?,
        },
    })
}

// --- Reasons ---------------------------------------------------------------------------------------

/// A protobuf reason message: a code and optional encrypted text.
pub(crate) trait PbReason: Sized {
    /// The code's field name, for errors.
    const CODE_FIELD: &'static str;
    /// Builds the message.
    fn new(code: i32, text: Option<pb::EncryptedPii>) -> Self;
    /// Takes the message apart.
    fn into_parts(self) -> (i32, Option<pb::EncryptedPii>);
}

macro_rules! pb_reason {
    ($($message:ident),+ $(,)?) => {$(
        impl PbReason for pb::$message {
            const CODE_FIELD: &'static str = concat!(stringify!($message), ".code");
            fn new(code: i32, text: Option<pb::EncryptedPii>) -> Self {
                Self { code, text }
            }
            fn into_parts(self) -> (i32, Option<pb::EncryptedPii>) {
                (self.code, self.text)
            }
        }
    )+};
}

pb_reason!(
    DeclineReason,
    CancelReason,
    HoldReason,
    FailReason,
    ErrorReason,
    OverrideReason,
    CloseReason,
    EraseReason,
    AcknowledgeReason
);

pub(crate) fn reason_to_pb<C: ProtoEnum, R: PbReason>(reason: &Reason<C>) -> R {
    R::new(reason.code.to_pb(), opt_pii_to_pb(reason.text.as_ref()))
}

pub(crate) fn reason_from_pb<C: ProtoEnum, R: PbReason>(reason: R) -> Result<Reason<C>, DecodeError> {
    let (code, text) = reason.into_parts();
    Ok(Reason {
        code: C::from_pb(code, R::CODE_FIELD)?,
        text: opt_pii_from_pb(text)?,
    })
}

/// A required reason field.
pub(crate) fn required_reason<C: ProtoEnum, R: PbReason>(
    reason: Option<R>,
    field: &'static str,
) -> Result<Reason<C>, DecodeError> {
    reason_from_pb(required(reason, field)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every domain value survives the trip, and the protobuf numbers are exactly 1..=n, so no
    /// domain value shares a number with another or with UNSPECIFIED.
    fn check<E: ProtoEnum + PartialEq + std::fmt::Debug>(all: &[E]) {
        let mut numbers = Vec::new();
        for value in all {
            let n = value.to_pb();
            assert_eq!(E::from_pb(n, "f").unwrap(), *value);
            numbers.push(n);
        }
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=all.len() as i32).collect::<Vec<_>>());
        let unknown = all.len() as i32 + 1;
        assert_eq!(
            E::from_pb(0, "f"),
            Err(DecodeError::UnknownEnumValue { field: "f", number: 0 })
        );
        assert_eq!(
            E::from_pb(unknown, "f"),
            Err(DecodeError::UnknownEnumValue {
                field: "f",
                number: unknown
            })
        );
    }

    #[test]
    fn every_vocabulary_maps_one_to_one() {
        check(Cipher::ALL);
        check(Role::ALL);
        check(Sex::ALL);
        check(AgeGroup::ALL);
        check(PopulationGroup::ALL);
        check(Vulnerability::ALL);
        check(ServiceCategory::ALL);
        check(Priority::ALL);
        check(DeclineCode::ALL);
        check(CancelCode::ALL);
        check(HoldCode::ALL);
        check(FailCode::ALL);
        check(ErrorCode::ALL);
        check(OverrideCode::ALL);
        check(CloseCode::ALL);
        check(EraseCode::ALL);
        check(AcknowledgeCode::ALL);
        check(OrgKind::ALL);
        check(OverdueKind::ALL);
        check(ServiceReceived::ALL);
    }

    #[test]
    fn every_governorate_and_district_round_trips_as_a_code() {
        for d in District::all() {
            let location = Location::new(d.governorate(), Some(*d)).unwrap();
            assert_eq!(location_from_pb(&location_to_pb(&location)).unwrap(), location);
        }
        for g in Governorate::ALL {
            let location = Location::governorate_only(*g);
            assert_eq!(location_from_pb(&location_to_pb(&location)).unwrap(), location);
        }
    }

    #[test]
    fn a_district_of_another_governorate_is_refused() {
        let wire = pb::Location {
            governorate: "IQ-BG".into(),
            district: Some("mosul".into()),
        };
        assert!(matches!(
            location_from_pb(&wire),
            Err(DecodeError::Invalid {
                field: "Location.district",
                ..
            })
        ));
    }

    #[test]
    fn a_listed_scope_must_not_repeat_a_value() {
        let wire = pb::SexScope {
            scope: Some(pb::sex_scope::Scope::Only(pb::SexList { values: vec![1, 1] })),
        };
        assert!(matches!(
            sex_scope_from_pb(wire),
            Err(DecodeError::Invalid {
                field: "SexList.values",
                ..
            })
        ));
        assert!(matches!(
            sex_scope_from_pb(pb::SexScope { scope: None }),
            Err(DecodeError::MissingField {
                field: "SexScope.scope"
            })
        ));
    }
}
