//! The objectives of the Global Compact for Safe, Orderly and Regular Migration (GCM) a referral
//! serves, for the outcome indicators coordinators report in the GCM review.
//!
//! Each service category serves a documented default set of objectives
//! ([`default_objectives`]). A referral records the objectives of its service when it is made
//! (`ReferralRequested.gcm_objectives`), so a later change of the table changes no past
//! referral. Referrals recorded before the field existed carry none; readers take the
//! category's default for them ([`objectives_or_default`]). `docs/indicators.md` explains the
//! table.

use crate::catalogue::ServiceCategory;
use crate::error::ValidationError;
use std::fmt;

/// One of the 23 objectives of the GCM (UN General Assembly resolution 73/195).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GcmObjective(u8);

/// The objectives' short titles, objective 1 first.
const TITLES: [&str; 23] = [
    "Collect and utilize accurate and disaggregated data",
    "Minimize the adverse drivers that compel people to leave their country",
    "Provide accurate and timely information at all stages of migration",
    "Ensure that all migrants have proof of legal identity and adequate documentation",
    "Enhance availability and flexibility of pathways for regular migration",
    "Facilitate fair and ethical recruitment and safeguard conditions for decent work",
    "Address and reduce vulnerabilities in migration",
    "Save lives and establish coordinated efforts on missing migrants",
    "Strengthen the transnational response to smuggling of migrants",
    "Prevent, combat and eradicate trafficking in persons",
    "Manage borders in an integrated, secure and coordinated manner",
    "Strengthen certainty and predictability in migration procedures for screening, assessment and referral",
    "Use migration detention only as a measure of last resort and work towards alternatives",
    "Enhance consular protection, assistance and cooperation",
    "Provide access to basic services for migrants",
    "Empower migrants and societies to realize full inclusion and social cohesion",
    "Eliminate all forms of discrimination and promote evidence-based public discourse",
    "Invest in skills development and facilitate mutual recognition of skills, qualifications and competences",
    "Create conditions for migrants and diasporas to fully contribute to sustainable development",
    "Promote faster, safer and cheaper transfer of remittances and foster financial inclusion",
    "Cooperate in facilitating safe and dignified return and readmission, and sustainable reintegration",
    "Establish mechanisms for the portability of social security entitlements and earned benefits",
    "Strengthen international cooperation and global partnerships for safe, orderly and regular migration",
];

impl GcmObjective {
    /// Objective `number`, 1 to 23.
    pub const fn new(number: u32) -> Result<Self, ValidationError> {
        if number >= 1 && number <= 23 {
            Ok(Self(number as u8))
        } else {
            Err(ValidationError::new(
                "gcm_objective",
                "must be an objective from 1 to 23",
            ))
        }
    }

    /// Its number, 1 to 23.
    pub const fn number(self) -> u32 {
        self.0 as u32
    }

    /// Its short title (English, as the GCM text words it).
    pub fn title(self) -> &'static str {
        TITLES.get(usize::from(self.0) - 1).copied().unwrap_or_default()
    }

    /// All 23, in order.
    pub fn all() -> impl Iterator<Item = Self> {
        (1..=23).map(|n| Self(n as u8))
    }

    /// Parses `"4"` (the number, as query parameters and CSV carry it).
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        text.trim()
            .parse::<u32>()
            .map_err(|_| ValidationError::new("gcm_objective", "must be an objective from 1 to 23"))
            .and_then(Self::new)
    }
}

impl fmt::Display for GcmObjective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

const O4: GcmObjective = GcmObjective(4);
const O7: GcmObjective = GcmObjective(7);
const O15: GcmObjective = GcmObjective(15);
const O18: GcmObjective = GcmObjective(18);
const O21: GcmObjective = GcmObjective(21);

/// The objectives a service of `category` serves unless configured otherwise, in ascending
/// order. Every category serves at least one. The reasoning per row is in `docs/indicators.md`.
pub const fn default_objectives(category: ServiceCategory) -> &'static [GcmObjective] {
    use ServiceCategory as C;
    match category {
        // Basic services (15), for people made vulnerable in migration (7).
        C::Health | C::Psychosocial | C::Shelter => &[O7, O15],
        // Legal aid reduces vulnerability (7) and opens procedures and services (15).
        C::Legal => &[O7, O15],
        // Proof of legal identity (4), a condition of sustainable reintegration (21).
        C::CivilDocumentation => &[O4, O21],
        // Skills and decent work (18) towards sustainable reintegration (21).
        C::Livelihoods => &[O18, O21],
        // Access to education (15) and skills (18).
        C::Education => &[O15, O18],
        // Children are the first vulnerable group of objective 7; services they need (15).
        C::ChildProtection => &[O7, O15],
        // Cash assistance reduces vulnerability (7) and supports reintegration (21).
        C::Cash => &[O7, O21],
    }
}

/// The objectives a referral records: `recorded` when it has some, else the default of its
/// category (referrals made before objectives were recorded).
pub fn objectives_or_default(recorded: &[GcmObjective], category: ServiceCategory) -> Vec<GcmObjective> {
    if recorded.is_empty() {
        default_objectives(category).to_vec()
    } else {
        recorded.to_vec()
    }
}

/// Checks a list of objectives as an event or a request carries it: ascending, no duplicates.
pub fn check_objectives(objectives: &[GcmObjective]) -> Result<(), ValidationError> {
    if objectives.windows(2).all(|w| w[0] < w[1]) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "gcm_objectives",
            "must be in ascending order without duplicates",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_are_1_to_23_with_a_title_each() {
        assert!(GcmObjective::new(0).is_err());
        assert!(GcmObjective::new(24).is_err());
        assert_eq!(GcmObjective::all().count(), 23);
        assert!(GcmObjective::all().all(|o| !o.title().is_empty()));
        assert_eq!(GcmObjective::parse("21").map(GcmObjective::number), Ok(21));
        assert!(GcmObjective::parse("x").is_err());
    }

    #[test]
    fn every_category_serves_at_least_one_objective_in_ascending_order() {
        for category in ServiceCategory::ALL {
            let objectives = default_objectives(*category);
            assert!(!objectives.is_empty(), "{category}");
            assert!(check_objectives(objectives).is_ok(), "{category}");
        }
        assert_eq!(
            default_objectives(ServiceCategory::CivilDocumentation)
                .iter()
                .map(|o| o.number())
                .collect::<Vec<_>>(),
            [4, 21]
        );
    }

    #[test]
    fn an_unrecorded_list_falls_back_to_the_category() {
        let recorded = [GcmObjective::new(12).expect("objective")];
        assert_eq!(objectives_or_default(&recorded, ServiceCategory::Cash), recorded);
        assert_eq!(
            objectives_or_default(&[], ServiceCategory::Cash),
            default_objectives(ServiceCategory::Cash)
        );
    }
}
