//! What a case records about the client: a survivor code instead of a name, and the
//! non-identifying facts that matching and dashboards need.

use crate::codes::code_enum;
use crate::error::ValidationError;
use crate::geo::Location;
use crate::pii::EncryptedPii;
use std::fmt;

/// The code a caseworker uses instead of the client's name, e.g. `NIN-2026-0042`.
///
/// 3 to 32 characters of `A-Z`, `0-9` and `-`, with at least one digit: a code that is all
/// letters is too easily a name typed in the wrong box. Stored upper-case.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SurvivorCode(String);

impl SurvivorCode {
    /// Validates and normalises a survivor code.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let code = text.trim().to_ascii_uppercase();
        if !(3..=32).contains(&code.len()) {
            return Err(ValidationError::new("survivor_code", "must be 3 to 32 characters long"));
        }
        if !code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(ValidationError::new(
                "survivor_code",
                "may hold only letters A-Z, digits and '-'",
            ));
        }
        if !code.bytes().any(|b| b.is_ascii_digit()) {
            return Err(ValidationError::new("survivor_code", "must contain at least one digit"));
        }
        Ok(Self(code))
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Redacted on purpose: a survivor code identifies a person to whoever holds the case file.
impl fmt::Debug for SurvivorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SurvivorCode(<redacted>)")
    }
}

code_enum!(
    /// Sex, as recorded for eligibility and disaggregated statistics.
    Sex, "sex" {
        /// Female.
        Female => "female",
        /// Male.
        Male => "male",
        /// Another sex or intersex.
        Other => "other",
        /// The client did not say.
        Undisclosed => "undisclosed",
    }
);

code_enum!(
    /// Age group, following the humanitarian sex-and-age disaggregation bands.
    AgeGroup, "age_group" {
        /// 0 to 4 years.
        Under5 => "0_4",
        /// 5 to 11 years.
        Age5To11 => "5_11",
        /// 12 to 17 years.
        Age12To17 => "12_17",
        /// 18 to 24 years.
        Age18To24 => "18_24",
        /// 25 to 59 years.
        Age25To59 => "25_59",
        /// 60 years and older.
        Age60Plus => "60_plus",
    }
);

impl AgeGroup {
    /// The band an age in years falls in.
    pub const fn of_years(years: u8) -> Self {
        match years {
            0..=4 => Self::Under5,
            5..=11 => Self::Age5To11,
            12..=17 => Self::Age12To17,
            18..=24 => Self::Age18To24,
            25..=59 => Self::Age25To59,
            _ => Self::Age60Plus,
        }
    }

    /// Whether the band is of children (under 18).
    pub const fn is_child(self) -> bool {
        matches!(self, Self::Under5 | Self::Age5To11 | Self::Age12To17)
    }

    /// The youngest and oldest age in years of the band (the last band ends at 120).
    pub const fn bounds(self) -> (u8, u8) {
        match self {
            Self::Under5 => (0, 4),
            Self::Age5To11 => (5, 11),
            Self::Age12To17 => (12, 17),
            Self::Age18To24 => (18, 24),
            Self::Age25To59 => (25, 59),
            Self::Age60Plus => (60, 120),
        }
    }
}

/// Age: always the group, and the exact years when known (they must fall in the group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Age {
    group: AgeGroup,
    years: Option<u8>,
}

impl Age {
    /// An age known only by its group.
    pub const fn group_only(group: AgeGroup) -> Self {
        Self { group, years: None }
    }

    /// An age in years (0 to 120).
    pub fn years(years: u8) -> Result<Self, ValidationError> {
        if years > 120 {
            return Err(ValidationError::new("age_years", "must be at most 120"));
        }
        Ok(Self {
            group: AgeGroup::of_years(years),
            years: Some(years),
        })
    }

    /// An age from a group and optional years, which must agree.
    pub fn new(group: AgeGroup, years: Option<u8>) -> Result<Self, ValidationError> {
        match years {
            None => Ok(Self::group_only(group)),
            Some(y) => {
                let age = Self::years(y)?;
                if age.group == group {
                    Ok(age)
                } else {
                    Err(ValidationError::new("age_years", "does not fall in the age group"))
                }
            }
        }
    }

    /// The group.
    pub const fn group(&self) -> AgeGroup {
        self.group
    }

    /// The exact years, if known.
    pub const fn exact_years(&self) -> Option<u8> {
        self.years
    }
}

code_enum!(
    /// Population group.
    PopulationGroup, "population_group" {
        /// Returned to the area of origin.
        Returnee => "returnee",
        /// Internally displaced person.
        Idp => "idp",
        /// Migrant.
        Migrant => "migrant",
        /// Refugee or asylum seeker.
        Refugee => "refugee",
        /// Member of the host community.
        HostCommunity => "host_community",
        /// Another group.
        Other => "other",
    }
);

code_enum!(
    /// A vulnerability that shapes which services fit and how urgently.
    Vulnerability, "vulnerability" {
        /// Survivor of gender-based violence.
        GbvSurvivor => "gbv_survivor",
        /// Child without either parent or a caregiver.
        UnaccompaniedChild => "unaccompanied_child",
        /// Child separated from parents but with another caregiver.
        SeparatedChild => "separated_child",
        /// Person with a disability.
        Disability => "disability",
        /// Serious or chronic medical condition.
        ChronicIllness => "chronic_illness",
        /// Pregnant or lactating.
        PregnantOrLactating => "pregnant_or_lactating",
        /// Female-headed household.
        FemaleHeadedHousehold => "female_headed_household",
        /// Older person at risk.
        OlderPersonAtRisk => "older_person_at_risk",
        /// Survivor of trafficking.
        TraffickingSurvivor => "trafficking_survivor",
        /// Survivor of torture or detention.
        DetentionSurvivor => "detention_survivor",
        /// Missing civil documentation.
        MissingDocumentation => "missing_documentation",
        /// Perceived affiliation with an armed group.
        PerceivedAffiliation => "perceived_affiliation",
        /// Another vulnerability.
        Other => "other",
    }
);

/// A nationality as an ISO 3166-1 alpha-2 country code (`IQ`, `SY`, `IR`, `TR`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nationality([u8; 2]);

impl Nationality {
    /// Parses a two-letter country code (case-insensitive). `XX` stands for stateless or unknown.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        match text.trim().as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => Err(ValidationError::new(
                "nationality",
                "must be a two-letter ISO 3166-1 code",
            )),
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("XX")
    }
}

/// A preferred language as a BCP 47 tag: `ar`, `ckb` (Sorani), `kmr` (Kurmanji), `en`, `tr`, …
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Language(String);

impl Language {
    /// Validates the shape of a BCP 47 tag: a 2–3 letter primary subtag, then `-`-separated
    /// subtags of 1–8 letters or digits. Normalised to a lower-case primary subtag.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let text = text.trim();
        let mut parts = text.split('-');
        let primary = parts.next().unwrap_or_default();
        let primary_ok = (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_alphabetic());
        let rest_ok = parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !(primary_ok && rest_ok) || text.len() > 35 {
            return Err(ValidationError::new("language", "must be a BCP 47 language tag"));
        }
        let (primary, rest) = text.split_at(primary.len());
        Ok(Self(format!("{}{}", primary.to_ascii_lowercase(), rest)))
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The primary language subtag (`ckb` of `ckb-IQ`).
    pub fn primary(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }
}

/// A survivor code's keyed hash (HMAC-SHA256 under a key derived from the master key): how a
/// case is found by its code while the code itself is sealed. Only the api, which holds the key,
/// can compute one; the read models compare them and never see the code.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SurvivorCodeLookup([u8; 32]);

impl SurvivorCodeLookup {
    /// The hash's bytes as computed.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Its bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, as the read models store it.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Shows only a prefix: enough to tell two apart in a test, too little to search with.
impl fmt::Debug for SurvivorCodeLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SurvivorCodeLookup({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

/// Which identifying fact a sealed value holds: part of what the seal is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentifyingField {
    /// The survivor code.
    SurvivorCode,
    /// The exact age in years.
    AgeYears,
    /// The vulnerabilities.
    Vulnerabilities,
}

/// The facts of a profile that single a person out, in the clear: the survivor code, the exact
/// age and the vulnerabilities (`gbv_survivor`, …). They are sealed under the case's key in
/// every event written (see [`SealedFacts`]), so that erasing the case's key erases them too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifyingFacts {
    /// The survivor code used instead of a name.
    pub survivor_code: SurvivorCode,
    /// The exact age in years, when known (it falls in the profile's age group).
    pub age_years: Option<u8>,
    /// Vulnerabilities, without duplicates, in code order.
    pub vulnerabilities: Vec<Vulnerability>,
}

/// The sealed texts are padded to these lengths, so a ciphertext's length says nothing about
/// the value: not a code's length, whether the age is known, nor how many vulnerabilities.
const CODE_WIDTH: usize = 32;
const AGE_WIDTH: usize = 3;
const VULNERABILITIES_WIDTH: usize = 320;

fn padded(mut text: String, width: usize) -> String {
    while text.len() < width {
        text.push(' ');
    }
    text
}

impl IdentifyingFacts {
    /// Sorts and de-duplicates the vulnerabilities so that equal facts compare equal.
    pub fn normalised(mut self) -> Self {
        self.vulnerabilities.sort();
        self.vulnerabilities.dedup();
        self
    }

    /// The text each field is sealed as, padded to a fixed length per field: the code; the
    /// age as three digits or `---`; the vulnerability codes joined by `,`.
    pub fn sealed_text(&self, field: IdentifyingField) -> String {
        match field {
            IdentifyingField::SurvivorCode => padded(self.survivor_code.as_str().to_owned(), CODE_WIDTH),
            IdentifyingField::AgeYears => match self.age_years {
                Some(years) => format!("{years:03}"),
                None => "---".to_owned(),
            },
            IdentifyingField::Vulnerabilities => {
                let codes: Vec<&str> = self.vulnerabilities.iter().map(|v| v.code()).collect();
                padded(codes.join(","), VULNERABILITIES_WIDTH)
            }
        }
    }

    /// The facts from their opened texts ([`Self::sealed_text`]), checked like typed input.
    pub fn from_sealed_texts(code: &str, age: &str, vulnerabilities: &str) -> Result<Self, ValidationError> {
        let age_years = match age.trim() {
            "---" => None,
            digits => Some(
                digits
                    .parse::<u8>()
                    .ok()
                    .filter(|y| *y <= 120 && age.len() == AGE_WIDTH)
                    .ok_or_else(|| ValidationError::new("age_years", "is not a sealed age"))?,
            ),
        };
        let vulnerabilities = vulnerabilities
            .trim_end()
            .split(',')
            .filter(|c| !c.is_empty())
            .map(Vulnerability::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            survivor_code: SurvivorCode::parse(code.trim_end())?,
            age_years,
            vulnerabilities,
        }
        .normalised())
    }
}

/// The identifying facts sealed under the case's data key, each field on its own, with the
/// survivor code's keyed hash for lookups. The values are opened only by the api for a reader
/// with the right to the case; once the case's key is destroyed they read "erased" everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedFacts {
    /// The survivor code ([`IdentifyingFacts::sealed_text`]).
    pub survivor_code: EncryptedPii,
    /// The survivor code's keyed hash.
    pub lookup: SurvivorCodeLookup,
    /// The exact age, or that it is unknown.
    pub age_years: EncryptedPii,
    /// The vulnerabilities.
    pub vulnerabilities: EncryptedPii,
}

impl SealedFacts {
    /// The sealed value of `field`.
    pub fn get(&self, field: IdentifyingField) -> &EncryptedPii {
        match field {
            IdentifyingField::SurvivorCode => &self.survivor_code,
            IdentifyingField::AgeYears => &self.age_years,
            IdentifyingField::Vulnerabilities => &self.vulnerabilities,
        }
    }
}

/// How an event holds the identifying facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifying {
    /// Sealed: what every command writes.
    Sealed(Box<SealedFacts>),
    /// In the clear, as events written before they were sealed hold them (read, never
    /// written: the domain refuses a command that carries them so).
    Clear(IdentifyingFacts),
}

/// The facts about a client that a case holds: coded, non-identifying categories in the clear
/// for matching, referrals and statistics, and the identifying facts sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ClientProfile {
    pub sex: Sex,
    /// Always known; the exact age, when known, is among the identifying facts.
    pub age_group: AgeGroup,
    pub population_group: PopulationGroup,
    pub nationality: Nationality,
    /// Where the client lives now.
    pub location: Location,
    /// Preferred language.
    pub language: Language,
    /// The survivor code, exact age and vulnerabilities.
    pub identifying: Identifying,
}

impl Identifying {
    /// The sealed form.
    pub fn sealed(facts: SealedFacts) -> Self {
        Self::Sealed(Box::new(facts))
    }
}

impl ClientProfile {
    /// Sorts and de-duplicates clear vulnerabilities so that equal profiles compare equal.
    pub fn normalised(mut self) -> Self {
        if let Identifying::Clear(facts) = self.identifying {
            self.identifying = Identifying::Clear(facts.normalised());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(code: &str, age: Option<u8>, vulnerabilities: Vec<Vulnerability>) -> IdentifyingFacts {
        IdentifyingFacts {
            survivor_code: SurvivorCode::parse(code).unwrap(),
            age_years: age,
            vulnerabilities,
        }
    }

    #[test]
    fn identifying_facts_survive_their_sealed_texts() {
        for f in [
            facts("TEST-1", None, vec![]),
            facts(
                "TEST-0042-ABCDEFGHIJKLMNOPQRSTUV",
                Some(0),
                vec![Vulnerability::GbvSurvivor],
            ),
            facts("TEST-7", Some(120), Vulnerability::ALL.to_vec()),
        ] {
            let text = |field| f.sealed_text(field);
            let back = IdentifyingFacts::from_sealed_texts(
                &text(IdentifyingField::SurvivorCode),
                &text(IdentifyingField::AgeYears),
                &text(IdentifyingField::Vulnerabilities),
            )
            .unwrap();
            assert_eq!(back, f.clone().normalised());
        }
    }

    #[test]
    fn sealed_texts_have_one_length_per_field_whatever_the_value() {
        let short = facts("AB1", None, vec![]);
        let long = facts(
            "TEST-0042-ABCDEFGHIJKLMNOPQRSTUV",
            Some(120),
            Vulnerability::ALL.to_vec(),
        );
        for field in [
            IdentifyingField::SurvivorCode,
            IdentifyingField::AgeYears,
            IdentifyingField::Vulnerabilities,
        ] {
            assert_eq!(
                short.sealed_text(field).len(),
                long.sealed_text(field).len(),
                "{field:?}"
            );
        }
    }

    #[test]
    fn a_sealed_text_that_is_not_one_is_refused() {
        assert!(IdentifyingFacts::from_sealed_texts("TEST-1", "abc", "").is_err());
        assert!(IdentifyingFacts::from_sealed_texts("TEST-1", "121", "").is_err());
        assert!(IdentifyingFacts::from_sealed_texts("TEST-1", "---", "no_such_thing").is_err());
        assert!(IdentifyingFacts::from_sealed_texts("Fatima", "---", "").is_err());
    }

    #[test]
    fn a_lookup_hash_prints_only_a_prefix() {
        let lookup = SurvivorCodeLookup::from_bytes([0xab; 32]);
        assert_eq!(format!("{lookup:?}"), "SurvivorCodeLookup(abab…)");
        assert_eq!(lookup.to_hex().len(), 64);
    }

    #[test]
    fn survivor_codes_are_normalised_to_upper_case() {
        assert_eq!(
            SurvivorCode::parse(" nin-2026-0042 ").unwrap().as_str(),
            "NIN-2026-0042"
        );
    }

    #[test]
    fn a_survivor_code_without_digits_is_refused_as_it_may_be_a_name() {
        let err = SurvivorCode::parse("Fatima").unwrap_err();
        assert_eq!(err.problem, "must contain at least one digit");
        assert!(!err.to_string().contains("Fatima"));
    }

    #[test]
    fn a_survivor_code_with_spaces_or_too_long_is_refused() {
        assert!(SurvivorCode::parse("AB 12").is_err());
        assert!(SurvivorCode::parse("A1").is_err());
        assert!(SurvivorCode::parse(&"A1".repeat(17)).is_err());
    }

    #[test]
    fn survivor_code_debug_output_is_redacted() {
        let code = SurvivorCode::parse("TEST-0001").unwrap();
        assert!(!format!("{code:?}").contains("0001"));
    }

    #[test]
    fn age_years_must_fall_in_the_group() {
        assert_eq!(Age::years(15).unwrap().group(), AgeGroup::Age12To17);
        assert!(Age::new(AgeGroup::Age25To59, Some(15)).is_err());
        assert!(Age::new(AgeGroup::Age60Plus, Some(121)).is_err());
        assert!(AgeGroup::of_years(17).is_child());
        assert!(!AgeGroup::of_years(18).is_child());
    }

    #[test]
    fn age_group_bounds_agree_with_of_years() {
        for g in AgeGroup::ALL {
            let (lo, hi) = g.bounds();
            assert_eq!(AgeGroup::of_years(lo), *g);
            assert_eq!(AgeGroup::of_years(hi), *g);
        }
    }

    #[test]
    fn nationality_and_language_are_validated_and_normalised() {
        assert_eq!(Nationality::parse("sy").unwrap().as_str(), "SY");
        assert!(Nationality::parse("SYR").is_err());
        assert_eq!(Language::parse("CKB-IQ").unwrap().as_str(), "ckb-IQ");
        assert_eq!(Language::parse("ckb-IQ").unwrap().primary(), "ckb");
        assert!(Language::parse("arabic language").is_err());
        assert!(Language::parse("a").is_err());
    }
}
